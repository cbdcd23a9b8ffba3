"""Benchmark the coverage GeoJSON of a 5,000-household community under 50 concurrent clients.

Production server: gunicorn, 4 sync workers on 2 cores (they wait on PostgreSQL), as the
``gridsvc_app`` role with row-level security. Load: wrk on loopback, 50 connections, 2 threads,
bounded duration, with an API token. Baseline in the same run: ``/api/me`` (authentication and one scoped transaction, no
data). Prints p50/p95/p99 and requests per second, the median of ``--repeats`` runs each.

Run: ``.venv/bin/python bench/api.py [--db URL] [--seconds 10] [--repeats 3]`` (needs ``wrk``:
``apt-get install wrk``). The database is created and loaded when empty (a street of five
communities of about 5,000 households).
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

from gridsvc.accounts.tokens import issue_token
from gridsvc.accounts.users import create_user
from gridsvc.db import init_database, make_engine

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/gridsvc_bench_web"
LUA = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT p50=%.3f p95=%.3f p99=%.3f rps=%.1f errors=%d n=%d\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, summary.requests))
end
"""


def prepare(url: str) -> tuple[str, str]:
    """Load the demo when empty; return (community code, API token of a viewer)."""
    init_database(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        if not conn.scalar(text("SELECT count(*) FROM households")):
            from geodata.demo import load_demo

            load_demo(conn, seed=1, households=30_000)
        code, n = conn.execute(
            text(
                "SELECT c.code, count(h.id) AS n FROM communities c JOIN households h "
                "ON h.community_id = c.id GROUP BY c.code ORDER BY abs(count(h.id) - 5000) LIMIT 1"
            )
        ).one()
        street = code[:9]
        name = f"bench_{secrets.token_hex(4)}"
        user = create_user(conn, name, secrets.token_urlsafe(16), role="viewer", street_code=street)
        token = issue_token(conn, user.id, "bench")
    engine.dispose()
    print(f"community {code}: {n:,} households")
    return code, token


def wrk(url: str, token: str, seconds: int, script: Path) -> dict[str, float]:
    """One bounded wrk run: 50 connections, 2 threads."""
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
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
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    community, token = prepare(args.db)
    env = {**os.environ, "GRIDSVC_DATABASE_URL": args.db, "GRIDSVC_SECRET_KEY": "bench" * 8}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), "--workers", str(args.workers), "--bind", f"127.0.0.1:{args.port}",
         "--log-level", "warning", "gridsvc.web:create_app()"],
        env=env, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{args.port}"
        _wait(base)
        geojson = f"{base}/api/coverage.geojson?community={community}"
        request = urllib.request.Request(geojson, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as response:
            size = len(response.read())
        print(f"coverage GeoJSON: {size / 1024:.0f} KiB per response")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(LUA)
        script = Path(handle.name)
        for label, url in (("baseline /api/me", f"{base}/api/me"), ("coverage.geojson", geojson)):
            runs = [wrk(url, token, args.seconds, script) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"{label:18s} 50 clients, median of {args.repeats}: p50 {med['p50']:.1f} ms  "
                f"p95 {med['p95']:.1f} ms  p99 {med['p99']:.1f} ms  {med['rps']:.0f} req/s  "
                f"errors {med['errors']:.0f} (runs p95: "
                + ", ".join(f"{r['p95']:.1f}" for r in runs) + ")"
            )  # fmt: skip
        script.unlink()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


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
