"""Benchmark password hashing and a burst of wrong logins against the rest of the service.

1. CPU seconds per verification (``time.process_time``, median of ``--repeats``): PBKDF2-SHA256
   at 1,000,000 iterations (the hash before), argon2id at the parameters gridsvc uses, and
   argon2id at OWASP's 19 MiB / 2 passes for reference.
2. A burst: ``--burst`` concurrent wrong logins (each its own session and CSRF token) against
   gunicorn with 2 sync workers (as in the image), while one client times ``GET /api/me`` with
   a token. Twice in the same run: *before* (an account with a PBKDF2 hash, throttling off:
   limits of 100,000) and *after* (an argon2id account, the default limits). Prints the median
   and maximum ``/api/me`` time during the burst, the idle median, how long the burst took and
   how its answers split (401 wrong password, 429 throttled).

Run: ``.venv/bin/python bench/login.py [--db URL] [--port 5101] [--burst 80]``. Uses the
database given (default: GRIDSVC_DATABASE_URL), adds two users and a token, clears the throttle
table (as the owner) before each phase and at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from argon2 import PasswordHasher
from sqlalchemy import text
from werkzeug.security import check_password_hash, generate_password_hash

from gridsvc.accounts import passwords
from gridsvc.accounts.manage import add_user
from gridsvc.accounts.tokens import issue_token
from gridsvc.db import make_engine
from gridsvc.settings import load_settings

PASSWORD = "Bench password 2026 spring"


def cpu(function, repeats: int) -> float:
    """Median CPU seconds of ``function``."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return statistics.median(times)


def hashing(repeats: int) -> None:
    """Print CPU per verification of each hash."""
    old = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000000")
    new = passwords.hash_password(PASSWORD)
    owasp = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    reference = owasp.hash(PASSWORD)
    rows = (
        ("pbkdf2-sha256 1,000,000 (before)", lambda: check_password_hash(old, PASSWORD)),
        (
            f"argon2id {new.split('$')[3]} (gridsvc)",
            lambda: passwords.verify_password(new, PASSWORD),
        ),
        ("argon2id m=19456,t=2,p=1 (OWASP min)", lambda: owasp.verify(reference, PASSWORD)),
    )
    for name, function in rows:
        print(f"{name:40s} {cpu(function, repeats) * 1000:8.1f} ms CPU per verification")


def setup(url: str) -> str:
    """Two users (PBKDF2 and argon2id hashes) and a viewer token; return the token."""
    engine = make_engine(url)
    with engine.begin() as conn:
        street = conn.scalar(text("SELECT min(code) FROM streets"))
        for name in ("bench_old", "bench_new", "bench_me"):
            if not conn.scalar(text("SELECT 1 FROM users WHERE username = :n"), {"n": name}):
                add_user(conn, None, name, PASSWORD, role="viewer", street_code=street)
        old = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000000")
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE username = 'bench_old'"), {"h": old}
        )
        me = conn.scalar(text("SELECT id FROM users WHERE username = 'bench_me'"))
        token = issue_token(conn, me, "bench")
    engine.dispose()
    return token


def clear_throttle(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM login_attempts"))
    engine.dispose()


def serve(url: str, port: int, limits: dict[str, str]) -> subprocess.Popen:
    env = {
        **os.environ,
        "GRIDSVC_DATABASE_URL": url,
        "GRIDSVC_SECRET_KEY": secrets.token_hex(16),
        "GRIDSVC_COOKIE_SECURE": "0",
        **limits,
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = subprocess.Popen(
        [gunicorn, "--workers", "2", "--bind", f"127.0.0.1:{port}", "gridsvc.web:create_app()"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({server.returncode}): is port {port} free?")
        try:
            requests.get(f"http://127.0.0.1:{port}/login", timeout=30)
            return server
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def wrong_login(base: str, username: str, results: list[int], start: threading.Event) -> None:
    with requests.Session() as browser:
        page = browser.get(f"{base}/login", timeout=60).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        start.wait()
        answer = browser.post(
            f"{base}/login",
            data={"username": username, "password": "wrong password 1", "csrf_token": token},
            allow_redirects=False,
            timeout=120,
        )
        results.append(answer.status_code)


def me_times(base: str, token: str, stop: threading.Event, out: list[float]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        start = time.perf_counter()
        requests.get(f"{base}/api/me", headers=headers, timeout=120).raise_for_status()
        out.append(time.perf_counter() - start)
        time.sleep(0.02)


def phase(name: str, url: str, port: int, token: str, username: str, limits, burst: int) -> None:
    clear_throttle(url)
    server = serve(url, port, limits)
    base = f"http://127.0.0.1:{port}"
    try:
        idle: list[float] = []
        for _ in range(30):
            start = time.perf_counter()
            requests.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"})
            idle.append(time.perf_counter() - start)
        results: list[int] = []
        go = threading.Event()
        attackers = [
            threading.Thread(target=wrong_login, args=(base, username, results, go))
            for _ in range(burst)
        ]
        for thread in attackers:
            thread.start()
        time.sleep(2)  # every attacker holds its form
        during: list[float] = []
        stop = threading.Event()
        timer = threading.Thread(target=me_times, args=(base, token, stop, during))
        began = time.perf_counter()
        go.set()
        timer.start()
        for thread in attackers:
            thread.join()
        took = time.perf_counter() - began
        stop.set()
        timer.join()
        counts = {code: results.count(code) for code in sorted(set(results))}
        print(
            f"{name:7s} /api/me idle median {statistics.median(idle) * 1000:6.1f} ms; during "
            f"{burst} wrong logins median {statistics.median(during) * 1000:6.1f} ms, max "
            f"{max(during) * 1000:7.1f} ms (n={len(during)}); burst took {took:5.2f} s; "
            f"answers {counts}; load {os.getloadavg()[0]:.2f}"
        )
    finally:
        server.terminate()
        server.wait()
        clear_throttle(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=load_settings().database_url)
    parser.add_argument("--port", type=int, default=5101)
    parser.add_argument("--burst", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}")
    hashing(args.repeats)
    token = setup(args.db)
    off = {"GRIDSVC_LOGIN_MAX_FAILURES": "100000", "GRIDSVC_LOGIN_MAX_PER_ADDRESS": "100000"}
    phase("before", args.db, args.port, token, "bench_old", off, args.burst)
    phase("after", args.db, args.port, token, "bench_new", {}, args.burst)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
