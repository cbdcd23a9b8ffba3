"""Write an offline wheelhouse: gridsvc's wheel and every wheel it needs, pinned with hashes.

    python scripts/wheelhouse.py [DIR]        (default: wheelhouse; `make wheelhouse` runs it)

DIR receives, for the Python and platform running this script:

- one binary wheel for every pin of ``requirements.lock`` (downloaded with ``pip download
  --only-binary=:all: --require-hashes``; wheels already there with a hash of the lock are kept,
  so a second run needs no network for them; wheels no pin names are removed);
- ``gridsvc-VERSION-py3-none-any.whl``, built from this checkout (the map assets inside);
- ``requirements.txt``: the lock plus ``gridsvc==VERSION --hash=sha256:...``.

On the machine without network::

    python3.11 -m venv /opt/gridsvc
    /opt/gridsvc/bin/pip install --no-index --find-links DIR \
        --require-hashes -r DIR/requirements.txt

(``pip install --no-index --find-links DIR gridsvc`` works too, without the hash check.)
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def locked_hashes(lock: Path) -> dict[str, set[str]]:
    """``name==version`` → its allowed sha256 digests, from a pip-compile lock."""
    pins: dict[str, set[str]] = {}
    current = None
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = f"{match.group(1)}=={match.group(2)}"
            pins[current] = set()
        if current:
            pins[current].update(_HASH.findall(line))
        if not line.rstrip().endswith("\\"):
            current = None
    return pins


def sha256(path: Path) -> str:
    """The hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip(*args: str) -> None:
    """Run this interpreter's pip, failing loudly."""
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def dependencies(target: Path) -> None:
    """Download the lock's wheels into ``target``; keep matching ones, drop unknown ones."""
    pins = locked_hashes(LOCK)
    allowed = set().union(*pins.values())
    present = set()
    for wheel in target.glob("*.whl"):
        if wheel.name.startswith("gridsvc-"):
            continue
        digest = sha256(wheel)
        if digest in allowed:
            present.add(digest)
        else:
            wheel.unlink()
    missing = [pin for pin, digests in pins.items() if not digests & present]
    if not missing:
        return
    pip("download", "--quiet", "--only-binary=:all:", "--no-deps", "--require-hashes",
        "-r", str(LOCK), "-d", str(target))  # fmt: skip


def gridsvc_wheel(target: Path) -> Path:
    """Build gridsvc's wheel from the checkout into ``target`` (replacing an older one)."""
    for old in target.glob("gridsvc-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as scratch:
        pip("wheel", "--quiet", "--no-deps", "-w", scratch, str(ROOT))
        (built,) = Path(scratch).glob("gridsvc-*.whl")
        return Path(built.replace(target / built.name))


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else ROOT / "wheelhouse").resolve()
    target.mkdir(parents=True, exist_ok=True)
    dependencies(target)
    wheel = gridsvc_wheel(target)
    version = wheel.name.split("-")[1]
    lock = LOCK.read_text(encoding="utf-8").rstrip("\n")
    (target / "requirements.lock").write_text(lock + "\n", encoding="utf-8")
    requirements = f"{lock}\ngridsvc=={version} \\\n    --hash=sha256:{sha256(wheel)}\n"
    (target / "requirements.txt").write_text(requirements, encoding="utf-8")
    print(f"wheelhouse {target}: {len(list(target.glob('*.whl')))} wheels, requirements.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
