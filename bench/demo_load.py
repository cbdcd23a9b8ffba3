"""Benchmark: generating and loading the demo street (target < 30 s) and a city.

Prints medians of repeated runs into a scratch database, with the generator alone as baseline.

    .venv/bin/python bench/demo_load.py [--repeats 3] [--city 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy.engine import make_url

from geodata.demo import generate_demo, load_demo
from gridsvc.db import init_database, make_engine
from gridsvc.settings import load_settings


def timed(func, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--city", type=int, default=1_000_000, help="households; 0 to skip")
    args = parser.parse_args()
    url = make_url(load_settings().database_url)
    url = url.set(database=f"{url.database}_bench").render_as_string(hide_password=False)
    init_database(url)
    engine = make_engine(url)

    def load(households: int | None) -> None:
        with engine.connect() as conn, conn.begin() as tx:
            load_demo(conn, households=households)
            tx.rollback()  # measure a full load each time, keep the database empty

    gen = timed(lambda: generate_demo(), args.repeats)
    street = timed(lambda: load(None), args.repeats)
    print(
        f"demo street (18,620 households): generate {gen:.2f} s, generate+load {street:.2f} s "
        f"(median of {args.repeats}; target < 30 s)"
    )
    if args.city:
        gen = timed(lambda: generate_demo(households=args.city), 1)
        city = timed(lambda: load(args.city), 1)
        print(
            f"city ({args.city:,} households): generate {gen:.1f} s, generate+load {city:.1f} s "
            f"({args.city / city:,.0f} households/s)"
        )
    engine.dispose()


if __name__ == "__main__":
    main()
