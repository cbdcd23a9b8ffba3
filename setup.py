"""Build hook: gridsvc's wheel carries the map assets (Leaflet and its plugins) it inlines offline.

Everything else is declared in setup.cfg. ``build_py`` copies, from ``maps/assets/node_modules``
(installed from ``maps/assets/package-lock.json`` by ``npm ci``), exactly the files
``maps/offline.py`` inlines (its ``KNOWN_ASSETS`` and the images their stylesheets reference)
plus each package's ``package.json`` and licence, into the wheel's ``maps/assets/node_modules``.
When ``node_modules`` is missing or does not match the lock, it runs ``npm ci`` first; without
``npm`` the build stops with a clear message. Editable installs (``pip install -e``) read the
checkout's ``node_modules`` directly (``make assets``) and skip the copy.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "maps" / "assets"
NODE_MODULES = ASSETS / "node_modules"
LICENCES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "MIT-LICENCE.txt", "MIT-LICENSE.txt")


def _offline_module():
    # maps/offline.py imports only the standard library: load it by path, not through `maps`.
    spec = importlib.util.spec_from_file_location("_gridsvc_offline", ASSETS.parent / "offline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _locked_versions() -> dict[str, str]:
    lock = json.loads((ASSETS / "package-lock.json").read_text(encoding="utf-8"))
    return {
        key.removeprefix("node_modules/"): entry["version"]
        for key, entry in lock["packages"].items()
        if key.startswith("node_modules/")
    }


def _installed_matches_lock() -> bool:
    for name, version in _locked_versions().items():
        manifest = NODE_MODULES / name / "package.json"
        if not manifest.is_file():
            return False
        if json.loads(manifest.read_text(encoding="utf-8")).get("version") != version:
            return False
    return True


def ensure_node_modules() -> None:
    """Install the npm packages of the lock when they are missing or differ from it."""
    if _installed_matches_lock():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "gridsvc build: maps/assets/node_modules is missing or does not match "
            "maps/assets/package-lock.json, and npm is not installed: run `make assets` "
            "(or `npm ci` in maps/assets) where npm is available, then build again"
        )
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ASSETS, check=True
    )
    if not _installed_matches_lock():
        raise SystemExit("gridsvc build: npm ci did not install the versions of the lock")


def asset_files() -> set[Path]:
    """Every file under node_modules the offline maps need, relative to node_modules."""
    offline = _offline_module()
    files: set[Path] = set()
    for relative in offline.KNOWN_ASSETS.values():
        path = NODE_MODULES / relative
        if not path.is_file():
            raise SystemExit(f"gridsvc build: {path} is missing (a KNOWN_ASSETS entry)")
        files.add(path)
        if path.suffix == ".css":
            for match in offline._CSS_URL.finditer(path.read_text(encoding="utf-8")):
                ref = match.group(2)
                if ref.startswith(("data:", "#")) or "//" in ref:
                    continue
                target = (path.parent / ref).resolve()
                if not target.is_file():
                    raise SystemExit(f"gridsvc build: {target} (used by {path.name}) is missing")
                files.add(target)
    for name in _locked_versions():
        package = NODE_MODULES / name
        files.add(package / "package.json")
        files.update(package / lic for lic in LICENCES if (package / lic).is_file())
    return {path.relative_to(NODE_MODULES.resolve()) for path in (f.resolve() for f in files)}


class build_py(_build_py):
    """``build_py`` that also copies the map assets into the built ``maps`` package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        ensure_node_modules()
        target = Path(self.build_lib) / "maps" / "assets" / "node_modules"
        for relative in sorted(asset_files()):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(NODE_MODULES / relative, destination)


setup(cmdclass={"build_py": build_py})
