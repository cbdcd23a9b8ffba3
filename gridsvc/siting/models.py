"""Maximal covering (MCLP) and set covering (LSCP) location models with a frozen result."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from gridsvc.errors import InputRejected, Reject, SolverFailed
from gridsvc.siting import solvers
from gridsvc.siting.coverage import (
    Coverage,
    aggregate,
    coverage_from_cost_matrix,
    coverage_from_points,
)

#: Exact MIP up to this many candidates and this many demand classes (after aggregation).
EXACT_MAX_CANDIDATES = 1_000
EXACT_MAX_DEMAND = 20_000


@dataclass(frozen=True)
class SitingResult:
    """The answer of :meth:`MCLP.solve` or :meth:`LSCP.solve`.

    Attributes
    ----------
    problem
        ``"mclp"`` or ``"lscp"``.
    sites
        Chosen candidate indices, most newly reached weight first.
    new_weight, new_count
        Per chosen site, the weight and the number of demand units (households) it newly reaches;
        a unit reached by several new sites is credited to the nearest.
    covered
        Per input demand point, whether any open or chosen station reaches it.
    total_weight, base_weight, covered_weight, reachable_weight
        All weight; weight already in range of existing stations; weight in range after opening
        the chosen sites; weight in range of some candidate or existing station.
    total_count, covered_count
        The same in demand units (households), unweighted.
    objective
        MCLP: newly reached weight. LSCP: number of sites.
    bound, gap
        Proven bound on the optimum of ``objective`` (upper for MCLP, lower for LSCP) and the
        relative gap ``|bound − objective| / max(|objective|, |bound|)``; 0 when proven optimal.
    status
        ``optimal``, ``time_limit`` (incumbent with gap) or ``heuristic`` (greedy with gap).
    method
        ``mip``, ``greedy-swap``, ``greedy`` or ``trivial``.
    n_classes
        Demand classes (distinct coverage sets) the solver saw.
    timings
        Seconds per phase: ``coverage``, ``aggregate``, ``solve``, ``total``.
    """

    problem: str
    sites: np.ndarray
    new_weight: np.ndarray
    new_count: np.ndarray
    covered: np.ndarray
    total_weight: float
    base_weight: float
    covered_weight: float
    reachable_weight: float
    total_count: int
    covered_count: int
    objective: float
    bound: float
    gap: float
    status: str
    method: str
    n_classes: int
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def covered_share(self) -> float:
        """Covered weight / total weight (1.0 when there is no demand)."""
        return self.covered_weight / self.total_weight if self.total_weight else 1.0

    def site_table(self) -> pd.DataFrame:
        """One row per chosen site: ``site``, ``new_weight``, ``new_count``."""
        return pd.DataFrame(
            {"site": self.sites, "new_weight": self.new_weight, "new_count": self.new_count}
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (sites as plain lists; no per-demand arrays)."""
        return {
            "problem": self.problem,
            "sites": [
                {"site": int(s), "new_weight": float(w), "new_count": int(c)}
                for s, w, c in zip(self.sites, self.new_weight, self.new_count, strict=True)
            ],
            "total_weight": self.total_weight,
            "base_weight": self.base_weight,
            "covered_weight": self.covered_weight,
            "reachable_weight": self.reachable_weight,
            "covered_share": self.covered_share,
            "total_count": self.total_count,
            "covered_count": self.covered_count,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "status": self.status,
            "method": self.method,
            "n_classes": self.n_classes,
            "timings": dict(self.timings),
        }


