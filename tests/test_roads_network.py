"""Walking distance over a road network (pure): hand-made roads with known answers, and random
lattices against a brute force on a unit-step graph."""

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from gridsvc.siting import LSCP, MCLP
from gridsvc.siting.network import (
    RoadNetwork,
    distance_matrix,
    nearest_distance,
    snap_points,
    walk_costs,
)


def _line(*xy):
    return shapely.LineString(xy)


# A river along y = 50 with one bridge at x = 400: the banks are the roads y = 0 and y = 100.
RIVER = [_line((0, 0), (1000, 0)), _line((0, 100), (1000, 100)), _line((400, 0), (400, 100))]


def _walk(lines, sources, targets, *, limit=np.inf, snap=200.0):
    net = RoadNetwork.from_lines(lines)
    src = snap_points(net, np.asarray(sources, float), max_distance=snap)
    tgt = snap_points(net, np.asarray(targets, float), max_distance=snap)
    return nearest_distance(net, src, tgt, limit=limit)


def test_river_100_m_apart_straight_is_900_m_on_foot():
    station, household = (0.0, 0.0), (0.0, 100.0)
    assert np.hypot(*np.subtract(station, household)) == 100  # inside 300 m straight
    walked = _walk(RIVER, [station], [household])
    assert walked[0] == pytest.approx(900.0)  # 400 along the bank, the bridge, 400 back
    assert not walked[0] <= 300
    assert np.isinf(_walk(RIVER, [station], [household], limit=500.0)[0])  # beyond the limit


def test_access_walks_count_at_both_ends():
    # 10 m from the road to the station, 5 m from the road to the household
    walked = _walk(RIVER, [(100.0, -10.0)], [(250.0, 5.0)])
    assert walked[0] == pytest.approx(10 + 150 + 5)


def test_a_point_beyond_the_snap_distance_is_off_the_network():
    net = RoadNetwork.from_lines(RIVER)
    snap = snap_points(net, np.array([[500.0, -250.0], [500.0, -150.0]]), max_distance=200)
    assert snap.on_network.tolist() == [False, True]
    assert np.isinf(snap.access[0]) and snap.access[1] == pytest.approx(150)
    walked = _walk(RIVER, [(0.0, 0.0)], [(500.0, -250.0), (500.0, -150.0)])
    assert np.isinf(walked[0]) and walked[1] == pytest.approx(650)
    # an off-network station reaches nobody, even a household next to it
    assert np.isinf(_walk(RIVER, [(500.0, -251.0)], [(500.0, -250.0)])[0])


def test_source_and_target_on_one_segment_meet_along_it():
    road = [_line((0, 0), (1000, 0))]
    walked = _walk(road, [(600.0, 0.0), (100.0, 1.0)], [(640.0, 0.0), (60.0, 0.0)])
    assert walked.tolist() == pytest.approx([40.0, 41.0])


def test_lines_crossing_without_a_shared_vertex_are_junctions():
    cross = [_line((0, 0), (200, 0)), _line((100, -100), (100, 100))]
    net = RoadNetwork.from_lines(cross)
    assert net.n_segments == 4 and net.components == 1
    assert _walk(cross, [(0.0, 0.0)], [(100.0, 100.0)])[0] == pytest.approx(200)


def test_near_junctions_join_and_a_wall_gap_does_not():
    roads = [
        _line((0, 0), (300, 0)),
        _line((0.3, 0.2), (0, 200)),  # starts 0.36 m from the corner: moved onto it
        _line((150, 0.8), (150, 200)),  # a T-junction drawn 0.8 m short: joined
        _line((250, 6), (250, 200)),  # a lane ending 6 m before the road: a wall, not a gate
    ]
    net = RoadNetwork.from_lines(roads)
    assert net.components == 2
    start = [(0.0, 0.0)]
    walked = _walk(roads, start, [(0.0, 200.0), (150.0, 200.0), (250.0, 200.0)])
    assert walked[:2] == pytest.approx([200, 150 + 0.8 + 199.2])
    assert np.isinf(walked[2])


def test_matrix_rows_are_sources_and_keep_a_real_zero():
    net = RoadNetwork.from_lines(RIVER)
    src = snap_points(net, np.array([[0.0, 0.0], [2000.0, 0.0], [900.0, 100.0]]), max_distance=50)
    tgt = snap_points(net, np.array([[0.0, 0.0], [0.0, 100.0]]), max_distance=50)
    m = distance_matrix(net, src, tgt, limit=1001)
    assert m.shape == (3, 2) and m.nnz == 4
    assert m[0, 0] == 0 and m[0, 1] == pytest.approx(900)  # a stored zero: in range
    assert m[1].nnz == 0  # off the network: reaches nothing
    assert m[2, 0] == pytest.approx(1000) and m[2, 1] == pytest.approx(900)


