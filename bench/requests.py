"""Benchmark residents' requests: batch dispatch and the list page.

Two figures, each with a baseline measured in the same run, medians, and the load average:

1. Dispatch of 10,000 waiting requests in one street as one min-cost flow (candidate arcs to the
   24 nearest members of the community plus the paired member, OR-Tools); target <= 2 s.
   Baseline: the greedy loop (vulnerable first, each request to its cheapest member with room)
   on the same arcs; both objectives are printed (the flow's is never higher). The street is
   synthetic: 10 communities, 2,500 members (cap 3 each, some unavailable or full), 10,000
   requests around them, 60 % with a paired member, 25 % vulnerable.
2. ``list_requests`` (one page of 100, newest first, with its total) over 100,000 requests of one
   street; target median <= 100 ms. Baseline: the same page with the total counted by a
   window (``count(*) OVER ()``) over every row. The requests are inserted into the database's
   demo street inside a transaction that is rolled back: the database is left as it was.

Run: ``.venv/bin/python bench/requests.py [--db URL] [--requests 10000] [--rows 100000]``. The
database must hold a demo street (``gridsvc demo``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
from sqlalchemy import text

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from gridsvc.requests import dispatch as dsp


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def street(n: int, m: int, seed: int = 0) -> tuple[dsp.Waiting, dsp.Pool]:
    rng = np.random.default_rng(seed)
    communities = 10
    pool = dsp.Pool(
        ids=np.arange(m),
        x=rng.uniform(0, 4000, m),
        y=rng.uniform(0, 4000, m),
        building=rng.integers(0, 2000, m),
        grid=rng.integers(0, 60, m),
        community=rng.integers(0, communities, m),
        room=np.where(rng.random(m) < 0.1, 0, rng.integers(1, 4, m)),
    )
    near = rng.integers(0, m, n)
    paired = np.where(rng.random(n) < 0.6, near, -1)
    waiting = dsp.Waiting(
        ids=np.arange(n),
        x=pool.x[near] + rng.normal(0, 150, n),
        y=pool.y[near] + rng.normal(0, 150, n),
        building=np.where(rng.random(n) < 0.3, pool.building[near], rng.integers(0, 2000, n)),
        grid=pool.grid[near],
        community=pool.community[near],
        paired=paired,
        vulnerable=rng.random(n) < 0.25,
    )
    return waiting, pool


def bench_dispatch(n: int, repeat: int = 5) -> None:
    w, p = street(n, n // 4)
    flow_t, greedy_t = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        node, srv = dsp.candidate_arcs(w, p)
        flow = dsp.solve_dispatch(w, p, node, srv, building_penalty=150.0, grid_penalty=300.0)
        flow_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        node, srv = dsp.candidate_arcs(w, p)
        greedy = dsp.greedy_dispatch(w, p, node, srv, building_penalty=150.0, grid_penalty=300.0)
        greedy_t.append(time.perf_counter() - t0)
    served = int((flow.srv >= 0).sum())
    print(
        f"dispatch {n:,d} requests, {p.m:,d} members, {len(node):,d} arcs: min-cost flow "
        f"median {statistics.median(flow_t):.3f} s (target <= 2 s), served {served:,d}, "
        f"objective {flow.cost:,d}; greedy loop median {statistics.median(greedy_t):.3f} s, "
        f"served {int((greedy.srv >= 0).sum()):,d}, objective {greedy.cost:,d}; {load()}"
    )


def bench_list(url: str, rows: int, repeat: int = 21) -> None:
    from gridsvc.db import make_engine
    from gridsvc.requests.service import list_requests
    from gridsvc.settings import load_settings

    settings = load_settings()
    engine = make_engine(url)
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            street_code = conn.scalar(text("SELECT min(code) FROM streets"))
            conn.execute(
                text(
                    "INSERT INTO requests (community_id, household_id, category, text, channel, "
                    "state, due_at, created_at, source) "
                    "SELECT h.community_id, h.id, (ARRAY['mediation','sanitation','elderly_care',"
                    "'policy','repair','other'])[1 + g % 6], '诉求', 'phone', "
                    "(ARRAY['waiting','done','visited','accepted'])[1 + g % 4], "
                    "now() + interval '7 days', now() - (g || ' minutes')::interval, 'demo' "
                    "FROM generate_series(1, :n) g "
                    "JOIN LATERAL (SELECT id, community_id FROM households "
                    "OFFSET (g % 1000) LIMIT 1) h ON true"
                ),
                {"n": rows},
            )
            conn.execute(text("ANALYZE requests"))
            fast, slow = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                page = list_requests(conn, settings=settings, street_code=street_code, limit=100)
                fast.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                conn.execute(
                    text(
                        "SELECT r.*, count(*) OVER () AS total FROM requests r "
                        "ORDER BY r.created_at DESC, r.id DESC LIMIT 100"
                    )
                ).all()
                slow.append(time.perf_counter() - t0)
            print(
                f"list of {page['total']:,d} requests, one page of {len(page['requests'])}: "
                f"median {statistics.median(fast) * 1000:.1f} ms (target <= 100 ms); baseline "
                f"(window count) median {statistics.median(slow) * 1000:.1f} ms; {load()}"
            )
        finally:
            trans.rollback()
    engine.dispose()


def bench_service(url: str, n: int, repeat: int = 3) -> None:
    """``dispatch_requests`` end to end on the database (read, solve, write), rolled back."""
    from gridsvc.db import make_engine
    from gridsvc.requests.service import dispatch_requests
    from gridsvc.settings import load_settings

    settings = load_settings()
    engine = make_engine(url)
    times = []
    for _ in range(repeat):
        with engine.connect() as conn:
            trans = conn.begin()
            try:
                street_code = conn.scalar(text("SELECT min(code) FROM streets"))
                conn.execute(
                    text(
                        "INSERT INTO requests (community_id, household_id, category, text, "
                        "channel, due_at, source) SELECT h.community_id, h.id, 'repair', '诉求', "
                        "'phone', now() + interval '7 days', 'demo' FROM generate_series(1, :n) g "
                        "JOIN LATERAL (SELECT id, community_id FROM households "
                        "OFFSET (g % 1000) LIMIT 1) h ON true"
                    ),
                    {"n": n},
                )
                t0 = time.perf_counter()
                counts = dispatch_requests(conn, None, settings=settings, street_code=street_code)
                times.append(time.perf_counter() - t0)
            finally:
                trans.rollback()
    engine.dispose()
    print(
        f"dispatch_requests end to end ({n:,d} waiting, one street, read + flow + write): "
        f"median {statistics.median(times):.2f} s (target <= 2 s); {counts}; {load()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=os.environ.get("GRIDSVC_DATABASE_URL"))
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    bench_dispatch(args.requests)
    if args.db:
        bench_service(args.db, args.requests)
        bench_list(args.db, args.rows)


if __name__ == "__main__":
    main()