@dataclass(frozen=True)
class _CoveringModel:
    """Shared data of the two models: coverage, per-demand weights and household counts."""

    coverage: Coverage
    weights: np.ndarray
    counts: np.ndarray
    build_seconds: float = 0.0

    def _prepare(self) -> tuple[Any, np.ndarray, float]:
        """Classes of the open rows (reachable, not yet covered), their weights, and the time."""
        t0 = time.perf_counter()
        cov = self.coverage
        rows = np.flatnonzero((np.diff(cov.indptr) > 0) & ~cov.base_covered)
        classes, inverse = aggregate(cov, rows=rows)
        weight = np.bincount(inverse, weights=self.weights[rows], minlength=classes.shape[0])
        return classes, weight, time.perf_counter() - t0

    def _result(
        self,
        problem: str,
        sol: solvers.Solution,
        n_classes: int,
        timings: dict[str, float],
    ) -> SitingResult:
        cov = self.coverage
        sites, new_w, new_c, covered = _credit(cov, sol.chosen, self.weights, self.counts)
        order = np.lexsort((sites, -new_w))
        scale = max(abs(sol.objective), abs(sol.bound), 1e-12)
        gap = 0.0 if sol.status == "optimal" else abs(sol.bound - sol.objective) / scale
        return SitingResult(
            problem=problem,
            sites=sites[order],
            new_weight=new_w[order],
            new_count=new_c[order],
            covered=covered,
            total_weight=float(self.weights.sum()),
            base_weight=float(self.weights[cov.base_covered].sum()),
            covered_weight=float(self.weights[covered].sum()),
            reachable_weight=float(self.weights[cov.reachable()].sum()),
            total_count=int(self.counts.sum()),
            covered_count=int(self.counts[covered].sum()),
            objective=float(sol.objective),
            bound=float(sol.bound),
            gap=float(gap),
            status=sol.status,
            method=sol.method,
            n_classes=n_classes,
            timings=MappingProxyType(timings),
        )


