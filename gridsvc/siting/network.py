"""Walking distance over a road network: graph from road lines, snapping, bounded shortest paths.

Pure numpy/scipy/shapely on coordinates in metres. :meth:`RoadNetwork.from_lines` nodes the road
lines (junctions where lines share a vertex, where vertices lie within ``tolerance`` of each
other, and where lines cross without a shared vertex) into straight segments weighted by length.
Points (households, buildings, stations, candidate sites) are snapped to the nearest point of the
nearest segment; the straight walk from the point to that foot (``access``) is part of every
distance. Points farther than ``snap_m`` from every road are off the network: they reach nothing
and nothing reaches them (``inf``), which callers report rather than hide.

Shortest paths are :func:`scipy.sparse.csgraph.dijkstra` bounded by ``limit`` from one virtual
node per source; each source's foot splits its segment, so a source and a target on the same
segment meet along it, not via its ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

#: Vertices of different lines closer than this (metres) are one junction.
JUNCTION_TOLERANCE_M = 0.5
#: A dead end within this distance (metres) of another road's side joins it (a T-junction).
DEAD_END_TOLERANCE_M = 1.0
#: Cells held at once when building a matrix (sources × graph nodes, sources × targets).
_CELLS_PER_CHUNK = 20_000_000
#: Snapping: sample points at most this far apart (metres) along every segment, and how many of
#: the nearest samples give a point's candidate segments (see :func:`snap_points`).
_SAMPLE_M = 10.0
_CANDIDATES = 12
_SNAP_CHUNK = 100_000


@dataclass(frozen=True)
class RoadNetwork:
    """Junctions and the straight segments between them, in metres.

    Attributes
    ----------
    nodes
        ``(n, 2)`` junction and vertex coordinates.
    seg_a, seg_b
        End nodes of each segment.
    length
        Length of each segment in metres.
    tree
        Spatial index of the segments (exact nearest segment, for the points the samples do
        not settle).
    samples, sample_seg
        k-d tree of points at most :data:`_SAMPLE_M` apart along every segment (both ends
        included), and the segment of each.
    """

    nodes: np.ndarray
    seg_a: np.ndarray
    seg_b: np.ndarray
    length: np.ndarray
    tree: shapely.STRtree
    samples: cKDTree
    sample_seg: np.ndarray

    @property
    def n_segments(self) -> int:
        """Number of straight segments."""
        return len(self.length)

    @property
    def components(self) -> int:
        """Connected parts of the network (1 when every road reaches every other)."""
        used, pair = np.unique(np.r_[self.seg_a, self.seg_b], return_inverse=True)
        n, m = len(used), self.n_segments
        graph = sparse.coo_array((np.ones(m), (pair[:m], pair[m:])), shape=(n, n))
        return int(connected_components(graph, directed=False)[0]) if n else 0

    @classmethod
    def from_lines(
        cls,
        lines: np.ndarray | list,
        *,
        tolerance: float = JUNCTION_TOLERANCE_M,
        dead_end: float = DEAD_END_TOLERANCE_M,
    ) -> RoadNetwork:
        """Build the network from LineStrings / MultiLineStrings in metres.

        Parameters
        ----------
        lines
            Road geometries (projected, metres); empty and missing ones are skipped.
        tolerance
            Vertices closer than this are merged into one junction before noding.
        dead_end
            A dead end this close to another road joins it there (a T-junction drawn short or
            long, or whose shared point moved a little in projection); 0 turns this off.
        """
        parts = shapely.get_parts(np.asarray(lines, dtype=object))
        parts = parts[shapely.is_geometry(parts) & ~shapely.is_empty(parts)]
        parts = parts[shapely.get_type_id(parts) == 1]
        parts = _merge_close_vertices(parts, tolerance) if len(parts) else parts
        parts = parts[shapely.length(parts) > 0]
        if len(parts) == 0:
            return _empty()
        noded = shapely.get_parts(shapely.node(shapely.multilinestrings(parts)))
        coords, owner = shapely.get_coordinates(noded, return_index=True)
        nodes, node_of = np.unique(np.round(coords, 6), axis=0, return_inverse=True)
        node_of = node_of.ravel()
        same = owner[1:] == owner[:-1]
        a, b = _unique_segments(node_of[:-1][same], node_of[1:][same])
        return _assemble(*_join_dead_ends(nodes, a, b, dead_end))


@dataclass(frozen=True)
class Snap:
    """Where points meet the network.

    ``segment`` is -1 for a point farther than the snap distance from every road (then ``t`` is
    0 and ``access`` is inf); ``t`` is the foot's position along the segment (0 at ``seg_a``,
    1 at ``seg_b``); ``access`` the straight walk from the point to the foot, in metres.
    """

    segment: np.ndarray
    t: np.ndarray
    access: np.ndarray

    @property
    def on_network(self) -> np.ndarray:
        """Per point, whether it is within the snap distance of a road."""
        return self.segment >= 0


def snap_points(net: RoadNetwork, xy: np.ndarray, *, max_distance: float) -> Snap:
    """Snap ``(n, 2)`` points to the nearest point of the nearest segment within ``max_distance``.

    Exact, and fast for millions of points: a segment at distance ``d`` has a sample within
    ``d + s/2`` (``s`` = :data:`_SAMPLE_M`), so among the segments of a point's nearest samples
    the closest is the nearest overall whenever the farthest of those samples lies beyond that
    distance + ``s/2``; the few points where it does not ask the segment index. Equidistant
    segments: the lowest index wins.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    n = len(xy)
    segment = np.full(n, -1, dtype=np.int64)
    t = np.zeros(n)
    access = np.full(n, np.inf)
    if n == 0 or net.n_segments == 0:
        return Snap(segment, t, access)
    for start in range(0, n, _SNAP_CHUNK):
        part = slice(start, min(start + _SNAP_CHUNK, n))
        segment[part], t[part], access[part] = _snap_chunk(net, xy[part], max_distance)
    return Snap(segment, t, access)


