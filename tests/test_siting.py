"""Pure tests of Red Station siting (MCLP, LSCP) against brute force and spopt's published case."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from gridsvc.errors import InputRejected
from gridsvc.siting import LSCP, MCLP, VulnerabilityWeights, coverage_from_points, lattice
from gridsvc.siting.coverage import _aggregate_exact, aggregate

SF = Path(__file__).parent / "data" / "mclp-sf"


def _instance(seed: int, n_demand: int = 40, n_cand: int = 9, n_exist: int = 1):
    rng = np.random.default_rng(seed)
    demand = rng.uniform(0, 2000, size=(n_demand, 2))
    cand = rng.uniform(0, 2000, size=(n_cand, 2))
    exist = rng.uniform(0, 2000, size=(n_exist, 2))
    weights = rng.integers(1, 6, size=n_demand).astype(float)
    return demand, cand, exist, weights


def _brute_mclp(demand, cand, exist, weights, radius, k):
    d = np.linalg.norm(demand[:, None, :] - cand[None, :, :], axis=2) <= radius
    base = (np.linalg.norm(demand[:, None, :] - exist[None, :, :], axis=2) <= radius).any(axis=1)
    best = 0.0
    for combo in itertools.combinations(range(len(cand)), min(k, len(cand))):
        hit = base | d[:, list(combo)].any(axis=1)
        best = max(best, weights[hit].sum())
    return best


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_mclp_equals_brute_force(seed, k):
    demand, cand, exist, weights = _instance(seed)
    model = MCLP.from_points(demand, cand, radius=450, k=k, weights=weights, existing_xy=exist)
    res = model.solve()
    assert res.status == "optimal" and res.gap == 0.0
    assert res.covered_weight == pytest.approx(_brute_mclp(demand, cand, exist, weights, 450, k))
    assert len(res.sites) <= k
    # The credit per site adds up to what was newly reached, and the mask agrees.
    assert res.new_weight.sum() == pytest.approx(res.covered_weight - res.base_weight)
    assert weights[res.covered].sum() == pytest.approx(res.covered_weight)


@pytest.mark.parametrize("seed", range(12))
def test_greedy_swap_is_bounded(seed):
    demand, cand, exist, weights = _instance(seed, n_demand=60, n_cand=10)
    opt = _brute_mclp(demand, cand, exist, weights, 400, 3)
    res = MCLP.from_points(demand, cand, radius=400, k=3, weights=weights, existing_xy=exist).solve(
        method="greedy"
    )
    assert res.method == "greedy-swap"
    assert res.covered_weight <= opt + 1e-9
    assert res.base_weight + res.bound >= opt - 1e-6  # the bound is a true upper bound
    assert 0.0 <= res.gap < 1.0


def _brute_lscp(demand, cand, exist, radius):
    d = np.linalg.norm(demand[:, None, :] - cand[None, :, :], axis=2) <= radius
    base = (np.linalg.norm(demand[:, None, :] - exist[None, :, :], axis=2) <= radius).any(axis=1)
    need = d.any(axis=1) & ~base
    for size in range(len(cand) + 1):
        for combo in itertools.combinations(range(len(cand)), size):
            if d[need][:, list(combo)].any(axis=1).all() or not need.any():
                return size
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("method", ["mip", "greedy"])
def test_lscp_against_brute_force(seed, method):
    demand, cand, exist, _ = _instance(seed, n_cand=10)
    res = LSCP.from_points(demand, cand, radius=500, existing_xy=exist).solve(method=method)
    opt = _brute_lscp(demand, cand, exist, 500)
    reachable = res.reachable_weight
    assert res.covered_weight == reachable  # everyone reachable is reached
    if method == "mip":
        assert res.objective == opt and res.status == "optimal"
    else:
        assert res.objective >= opt and res.bound <= opt


def test_spopt_san_francisco_case():
    net = pd.read_csv(
        SF / "SF_network_distance_candidateStore_16_censusTract_205_new.csv",
        dtype={"DestinationName": str},
    )
    tracts = pd.read_csv(SF / "SF_demand_205_centroid_uniform_weight.csv", dtype={"NAME": str})
    cost = net.pivot_table(values="distance", index="DestinationName", columns="name")
    tracts = tracts.set_index("NAME").loc[cost.index]
    res = MCLP.from_cost_matrix(
        cost.to_numpy(), radius=5000, k=4, weights=tracts["POP2000"].to_numpy()
    ).solve()
    assert res.status == "optimal"
    assert int((~res.covered).sum()) == 21
    assert res.covered.mean() * 100 == pytest.approx(89.75609756097561)


def test_cost_matrix_existing_columns_and_sparse_input():
    cost = np.array([[100.0, 900, 50], [800, 100, 900], [900, 900, 100], [100, 100, 900]])
    res = MCLP.from_cost_matrix(cost, radius=200, k=1, existing=[2]).solve()
    # column 2 is open: rows 0 and 2 are covered already; column 1 adds rows 1 and 3.
    assert res.base_weight == 2 and res.sites.tolist() == [1] and res.covered.all()
    res_sparse = MCLP.from_cost_matrix(
        sparse.csr_array(cost), radius=200, k=1, existing=[2]
    ).solve()
    assert res_sparse.sites.tolist() == [1]
    assert LSCP.from_cost_matrix(cost, radius=200).solve().objective == 2


def test_nearest_site_gets_the_credit():
    demand = np.array([[0.0, 0.0], [100.0, 0.0], [400.0, 0.0]])
    cand = np.array([[0.0, 10.0], [390.0, 0.0]])
    res = MCLP.from_points(demand, cand, radius=300, k=2).solve()
    table = res.site_table().set_index("site")
    assert table.loc[0, "new_count"] == 2 and table.loc[1, "new_count"] == 1


def test_aggregation_merges_identical_sets_exactly():
    rng = np.random.default_rng(3)
    demand = np.repeat(rng.uniform(0, 3000, size=(50, 2)), 20, axis=0)  # 20 households a building
    cov = coverage_from_points(demand, rng.uniform(0, 3000, size=(30, 2)), 600)
    rows = np.flatnonzero(np.diff(cov.indptr) > 0)
    classes, inverse = aggregate(cov, rows=rows)
    exact, exact_inverse = _aggregate_exact(cov.matrix()[rows])
    assert classes.shape[0] == exact.shape[0] <= 50
    assert (classes[inverse] != cov.matrix()[rows]).nnz == 0
    assert len(np.unique(exact_inverse)) == exact.shape[0]


def test_geodataframe_in_wgs84_is_projected():
    gpd = pytest.importorskip("geopandas")
    demand = gpd.GeoDataFrame(
        {"w": [1.0, 3.0]},
        geometry=gpd.points_from_xy([102.700, 102.720], [25.040, 25.040]),
        crs=4326,
    )
    cand = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy([102.7025, 102.7175], [25.040, 25.040]), crs=4326
    )
    res = MCLP.from_geodataframe(demand, cand, radius=300, k=1, weight_col="w").solve()
    assert res.sites.tolist() == [1] and res.covered_weight == 3.0


def test_nothing_to_do_is_trivially_optimal():
    res = MCLP.from_points(np.zeros((3, 2)), np.empty((0, 2)), radius=300, k=2).solve()
    assert res.status == "optimal" and res.covered_weight == 0 and len(res.sites) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"demand_xy": np.zeros((2, 3))}, "demand_xy"),
        ({"demand_xy": np.array([[0.0, np.nan]])}, "demand_xy"),
        ({"radius": -1.0}, "radius"),
        ({"k": -1}, "k"),
        ({"weights": [1.0, -2.0]}, "weights"),
        ({"weights": [1.0]}, "weights"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(kwargs, field):
    args = {"demand_xy": np.zeros((2, 2)), "candidate_xy": np.zeros((1, 2)), "radius": 10.0, "k": 1}
    args.update(kwargs)
    demand = args.pop("demand_xy")
    cand = args.pop("candidate_xy")
    with pytest.raises(InputRejected) as err:
        MCLP.from_points(demand, cand, **args)
    assert field in err.value.message and err.value.rejects[0].field in {field, "xy"}


def test_vulnerability_weights():
    scheme = VulnerabilityWeights.parse("elderly_alone=3, children=0.5")
    w = scheme.of({"elderly_alone": [1, 0, 1], "children": [0, 2, 0], "disabled": [0, 0, 1]}, 3)
    assert w.tolist() == [4.0, 2.0, 6.0]
    with pytest.raises(InputRejected, match="weights"):
        VulnerabilityWeights.parse("pets=2")
    with pytest.raises(InputRejected, match="not a number"):
        VulnerabilityWeights.parse("children=x")


def test_lattice_covers_the_box():
    pts = lattice((0, 0, 1000, 500), 250)
    assert pts.shape == (8, 2) and pts.min() == 125 and pts[:, 0].max() == 875