@dataclass(frozen=True)
class MCLP(_CoveringModel):
    """Maximal covering location: open ``k`` new sites to reach the most weight not yet in range.

    Existing stations count as open: demand they reach is already covered and only the rest is
    maximised. Build with :meth:`from_points`, :meth:`from_cost_matrix` or
    :meth:`from_geodataframe`, then call :meth:`solve`.

    Examples
    --------
    >>> import numpy as np
    >>> demand = np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0]])
    >>> sites = np.array([[0.0, 100.0], [2000.0, 100.0]])
    >>> res = MCLP.from_points(demand, sites, radius=300, k=1, weights=[1, 1, 5]).solve()
    >>> res.sites.tolist(), res.covered_weight
    ([1], 5.0)
    """

    k: int = 1

    @classmethod
    def from_coverage(
        cls, coverage: Coverage, *, k: int, weights: Any = None, counts: Any = None
    ) -> MCLP:
        """Build from a :class:`Coverage` relation."""
        w, c = _weights(coverage.n_demand, weights, counts)
        return cls(coverage, w, c, k=_check_k(k))

    @classmethod
    def from_points(
        cls,
        demand_xy: Any,
        candidate_xy: Any,
        *,
        radius: float,
        k: int,
        weights: Any = None,
        counts: Any = None,
        existing_xy: Any = None,
    ) -> MCLP:
        """Straight-line model from projected coordinates in metres.

        Parameters
        ----------
        demand_xy
            ``(n, 2)`` households (or buildings, with ``counts`` households each).
        candidate_xy
            ``(c, 2)`` candidate sites.
        radius
            Walking range in metres.
        k
            New sites to open.
        weights
            Per demand point; default 1 each (or ``counts``).
        counts
            Households per demand point; default 1 each.
        existing_xy
            Stations already open.
        """
        t0 = time.perf_counter()
        cov = coverage_from_points(demand_xy, candidate_xy, radius, existing_xy=existing_xy)
        w, c = _weights(cov.n_demand, weights, counts)
        return cls(cov, w, c, time.perf_counter() - t0, k=_check_k(k))

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        *,
        radius: float,
        k: int,
        weights: Any = None,
        counts: Any = None,
        existing: Any = None,
        existing_cost: Any = None,
    ) -> MCLP:
        """Model from a demand × candidate cost matrix (network distances, travel times).

        ``existing`` are column indices that are already open (they cover for free and do not
        count against ``k``); ``existing_cost`` is a demand × existing cost matrix instead.
        """
        t0 = time.perf_counter()
        cov = coverage_from_cost_matrix(
            cost, radius, existing=existing, existing_cost=existing_cost
        )
        w, c = _weights(cov.n_demand, weights, counts)
        return cls(cov, w, c, time.perf_counter() - t0, k=_check_k(k))

    @classmethod
    def from_geodataframe(
        cls,
        demand: Any,
        candidates: Any,
        *,
        radius: float,
        k: int,
        weight_col: str | None = None,
        count_col: str | None = None,
        existing: Any = None,
    ) -> MCLP:
        """Model from point GeoDataFrames; geographic CRSs are projected to their UTM zone."""
        d_xy, c_xy, e_xy = _project(demand, candidates, existing)
        return cls.from_points(
            d_xy,
            c_xy,
            radius=radius,
            k=k,
            weights=None if weight_col is None else demand[weight_col].to_numpy(float),
            counts=None if count_col is None else demand[count_col].to_numpy(),
            existing_xy=e_xy,
        )

    def solve(
        self, *, method: str = "auto", time_limit: float = 60.0, rel_gap: float = 0.0
    ) -> SitingResult:
        """Solve; raise :class:`SolverFailed` when no solution or bound could be proven.

        Parameters
        ----------
        method
            ``auto`` (exact MIP up to :data:`EXACT_MAX_CANDIDATES` candidates ×
            :data:`EXACT_MAX_DEMAND` demand classes, greedy-plus-swap beyond), ``mip`` or
            ``greedy``.
        time_limit
            Seconds for the MIP (or the swap phase); on timeout the best of the incumbent and
            the greedy-swap solution is returned with its bound and gap.
        rel_gap
            Relative MIP gap at which HiGHS may stop (0: prove optimality).
        """
        t0 = time.perf_counter()
        classes, class_weight, t_agg = self._prepare()
        use_mip = _use_mip(method, classes.shape)
        ts = time.perf_counter()
        if classes.shape[0] == 0 or self.k == 0:
            sol = solvers.Solution(np.empty(0, dtype=np.intp), 0.0, 0.0, "optimal", "trivial")
        elif use_mip:
            sol = solvers.mclp_mip(
                classes, class_weight, self.k, time_limit=time_limit, rel_gap=rel_gap
            )
            if sol.status != "optimal":
                sol = _better_mclp(sol, classes, class_weight, self.k, time_limit)
        else:
            sol = solvers.mclp_greedy_swap(classes, class_weight, self.k, time_limit=time_limit)
            lp = solvers.lp_bound(classes, class_weight, self.k, time_limit=time_limit)
            if lp is not None and lp < sol.bound:
                sol = solvers.Solution(
                    sol.chosen, sol.objective, max(lp, sol.objective), sol.status, sol.method
                )
            if sol.bound - sol.objective <= 1e-9 * max(1.0, sol.bound):
                sol = solvers.Solution(sol.chosen, sol.objective, sol.bound, "optimal", sol.method)
        _check(sol, "MCLP")
        timings = _timings(self.build_seconds, t_agg, time.perf_counter() - ts, t0)
        return self._result("mclp", sol, classes.shape[0], timings)


