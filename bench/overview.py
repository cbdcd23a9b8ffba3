"""Benchmark the street map and district overview: the aggregated GeoJSON query and the draw.

Query: ``overview_geojson`` timed in-process as the app role under row-level security, for the
whole district (an unscoped admin) and for one street, each the median of ``--repeats`` runs
(a cache miss: what the first request after a data change costs). Draw (``--url`` with a
running server on the same database, ``--user``/``--password`` of an admin): Chromium opens
``/overview/frame`` and reads the milliseconds from the request for the GeoJSON to the polygons
drawn (``data-drawn-ms``), and the whole page load. Baseline in the same run: ``SELECT
count(*) FROM households``. Prints the load average beside the figures.

Run: ``.venv/bin/python bench/overview.py --db URL [--url http://127.0.0.1:5112 --user demo
--password PW]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from sqlalchemy import text

from gridsvc.accounts.scope import app_database_url, apply_scope
from gridsvc.db import make_engine
from gridsvc.portal.overview import overview_geojson
from gridsvc.settings import load_settings


def _timed(func, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def query_figures(url: str, repeats: int) -> None:
    settings = load_settings(database_url=url)
    engine = make_engine(app_database_url(settings))
    with engine.connect() as conn:
        conn.begin()
        apply_scope(conn, None)  # an unscoped admin: the whole district
        conn.exec_driver_sql("SELECT set_config('app.all', 'on', true)")
        n = conn.scalar(text("SELECT count(*) FROM households"))
        street = conn.scalar(text("SELECT id FROM streets ORDER BY id LIMIT 1"))
        base, _ = _timed(lambda: conn.scalar(text("SELECT count(*) FROM households")), repeats)
        whole, body = _timed(
            lambda: overview_geojson(conn, street=None, tolerance_deg=0.0001), repeats
        )
        one, _ = _timed(
            lambda: overview_geojson(conn, street=street, tolerance_deg=0.00002), repeats
        )
        conn.rollback()
    engine.dispose()
    load = os.getloadavg()[0]
    print(f"households visible: {n:,}   load average {load:.2f}")
    print(f"baseline count(*) households: {base * 1000:8.0f} ms")
    print(f"overview, district:           {whole * 1000:8.0f} ms  ({len(body):,} bytes)")
    print(f"overview, one street:         {one * 1000:8.0f} ms")


def draw_figures(base: str, user: str, password: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        for _ in range(2):  # the second is the cached answer
            started = time.perf_counter()
            page.goto(f"{base}/overview/frame")
            page.wait_for_selector("body[data-drawn-ms]", timeout=60_000)
            total = (time.perf_counter() - started) * 1000
            drawn = page.get_attribute("body", "data-drawn-ms")
            print(f"overview frame: fetch+draw {drawn} ms, page load to drawn {total:.0f} ms, "
                  f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password")
    args = parser.parse_args()
    query_figures(args.db, args.repeats)
    if args.url:
        draw_figures(args.url, args.user, args.password)


if __name__ == "__main__":
    main()
