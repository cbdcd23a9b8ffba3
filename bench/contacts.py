"""Benchmark the contact log: import, overdue lists, the member's phone page.

Four figures, each with a baseline measured in the same run, medians, and the load average:

1. ``gridsvc contacts import`` of 1,000,000 contact rows (CSV; checks, COPY, duplicate test);
   target >= 20,000 rows/s. Baseline: the same rows' first 20,000 inserted row by row
   (``executemany``). Both are rolled back: the database is left as it was.
2. The overdue list (JSON contract) of one community; target median <= 100 ms for 5,000
   households. Baseline: the same list with the last contact found by ``GROUP BY`` over the
   community's contacts instead of one backward index step per household.
3. Overdue figures of every community of the database (the issue's city: 1,000,000
   households, ~12 M contacts; target <= 10 s, <= 2 GB): the product's own command, ``gridsvc
   contacts overdue --by community --format json`` without a scope (the figures), then the
   whole list of overdue households (``--by household``, the default), each run as a user runs
   it (median of 3, peak RSS of the command sampled from /proc). Measured at the size the
   database holds (the print says which). Baseline: the last contact by GROUP BY over the log,
   50 communities a statement.
4. The member's page ``/my/`` under 50 concurrent clients (Python threads with keep-alive
   connections, bounded count, loopback); target p95 <= 150 ms. Baseline: ``/api/me``.

Run: ``.venv/bin/python bench/contacts.py [--db URL] [--rows 1000000] [--requests 2000]``. The
database must hold a paired demo street with contacts (``make demo``: gridsvc demo, pair,
gridsvc demo --contacts); the member login is made when missing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from gridsvc.accounts.tokens import issue_token
from gridsvc.contacts.cadence import (
    OverdueReport,
    classify,
    load_cadence,
    overdue,
    parse_as_of,
)
from gridsvc.contacts.imports import import_contacts
from gridsvc.db import make_engine
from gridsvc.settings import load_settings

DEFAULT_DB = os.environ.get(
    "GRIDSVC_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gridsvc"
)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- 1. import ---------------------------------------------------------------------------------


def write_sheet(engine, path: Path, rows: int, seed: int = 7) -> None:
    """``rows`` contacts of current pairs, spread over the last 700 days, as a CSV."""
    with engine.connect() as conn:
        pairs = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT h.code AS household_code, m.code AS member_code "
                    "FROM current_household_pairs p JOIN households h ON h.id = p.household_id "
                    "JOIN members m ON m.id = p.member_id"
                )
            ).all()
        )
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pairs), rows)
    now = pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None).floor("min")
    minutes = rng.integers(60, 700 * 24 * 60, rows)
    at = (now - pd.to_timedelta(minutes, unit="m")).strftime("%Y-%m-%d %H:%M")
    frame = pairs.iloc[pick].reset_index(drop=True)
    frame["contacted_at"] = at
    frame["channel"] = rng.choice(["visit", "phone", "wechat", "other"], rows)
    frame["note"] = rng.choice(["了解近况", "送通知", "", "电话问候"], rows)
    frame.to_csv(path, index=False)


def bench_import(engine, settings, rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        write_sheet(engine, path, rows)
        size = path.stat().st_size / 1e6
        print(f"[1] import: {rows:,d} rows, {size:.0f} MB CSV; load average {load()}")
        with engine.connect() as conn:
            trans = conn.begin()
            started = time.perf_counter()
            result = import_contacts(conn, path, settings=settings)
            seconds = time.perf_counter() - started
            trans.rollback()
        print(
            f"    gridsvc contacts import: {seconds:.1f} s, {rows / seconds:,.0f} rows/s "
            f"({result.inserted:,d} new, {result.skipped_duplicates:,d} same minute); "
            f"target >= 20,000 rows/s; load average {load()}"
        )
        sample = pd.read_csv(path, nrows=20_000, dtype=str, keep_default_na=False)
    with engine.connect() as conn:
        trans = conn.begin()
        ids = {
            "h": dict(conn.execute(text("SELECT code, id FROM households")).all()),
            "m": dict(conn.execute(text("SELECT code, id FROM members")).all()),
            "c": dict(conn.execute(text("SELECT id, community_id FROM households")).all()),
        }
        params = [
            {
                "h": ids["h"][r.household_code],
                "m": ids["m"][r.member_code],
                "co": ids["c"][ids["h"][r.household_code]],
                "at": r.contacted_at + "+08:00",
                "ch": r.channel,
                "n": r.note or None,
            }
            for r in sample.itertuples()
        ]
        started = time.perf_counter()
        conn.execute(
            text(
                "INSERT INTO contacts (household_id, member_id, community_id, contacted_at, "
                "channel, note, source) VALUES (:h, :m, :co, :at, :ch, :n, 'import')"
            ),
            params,
        )
        seconds = time.perf_counter() - started
        trans.rollback()
    print(
        f"    baseline, row-by-row INSERT (executemany, no checks) of 20,000: {seconds:.1f} s, "
        f"{len(params) / seconds:,.0f} rows/s; load average {load()}"
    )


# --- 2. and 3. overdue -------------------------------------------------------------------------

GROUP_BY = """
WITH last AS (
  SELECT c.household_id, max(c.contacted_at) AS last_at FROM contacts c
  WHERE c.community_id = ANY(%(ids)s) AND c.contacted_at <= %(as_of)s
    AND c.id NOT IN (SELECT supersedes FROM contacts WHERE supersedes IS NOT NULL)
  GROUP BY c.household_id)