@dataclass(frozen=True)
class LSCP(_CoveringModel):
    """Set covering location: the fewest new sites that reach every reachable demand point.

    Demand no candidate or existing station can reach is left out (and stays uncovered in the
    result); demand existing stations already reach needs no new site.
    """

    @classmethod
    def from_coverage(cls, coverage: Coverage, *, weights: Any = None, counts: Any = None) -> LSCP:
        """Build from a :class:`Coverage` relation."""
        w, c = _weights(coverage.n_demand, weights, counts)
        return cls(coverage, w, c)

    @classmethod
    def from_points(
        cls,
        demand_xy: Any,
        candidate_xy: Any,
        *,
        radius: float,
        weights: Any = None,
        counts: Any = None,
        existing_xy: Any = None,
    ) -> LSCP:
        """Straight-line model from coordinates in metres (see :meth:`MCLP.from_points`)."""
        t0 = time.perf_counter()
        cov = coverage_from_points(demand_xy, candidate_xy, radius, existing_xy=existing_xy)
        w, c = _weights(cov.n_demand, weights, counts)
        return cls(cov, w, c, time.perf_counter() - t0)

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        *,
        radius: float,
        weights: Any = None,
        counts: Any = None,
        existing: Any = None,
        existing_cost: Any = None,
    ) -> LSCP:
        """Model from a demand × candidate cost matrix (see :meth:`MCLP.from_cost_matrix`)."""
        t0 = time.perf_counter()
        cov = coverage_from_cost_matrix(
            cost, radius, existing=existing, existing_cost=existing_cost
        )
        w, c = _weights(cov.n_demand, weights, counts)
        return cls(cov, w, c, time.perf_counter() - t0)

    @classmethod
    def from_geodataframe(
        cls,
        demand: Any,
        candidates: Any,
        *,
        radius: float,
        weight_col: str | None = None,
        count_col: str | None = None,
        existing: Any = None,
    ) -> LSCP:
        """Model from point GeoDataFrames; geographic CRSs are projected to their UTM zone."""
        d_xy, c_xy, e_xy = _project(demand, candidates, existing)
        return cls.from_points(
            d_xy,
            c_xy,
            radius=radius,
            weights=None if weight_col is None else demand[weight_col].to_numpy(float),
            counts=None if count_col is None else demand[count_col].to_numpy(),
            existing_xy=e_xy,
        )

    def solve(
        self, *, method: str = "auto", time_limit: float = 60.0, rel_gap: float = 0.0
    ) -> SitingResult:
        """Solve; raise :class:`SolverFailed` when no cover was found (see :meth:`MCLP.solve`)."""
        t0 = time.perf_counter()
        classes, _, t_agg = self._prepare()
        ts = time.perf_counter()
        if classes.shape[0] == 0:
            sol = solvers.Solution(np.empty(0, dtype=np.intp), 0.0, 0.0, "optimal", "trivial")
        elif _use_mip(method, classes.shape):
            sol = solvers.lscp_mip(classes, time_limit=time_limit, rel_gap=rel_gap)
            if sol.status != "optimal":
                sol = _better_lscp(sol, classes)
        else:
            sol = solvers.lscp_greedy(classes)
            lp = solvers.lp_bound(classes, np.empty(0), None, time_limit=time_limit)
            if lp is not None and lp > sol.bound:
                sol = solvers.Solution(
                    sol.chosen, sol.objective, min(lp, sol.objective), sol.status, sol.method
                )
            if sol.bound >= sol.objective:
                sol = solvers.Solution(sol.chosen, sol.objective, sol.bound, "optimal", sol.method)
        _check(sol, "LSCP")
        timings = _timings(self.build_seconds, t_agg, time.perf_counter() - ts, t0)
        return self._result("lscp", sol, classes.shape[0], timings)


def _better_mclp(
    sol: solvers.Solution, classes: Any, weight: np.ndarray, k: int, time_limit: float
) -> solvers.Solution:
    """After a MIP timeout: the better of its incumbent and greedy-swap, with the MIP's bound."""
    alt = solvers.mclp_greedy_swap(classes, weight, k, time_limit=min(time_limit, 30.0))
    bound = min(sol.bound, alt.bound) if sol.status == "time_limit" else alt.bound
    best = alt if alt.objective > sol.objective or sol.status != "time_limit" else sol
    status = "time_limit" if sol.status == "time_limit" else alt.status
    return solvers.Solution(
        best.chosen, best.objective, max(bound, best.objective), status, best.method
    )


def _better_lscp(sol: solvers.Solution, classes: Any) -> solvers.Solution:
    """After a MIP timeout: the smaller of its incumbent and the greedy cover, best bound."""
    alt = solvers.lscp_greedy(classes)
    if sol.status != "time_limit":
        return alt
    best = alt if alt.objective < sol.objective else sol
    bound = min(max(sol.bound, alt.bound), best.objective)
    return solvers.Solution(best.chosen, best.objective, bound, "time_limit", best.method)