def _snap_chunk(
    net: RoadNetwork, xy: np.ndarray, max_distance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`snap_points` for one chunk: segment (-1 off), t, access."""
    k = min(_CANDIDATES, net.samples.n)
    near, idx = net.samples.query(xy, k=k)
    near, idx = near.reshape(len(xy), k), idx.reshape(len(xy), k)
    cand = net.sample_seg[idx]
    flat = cand.ravel()
    rows = np.repeat(np.arange(len(xy)), k)
    along, _, dist = _project(xy[rows], net.nodes[net.seg_a[flat]], net.nodes[net.seg_b[flat]])
    along, dist = along.reshape(cand.shape), dist.reshape(cand.shape)
    nearest = dist == dist.min(axis=1, keepdims=True)
    pick = np.argmin(np.where(nearest, cand, np.iinfo(np.int64).max), axis=1)  # lowest index
    one = np.arange(len(xy))
    seg, along, dist = cand[one, pick], along[one, pick], dist[one, pick]
    settled = near[:, -1] > dist + _SAMPLE_M / 2 if k < net.samples.n else np.ones(len(xy), bool)
    unsure = np.flatnonzero(~settled & (near[:, 0] <= max_distance + _SAMPLE_M / 2))
    if len(unsure):
        seg[unsure], along[unsure], dist[unsure] = _snap_exact(net, xy[unsure], max_distance)
    off = ~(dist <= max_distance)
    return np.where(off, -1, seg), np.where(off, 0.0, along), np.where(off, np.inf, dist)


def _snap_exact(
    net: RoadNetwork, xy: np.ndarray, max_distance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest segment by the segment index (lowest index among equidistant ones)."""
    seg = np.zeros(len(xy), dtype=np.int64)
    along, dist = np.zeros(len(xy)), np.full(len(xy), np.inf)
    (point, hit), _ = net.tree.query_nearest(
        shapely.points(xy), max_distance=max_distance, return_distance=True, all_matches=True
    )
    order = np.lexsort((hit, point))
    point, hit = point[order], hit[order]
    first = np.r_[True, point[1:] != point[:-1]]
    point, hit = point[first], hit[first]
    a, b = net.nodes[net.seg_a[hit]], net.nodes[net.seg_b[hit]]
    seg[point] = hit
    along[point], _, dist[point] = _project(xy[point], a, b)
    return seg, along, dist


def nearest_distance(
    net: RoadNetwork,
    sources: Snap,
    targets: Snap,
    *,
    limit: float,
) -> np.ndarray:
    """Walking distance from each target to its nearest source, ``inf`` beyond ``limit``.

    Parameters
    ----------
    net
        The road network.
    sources, targets
        Snapped points (:func:`snap_points`); off-network ones reach / are reached by nothing.
    limit
        Longest distance of interest in metres (Dijkstra stops there).
    """
    graph, source_nodes, feet = _with_sources(net, sources)
    if len(source_nodes) == 0:
        return np.full(len(targets.segment), np.inf)
    dist = dijkstra(graph, directed=False, indices=source_nodes, limit=limit, min_only=True)
    return _at_targets(net, feet, dist[None, :], targets, limit)[0]


def distance_matrix(
    net: RoadNetwork,
    sources: Snap,
    targets: Snap,
    *,
    limit: float,
) -> sparse.csr_array:
    """Walking distances ``sources × targets`` no longer than ``limit``, as a sparse matrix.

    Only pairs within ``limit`` are stored (a stored 0 is a real distance of 0); the rows of
    off-network sources and the columns of off-network targets are empty. Transpose it for
    :meth:`gridsvc.siting.MCLP.from_cost_matrix`, which takes demand × candidate.
    """
    n_src, n_tgt = len(sources.segment), len(targets.segment)
    graph, source_nodes, feet = _with_sources(net, sources)
    rows_on = np.flatnonzero(sources.on_network)
    chunk = max(1, _CELLS_PER_CHUNK // max(graph.shape[0], n_tgt, 1))
    rows, cols, vals = [], [], []
    for start in range(0, len(rows_on), chunk):
        nodes = source_nodes[start : start + chunk]
        dist = dijkstra(graph, directed=False, indices=nodes, limit=limit)
        at = _at_targets(net, feet, dist, targets, limit)
        r, c = np.nonzero(np.isfinite(at))
        rows.append(rows_on[start + r])
        cols.append(c)
        vals.append(at[r, c])
    if not rows:
        return sparse.csr_array((n_src, n_tgt))
    data = np.concatenate(vals)
    ij = (np.concatenate(rows), np.concatenate(cols))
    return sparse.csr_array((data, ij), shape=(n_src, n_tgt))


# --- internals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Feet:
    """Source feet splitting segments, sorted by ``key = 2·segment + t``, with their node; the
    arrays end with a sentinel (segment -1) that no target matches."""

    key: np.ndarray
    segment: np.ndarray
    t: np.ndarray
    node: np.ndarray


def _empty() -> RoadNetwork:
    none = np.empty(0, dtype=np.int64)
    return _assemble(np.empty((0, 2)), none, none)


def _assemble(nodes: np.ndarray, a: np.ndarray, b: np.ndarray) -> RoadNetwork:
    """The network of segments ``a``–``b`` with its lengths and spatial indexes."""
    length = np.hypot(*(nodes[b] - nodes[a]).T)
    segments = shapely.linestrings(np.stack([nodes[a], nodes[b]], axis=1)) if len(a) else []
    steps = np.maximum(np.ceil(length / _SAMPLE_M).astype(np.int64), 1)
    seg = np.repeat(np.arange(len(a)), steps + 1)
    first = np.repeat(np.cumsum(steps + 1) - (steps + 1), steps + 1)
    t = (np.arange(len(seg)) - first) / np.repeat(steps, steps + 1)
    xy = nodes[a[seg]] + t[:, None] * (nodes[b[seg]] - nodes[a[seg]])
    return RoadNetwork(nodes, a, b, length, shapely.STRtree(segments), cKDTree(xy), seg)


def _merge_close_vertices(parts: np.ndarray, tolerance: float) -> np.ndarray:
    """Move vertices within ``tolerance`` of each other (transitively) onto one position."""
    coords = shapely.get_coordinates(parts)
    unique, inverse = np.unique(coords, axis=0, return_inverse=True)
    if tolerance <= 0:
        return parts
    pairs = cKDTree(unique).query_pairs(tolerance, output_type="ndarray")
    if len(pairs) == 0:
        return parts
    n = len(unique)
    links = sparse.coo_array((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(links, directed=False)
    _, first = np.unique(label, return_index=True)
    moved = unique[first][label][inverse.ravel()]
    return shapely.set_coordinates(parts.copy(), moved)


def _unique_segments(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected segments without repeats or zero-length ones, as (low, high) node pairs."""
    a, b = np.minimum(a, b), np.maximum(a, b)
    keep = a != b
    pairs = np.unique(np.column_stack([a[keep], b[keep]]), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _chains(
    seg_a: np.ndarray,
    seg_b: np.ndarray,
    foot_seg: np.ndarray,
    foot_t: np.ndarray,
    foot_node: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pieces ``a → f1 → … → fk → b`` of segments split at feet (sorted by segment, then t).

    Returns each piece's end nodes, its share of the segment's length and the segment.
    """
    same = foot_seg[1:] == foot_seg[:-1]
    prev_same = np.r_[False, same][: len(foot_seg)]
    last = np.r_[~same, True][: len(foot_seg)]
    i = np.r_[np.where(prev_same, np.roll(foot_node, 1), seg_a[foot_seg]), foot_node[last]]
    j = np.r_[foot_node, seg_b[foot_seg[last]]]
    t0 = np.r_[np.where(prev_same, np.roll(foot_t, 1), 0.0), foot_t[last]]
    t1 = np.r_[foot_t, np.ones(int(last.sum()))]
    return i, j, t1 - t0, np.r_[foot_seg, foot_seg[last]]


def _project(
    xy: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest point of segments ``a``–``b`` to ``xy`` (row-wise): ``t`` in [0, 1], the foot
    and the distance."""
    d = b - a
    dd = np.einsum("ij,ij->i", d, d)
    t = np.einsum("ij,ij->i", xy - a, d) / np.where(dd > 0, dd, 1.0)
    t = np.clip(t, 0.0, 1.0)
    foot = a + t[:, None] * d
    return t, foot, np.hypot(*(xy - foot).T)


def _join_dead_ends(
    nodes: np.ndarray, a: np.ndarray, b: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join each dead end lying within ``tolerance`` of another segment to its nearest point:
    that segment is split there (or its end used) and a short connector added."""
    degree = np.bincount(np.r_[a, b], minlength=len(nodes))
    ends = np.flatnonzero(degree == 1)
    if tolerance <= 0 or len(ends) == 0:
        return nodes, a, b
    tree = shapely.STRtree(shapely.linestrings(np.stack([nodes[a], nodes[b]], axis=1)))
    pt, seg = tree.query(shapely.points(nodes[ends]), predicate="dwithin", distance=tolerance)
    foreign = (a[seg] != ends[pt]) & (b[seg] != ends[pt])
    pt, seg = pt[foreign], seg[foreign]
    if len(pt) == 0:
        return nodes, a, b
    t, _, dist = _project(nodes[ends[pt]], nodes[a[seg]], nodes[b[seg]])
    order = np.lexsort((seg, dist, pt))
    first = order[np.r_[True, pt[order][1:] != pt[order][:-1]]]
    end, seg, t = ends[pt[first]], seg[first], t[first]
    length = np.hypot(*(nodes[b[seg]] - nodes[a[seg]]).T)
    at_a, at_b = t * length <= 1e-6, (1.0 - t) * length <= 1e-6
    inner = ~at_a & ~at_b
    key, foot_of = np.unique(2.0 * seg[inner] + t[inner], return_inverse=True)
    foot_seg = np.floor(key / 2.0).astype(np.int64)
    foot_t = key - 2.0 * foot_seg
    foot_node = len(nodes) + np.arange(len(key))
    pa, pb = nodes[a[foot_seg]], nodes[b[foot_seg]]
    nodes = np.vstack([nodes, pa + foot_t[:, None] * (pb - pa)])
    i, j, _, _ = _chains(a, b, foot_seg, foot_t, foot_node)
    target = np.where(at_a, a[seg], b[seg])
    target[inner] = foot_node[foot_of]
    whole = ~np.isin(np.arange(len(a)), foot_seg)
    a, b = np.r_[a[whole], i, end], np.r_[b[whole], j, target]
    touching = dist[first] <= 1e-6  # the dead end lies on the other road: one node, no connector
    relabel = np.arange(len(nodes))
    relabel[end[touching]] = target[touching]
    return nodes, *_unique_segments(relabel[a], relabel[b])


def _with_sources(net: RoadNetwork, sources: Snap) -> tuple[sparse.csr_array, np.ndarray, _Feet]:
    """The graph with each on-network source as a virtual node hanging off its foot.

    Feet split their segments into chains (a → f1 → … → fk → b); the original segment stays
    (same length, harmless). Returns the graph, the source nodes in source order (on-network
    sources only) and the feet.
    """
    n = len(net.nodes)
    on = np.flatnonzero(sources.on_network)
    seg, t = sources.segment[on], sources.t[on]
    key = 2.0 * seg + t
    feet_key, foot_of = np.unique(key, return_inverse=True)
    foot_seg = np.floor(feet_key / 2.0).astype(np.int64)
    foot_t = feet_key - 2.0 * foot_seg
    foot_node = n + np.arange(len(feet_key))
    source_nodes = n + len(feet_key) + np.arange(len(on))
    i, j, part, piece_seg = _chains(net.seg_a, net.seg_b, foot_seg, foot_t, foot_node)
    i = np.concatenate([net.seg_a, i, source_nodes])
    j = np.concatenate([net.seg_b, j, foot_node[foot_of]])
    w = np.concatenate([net.length, part * net.length[piece_seg], sources.access[on]])
    size = n + len(feet_key) + len(on)
    graph = _min_graph(i, j, w, size)
    feet = _Feet(
        np.r_[feet_key, np.inf], np.r_[foot_seg, -1], np.r_[foot_t, 0.0], np.r_[foot_node, -1]
    )
    return graph, source_nodes, feet


def _min_graph(i: np.ndarray, j: np.ndarray, w: np.ndarray, size: int) -> sparse.csr_array:
    """Undirected graph keeping the shortest of parallel edges (CSR would sum duplicates)."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((w, hi, lo))
    lo, hi, w = lo[order], hi[order], w[order]
    first = np.r_[True, (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])]
    return sparse.csr_array((w[first], (lo[first], hi[first])), shape=(size, size))


def _at_targets(
    net: RoadNetwork, feet: _Feet, dist: np.ndarray, targets: Snap, limit: float
) -> np.ndarray:
    """Distances ``(rows, n_targets)`` from node distances ``dist``: via the nearest split points
    on each side of the target's foot, plus its access walk; inf beyond ``limit`` or off-road."""
    out = np.full((dist.shape[0], len(targets.segment)), np.inf)
    on = np.flatnonzero(targets.on_network)
    if len(on) == 0:
        return out
    seg, t = targets.segment[on], targets.t[on]
    key = 2.0 * seg + t
    # feet.* end with a sentinel (segment -1): index -1 (none below) and len (none above) hit it
    below = np.searchsorted(feet.key[:-1], key, side="right") - 1
    above = np.searchsorted(feet.key[:-1], key, side="left")
    has_below = feet.segment[below] == seg
    has_above = feet.segment[above] == seg
    lo_node = np.where(has_below, feet.node[below], net.seg_a[seg])
    lo_t = np.where(has_below, feet.t[below], 0.0)
    hi_node = np.where(has_above, feet.node[above], net.seg_b[seg])
    hi_t = np.where(has_above, feet.t[above], 1.0)
    length = net.length[seg]
    via_lo = dist[:, lo_node] + (t - lo_t) * length
    via_hi = dist[:, hi_node] + (hi_t - t) * length
    total = np.minimum(via_lo, via_hi) + targets.access[on]
    out[:, on] = np.where(total <= limit, total, np.inf)
    return out


@dataclass(frozen=True)
class WalkCosts:
    """Walked distances of a covering problem, ready for ``from_cost_matrix``.

    Attributes
    ----------
    cost
        ``demand × candidate`` sparse walked distances no longer than the radius.
    existing
        ``(demand, 1)`` walked distance to the nearest existing station (inf beyond the radius),
        for ``existing_cost=``.
    off_network
        Demand points, candidates and existing stations (those near the demand) farther than the
        snap distance from every road: they reach, and are reached by, nothing.
    """

    cost: sparse.csr_array
    existing: np.ndarray
    off_network: dict[str, int]


def walk_costs(
    net: RoadNetwork,
    demand_xy: np.ndarray,
    candidate_xy: np.ndarray,
    existing_xy: np.ndarray,
    *,
    radius: float,
    snap_m: float,
) -> WalkCosts:
    """Walked ``demand × candidate`` and demand → existing-station distances within ``radius``.

    Existing stations farther than ``radius + snap_m`` (straight) from the demand's bounding
    box cannot reach it and are left out (also of the off-network count).
    """
    demand_xy = np.asarray(demand_xy, dtype=float).reshape(-1, 2)
    existing_xy = np.asarray(existing_xy, dtype=float).reshape(-1, 2)
    if len(demand_xy) and len(existing_xy):
        lo = demand_xy.min(axis=0) - (radius + snap_m)
        hi = demand_xy.max(axis=0) + (radius + snap_m)
        existing_xy = existing_xy[((existing_xy >= lo) & (existing_xy <= hi)).all(axis=1)]
    else:
        existing_xy = np.empty((0, 2))
    demand = snap_points(net, demand_xy, max_distance=snap_m)
    cand = snap_points(net, candidate_xy, max_distance=snap_m)
    existing = snap_points(net, existing_xy, max_distance=snap_m)
    cost = distance_matrix(net, cand, demand, limit=radius).T.tocsr()
    base = nearest_distance(net, existing, demand, limit=radius)
    off = {
        "demand": int((~demand.on_network).sum()),
        "candidates": int((~cand.on_network).sum()),
        "stations": int((~existing.on_network).sum()),
    }
    return WalkCosts(cost, base[:, None], off)