SELECT h.id AS household_id, h.code AS household, p.member_id, m.code AS member,
  (h.elderly_alone OR h.disabled OR h.low_income OR h.children) AS vulnerable, l.last_at,
  CASE WHEN h.elderly_alone OR h.disabled OR h.low_income OR h.children THEN 7 ELSE 30 END
    AS cadence_days
FROM current_household_pairs p JOIN households h ON h.id = p.household_id
JOIN members m ON m.id = p.member_id LEFT JOIN last l ON l.household_id = h.id
WHERE p.community_id = ANY(%(ids)s)
"""


def overdue_once(conn, settings, ids: list[int], *, baseline: bool = False) -> int:
    if not baseline:
        return len(overdue(conn, settings=settings, community_ids=ids).overdue)
    when = parse_as_of(None, settings.timezone)
    if baseline:
        with conn.connection.driver_connection.cursor() as cursor:
            cursor.execute(GROUP_BY, {"ids": ids, "as_of": when})
            names = [d.name for d in cursor.description]
            frame = pd.DataFrame(cursor.fetchall(), columns=names)
        frame["last_at"] = pd.to_datetime(frame["last_at"], utc=True)
    else:
        frame = load_cadence(conn, ids, as_of=when, settings=settings)
    report = OverdueReport(when, settings.timezone, classify(frame, when))
    return len(report.to_dict()["overdue"])


def bench_overdue(engine, settings, repeats: int) -> None:
    with engine.connect() as conn:
        biggest = conn.execute(
            text(
                "SELECT p.community_id, count(*) FROM current_household_pairs p "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
            )
        ).first()
        rows = conn.scalar(
            text("SELECT count(*) FROM contacts WHERE community_id = :c"), {"c": biggest[0]}
        )
        print(
            f"[2] overdue list of one community: {biggest[1]:,d} paired households, "
            f"{rows:,d} contacts; load average {load()}"
        )
        for label, base in (
            ("gridsvc (kept last contact, one statement)", False),
            ("baseline GROUP BY", True),
        ):
            overdue_once(conn, settings, [biggest[0]], baseline=base)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                count = overdue_once(conn, settings, [biggest[0]], baseline=base)
                times.append(time.perf_counter() - started)
            print(
                f"    {label}: median {statistics.median(times) * 1000:.0f} ms of {repeats} "
                f"({count:,d} overdue); target <= 100 ms at 5,000; load average {load()}"
            )


def _peak_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    """Peak resident memory of process ``pid`` (sampled every 50 ms) into ``out[0]``."""
    status = Path(f"/proc/{pid}/status")
    while not stop.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[0] = max(out[0], int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            return
        stop.wait(0.05)


def city_command(db: str, args: list[str]) -> tuple[float, float, str]:
    """``gridsvc ARGS`` as a user runs it: wall seconds, peak RSS in GB, standard output."""
    gridsvc = Path(sys.executable).with_name("gridsvc")
    env = {**os.environ, "GRIDSVC_DATABASE_URL": db}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(gridsvc), *args], env=env, stdout=subprocess.PIPE, text=True, encoding="utf-8"
    )
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_peak_rss, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode:
        sys.exit(f"gridsvc {' '.join(args)} failed ({proc.returncode})")
    return seconds, peak[0] / 2**30, out


def bench_city(engine, db: str, settings) -> None:
    """The overdue figures of every community of the database, as the command gives them."""
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM communities ORDER BY id")).scalars().all()
        households = conn.scalar(text("SELECT count(*) FROM current_household_pairs"))
        contacts = conn.scalar(text("SELECT count(*) FROM contacts"))
    print(
        f"[3] overdue figures of every community: {len(ids)} communities, "
        f"{households:,d} paired households, {contacts:,d} contacts; load average {load()}"
    )
    for args, what in (
        (["--by", "community"], "communities"),
        ([], "overdue"),
    ):
        runs = []
        for _ in range(3):
            command = ["contacts", "overdue", *args, "--format", "json"]
            seconds, gb, out = city_command(db, command)
            runs.append((seconds, gb))
        body = json.loads(out)
        late = (
            sum(r["overdue"] for r in body["communities"])
            if what == "communities"
            else len(body["overdue"])
        )
        print(
            f"    gridsvc {' '.join(command)} (whole database): median "
            f"{statistics.median(r[0] for r in runs):.1f} s of 3 "
            f"({', '.join(f'{r[0]:.1f}' for r in runs)}), peak RSS "
            f"{max(r[1] for r in runs):.2f} GB; {len(body[what]):,d} {what}, {late:,d} "
            f"households overdue (target <= 10 s, <= 2 GB at ~12 M contacts); "
            f"load average {load()}"
        )
    with engine.connect() as conn:
        started = time.perf_counter()
        total = 0
        for chunk in np.array_split(np.asarray(ids), max(1, len(ids) // 50)):
            total += overdue_once(conn, settings, chunk.tolist(), baseline=True)
        seconds = time.perf_counter() - started
    print(
        f"    baseline (last contact by GROUP BY over the log, 50 communities a statement): "
        f"{seconds:.1f} s, {total:,d} overdue; load average {load()}"
    )


# --- 4. the member's page ----------------------------------------------------------------------


def hammer(port: int, path: str, token: str, clients: int, total: int) -> list[float]:
    """``total`` GETs of ``path`` from ``clients`` threads with keep-alive; latencies in s."""
    latencies: list[float] = []
    lock = threading.Lock()
    per = total // clients

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for _ in range(per):
            started = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (path, response.status)
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def _wait(port: int) -> None:
    """Until the server answers (gunicorn imports the app first: seconds on a busy machine)."""
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/openapi.json")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def bench_page(engine, db: str, port: int, requests: int) -> None:
    with engine.begin() as conn:
        user_id = conn.scalar(text("SELECT id FROM users WHERE username = 'member'"))
        if user_id is None:
            sys.exit("no login 'member': run gridsvc demo --contacts first")
        token = issue_token(conn, user_id, "bench")
        households = conn.scalar(
            text(
                "SELECT count(*) FROM current_household_pairs p JOIN users u "
                "ON u.member_id = p.member_id WHERE u.id = :u"
            ),
            {"u": user_id},
        )
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {**os.environ, "GRIDSVC_DATABASE_URL": db, "GRIDSVC_SECRET_KEY": "bench" * 8}
    command = [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, "--log-level", "warning", "gridsvc.web:create_app()"],
        env=env,
        start_new_session=True,
    )
    try:
        _wait(port)
        print(
            f"[4] the member's page /my/ ({households} households), gunicorn 2 sync workers, "
            f"50 clients, {requests:,d} requests; load average {load()}"
        )
        for label, path in (("baseline /api/me", "/api/me"), ("/my/", "/my/")):
            hammer(port, path, token, 10, 50)  # warm
            times = sorted(hammer(port, path, token, 50, requests))
            p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
            print(
                f"    {label}: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
                f"(target p95 <= 150 ms); load average {load()}"
            )
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--port", type=int, default=5116)
    parser.add_argument("--only", choices=["import", "overdue", "city", "page"])
    args = parser.parse_args()
    settings = load_settings()
    settings = settings.with_(database_url=args.db)
    engine = make_engine(args.db)
    steps = {
        "import": lambda: bench_import(engine, settings, args.rows),
        "overdue": lambda: bench_overdue(engine, settings, args.repeats),
        "city": lambda: bench_city(engine, args.db, settings),
        "page": lambda: bench_page(engine, args.db, args.port, args.requests),
    }
    for name, step in steps.items():
        if args.only in (None, name):
            step()
    engine.dispose()


if __name__ == "__main__":
    main()
