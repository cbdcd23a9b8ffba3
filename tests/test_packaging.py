"""The installable product: wheel, offline wheelhouse, Dockerfile, run from outside the checkout.

The wheelhouse (``scripts/wheelhouse.py``, what ``make wheelhouse`` runs) is written to the
checkout's ``wheelhouse/``: dependency wheels already there with a locked hash are reused, so only
the first run downloads; gridsvc's wheel is rebuilt from the sources every time. The runtime
stage of the Dockerfile is then run for real, under its ``ENV``: the ``RUN`` that installs the
wheelhouse into ``/opt/gridsvc`` (paths mapped to a temporary folder), with pip's configuration
ignored, no index and an unreachable proxy, so any attempt to reach the network fails; then its
``CMD`` (gunicorn from the installed package) and its ``HEALTHCHECK``. Every command runs with
the working directory outside the checkout and the checkout absent from the path.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from gridsvc.db import drop_database

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / "wheelhouse"
DEMO_STREET = "530102001"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, every connection fails

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Stage:
    """The instructions of one Dockerfile stage, continuation lines joined."""

    runs: list[str]
    healthcheck: list[str]
    cmd: list[str]
    env: dict[str, str]


def dockerfile_stage(name: str) -> Stage:
    """Parse the ``FROM ... AS name`` stage of the Dockerfile."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("#")]
    start = next(i for i, line in enumerate(lines) if re.match(rf"FROM .* AS {name}$", line))
    stage = []
    for line in lines[start + 1 :]:
        if line.startswith("FROM "):
            break
        stage.append(line)
    runs = [re.sub(r"^RUN (--\S+ )*", "", line) for line in stage if line.startswith("RUN ")]
    health = next(line for line in stage if line.startswith("HEALTHCHECK "))
    cmd = next(line for line in stage if line.startswith("CMD "))
    env = dict(
        item.split("=", 1)
        for line in stage
        if line.startswith("ENV ")
        for item in shlex.split(line.removeprefix("ENV "))
    )
    return Stage(
        env=env,
        runs=runs,
        healthcheck=json.loads(health.split(" CMD ", 1)[1]),
        cmd=json.loads(cmd.removeprefix("CMD ")),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, *, seconds: float = 60) -> int:
    """Poll ``url`` until it answers; its HTTP status."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@dataclass(frozen=True)
class Installed:
    """A venv holding the installed wheelhouse, and how to run commands in it."""

    venv: Path
    home: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            args, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stderr[-3000:]}"
        return result

    def start(self, *args: str) -> subprocess.Popen:
        """Start a server; its output goes to ``HOME/<program>.log``."""
        with (self.home / f"{Path(args[0]).name}.log").open("ab") as log:
            return subprocess.Popen(
                args, cwd=self.home, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )


def offline_env(*, path: str, home: Path) -> dict[str, str]:
    """The environment of the commands: no checkout, no pip config, no reachable network."""
    kept = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "TERM")}
    return kept | {
        "PATH": path,
        "HOME": str(home),
        "PIP_CONFIG_FILE": os.devnull,  # ignore this machine's find-links and extra indexes
        "PIP_NO_INDEX": "1",
        "PIP_PROXY": UNREACHABLE,
        "HTTP_PROXY": UNREACHABLE,
        "HTTPS_PROXY": UNREACHABLE,
        "NO_PROXY": "127.0.0.1,localhost",  # the servers under test answer on loopback
        "PYTHONNOUSERSITE": "1",
    }


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "wheelhouse.py"), str(WHEELHOUSE)], check=True
    )
    return WHEELHOUSE


@pytest.fixture(scope="module")
def database(settings) -> Iterator[str]:
    url = make_url(settings.database_url)
    wheel_db = url.set(database=f"{url.database}_wheel").render_as_string(hide_password=False)
    assert "test" in wheel_db
    drop_database(wheel_db)
    yield wheel_db
    drop_database(wheel_db)


@pytest.fixture(scope="module")
def installed(wheelhouse: Path, database: str, tmp_path_factory) -> Installed:
    """The Dockerfile's runtime RUN, executed here: /opt/gridsvc and /wheelhouse mapped."""
    tmp = tmp_path_factory.mktemp("runtime")
    venv, home, pybin = tmp / "opt-gridsvc", tmp / "home", tmp / "python-bin"
    home.mkdir()
    pybin.mkdir()
    # `python` in the image is the base Python 3.11, as here.
    (pybin / "python").symlink_to(Path(getattr(sys, "_base_executable", sys.executable)))
    stage = dockerfile_stage("runtime")
    assert stage.env["PATH"] == "/opt/gridsvc/bin:$PATH"
    env = offline_env(path=f"{venv}/bin:{pybin}:/usr/bin:/bin", home=home)
    env |= {key: value for key, value in stage.env.items() if key != "PATH"}  # the image's ENV
    installs = [run for run in stage.runs if "/opt/gridsvc" in run]
    assert installs, "the runtime stage has no RUN installing into /opt/gridsvc"
    for run in installs:
        command = run.replace("/wheelhouse", str(wheelhouse)).replace("/opt/gridsvc", str(venv))
        result = subprocess.run(
            ["sh", "-c", command], cwd=home, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    env = env | {"GRIDSVC_DATABASE_URL": database, "GRIDSVC_SECRET_KEY": "k" * 48}
    return Installed(venv=venv, home=home, env=env)


@pytest.fixture(scope="module")
def demo_report(installed: Installed) -> Path:
    """db init, a small demo, pair and report, all with the installed ``gridsvc``."""
    installed.run("gridsvc", "db", "init")
    installed.run("gridsvc", "demo", "--households", "600")
    installed.run("gridsvc", "pair", "--street", DEMO_STREET, "--time-limit", "2")
    out = installed.home / "report.html"
    installed.run("gridsvc", "report", "--street", DEMO_STREET, "--out", str(out))
    return out


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_stages_and_compose_services():
    runtime = dockerfile_stage("runtime")
    assert runtime.cmd[0] == "gunicorn" and "gridsvc.web:create_app()" in runtime.cmd
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM node:\S+ AS assets$", text, re.M)
    assert re.search(r"^USER 10001", text, re.M)
    assert "make " not in text  # the slim images have no make
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert {"db", "app", "worker"} <= set(compose["services"])
    assert compose["services"]["worker"]["command"] == "gridsvc worker"
    assert compose["services"]["worker"]["healthcheck"] == {"disable": True}


def test_wheelhouse_holds_every_locked_wheel_with_its_hash(wheelhouse: Path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from wheelhouse import locked_hashes, sha256
    finally:
        sys.path.pop(0)
    pins = locked_hashes(ROOT / "requirements.lock")
    digests = {sha256(wheel) for wheel in wheelhouse.glob("*.whl")}
    assert [pin for pin, allowed in pins.items() if not allowed & digests] == []
    requirements = (wheelhouse / "requirements.txt").read_text(encoding="utf-8")
    (gridsvc,) = wheelhouse.glob("gridsvc-*.whl")
    assert f"--hash=sha256:{sha256(gridsvc)}" in requirements
    assert not {"highspy", "psutil"} & {pin.split("==")[0] for pin in pins}


def test_wheel_carries_migrations_templates_and_map_assets(installed: Installed):
    probe = (
        "import json, sys, maps, gridsvc, maps.offline as o, gridsvc.db as d;"
        "print(json.dumps({'path': sys.path, 'maps': maps.__file__, 'gridsvc': gridsvc.__file__,"
        "'assets': [str(o.asset_path(u)) for u in o.KNOWN_ASSETS],"
        "'mako': (d.MIGRATIONS / 'script.py.mako').is_file(),"
        "'versions': len(list((d.MIGRATIONS / 'versions').glob('0*.py')))}))"
    )
    found = json.loads(installed.run("python", "-c", probe).stdout)
    site = str(installed.venv)
    assert found["maps"].startswith(site) and found["gridsvc"].startswith(site)
    assert all(path.startswith(site) for path in found["assets"]), found["assets"]
    assert not any(str(ROOT) in entry for entry in found["path"])
    assert found["mako"] and found["versions"] >= 7


def test_plain_offline_install_command_resolves(wheelhouse: Path, installed: Installed):
    # The short form of the README: pip install --no-index --find-links wheelhouse gridsvc.
    result = installed.run(
        "pip", "install", "--dry-run", "--ignore-installed", "--no-index",
        "--find-links", str(wheelhouse), "gridsvc",
    )  # fmt: skip
    assert re.search(r"Would install .*gridsvc-0", result.stdout), result.stdout[-2000:]


def test_cli_serves_login_from_the_installed_package(installed: Installed, demo_report: Path):
    port = free_port()
    server = installed.start("gridsvc", "serve", "--host", "127.0.0.1", "--port", str(port))
    try:
        assert wait_for(f"http://127.0.0.1:{port}/login", server) == 200
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_image_command_and_healthcheck(installed: Installed, demo_report: Path):
    stage = dockerfile_stage("runtime")
    port = free_port()
    cmd = [arg.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for arg in stage.cmd]
    assert cmd != stage.cmd
    server = installed.start(*cmd)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/login", server) == 200
        check = [arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for arg in stage.healthcheck]
        installed.run(*check)
    finally:
        server.terminate()
        server.wait(timeout=20)
    with pytest.raises(AssertionError):  # and the health check fails when nothing answers
        installed.run(*check)


def test_audit_export_from_the_installed_package(installed: Installed, demo_report: Path):
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))  # Beijing day
    out = installed.home / "audit.csv"
    installed.run("gridsvc", "audit", "export", "--from", today, "--to", today, "--out", str(out))
    header = out.read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.startswith("id,at,username,action,target")


@pytest.mark.browser
def test_report_from_the_installed_package_opens_offline(demo_report: Path, offline_page):
    offline_page.open(demo_report, wait_ms=300)
    assert offline_page.requests == []
    assert offline_page.errors == []
    assert offline_page.page.evaluate("typeof L") == "object"
    assert offline_page.drawn_pixels(".folium-map") > 20_000
