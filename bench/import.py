"""Benchmark: importing households from CSV through the full importer (read, validate, load).

Generates a CSV of N households (default 100,000; GBK-encoded, lon/lat, names, phones, flags)
over a district of 200 grids and 2,000 buildings, imports it into a bench database (each run in
a transaction rolled back afterwards, so every run inserts and derives building, grid and
community by location), and prints the median records per second (target >= 5,000/s). Baseline
in the same run: one ORM object per row (csv module + session.add, no validation, no
derivation) on a 5,000-row sample, extrapolated.

Address rosters (issue 15), same run: a 20,000-row household roster that names each household
by address only ("翠湖苑3号楼2单元501室", "翠湖苑三栋二单元五〇一", full-width, dash forms ...)
over 200 compounds of 10 buildings, as GBK CSV and as XLSX: the resolution step alone (parse,
match, find codes: target >= 5,000 rows/s) and the whole import, with the plain building_code
import of the same households as the baseline.

    .venv/bin/python bench/import.py [--households 100000] [--repeats 3] [--sample 5000]
                                     [--roster 20000] [--only points|roster]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely import box
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from geodata.importer import import_file
from geodata.layers import get_layer
from geodata.load import load_layer
from geodata.readers import read_input
from geodata.rosters import prepare_roster
from geodata.schema import Household
from gridsvc.db import init_database, make_engine
from gridsvc.settings import load_settings

STREET, COMMUNITY = "420106091", "420106091001"
WEST, SOUTH, STEP = 114.30, 30.55, 0.002  # 20 x 10 grids of about 190 x 220 m


def district(conn: Connection) -> None:
    """A street, one community, 200 grids and 2,000 buildings (10 per grid)."""
    frame = lambda rows, geoms: gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=4326)  # noqa: E731
    load_layer(conn, "streets", frame([{"code": STREET, "name": "基准街道"}], [None]))
    extent = box(WEST, SOUTH, WEST + 20 * STEP, SOUTH + 10 * STEP)
    load_layer(
        conn,
        "communities",
        frame([{"code": COMMUNITY, "name": "基准社区", "street_code": STREET}], [extent]),
    )
    grids, cells, buildings, footprints = [], [], [], []
    for i in range(20):
        for j in range(10):
            x, y = WEST + i * STEP, SOUTH + j * STEP
            grids.append(
                {
                    "code": f"{COMMUNITY}{len(grids) + 1:03d}",
                    "name": f"网格{len(grids) + 1}",
                    "community_code": COMMUNITY,
                }
            )
            cells.append(box(x, y, x + STEP, y + STEP))
            for k in range(10):
                bx, by = x + (k % 5) * 0.0004 + 0.0001, y + (k // 5) * 0.001 + 0.0002
                buildings.append(
                    {
                        "code": f"BB{len(buildings) + 1:05d}",
                        "floors": 6,
                        "name": f"{k + 1}号楼",
                        "compound": compound_name(len(grids) - 1),
                    }
                )
                footprints.append(box(bx, by, bx + 0.0002, by + 0.0005))
    load_layer(conn, "grids", frame(grids, cells))
    load_layer(conn, "buildings", frame(buildings, footprints))


_WORDS = list("翠湖文林青云钱局光华福林兴苑金碧龙翔丰宁莲华红云普吉西翥")


def compound_name(i: int) -> str:
    """The compound of grid ``i`` (200 distinct names)."""
    return _WORDS[i % 25] + _WORDS[(i // 25 + 3) % 25] + ("苑", "小区", "花园", "家园", "里")[i % 5]


def roster_frame(n: int, *, seed: int = 2) -> pd.DataFrame:
    """N households named by address only, in the forms rosters use, and by building code."""
    from geodata.addresses import chinese_numeral

    rng = np.random.default_rng(seed)
    flat = rng.choice(200 * 10 * 4 * 72, n, replace=False)  # one household per flat
    grid, building = flat // 2880, flat // 288 % 10 + 1
    unit, room = flat // 72 % 4 + 1, (flat % 72 // 4 + 1) * 100 + flat % 4 + 1
    full = str.maketrans("0123456789-#", "０１２３４５６７８９－＃")
    forms = rng.integers(0, 5, n)
    addresses = []
    for g, b, u, r, f in zip(grid, building, unit, room, forms, strict=True):
        c = compound_name(int(g))
        addresses.append(
            (
                f"{c}{b}号楼{u}单元{r}室",
                f"{c}{b}栋{u}-{r}",
                f"{c}{chinese_numeral(int(b))}号楼{chinese_numeral(int(u))}单元"
                f"{chinese_numeral(int(r), style='digits')}",
                f"{c}{b}#{u}-{r}".translate(full),
                f"五华区基准街道基准社区{c} {b} 幢 {u} 单元 {r}",
            )[f]
        )
    return pd.DataFrame(
        {
            "户主姓名": [f"住户{i}" for i in range(n)],
            "联系电话": [f"1{p}" for p in rng.integers(3_000_000_000, 9_999_999_999, n)],
            "家庭人口": rng.integers(1, 6, n),
            "居住地址": addresses,
            "building_code": [f"BB{g * 10 + b:05d}" for g, b in zip(grid, building, strict=True)],
            "code": [f"R{i:06d}" for i in range(n)],
        }
    )


def make_csv(path: Path, n: int, *, seed: int = 1) -> Path:
    """N households: 80 % inside a building, the rest scattered; GBK as Chinese offices save it."""
    rng = np.random.default_rng(seed)
    lon = WEST + rng.uniform(0, 20 * STEP, n)
    lat = SOUTH + rng.uniform(0, 10 * STEP, n)
    surnames = np.array(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"))
    given = np.array(list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"))
    names = [
        a + b + c
        for a, b, c in zip(
            rng.choice(surnames, n), rng.choice(given, n), rng.choice(given, n), strict=True
        )
    ]
    frame = pd.DataFrame(
        {
            "code": [f"HH{i:07d}" for i in range(n)],
            "name": names,
            "phone": [f"1{p}" for p in rng.integers(3_000_000_000, 9_999_999_999, n)],
            "lon": lon.round(7),
            "lat": lat.round(7),
            "size": rng.integers(1, 6, n),
            "elderly_alone": np.where(rng.random(n) < 0.08, "是", "否"),
            "low_income": np.where(rng.random(n) < 0.03, "1", "0"),
        }
    )
    frame.to_csv(path, index=False, encoding="gbk")
    return path


def timed_import(engine, path: Path, settings) -> float:
    with engine.connect() as conn, conn.begin() as tx:
        started = time.perf_counter()
        result = import_file(conn, "households", path, settings=settings, crs="EPSG:4326")
        seconds = time.perf_counter() - started
        assert result.inserted > 0 and not result.rejects, result.rejects[:3]
        tx.rollback()
    return seconds


def orm_baseline(engine, path: Path, sample: int) -> float:
    """Seconds for ``sample`` rows inserted one ORM object per row (no validation)."""
    with path.open(encoding="gbk", newline="") as handle:
        rows = [row for _, row in zip(range(sample), csv.DictReader(handle), strict=False)]
    with engine.connect() as conn, conn.begin() as tx:
        started = time.perf_counter()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as session:
            for row in rows:
                session.add(
                    Household(
                        code=row["code"],
                        name=row["name"],
                        phone=row["phone"],
                        size=int(row["size"]),
                        elderly_alone=row["elderly_alone"] == "是",
                        low_income=row["low_income"] == "1",
                        geom=f"SRID=4326;POINT({row['lon']} {row['lat']})",
                    )
                )
                session.flush()
        seconds = time.perf_counter() - started
        tx.rollback()
    return seconds


def timed_roster(engine, path: Path, settings, *, layer: str = "households") -> tuple[float, float]:
    """(seconds to resolve the addresses, seconds for the whole import), rolled back."""
    with engine.connect() as conn, conn.begin() as tx:
        raw = read_input(path)
        started = time.perf_counter()
        roster = prepare_roster(conn, raw, get_layer(layer), settings=settings)
        resolve = time.perf_counter() - started
        assert roster.addressed and not roster.rejects, roster.rejects[:3]
        tx.rollback()
    with engine.connect() as conn, conn.begin() as tx:
        started = time.perf_counter()
        result = import_file(conn, layer, path, settings=settings)
        seconds = time.perf_counter() - started
        assert result.inserted == len(raw.frame) and not result.rejects, result.rejects[:3]
        tx.rollback()
    return resolve, seconds


def timed_codes(engine, path: Path, settings) -> float:
    """Seconds for the whole plain building_code import of the same households."""
    with engine.connect() as conn, conn.begin() as tx:
        started = time.perf_counter()
        result = import_file(conn, "households", path, settings=settings)
        seconds = time.perf_counter() - started
        assert result.inserted > 0 and not result.rejects, result.rejects[:3]
        tx.rollback()
    return seconds


def roster_bench(engine, settings, n: int, repeats: int, folder: Path) -> None:
    """The address roster figures: resolution alone and whole imports, with the baseline."""
    frame = roster_frame(n)
    by_address = frame.drop(columns=["building_code", "code"])
    by_code = frame.drop(columns=["居住地址"]).rename(columns={"户主姓名": "name"})
    files = {
        "GBK CSV": folder / "roster.csv",
        "XLSX": folder / "roster.xlsx",
    }
    by_address.to_csv(files["GBK CSV"], index=False, encoding="gbk")
    by_address.to_excel(files["XLSX"], index=False)
    plain = {"GBK CSV": folder / "codes.csv", "XLSX": folder / "codes.xlsx"}
    by_code.to_csv(plain["GBK CSV"], index=False, encoding="gbk")
    by_code.to_excel(plain["XLSX"], index=False)
    keyed = settings.with_(secret_key=settings.secret_key or "bench")
    for label, path in files.items():
        base = statistics.median(timed_codes(engine, plain[label], keyed) for _ in range(repeats))
        print(
            f"baseline: plain building_code import of {n:,} households ({label}), median of "
            f"{repeats}: {base:.2f} s = {n / base:,.0f} records/s"
        )
        runs = [timed_roster(engine, path, keyed) for _ in range(repeats)]
        resolve = statistics.median(r for r, _ in runs)
        whole = statistics.median(w for _, w in runs)
        print(
            f"address roster, {n:,} rows, {label}: resolution (parse + match + codes) median "
            f"{resolve:.2f} s = {n / resolve:,.0f} rows/s (target >= 5,000/s); whole import "
            f"median {whole:.2f} s = {n / whole:,.0f} rows/s ({whole / base:.2f}x the baseline)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=5_000)
    parser.add_argument("--roster", type=int, default=20_000)
    parser.add_argument("--only", choices=["points", "roster"])
    args = parser.parse_args()
    settings = load_settings()
    url = make_url(settings.database_url)
    url = url.set(database=f"{url.database}_bench_import").render_as_string(hide_password=False)
    init_database(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE households, members, cadres, stations, buildings, grids, "
            "communities, streets RESTART IDENTITY CASCADE"
        )
        district(conn)
    if args.only != "points":
        with tempfile.TemporaryDirectory() as folder:
            roster_bench(engine, settings, args.roster, args.repeats, Path(folder))
    if args.only == "roster":
        engine.dispose()
        return
    with tempfile.TemporaryDirectory() as folder:
        path = make_csv(Path(folder) / "households.csv", args.households)
        size_mb = path.stat().st_size / 1e6
        runs = [timed_import(engine, path, settings) for _ in range(args.repeats)]
        base = [orm_baseline(engine, path, args.sample) for _ in range(args.repeats)]
    median = statistics.median(runs)
    base_rate = args.sample / statistics.median(base)
    print(
        f"import {args.households:,} households from CSV ({size_mb:.1f} MB, GBK; read + validate "
        f"+ COPY/upsert + derive building/grid/community), median of {args.repeats}: "
        f"{median:.2f} s = {args.households / median:,.0f} records/s (target >= 5,000/s); "
        f"runs {', '.join(f'{r:.2f}' for r in runs)} s"
    )
    print(
        f"baseline, one ORM object per row ({args.sample:,}-row sample, no validation, no "
        f"derivation), median of {args.repeats}: {base_rate:,.0f} records/s -> "
        f"{args.households / base_rate:.1f} s extrapolated; importer is "
        f"{args.households / median / base_rate:.1f}x faster"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
