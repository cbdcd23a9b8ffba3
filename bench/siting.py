"""Benchmark Red Station siting: gridsvc's MCLP against PySAL spopt, and spopt's own SF case.

Run: ``.venv/bin/python bench/siting.py [--repeats 3]`` (needs the bench extra: spopt, pulp).

(a) One 10,000-household, 500-candidate instance (households jittered ±15 m around 400
    buildings, vulnerability weights, 500 m, k = 10), solved by gridsvc and by spopt's
    ``MCLP.from_cost_matrix`` with the same solver (HiGHS through PuLP): equal covered weight
    (both optimal) and the median times; then the same households at their building points.
(b) spopt's San Francisco test case (bench/data/mclp-sf): must leave 21 of 205 tracts
    uncovered (89.756 %).
(c) A city-size instance beyond the exact limits: the greedy-plus-swap fallback, with its bound
    and gap.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gridsvc.siting import MCLP

DATA = Path(__file__).parent / "data" / "mclp-sf"


def instance(
    seed: int = 1,
    households: int = 10_000,
    buildings: int = 400,
    candidates: int = 500,
    side: float = 4000.0,
    jitter: float = 15.0,
):
    """Households around buildings, weights 1 + 2·elderly-alone + 1·children, random candidates."""
    rng = np.random.default_rng(seed)
    bxy = rng.uniform(0, side, (buildings, 2))
    home = rng.integers(0, buildings, households)
    hxy = bxy[home] + (rng.normal(0, jitter, (households, 2)) if jitter else 0.0)
    weights = 1.0 + 2.0 * (rng.random(households) < 0.10) + 1.0 * (rng.random(households) < 0.25)
    return hxy, rng.uniform(0, side, (candidates, 2)), weights


def timed(fn, repeats: int):
    """(median seconds, last result) of ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run_gridsvc(hxy, cxy, w, radius, k):
    res = MCLP.from_points(hxy, cxy, radius=radius, k=k, weights=w).solve()
    assert res.status == "optimal", res.status
    return res


def run_spopt(hxy, cxy, w, radius, k):
    import pulp
    from scipy.spatial.distance import cdist
    from spopt.locate import MCLP as SpoptMCLP

    cost = cdist(hxy, cxy)
    model = SpoptMCLP.from_cost_matrix(cost, w, radius, k)
    model = model.solve(pulp.HiGHS(msg=False))  # raises unless optimal
    chosen = [j for j, var in enumerate(model.fac_vars) if var.value() > 0.5]
    covered = (cost[:, chosen] <= radius).any(axis=1)
    return float(w[covered].sum())


def part_a(repeats: int) -> None:
    radius, k = 500.0, 10
    for label, jitter in (
        ("households jittered around buildings", 15.0),
        ("households at their building points", 0.0),
    ):
        hxy, cxy, w = instance(jitter=jitter)
        t_g, res = timed(lambda: run_gridsvc(hxy, cxy, w, radius, k), repeats)  # noqa: B023
        t_s, cov_s = timed(lambda: run_spopt(hxy, cxy, w, radius, k), repeats)  # noqa: B023
        print(
            f"(a) {len(hxy):,} households × {len(cxy)} candidates, {radius:.0f} m, k={k} "
            f"({label}; {res.n_classes:,} demand classes)"
        )
        print(
            f"    gridsvc MCLP   median {t_g:8.3f} s  covered weight {res.covered_weight:,.1f}"
            f"  status {res.status}"
        )
        print(
            f"    spopt MCLP     median {t_s:8.3f} s  covered weight {cov_s:,.1f}"
            f"  (PuLP + HiGHS, dense cost matrix)"
        )
        same = abs(res.covered_weight - cov_s) < 1e-6
        print(
            f"    equal coverage: {same}; speed-up {t_s / t_g:.1f}×  "
            f"({'PASS' if same and t_s / t_g >= 10 else 'FAIL'})"
        )


def part_b(repeats: int) -> None:
    net = pd.read_csv(
        DATA / "SF_network_distance_candidateStore_16_censusTract_205_new.csv",
        dtype={"DestinationName": str},
    )
    tracts = pd.read_csv(DATA / "SF_demand_205_centroid_uniform_weight.csv", dtype={"NAME": str})
    cost = net.pivot_table(values="distance", index="DestinationName", columns="name")
    weights = tracts.set_index("NAME").loc[cost.index, "POP2000"].to_numpy(float)

    def solve():
        return MCLP.from_cost_matrix(cost.to_numpy(), radius=5000, k=4, weights=weights).solve()

    t, res = timed(solve, repeats)
    uncovered = int((~res.covered).sum())
    share = 100 * res.covered.mean()
    ok = uncovered == 21 and abs(share - 89.756) < 5e-4
    print("(b) spopt SF case: 205 tracts, 16 candidates, network distance, POP2000, k=4, 5,000 m")
    print(
        f"    gridsvc: sites {list(cost.columns[res.sites])}, {uncovered} of 205 tracts uncovered, "
        f"{share:.3f} % covered, status {res.status}, median {t * 1000:.1f} ms "
        f"(published: 21 uncovered, 89.756 %) {'PASS' if ok else 'FAIL'}"
    )


def part_c(repeats: int) -> None:
    hxy, cxy, w = instance(
        seed=7, households=200_000, buildings=8_000, candidates=3_000, side=20_000.0
    )
    t, res = timed(
        lambda: MCLP.from_points(hxy, cxy, radius=500, k=40, weights=w).solve(time_limit=20),
        max(1, repeats // 3),
    )
    print(
        f"(c) {len(hxy):,} households × {len(cxy):,} candidates, 500 m, k=40 "
        f"(beyond exact limits): method {res.method}, status {res.status}, "
        f"objective {res.objective:,.1f}, bound {res.bound:,.1f}, gap {100 * res.gap:.2f} %, "
        f"median {t:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="abc")
    args = parser.parse_args()
    for part in args.parts:
        {"a": part_a, "b": part_b, "c": part_c}[part](args.repeats)


if __name__ == "__main__":
    main()