def _credit(
    cov: Coverage, chosen: np.ndarray, weights: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Covered mask, and newly reached weight/count per chosen site (nearest chosen site wins)."""
    chosen = np.asarray(chosen, dtype=np.intp)
    is_chosen = np.zeros(cov.n_candidates, dtype=bool)
    is_chosen[chosen] = True
    row = np.repeat(np.arange(cov.n_demand), np.diff(cov.indptr))
    hit = is_chosen[cov.indices]
    row, col, dist = row[hit], cov.indices[hit], cov.distance[hit]
    order = np.lexsort((col, dist, row))
    row, col = row[order], col[order]
    first = np.ones(len(row), dtype=bool)
    first[1:] = row[1:] != row[:-1]
    row, col = row[first], col[first]
    new = ~cov.base_covered[row]
    slot = np.searchsorted(np.sort(chosen), col[new])
    sites = np.sort(chosen)
    new_w = np.bincount(slot, weights=weights[row[new]], minlength=len(sites))
    new_c = np.bincount(slot, weights=counts[row[new]], minlength=len(sites)).astype(np.int64)
    covered = cov.base_covered.copy()
    covered[row] = True
    return sites, new_w, new_c, covered


def _weights(n: int, weights: Any, counts: Any) -> tuple[np.ndarray, np.ndarray]:
    c = np.ones(n, dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
    w = c.astype(float) if weights is None else np.asarray(weights, dtype=float)
    for name, arr in (("weights", w), ("counts", c)):
        if arr.shape != (n,):
            raise _reject(name, f"expected {n} values (one per demand), got shape {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
        if len(bad):
            raise InputRejected(
                f"siting: {len(bad)} {name} negative or not finite",
                [
                    Reject("siting", int(i), name, "must be finite and >= 0", str(arr[i]))
                    for i in bad[:20]
                ],
            )
    return w, c


def _check_k(k: int) -> int:
    if int(k) != k or k < 0:
        raise _reject("k", f"must be a whole number >= 0, got {k!r}")
    return int(k)


def _use_mip(method: str, shape: tuple[int, int]) -> bool:
    if method not in {"auto", "mip", "greedy"}:
        raise _reject("method", f"expected auto, mip or greedy, got {method!r}")
    small = shape[1] <= EXACT_MAX_CANDIDATES and shape[0] <= EXACT_MAX_DEMAND
    return method == "mip" or (method == "auto" and small)


def _check(sol: solvers.Solution, name: str) -> None:
    if sol.status in {"infeasible", "failed"}:
        raise SolverFailed(f"{name}: HiGHS returned {sol.status}; no sites were chosen")


def _timings(build: float, agg: float, solve: float, t0: float) -> dict[str, float]:
    total = build + time.perf_counter() - t0
    return {"coverage": build, "aggregate": agg, "solve": solve, "total": total}


def _project(demand: Any, candidates: Any, existing: Any) -> tuple[np.ndarray, ...]:
    """Point coordinates in metres; geographic frames go to the demand's UTM zone."""
    crs = demand.crs
    if crs is not None and crs.is_geographic:
        crs = demand.estimate_utm_crs()
    frames = [demand, candidates] + ([existing] if existing is not None else [])
    out = []
    for name, gdf in zip(("demand", "candidates", "existing"), frames, strict=False):
        if gdf.crs != demand.crs:
            raise _reject(name, f"CRS {gdf.crs} differs from the demand's {demand.crs}")
        geom = gdf.geometry.to_crs(crs) if crs != demand.crs else gdf.geometry
        if not (geom.geom_type == "Point").all():
            raise _reject(name, "expected point geometries (use representative points)")
        out.append(np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()]))
    return out[0], out[1], (out[2] if existing is not None else None)


def _reject(field: str, reason: str) -> InputRejected:
    return InputRejected(f"siting: {field} {reason}", [Reject("siting", None, field, reason)])
