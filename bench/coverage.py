"""Benchmark coverage + all six blind-spot kinds: the demo street (≤ 2 s) and a 1,000,000-household
city (≤ 60 s), each against a plain-PostGIS baseline for one figure (Red Station reach).

Each scope runs twice: with Red Station reach straight (``GRIDSVC_REACH_METRIC=straight``) and
walked along the demo's generated roads (``network``; the demo has a road on every grid edge and
lanes between the buildings of each grid). A database without roads runs straight only.

Run: ``.venv/bin/python bench/coverage.py [--street-db URL] [--city-db URL] [--repeats 3]``.
Each database must hold a demo (``gridsvc demo`` / ``gridsvc demo --households 1000000``); an empty
street database is loaded here. When the pairing views have no plan, a stand-in plan is put in
temporary tables of the same names (nearest eligible member of the community, at most 25
households each; nearest cadre, at most 15 members each) so that every figure has data.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from sqlalchemy import Connection, text

from geodata.projection import metric_epsg, to_metres
from gridsvc.coverage import BlindSpots, CoverageReport, compute_coverage, find_blindspots
from gridsvc.db import init_database, make_engine
from gridsvc.settings import load_settings

BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def stand_in_plan(conn: Connection) -> str:
    """Temp tables shadowing the pairing views, unless a real plan exists. Returns a label."""
    real = conn.scalar(text("SELECT to_regclass('current_household_pairs') IS NOT NULL"))
    if real and conn.scalar(text("SELECT EXISTS (SELECT 1 FROM current_household_pairs)")):
        return "the pairing engine's current plan"
    hh = _frame(
        conn,
        "SELECT id, community_id, building_id, grid_id, ST_X(geom) x, ST_Y(geom) y FROM households",
    )
    mem = _frame(
        conn,
        "SELECT id, community_id, building_id, grid_id, ST_X(geom) x, ST_Y(geom) y FROM members "
        "WHERE eligible",
    )
    cad = _frame(
        conn,
        "SELECT id, community_id, ST_X(geom) x, ST_Y(geom) y FROM cadres "
        "WHERE community_id IS NOT NULL",
    )
    allm = _frame(conn, "SELECT id, community_id, ST_X(geom) x, ST_Y(geom) y FROM members")
    hp = _nearest(hh, mem, cap=25)
    hp["same_building"] = (
        hh.set_index("id").loc[hp["client"], "building_id"].to_numpy()
        == mem.set_index("id").loc[hp["server"], "building_id"].to_numpy()
    )
    hp["same_grid"] = (
        hh.set_index("id").loc[hp["client"], "grid_id"].to_numpy()
        == mem.set_index("id").loc[hp["server"], "grid_id"].to_numpy()
    )
    mp = _nearest(allm, cad, cap=15)
    conn.exec_driver_sql(
        "CREATE TEMP TABLE current_household_pairs (community_id int, household_id int, "
        "member_id int, distance_m float8, same_building bool, same_grid bool)"
    )
    conn.exec_driver_sql(
        "CREATE TEMP TABLE current_member_pairs (community_id int, member_id int, "
        "cadre_id int, distance_m float8)"
    )
    _copy(
        conn,
        "current_household_pairs",
        hp[["community_id", "client", "server", "distance_m", "same_building", "same_grid"]],
    )
    _copy(conn, "current_member_pairs", mp[["community_id", "client", "server", "distance_m"]])
    return f"a stand-in plan ({len(hp):,} household pairs, {len(mp):,} member pairs)"


def _nearest(clients: pd.DataFrame, servers: pd.DataFrame, *, cap: int) -> pd.DataFrame:
    """Each client to its nearest server of the same community; each server keeps its ``cap``
    nearest clients."""
    epsg = metric_epsg(clients["x"], clients["y"])

    def xy(f: pd.DataFrame) -> np.ndarray:
        return np.column_stack(to_metres(f["x"], f["y"], epsg=epsg)[:2])

    out = []
    for comm, c in clients.groupby("community_id"):
        s = servers[servers["community_id"] == comm]
        if len(s) == 0:
            continue
        d, j = cKDTree(xy(s)).query(xy(c))
        out.append(
            pd.DataFrame(
                {
                    "community_id": comm,
                    "client": c["id"].to_numpy(),
                    "server": s["id"].to_numpy()[j],
                    "distance_m": d,
                }
            )
        )
    pairs = pd.concat(out, ignore_index=True)
    keep = pairs.groupby("server")["distance_m"].rank(method="first") <= cap
    return pairs[keep].reset_index(drop=True)


def _frame(conn: Connection, sql: str) -> pd.DataFrame:
    result = conn.execute(text(sql))
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _copy(conn: Connection, table: str, frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv)") as cp:
        cp.write(buf.getvalue())


def baseline_reach(conn: Connection, scope_sql: str, radius: int) -> float:
    """Plain PostGIS: households within ``radius`` m of a station (ST_DWithin on geography)."""
    t0 = time.perf_counter()
    conn.execute(
        text(
            "SELECT h.community_id, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM stations s "
            f"WHERE ST_DWithin(s.geom::geography, h.geom::geography, {radius}))) FROM households h "
            f"WHERE {scope_sql} GROUP BY 1"
        )
    ).all()
    return time.perf_counter() - t0


def run(label: str, url: str, street: str | None, repeats: int, limit_s: float) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        plan = stand_in_plan(conn)
        n = conn.scalar(text("SELECT count(*) FROM households"))
        roads = conn.scalar(text("SELECT count(*) FROM roads"))
        metrics = ("straight", "network") if roads else ("straight",)
        print(f"{label}: {n:,} households and {roads:,} roads in the database; {plan}")
        for metric in metrics:
            settings = load_settings().with_(database_url=url, reach_metric=metric)
            times, loads = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                report = compute_coverage(conn, street_code=street, settings=settings)
                spots = find_blindspots(conn, street_code=street, settings=settings)
                times.append(time.perf_counter() - t0)
                loads.append(report.timings["load"] + spots.timings["load"])
            _print(f"{label}, reach {metric}", report, spots, times, loads, limit_s)
        scope_sql = (
            "true"
            if street is None
            else (
                "h.community_id IN (SELECT c.id FROM communities c "
                f"JOIN streets s ON s.id = c.street_id WHERE s.code = '{street}')"
            )
        )
        base = statistics.median(
            baseline_reach(conn, scope_sql, 500) for _ in range(max(1, repeats // 3))
        )
        conn.rollback()
    engine.dispose()
    print(
        f"  baseline, plain PostGIS ST_DWithin for one figure (500 m reach, straight): {base:.2f} s"
    )


def _print(
    label: str,
    report: CoverageReport,
    spots: BlindSpots,
    times: list[float],
    loads: list[float],
    limit_s: float,
) -> None:
    med = statistics.median(times)
    s = report.summary
    walked = ""
    if report.distance_metric == "network":
        off = dict(report.network["off_network"])
        walked = f", {report.network['segments']:,} road segments, off the network {off}"
    print(f"{label}: {s['households']:,} households in scope{walked}")
    print(
        f"  coverage + 6 blind-spot kinds: median {med:.2f} s over {len(times)} "
        f"(of which database reads {statistics.median(loads):.2f} s)  limit {limit_s:.0f} s "
        f"{'PASS' if med <= limit_s else 'FAIL'}"
    )
    print(
        f"  paired {s['paired_share']:.1%}, reach 300/500/1000 m "
        f"{s['reach_300']:.1%}/{s['reach_500']:.1%}/{s['reach_1000']:.1%}, "
        f"pair distance mean {s['distance_mean_m']:.0f} m p95 {s['distance_p95_m']:.0f} m; "
        f"blind spots {spots.counts()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--street-db", default=BASE + "gridsvc_coverage")
    parser.add_argument("--city-db", default=BASE + "gridsvc_coverage_city")
    parser.add_argument("--street", default="530102001")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-city", action="store_true")
    args = parser.parse_args()
    init_database(args.street_db)
    engine = make_engine(args.street_db)
    with engine.begin() as conn:
        if not conn.scalar(text("SELECT EXISTS (SELECT 1 FROM households)")):
            from geodata.demo import load_demo

            load_demo(conn)
    engine.dispose()
    run("demo street", args.street_db, args.street, args.repeats, 2.0)
    if not args.skip_city:
        run("city", args.city_db, None, args.repeats, 60.0)


if __name__ == "__main__":
    main()
