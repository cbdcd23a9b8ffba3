"""Benchmark the pairing engine on capacitated p-median instances, and against two baselines.

Part 1 poses each Lorena & Senne SJC instance (``bench/data/cpmp``) as a pairing: a point of
demand d is d households there, each weighing 1/d in the cost (the published optima are
sum(distance) over points, demand counting only against capacity), each point a member with load
0…capacity, at most p active, straight-line distance, no penalties. Prints cost, the published
optimum, the gap to it, our own lower bound and gap, and seconds (median of ``--repeats`` runs).

Part 2 compares, on one balanced instance CBC can finish (about 2,000 households, 100 members,
loads 15–25, from the demo generator), the engine with a greedy "nearest member with room"
baseline and with the dense integer program of CommCare's geospatial module (a binary per
member × household, PuLP/CBC): costs, loads out of range, seconds.

Run: ``.venv/bin/python bench/cpmp.py [--repeats 3] [--only SJC1] [--skip-ip]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from gridsvc.pairing import PairingProblem

DATA = Path(__file__).with_name("data") / "cpmp"
PUBLISHED = {
    "SJC1": 17288.99,
    "SJC2": 33270.94,
    "SJC3a": 45335.16,
    "SJC3b": 40635.90,
    "SJC4a": 61925.51,
    "SJC4b": 52458.02,
}


def read_instance(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Points (n, 2), capacities, demands and p of one SJC file."""
    lines = path.read_text().split("\n")
    _, p = (int(v) for v in lines[0].split())
    rows = np.array([[float(v) for v in ln.split()] for ln in lines[1:] if ln.strip()])
    return rows[:, :2], rows[:, 2].astype(int), rows[:, 3].astype(int), p


def as_pairing(path: Path) -> PairingProblem:
    """The instance as a pairing problem (demand d → d clients at the point)."""
    xy, cap, demand, p = read_instance(path)
    return PairingProblem.from_arrays(
        np.repeat(xy, demand, axis=0),
        xy,
        server_min=0,
        server_max=cap,
        max_active=p,
        client_weight=np.repeat(1.0 / demand, demand),
        building_penalty=0.0,
        grid_penalty=0.0,
        even_loads=False,
    )


def part1(repeats: int, only: str | None) -> None:
    print("Part 1: capacitated p-median (Lorena & Senne SJC), splittable demand")
    head = f"{'instance':8} {'cost':>11} {'published':>11} {'gap pub':>8} {'bound':>11}"
    print(head + f" {'gap own':>8} {'active':>6} {'seconds':>8}")
    for name, published in PUBLISHED.items():
        if only and name != only:
            continue
        problem = as_pairing(DATA / f"{name}.dat")
        times, result = [], None
        for _ in range(repeats):
            t = time.perf_counter()
            result = problem.solve(time_limit=55.0, gap_tolerance=0.001, kicks=10_000)
            times.append(time.perf_counter() - t)
        assert result is not None and result.n_paired == problem.n_clients
        print(
            f"{name:8} {result.cost:11.2f} {published:11.2f} "
            f"{(result.cost - published) / published:8.2%} {result.lower_bound:11.2f} "
            f"{result.gap:8.2%} {int(result.active.sum()):6d} {statistics.median(times):8.2f}"
        )


def baseline_instance(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """About 2,000 demo households and 100 eligible members of them, in metres."""
    from geodata.demo import UTM, generate_demo

    layers = generate_demo(seed=seed, households=2000).layers
    hh = layers["households"].to_crs(UTM)
    members = layers["members"].to_crs(UTM)
    members = members[members["eligible"]].sample(100, random_state=seed)
    return (
        np.column_stack([hh.geometry.x, hh.geometry.y]),
        np.column_stack([members.geometry.x, members.geometry.y]),
    )


def greedy(clients: np.ndarray, servers: np.ndarray, hi: int) -> np.ndarray:
    """Each household in turn takes its nearest member with room (no minimum loads)."""
    _, order = cKDTree(servers).query(clients, k=len(servers))
    load = np.zeros(len(servers), int)
    out = np.full(len(clients), -1)
    for i, row in enumerate(order):
        for j in row:
            if load[j] < hi:
                out[i], load[j] = j, load[j] + 1
                break
    return out


def dense_ip(clients: np.ndarray, servers: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """CommCare's model: x_ij binary for every member × household, loads in [lo, hi]."""
    import pulp

    d = np.hypot(*(clients[:, None, :] - servers[None, :, :]).transpose(2, 0, 1))
    n, m = d.shape
    prob = pulp.LpProblem("commcare", pulp.LpMinimize)
    x = [[pulp.LpVariable(f"x_{i}_{j}", cat="Binary") for j in range(m)] for i in range(n)]
    prob += pulp.lpSum(d[i, j] * x[i][j] for i in range(n) for j in range(m))
    for i in range(n):
        prob += pulp.lpSum(x[i]) == 1
    for j in range(m):
        load = pulp.lpSum(x[i][j] for i in range(n))
        prob += load >= lo
        prob += load <= hi
    prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=600))
    assert pulp.LpStatus[prob.status] == "Optimal", pulp.LpStatus[prob.status]
    sol = np.array([[x[i][j].value() for j in range(m)] for i in range(n)])
    return sol.argmax(axis=1)


def part2(repeats: int, skip_ip: bool) -> None:
    clients, servers = baseline_instance()
    lo, hi = 15, 25
    print(f"\nPart 2: {len(clients)} households, {len(servers)} members, loads {lo}-{hi}")
    problem = PairingProblem.from_arrays(
        clients, servers, server_min=lo, server_max=hi, building_penalty=0, grid_penalty=0
    )

    def cost(assign: np.ndarray) -> tuple[float, int]:
        ok = assign >= 0
        dist = np.hypot(*(clients[ok] - servers[assign[ok]]).T).sum()
        load = np.bincount(assign[ok], minlength=len(servers))
        return float(dist), int(((load > 0) & ((load < lo) | (load > hi))).sum())

    rows = []
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = problem.solve()
        times.append(time.perf_counter() - t)
    rows.append(("engine (min-cost flow)", *cost(result.assignment()), statistics.median(times)))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        g = greedy(clients, servers, hi)
        times.append(time.perf_counter() - t)
    rows.append(("greedy nearest with room", *cost(g), statistics.median(times)))
    if not skip_ip:
        t = time.perf_counter()
        ip = dense_ip(clients, servers, lo, hi)
        rows.append(("dense IP (PuLP/CBC), 1 run", *cost(ip), time.perf_counter() - t))
    print(f"{'method':28} {'cost m':>12} {'loads out of range':>19} {'seconds':>8}")
    for name, c, bad, sec in rows:
        print(f"{name:28} {c:12.1f} {bad:19d} {sec:8.3f}")
    print(f"engine lower bound {result.lower_bound:.1f}, gap {result.gap:.3%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="one instance, e.g. SJC1")
    parser.add_argument("--skip-ip", action="store_true", help="skip the PuLP/CBC baseline")
    parser.add_argument("--part", type=int, choices=[1, 2])
    args = parser.parse_args()
    if args.part in (None, 1):
        part1(args.repeats, args.only)
    if args.part in (None, 2):
        part2(args.repeats, args.skip_ip)


if __name__ == "__main__":
    main()
