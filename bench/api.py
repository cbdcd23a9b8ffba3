"""Benchmark the coverage GeoJSON of a 5,000-household community under 50 concurrent clients.

Server: gunicorn as in the image (``gunicorn --workers 2``: sync workers, 2 on 2 cores; 3 gave
the same, 4-6 and gthread workers a longer tail), as the ``gridsvc_app`` role with row-level
security. Load: wrk on loopback, 50 connections, 2 threads, bounded duration, an API token, full
200 responses (no If-None-Match). Baseline in the same run: ``/api/me`` (authentication and one
scoped transaction, no data). Also printed, not part of the target: conditional GETs answered
304, and the GeoJSON query itself (the cache miss after any data change), timed in-process as the
app role.

Prints p50/p95/p99 and requests per second, each the median of ``--repeats`` runs, and the load
average (the machine is shared: figures are noisy while others work).

Run: ``.venv/bin/python bench/api.py [--db URL] [--seconds 10] [--repeats 3]`` (needs ``wrk``:
``apt-get install wrk``). An empty database is created and loaded with one demo community of
exactly 5,000 households, paired.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sqlalchemy import text

from gridsvc.accounts.scope import app_database_url, apply_scope
from gridsvc.accounts.tokens import issue_token
from gridsvc.accounts.users import create_user, get_user
from gridsvc.db import init_database, make_engine
from gridsvc.portal.geojson import coverage_geojson
from gridsvc.settings import load_settings

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/gridsvc_bench_api"
HOUSEHOLDS = 5000
LUA = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT p50=%.3f p95=%.3f p99=%.3f rps=%.1f errors=%d n=%d\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, summary.requests))
end
"""


def prepare(url: str) -> tuple[str, str, int]:
    """Load the demo when empty; return (community code, API token of a viewer, its user id)."""
    init_database(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        if not conn.scalar(text("SELECT count(*) FROM households")):
            from geodata.demo import load_demo
            from gridsvc.pairing.service import run_pairing

            load_demo(conn, seed=1, households=HOUSEHOLDS)  # one community of exactly 5,000
            run_pairing(conn, settings=load_settings(), level="households", time_limit=5.0)
        code, n = conn.execute(
            text(
                "SELECT c.code, count(h.id) AS n FROM communities c JOIN households h "
                "ON h.community_id = c.id GROUP BY c.code ORDER BY abs(count(h.id) - :n) LIMIT 1"
            ),
            {"n": HOUSEHOLDS},
        ).one()
        if n != HOUSEHOLDS:
            raise SystemExit(f"{url}: community {code} has {n:,} households, not {HOUSEHOLDS:,}")
        paired = conn.scalar(
            text("SELECT count(DISTINCT household_id) FROM current_household_pairs")
        )
        name = f"bench_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        user = create_user(conn, name, password, role="viewer", street_code=code[:9])
        token = issue_token(conn, user.id, "bench")
    engine.dispose()
    print(f"community {code}: {n:,} households, {paired:,} paired")
    return code, token, user.id


def query_ms(url: str, code: str, user_id: int, repeats: int = 20) -> float:
    """Median milliseconds of the GeoJSON query itself, as the app role in the viewer's scope."""
    engine = make_engine(app_database_url(load_settings(database_url=url)))
    times = []
    with engine.connect() as conn:
        user = get_user(conn, user_id)
        conn.rollback()
        for _ in range(repeats):
            with conn.begin():
                apply_scope(conn, user)
                cid = conn.scalar(text("SELECT id FROM communities WHERE code = :c"), {"c": code})
                start = time.perf_counter()
                coverage_geojson(conn, cid)
                times.append(time.perf_counter() - start)
    engine.dispose()
    return statistics.median(times) * 1000


def wrk(url: str, headers: list[str], seconds: int, script: Path) -> dict[str, float]:
    """One bounded wrk run: 50 connections, 2 threads."""
    command = ["wrk", "-t2", "-c50", f"-d{seconds}s", "--timeout", "5s", "-s", str(script)]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    found = re.search(r"RESULT (.*)", out)
    assert found, out
    return {k: float(v) for k, v in (p.split("=") for p in found.group(1).split())}


def main() -> None:
    """Start gunicorn, run baseline and GeoJSON loads, print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    community, token, user_id = prepare(args.db)
    miss = query_ms(args.db, community, user_id)
    print(f"GeoJSON query alone (a cache miss), median of 20: {miss:.1f} ms")
    env = {**os.environ, "GRIDSVC_DATABASE_URL": args.db, "GRIDSVC_SECRET_KEY": "bench" * 8}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "--workers", str(args.workers), "--worker-class", args.worker_class]
    command += ["--threads", str(args.threads)]
    command += ["--bind", f"127.0.0.1:{args.port}", "--log-level", "warning"]
    server = subprocess.Popen(
        [*command, "gridsvc.web:create_app()"], env=env, start_new_session=True
    )
    try:
        base = f"http://127.0.0.1:{args.port}"
        _wait(base)
        geojson = f"{base}/api/coverage.geojson?community={community}"
        auth = f"Authorization: Bearer {token}"
        request = urllib.request.Request(geojson, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as response:
            size, etag = len(response.read()), response.headers["ETag"]
        print(
            f"gunicorn {_server(args)}; "
            f"coverage GeoJSON {size / 1024:.0f} KiB per response; "
            f"load average before: {_load()}"
        )
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(LUA)
        script = Path(handle.name)
        loads = (
            ("baseline /api/me", f"{base}/api/me", [auth]),
            ("coverage.geojson", geojson, [auth]),
            ("  (304, If-None-Match)", geojson, [auth, f"If-None-Match: {etag}"]),
        )
        for label, url, headers in loads:
            runs = [wrk(url, headers, args.seconds, script) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"{label:23s} 50 clients, median of {args.repeats}: p50 {med['p50']:.1f} ms  "
                f"p95 {med['p95']:.1f} ms  p99 {med['p99']:.1f} ms  {med['rps']:.0f} req/s  "
                f"errors {med['errors']:.0f} (runs p95: "
                + ", ".join(f"{r['p95']:.1f}" for r in runs) + ")"
            )  # fmt: skip
        print(f"load average after: {_load()}")
        script.unlink()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _server(args: argparse.Namespace) -> str:
    return f"{args.worker_class}, {args.workers} workers x {args.threads} threads"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _wait(base: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/api/openapi.json", timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


if __name__ == "__main__":
    main()
