"""Sparse demand × candidate coverage: who is in range of which site, without dense matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from gridsvc.errors import InputRejected, Reject


@dataclass(frozen=True)
class Coverage:
    """Which demand points each candidate site reaches, and at what distance.

    Attributes
    ----------
    indptr, indices
        CSR structure of the ``n_demand × n_candidate`` coverage relation: row ``i`` lists the
        candidates within range of demand ``i``.
    distance
        Distance (metres, or the cost matrix's unit) of each stored pair, aligned with
        ``indices``; used to credit a newly reached demand to its nearest chosen site.
    n_candidates
        Number of candidate sites (columns).
    base_covered
        Per demand, whether an existing (already open) station reaches it.
    """

    indptr: np.ndarray
    indices: np.ndarray
    distance: np.ndarray
    n_candidates: int
    base_covered: np.ndarray

    @property
    def n_demand(self) -> int:
        """Number of demand points (rows)."""
        return len(self.indptr) - 1

    def matrix(self) -> sparse.csr_array:
        """The 0/1 coverage matrix (float64 ones, so products are weights)."""
        ones = np.ones(len(self.indices))
        shape = (self.n_demand, self.n_candidates)
        return sparse.csr_array((ones, self.indices, self.indptr), shape=shape)

    def reachable(self) -> np.ndarray:
        """Per demand, whether some candidate or existing station reaches it."""
        return (np.diff(self.indptr) > 0) | self.base_covered


def coverage_from_points(
    demand_xy: np.ndarray,
    candidate_xy: np.ndarray,
    radius: float,
    *,
    existing_xy: np.ndarray | None = None,
) -> Coverage:
    """Straight-line coverage of demand points by candidate sites within ``radius`` metres.

    Parameters
    ----------
    demand_xy, candidate_xy
        ``(n, 2)`` projected coordinates in metres.
    radius
        Service distance in metres; a point exactly at ``radius`` is in range.
    existing_xy
        ``(e, 2)`` coordinates of stations already open; their reach is ``base_covered``.
    """
    demand_xy = _xy(demand_xy, "demand_xy")
    candidate_xy = _xy(candidate_xy, "candidate_xy")
    _check_radius(radius)
    n_demand = len(demand_xy)
    if len(candidate_xy):
        pairs = cKDTree(candidate_xy).sparse_distance_matrix(
            cKDTree(demand_xy), radius, output_type="ndarray"
        )
        cand, dem, dist = pairs["i"], pairs["j"], pairs["v"]
    else:
        cand = dem = np.empty(0, dtype=np.intp)
        dist = np.empty(0)
    order = np.lexsort((cand, dem))
    counts = np.bincount(dem, minlength=n_demand)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    base = np.zeros(n_demand, dtype=bool)
    if existing_xy is not None and len(existing_xy):
        existing_xy = _xy(existing_xy, "existing_xy")
        tree = cKDTree(existing_xy)
        near, _ = tree.query(demand_xy, k=1, distance_upper_bound=radius * (1 + 1e-12))
        base = np.isfinite(near)
    return Coverage(indptr, cand[order].astype(np.int32), dist[order], len(candidate_xy), base)


def coverage_from_cost_matrix(
    cost: np.ndarray,
    radius: float,
    *,
    existing: np.ndarray | None = None,
    existing_cost: np.ndarray | None = None,
) -> Coverage:
    """Coverage from a precomputed ``n_demand × n_candidate`` cost (e.g. network distance).

    Parameters
    ----------
    cost
        Dense array or scipy sparse matrix of costs; for a sparse matrix only stored entries count
        (missing means out of range). NaN means unreachable.
    radius
        A pair is in range when ``cost <= radius``.
    existing
        Indices of columns of ``cost`` that are stations already open: they cover for free and
        are never chosen.
    existing_cost
        Alternatively, an ``n_demand × e`` cost matrix to the existing stations.
    """
    _check_radius(radius)
    if sparse.issparse(cost):
        coo = sparse.coo_array(cost)
        keep = coo.data <= radius
        dem, cand, dist = coo.row[keep], coo.col[keep], coo.data[keep]
        shape = coo.shape
    else:
        cost = np.asarray(cost, dtype=float)
        if cost.ndim != 2:
            raise _reject("cost", f"expected a 2-D matrix, got shape {cost.shape}")
        dem, cand = np.nonzero(cost <= radius)
        dist = cost[dem, cand]
        shape = cost.shape
    n_demand, n_candidates = shape
    base = np.zeros(n_demand, dtype=bool)
    if existing is not None and len(existing):
        existing = np.asarray(existing, dtype=np.intp)
        if existing.min() < 0 or existing.max() >= n_candidates:
            raise _reject("existing", f"column index out of range 0..{n_candidates - 1}")
        is_open = np.zeros(n_candidates, dtype=bool)
        is_open[existing] = True
        base[dem[is_open[cand]]] = True
        # Open columns can never be chosen: drop them from the candidate relation.
        keep = ~is_open[cand]
        dem, cand, dist = dem[keep], cand[keep], dist[keep]
    if existing_cost is not None:
        existing_cost = np.asarray(existing_cost, dtype=float)
        if existing_cost.ndim != 2 or existing_cost.shape[0] != n_demand:
            raise _reject("existing_cost", f"expected {n_demand} rows, got {existing_cost.shape}")
        base |= (existing_cost <= radius).any(axis=1)
    order = np.lexsort((cand, dem))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(dem, minlength=n_demand))])
    return Coverage(indptr, cand[order].astype(np.int32), dist[order], n_candidates, base)


def aggregate(cov: Coverage, *, rows: np.ndarray) -> tuple[sparse.csr_array, np.ndarray]:
    """Group the given demand rows into classes with identical candidate sets.

    Parameters
    ----------
    cov
        The coverage relation.
    rows
        Indices of the demand rows to group (e.g. reachable and not yet covered).

    Returns
    -------
    classes
        ``n_class × n_candidate`` 0/1 matrix, one row per distinct candidate set.
    inverse
        For each entry of ``rows``, its class.
    """
    sub = cov.matrix()[rows]
    if sub.shape[0] == 0:
        return sub, np.empty(0, dtype=np.intp)
    # Two random 64-bit keys per candidate; a row's hash is the wrapped sum over its candidates.
    rng = np.random.default_rng(20180)
    keys = rng.integers(0, 2**63, size=(cov.n_candidates, 2), dtype=np.int64).astype(np.uint64)
    row_of = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
    hashes = np.zeros((sub.shape[0], 2), dtype=np.uint64)
    for col in range(2):
        np.add.at(hashes[:, col], row_of, keys[sub.indices, col])
    sizes = np.diff(sub.indptr).astype(np.uint64)
    signature = np.column_stack([hashes, sizes])
    _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    classes = sub[first]
    if (sub - classes[inverse]).count_nonzero():  # a hash collision: fall back to exact keys
        return _aggregate_exact(sub)
    return classes, inverse


def _aggregate_exact(sub: sparse.csr_array) -> tuple[sparse.csr_array, np.ndarray]:
    """Exact grouping by the tuple of candidate indices (only after a hash collision)."""
    seen: dict[bytes, int] = {}
    inverse = np.empty(sub.shape[0], dtype=np.intp)
    first: list[int] = []
    for i in range(sub.shape[0]):
        key = sub.indices[sub.indptr[i] : sub.indptr[i + 1]].tobytes()
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        inverse[i] = seen[key]
    return sub[np.asarray(first)], inverse


def lattice(bounds: tuple[float, float, float, float], spacing: float) -> np.ndarray:
    """Candidate sites on a square lattice over ``(minx, miny, maxx, maxy)`` metres."""
    if not spacing > 0:
        raise _reject("spacing", f"must be > 0, got {spacing!r}")
    minx, miny, maxx, maxy = bounds
    xs = np.arange(minx + spacing / 2, maxx, spacing)
    ys = np.arange(miny + spacing / 2, maxy, spacing)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def _xy(xy: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(xy, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise _reject(name, f"expected an (n, 2) array of x, y metres, got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputRejected(
            f"{name}: {int(bad.sum())} points with missing or infinite coordinates",
            [
                Reject(name, int(i), "xy", "not a finite coordinate")
                for i in np.flatnonzero(bad)[:9]
            ],
        )
    return arr


def _check_radius(radius: float) -> None:
    if not (np.isfinite(radius) and radius >= 0):
        raise _reject("radius", f"must be a finite distance >= 0, got {radius!r}")


def _reject(field: str, reason: str) -> InputRejected:
    return InputRejected(f"siting: {field} {reason}", [Reject("siting", None, field, reason)])