def test_siting_by_walk_differs_from_straight_line():
    """Households on the north bank. Site A, 40 m south of the south bank, is within 150 m of
    all three in a straight line but 900 m + away on foot; site B, 5 m off the north bank, is
    300.04 m straight from the first (out of range) and walks to the other two."""
    households = np.array([[0.0, 100.0], [20.0, 100.0], [40.0, 100.0]])
    sites = np.array([[20.0, -40.0], [300.0, 105.0]])
    straight = MCLP.from_points(households, sites, radius=300, k=1).solve()
    assert straight.sites.tolist() == [0] and straight.covered_count == 3
    net = RoadNetwork.from_lines(RIVER)
    costs = walk_costs(net, households, sites, np.empty((0, 2)), radius=300, snap_m=200)
    assert costs.cost[:, 0].nnz == 0  # A reaches nobody on foot
    assert costs.cost[1, 1] == pytest.approx(280 + 5) and costs.cost[0, 1] == 0  # 305: out
    walked = MCLP.from_cost_matrix(costs.cost, radius=300, k=1).solve()
    assert walked.sites.tolist() == [1] and walked.covered.tolist() == [False, True, True]


def test_existing_stations_cover_by_walk_and_off_network_is_counted():
    households = np.array([[0.0, 100.0], [0.0, 0.0], [600.0, -400.0]])
    net = RoadNetwork.from_lines(RIVER)
    costs = walk_costs(
        net,
        households,
        np.array([[600.0, 0.0], [0.0, -500.0]]),
        np.array([[0.0, 10.0], [5000.0, 5000.0]]),  # the far station is left out entirely
        radius=300,
        snap_m=200,
    )
    assert costs.off_network == {"demand": 1, "candidates": 1, "stations": 0}
    assert np.isfinite(costs.existing[:, 0]).tolist() == [False, True, False]
    res = LSCP.from_cost_matrix(costs.cost, radius=300, existing_cost=costs.existing).solve()
    assert res.covered.tolist() == [False, True, False]  # the first is 900 m + away on foot


# --- random lattices against a brute force -------------------------------------------------------

BLOCK = 10  # metres between lattice lines
SIZE = 6  # blocks per side


def _runs(present: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of present blocks along one lattice line: (first block, last block + 1)."""
    edges = np.diff(np.r_[0, present.astype(int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _lattice(rng: np.random.Generator):
    """Random roads on a lattice as long straight runs (crossing without shared vertices), and
    the unit-step graph of the same roads for the brute force."""
    rows = rng.random((SIZE + 1, SIZE)) < 0.7  # rows[y, x]: block x of the line y = y·BLOCK
    cols = rng.random((SIZE + 1, SIZE)) < 0.7  # cols[x, y]: block y of the line x = x·BLOCK
    lines, unit = [], []
    for k in range(SIZE + 1):
        for lo, hi in _runs(rows[k]):
            lines.append(_line((lo * BLOCK, k * BLOCK), (hi * BLOCK, k * BLOCK)))
            unit += [((x, k * BLOCK), (x + 1, k * BLOCK)) for x in range(lo * BLOCK, hi * BLOCK)]
        for lo, hi in _runs(cols[k]):
            lines.append(_line((k * BLOCK, lo * BLOCK), (k * BLOCK, hi * BLOCK)))
            unit += [((k * BLOCK, y), (k * BLOCK, y + 1)) for y in range(lo * BLOCK, hi * BLOCK)]
    return lines, unit


def _brute(unit, sources, targets, limit):
    """Distances on the graph of unit steps along the roads (every integer point a node)."""
    points = sorted({p for e in unit for p in e})
    index = {p: i for i, p in enumerate(points)}
    i = [index[a] for a, _ in unit]
    j = [index[b] for _, b in unit]
    g = sparse.csr_array((np.ones(len(unit)), (i, j)), shape=(len(points), len(points)))
    rows = [index[tuple(s)] for s in sources]
    d = dijkstra(g, directed=False, indices=rows, limit=limit)
    return d[:, [index[tuple(t)] for t in targets]]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_lattice_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    lines, unit = _lattice(rng)
    if not unit:
        return
    on_road = np.array(sorted({p for e in unit for p in e}))
    picks = rng.choice(len(on_road), size=min(len(on_road), 14), replace=False)
    sources, targets = on_road[picks[:4]], on_road[picks[4:]]
    limit = float(rng.integers(10, 120)) + 0.5  # distances are whole metres: no ties
    net = RoadNetwork.from_lines(lines)
    src = snap_points(net, sources.astype(float), max_distance=1.0)
    tgt = snap_points(net, targets.astype(float), max_distance=1.0)
    assert src.on_network.all() and tgt.on_network.all()
    assert np.allclose(src.access, 0) and np.allclose(tgt.access, 0)
    stored = distance_matrix(net, src, tgt, limit=limit).tocoo()
    got = np.full((len(sources), len(targets)), np.inf)
    got[stored.row, stored.col] = stored.data
    want = _brute(unit, sources, targets, limit)
    finite = np.isfinite(want)
    assert (np.isfinite(got) == finite).all()
    assert np.allclose(got[finite], want[finite])
    nearest = nearest_distance(net, src, tgt, limit=limit)
    assert np.allclose(nearest, want.min(axis=0))
