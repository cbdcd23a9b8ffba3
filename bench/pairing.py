"""Benchmark the pairing engine: one community, a city, and rebalancing; medians of repeats.

1. Community (the demo street's first community, shaped like the seeds' 3,724 households,
   448 members, 76 buildings): members→households and cadres→members, at ``--time-limit 1`` and
   at the default 10 s, with a greedy "nearest member with room" baseline in the same run.
2. City (``--city``): 1,000,000 households, 60,000 members, 6,000 cadres from the demo generator,
   partitioned by community (households) and street (members), solved in parallel on
   ``--workers`` processes; wall time and peak memory (parent + children).
3. Rebalancing: 5 % of the community's members leave; changed pairs against the pairs the change
   forces, the proven gap on cost + churn (the churn the data force left out of its
   denominator), seconds, and a from-scratch re-solve (no churn weight) as the baseline.
4. Exact grids (``--exact-grids N``): the first N grids of the community posed alone and solved
   to proven optimality by HiGHS's branch and bound (the strong formulation: a binary per
   member × household and per member, x ≤ y); prints the engine's cost (5 s), the optimum and
   the LP bound: how far the engine is from optimal, and how far any LP-based bound must sit.
5. Large communities (``--large``): the real Kunming community (金江社区, 11,440 households in
   89 residential OSM buildings, 1,177 eligible members; ``geodata.kunming.pairing_frames``)
   and generated communities of 3,700, 11,000 and 20,000 households (dense towers, mixed
   low-rise, few-member buildings; :func:`large_community`): the start (construction, before
   any local search), the default run (time budget by size), a long run (``--large-long``
   seconds) as the converged cost, and the proven gap of each.
``--db URL`` runs part 1 per community of the demo street loaded in that database instead.
``--city-product URL`` runs the product's own ``gridsvc pair`` on the city loaded at URL
(bench/_city_product.py).

Run: ``.venv/bin/python bench/pairing.py [--repeats 3] [--city] [--db URL] [--large [LONG_S]]``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from gridsvc.pairing import PairingProblem, diff_pairs
from gridsvc.pairing.problem import ANY_COMMUNITY


def _codes(values: pd.Series) -> np.ndarray:
    return pd.factorize(values, use_na_sentinel=True)[0]


def demo_frames(households: int | None = None, seed: int = 1) -> dict[str, pd.DataFrame]:
    """Demo layers as plain frames with x, y in metres and integer group ids."""
    from geodata.demo import UTM, generate_demo

    layers = generate_demo(seed=seed, households=households).layers
    out = {}
    for name in ("households", "members", "cadres"):
        g = layers[name].to_crs(UTM)
        frame = pd.DataFrame(g.drop(columns="geometry"))
        frame["x"], frame["y"] = g.geometry.x.to_numpy(), g.geometry.y.to_numpy()
        out[name] = frame
    keys = pd.concat([out["households"], out["members"]])
    for col in ("building_code", "grid_code", "community_code"):
        index = pd.Index(keys[col].dropna().unique())
        for name in ("households", "members", "cadres"):
            if col in out[name]:
                out[name][col.split("_")[0]] = index.get_indexer(out[name][col])
    out["cadres"]["community"] = out["cadres"]["community"].where(
        out["cadres"]["community"] >= 0, ANY_COMMUNITY
    )
    return out


def household_problem(hh: pd.DataFrame, mem: pd.DataFrame, **kw) -> PairingProblem:
    """Members → households of one community."""
    return PairingProblem.from_arrays(
        hh[["x", "y"]].to_numpy(),
        mem[["x", "y"]].to_numpy(),
        client_building=hh["building"],
        client_grid=hh["grid"],
        client_community=hh["community"],
        server_building=mem["building"],
        server_grid=mem["grid"],
        server_community=mem["community"],
        server_eligible=mem["eligible"].to_numpy(bool),
        server_min=15,
        server_max=25,
        **kw,
    )


def member_problem(mem: pd.DataFrame, cad: pd.DataFrame) -> PairingProblem:
    """Cadres → all members (active and reserve) of a street; street cadres serve any community."""
    return PairingProblem.from_arrays(
        mem[["x", "y"]].to_numpy(),
        cad[["x", "y"]].to_numpy(),
        client_community=mem["community"],
        server_community=cad["community"],
        server_min=8,
        server_max=15,
        building_penalty=0,
        grid_penalty=0,
    )


def greedy(problem: PairingProblem) -> tuple[float, int, float]:
    """Nearest eligible member with room, households in order: cost (same metric), loads out
    of range, seconds."""
    t = time.perf_counter()
    servers = np.flatnonzero(problem.server_eligible)
    k = min(len(servers), 32)
    _, near = cKDTree(problem.server_xy[servers]).query(problem.client_xy, k=k)
    load = np.zeros(problem.n_servers, int)
    pairs = []
    for i, row in enumerate(np.atleast_2d(near)):
        for j in servers[row]:
            if load[j] < problem.server_max[j]:
                load[j] += 1
                pairs.append((i, j))
                break
    seconds = time.perf_counter() - t
    c, s = np.array(pairs).T
    d = np.hypot(*(problem.client_xy[c] - problem.server_xy[s]).T)
    cost = d + np.where(problem.client_building[c] == problem.server_building[s], 0, 150.0)
    cost += np.where(problem.client_grid[c] == problem.server_grid[s], 0, 300.0)
    bad = int(((load > 0) & (load < problem.server_min)).sum())
    return float(cost.sum()), bad, seconds


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def part_community(frames, repeats: int) -> None:
    hh, mem, cad = frames["households"], frames["members"], frames["cadres"]
    com = hh["community"].iloc[0]
    h, m = hh[hh["community"] == com], mem[mem["community"] == com]
    c = cad[(cad["community"] == com) | (cad["community"] == ANY_COMMUNITY)]
    n_b = h["building"].nunique()
    print(
        f"Community: {len(h)} households in {n_b} buildings, {len(m)} members "
        f"({int(m['eligible'].sum())} eligible), {len(c)} cadres; medians of {repeats}"
    )
    p1, p2 = household_problem(h, m), member_problem(m, c)
    print(f"{'run':34} {'cost m':>10} {'bound m':>10} {'gap':>7} {'active':>6} {'seconds':>8}")
    for limit in (1.0, 10.0):
        r1, t1 = timed(lambda lim=limit: p1.solve(time_limit=lim), repeats)
        r2, t2 = timed(lambda lim=limit: p2.solve(time_limit=lim), repeats)
        for name, r, t in (
            (f"households, limit {limit:g} s", r1, t1),
            (f"members, limit {limit:g} s", r2, t2),
        ):
            print(
                f"{name:34} {r.cost:10.0f} {r.lower_bound:10.0f} {r.gap:7.2%} "
                f"{int(r.active.sum()):6d} {t:8.2f}"
            )
        print(
            f"{'both levels, limit ' + format(limit, 'g') + ' s':34} {'':10} {'':10} {'':7} "
            f"{'':6} {t1 + t2:8.2f}"
        )
    cost, bad, sec = greedy(p1)
    print(
        f"{'greedy nearest with room':34} {cost:10.0f} {'':10} {'':7} {'':6} {sec:8.2f}"
        f"   ({bad} members below the minimum load)"
    )


def _solve_part(args: tuple) -> tuple[int, int, float, float, int]:
    kind, a, b, limit, certify = args
    p = household_problem(a, b) if kind == "households" else member_problem(a, b)
    r = p.solve(time_limit=limit, kicks=3, certify_seconds=certify)
    return (
        p.n_clients,
        r.n_paired,
        r.cost,
        r.gap,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )


def part_city(workers: int, limit: float, households: int = 1_000_000, certify: float = 2.0):
    t0 = time.perf_counter()
    frames = demo_frames(households=households, seed=3)
    scale = households / 1_000_000
    hh, mem, cad = frames["households"], frames["members"], frames["cadres"]
    rng = np.random.default_rng(3)
    mem = mem.iloc[np.sort(rng.choice(len(mem), round(60_000 * scale), replace=False))]
    street = dict(zip(hh["community"], hh["community_code"].str[:9], strict=False))
    mem = mem.assign(street=mem["community"].map(street))
    # 6,000 cadres: the generator's, topped up with community cadres at members' homes
    extra = mem.sample(round(6_000 * scale) - len(cad), random_state=3)
    extra = extra[["x", "y", "community", "street"]]
    cad = pd.concat(
        [cad.assign(street=cad["street_code"])[["x", "y", "community", "street"]], extra]
    )
    gen = time.perf_counter() - t0
    print(
        f"\nCity: {len(hh):,} households, {len(mem):,} members, {len(cad):,} cadres, "
        f"{hh['community'].nunique()} communities, {mem['street'].nunique()} streets "
        f"(generated in {gen:.0f} s); {workers} worker processes, time limit {limit:g} s, "
        f"pricing at least {certify:g} s"
    )
    jobs = [
        ("households", h, mem[mem["community"] == c], limit, certify)
        for c, h in hh.groupby("community")
    ]
    jobs += [
        ("members", m, cad[cad["street"] == s], limit, certify) for s, m in mem.groupby("street")
    ]
    t = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with ProcessPoolExecutor(workers) as pool:
        out = list(pool.map(_solve_part, jobs, chunksize=4))
    wall = time.perf_counter() - t
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    n_hh = len(hh)
    paired = sum(o[1] for o, j in zip(out, jobs, strict=True) if j[0] == "households")
    paired_m = sum(o[1] for o, j in zip(out, jobs, strict=True) if j[0] == "members")
    gaps = [o[3] for o in out if np.isfinite(o[3])]
    child = max(o[4] for o in out) / 1024**2
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"households paired {paired:,}/{n_hh:,}; members paired {paired_m:,}/{len(mem):,}")
    print(f"median gap {statistics.median(gaps):.2%}, max gap {max(gaps):.2%}")
    print(f"workers' CPU {cpu:.1f} s ({cpu / workers:.1f} s each: the wall time on idle cores)")
    print(
        f"solve wall {wall:.1f} s; peak memory parent {parent:.2f} GB + {workers} workers "
        f"≤ {child:.2f} GB each = {parent + workers * child:.2f} GB at most"
    )


def part_rebalance(frames, repeats: int) -> None:
    hh, mem = frames["households"], frames["members"]
    com = hh["community"].iloc[0]
    h, m = hh[hh["community"] == com], mem[mem["community"] == com].copy()
    first = household_problem(h, m).solve(time_limit=10)
    current = first.assignment()
    rng = np.random.default_rng(11)
    leave = rng.choice(len(m), round(0.05 * len(m)), replace=False)
    eligible = m["eligible"].to_numpy(bool).copy()
    eligible[leave] = False
    gone = np.zeros(len(m), bool)
    gone[leave] = True
    m2 = m.assign(eligible=eligible)
    forced = int(np.isin(current, leave).sum())
    print(f"\nRebalancing: {len(leave)} of {len(m)} members leave (5 %); {forced} pairs forced")
    print(
        f"{'run':34} {'changed':>8} {'x forced':>8} {'cost m':>10} {'churn m':>9} "
        f"{'gap':>7} {'seconds':>8}"
    )
    for name, kw in (
        ("rebalance, churn 400 m", {"current": current, "churn_weight": 400.0}),
        ("re-solve from scratch", {}),
    ):
        r, t = timed(lambda kw=kw: household_problem(h, m2, **kw).solve(time_limit=2.0), repeats)
        d = diff_pairs(current, r, server_gone=gone)
        print(
            f"{name:34} {d.changed:8d} {d.changed / max(forced, 1):8.2f} {r.cost:10.0f} "
            f"{r.churn_cost:9.0f} {r.gap:7.2%} {t:8.2f}"
        )


def exact_optimum(p) -> tuple[float, float, float]:
    """LP bound, proven optimum and seconds of the strong MIP of a small pairing (HiGHS)."""
    from scipy import sparse
    from scipy.optimize import Bounds, LinearConstraint, milp

    n, m = p.n_clients, p.n_servers
    d = np.hypot(*(p.client_xy[:, None, :] - p.server_xy[None, :, :]).transpose(2, 0, 1))
    cost = d + p.building_penalty * (p.client_building[:, None] != p.server_building)
    cost += p.grid_penalty * (p.client_grid[:, None] != p.server_grid)
    ci, si = np.nonzero(np.broadcast_to(p.server_eligible, cost.shape))
    k = len(ci)

    def block(rows, cols, vals, height):
        return sparse.csr_matrix((vals, (rows, cols)), shape=(height, k + m))

    x_load = block(si, np.arange(k), np.ones(k), m)
    y = np.arange(m)
    matrix = sparse.vstack(
        [
            block(ci, np.arange(k), np.ones(k), n),  # each household once
            x_load + block(y, k + y, -p.server_max.astype(float), m),  # load <= max y
            x_load + block(y, k + y, -p.server_min.astype(float), m),  # load >= min y
            block(
                np.tile(np.arange(k), 2),
                np.r_[np.arange(k), k + si],
                np.r_[[1.0] * k, [-1.0] * k],
                k,
            ),
        ]
    ).tocsr()
    lower = np.r_[np.ones(n), np.full(m, -np.inf), np.zeros(m), np.full(k, -np.inf)]
    upper = np.r_[np.ones(n), np.zeros(m), np.full(m, np.inf), np.zeros(k)]
    c = np.r_[cost[ci, si], np.zeros(m)]
    cons = LinearConstraint(matrix, lower, upper)
    bounds = Bounds(0, np.r_[np.ones(k), p.server_eligible.astype(float)])
    lp = milp(c, constraints=cons, bounds=bounds)
    t = time.perf_counter()
    ip = milp(
        c,
        constraints=cons,
        bounds=bounds,
        integrality=np.ones(k + m),
        options={"time_limit": 300, "mip_rel_gap": 1e-4},
    )
    return float(lp.fun), float(ip.fun) if ip.status == 0 else np.nan, time.perf_counter() - t


def part_exact(frames, grids: int) -> None:
    hh, mem = frames["households"], frames["members"]
    com = hh["community"].iloc[0]
    h, m = hh[hh["community"] == com], mem[mem["community"] == com]
    print("\nExact grids: each grid of the community alone, engine (5 s) vs HiGHS MIP optimum")
    print(
        f"{'grid':>5} {'households':>10} {'members':>8} {'engine m':>10} {'optimum m':>10} "
        f"{'engine vs opt':>13} {'LP bound m':>10} {'LP gap':>7} {'MIP s':>6}"
    )
    for g in sorted(h["grid"].unique())[:grids]:
        hg, mg = h[h["grid"] == g], m[m["grid"] == g]
        p = household_problem(hg, mg)
        r = p.solve(time_limit=5)
        lp, opt, sec = exact_optimum(p)
        print(
            f"{g:5d} {len(hg):10d} {int(mg['eligible'].sum()):8d} {r.cost:10.0f} {opt:10.0f} "
            f"{r.cost / opt - 1:13.3%} {lp:10.0f} {1 - lp / opt:7.2%} {sec:6.1f}"
        )


def part_db(url: str, repeats: int, limit: float) -> None:
    from sqlalchemy import create_engine

    from gridsvc.pairing import service
    from gridsvc.settings import load_settings

    settings = load_settings()
    engine = create_engine(url)
    with engine.connect() as conn:
        scope = service._scope(conn, None, None)
        print(f"\nFrom the database: {len(scope)} communities, time limit {limit:g} s")
        for row in scope.itertuples():
            clients = service._households(conn, [row.id])
            servers = service._members(conn, [row.id], settings)
            if clients.empty or servers.empty:
                continue
            p = service._problem(clients, servers, level="households", db=conn, settings=settings)
            r, t = timed(lambda p=p: p.solve(time_limit=limit), repeats)
            print(f"{row.code}: {r.summary()} (median {t:.2f} s)")
    engine.dispose()


def large_community(households: int, *, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A generated community of mixed buildings, frames with x, y (metres) and group ids.

    Buildings on a 60 m lattice: dense towers (150-600 households, 30 x 15 m footprints, a
    quarter of them), low-rise blocks (12-72, half) and few-member buildings (20-120 with a
    quarter of the member rate); members at 12 % of households (3 % in few-member buildings),
    85 % eligible; grids of about 400 households (square blocks of the lattice).
    """
    rng = np.random.default_rng(seed)
    kinds, sizes, total = [], [], 0
    while total < households:
        kind = int(rng.choice(3, p=[0.25, 0.5, 0.25]))
        low, high = ((150, 600), (12, 72), (20, 120))[kind]
        size = min(int(rng.integers(low, high)), households - total)
        kinds.append(kind)
        sizes.append(size)
        total += size
    nb, kind_of = len(sizes), np.array(kinds)
    side = int(np.ceil(np.sqrt(nb)))
    bx = (np.arange(nb) % side) * 60.0 + rng.uniform(-8, 8, nb)
    by = (np.arange(nb) // side) * 60.0 + rng.uniform(-8, 8, nb)
    g_side = max(1, int(np.sqrt(households / 400)))
    gx = np.minimum((bx / (side * 60.0) * g_side).astype(int), g_side - 1)
    gy = np.minimum((by / (side * 60.0) * g_side).astype(int), g_side - 1)
    b = np.repeat(np.arange(nb), sizes)
    foot = np.where(kind_of == 0, 30.0, 20.0)[b]
    hh = pd.DataFrame(
        {
            "x": bx[b] + rng.uniform(-0.5, 0.5, len(b)) * foot,
            "y": by[b] + rng.uniform(-0.25, 0.25, len(b)) * foot,
            "building": b,
            "grid": (gy * g_side + gx)[b],
            "community": 0,
        }
    )
    rate = np.array([0.12, 0.12, 0.03])[kind_of][b]
    is_member = rng.random(len(b)) < rate
    members = hh[is_member].reset_index(drop=True)
    members["eligible"] = rng.random(len(members)) > 0.15
    return {"households": hh, "members": members}


def large_cases() -> list[tuple[str, PairingProblem]]:
    """Kunming and the generated 3,700 / 11,000 / 20,000-household communities."""
    from geodata.kunming import pairing_frames

    frames = [("Kunming 金江社区", pairing_frames())]
    frames += [(f"generated {n:,}", large_community(n, seed=n)) for n in (3_700, 11_000, 20_000)]
    return [(name, household_problem(f["households"], f["members"])) for name, f in frames]


def start_cost(problem: PairingProblem) -> tuple[float, float]:
    """Cost of the construction alone (building start, then the flow over its candidate arcs,
    topped up and trimmed to the loads: no local search) and its seconds."""
    from gridsvc.pairing._solve import _instance, _Search
    from gridsvc.pairing._start import building_start

    t = time.perf_counter()
    inst, _ = _instance(problem)
    search = _Search(inst, k=8, even=problem.even_loads, max_active=None)
    active, flow = search.fill(building_start(inst), unpaired=0)
    _, flow = search.drop(active, unpaired=0, flow=flow)
    return flow.total_cost, time.perf_counter() - t


def part_large(repeats: int, long: float) -> None:
    print(
        f"\nLarge communities: start (no local search), default run (median of {repeats}), "
        f"long run ({long:g} s)"
    )
    print(
        f"{'community':20} {'households':>10} {'start m':>10} {'default m':>10} {'s':>5} "
        f"{'gap':>7} {'long m':>10} {'gap':>7} {'start/long':>10} {'default/long':>12}"
    )
    for name, p in large_cases():
        start, _ = start_cost(p)
        runs = [p.solve() for _ in range(repeats)]
        r = sorted(runs, key=lambda x: x.timings["total"])[len(runs) // 2]
        best = p.solve(time_limit=long)
        ref = min(best.cost, min(x.cost for x in runs))

        def gap(res) -> str:
            return f"{res.gap:7.2%}" if res.bound_available else f"{'–':>7}"

        print(
            f"{name:20} {p.n_clients:10,d} {start:10,.0f} {r.cost:10,.0f} "
            f"{r.timings['total']:5.1f} {gap(r)} {best.cost:10,.0f} {gap(best)} "
            f"{start / ref - 1:10.1%} {r.cost / ref - 1:12.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--city", action="store_true", help="also the 1,000,000-household city")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--city-limit", type=float, default=0.5, help="seconds per community")
    parser.add_argument("--city-households", type=int, default=1_000_000)
    parser.add_argument("--city-only", action="store_true")
    parser.add_argument(
        "--city-certify", type=float, default=2.0, help="solve(certify_seconds=) in the city"
    )
    parser.add_argument("--db-limit", type=float, default=10.0, help="seconds per community")
    parser.add_argument("--db", help="SQLAlchemy URL of a database holding the demo street")
    parser.add_argument("--exact-grids", type=int, default=0, help="part 4 on this many grids")
    parser.add_argument("--exact-only", action="store_true")
    parser.add_argument(
        "--large",
        type=float,
        nargs="?",
        const=120.0,
        default=None,
        metavar="LONG_S",
        help="only part 5: Kunming and generated large communities (long run LONG_S, 120 s)",
    )
    from _city_product import add_options as city_product_options  # bench/_city_product.py

    city_product_options(parser)
    args = parser.parse_args()
    if args.large is not None:
        part_large(args.repeats, args.large)
        return
    if args.city_product:
        from _city_product import run as city_product

        city_product(args.city_product, args)
        return
    if args.db:
        part_db(args.db, args.repeats, args.db_limit)
        return
    if args.city_only:
        part_city(args.workers, args.city_limit, args.city_households, args.city_certify)
        return
    frames = demo_frames()
    if args.exact_only:
        part_exact(frames, args.exact_grids or 3)
        return
    part_community(frames, args.repeats)
    part_rebalance(frames, args.repeats)
    if args.exact_grids:
        part_exact(frames, args.exact_grids)
    if args.city:
        part_city(args.workers, args.city_limit, args.city_households, args.city_certify)


if __name__ == "__main__":
    main()
