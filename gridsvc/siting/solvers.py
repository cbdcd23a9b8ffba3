"""Covering solvers on aggregated classes: exact MIP (HiGHS via scipy) and greedy-plus-swap."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

_EPS = 1e-9


@dataclass(frozen=True)
class Solution:
    """Chosen columns of an aggregated covering problem, with the proof status.

    ``objective`` is the newly covered weight (MCLP) or the number of sites (LSCP); ``bound`` is
    an upper (MCLP) or lower (LSCP) bound on the optimum of the same quantity.
    """

    chosen: np.ndarray
    objective: float
    bound: float
    status: str
    method: str


def mclp_mip(
    classes: sparse.csr_array, weight: np.ndarray, k: int, *, time_limit: float, rel_gap: float
) -> Solution:
    """Exact MCLP: max Σ w_i y_i, y_i ≤ Σ_j a_ij x_j, Σ x_j ≤ k, x binary, y ∈ [0, 1].

    ``y`` need not be integer: for integer ``x`` the optimum sets ``y_i = min(1, Σ a_ij x_j)``.
    """
    m, n = classes.shape
    c = np.concatenate([np.zeros(n), -weight])
    link = sparse.hstack([-classes, sparse.eye_array(m, format="csr")], format="csr")
    budget = sparse.csr_array(np.concatenate([np.ones(n), np.zeros(m)])[None, :])
    constraints = [
        optimize.LinearConstraint(link, -np.inf, 0.0),
        optimize.LinearConstraint(budget, 0.0, float(k)),
    ]
    integrality = np.concatenate([np.ones(n), np.zeros(m)])
    res = optimize.milp(
        c,
        constraints=constraints,
        integrality=integrality,
        bounds=optimize.Bounds(0.0, 1.0),
        options={"time_limit": time_limit, "mip_rel_gap": rel_gap, "presolve": True},
    )
    if res.x is None:
        return Solution(np.empty(0, dtype=np.intp), 0.0, float(weight.sum()), _status(res), "mip")
    chosen = np.flatnonzero(res.x[:n] > 0.5)
    objective = covered_weight(classes, weight, chosen)
    bound = -float(res.mip_dual_bound) if res.mip_dual_bound is not None else float(weight.sum())
    return Solution(chosen, objective, max(bound, objective), _status(res), "mip")


def lscp_mip(classes: sparse.csr_array, *, time_limit: float, rel_gap: float) -> Solution:
    """Exact LSCP: min Σ x_j subject to Σ_j a_ij x_j ≥ 1 for every class, x binary."""
    n = classes.shape[1]
    res = optimize.milp(
        np.ones(n),
        constraints=[optimize.LinearConstraint(classes, 1.0, np.inf)],
        integrality=np.ones(n),
        bounds=optimize.Bounds(0.0, 1.0),
        options={"time_limit": time_limit, "mip_rel_gap": rel_gap, "presolve": True},
    )
    if res.x is None:
        return Solution(np.empty(0, dtype=np.intp), np.inf, 0.0, _status(res), "mip")
    chosen = np.flatnonzero(res.x > 0.5)
    bound = float(np.ceil(res.mip_dual_bound - 1e-6)) if res.mip_dual_bound is not None else 0.0
    return Solution(chosen, float(len(chosen)), min(bound, len(chosen)), _status(res), "mip")


def mclp_greedy_swap(
    classes: sparse.csr_array, weight: np.ndarray, k: int, *, time_limit: float
) -> Solution:
    """Greedy MCLP, improved by best-improvement 1-swaps until none helps or time runs out.

    The bound is the least of: all reachable weight, the sum of the ``k`` best single-site
    gains, and greedy / (1 − (1 − 1/k)^k) (Nemhauser, Wolsey & Fisher 1978).
    """
    start = time.perf_counter()
    cols = classes.T.tocsr()
    chosen = _greedy_mclp(cols, weight, k)
    greedy = covered_weight(classes, weight, chosen)
    chosen = _swap(classes, cols, weight, chosen, deadline=start + time_limit)
    objective = covered_weight(classes, weight, chosen)
    single = np.sort(cols @ weight)[::-1][:k].sum()
    ratio = 1 - (1 - 1 / k) ** k if k else 1.0
    bound = min(float(weight.sum()), float(single), greedy / ratio if greedy else 0.0)
    return Solution(chosen, objective, max(bound, objective), "heuristic", "greedy-swap")


def lscp_greedy(classes: sparse.csr_array) -> Solution:
    """Greedy set cover with redundant sites removed; bound greedy / H(largest set)."""
    cols = classes.T.tocsr()
    m = classes.shape[0]
    uncovered = np.ones(m)
    chosen: list[int] = []
    while uncovered.any():
        j = int(np.argmax(cols @ uncovered))
        chosen.append(j)
        uncovered[cols.indices[cols.indptr[j] : cols.indptr[j + 1]]] = 0
    picked = np.asarray(chosen, dtype=np.intp)
    count = classes[:, picked].sum(axis=1)
    keep = np.ones(len(picked), dtype=bool)
    for pos in range(len(picked) - 1, -1, -1):  # drop sites whose classes others still cover
        rows = cols.indices[cols.indptr[picked[pos]] : cols.indptr[picked[pos] + 1]]
        if (count[rows] >= 2).all():
            keep[pos] = False
            count[rows] -= 1
    picked = np.sort(picked[keep])
    largest = int(np.diff(cols.indptr).max()) if m else 1
    harmonic = float(np.sum(1.0 / np.arange(1, largest + 1)))
    bound = float(np.ceil(len(picked) / harmonic - 1e-9)) if m else 0.0
    return Solution(picked, float(len(picked)), bound, "heuristic", "greedy")


def lp_bound(
    classes: sparse.csr_array, weight: np.ndarray, k: int | None, *, time_limit: float
) -> float | None:
    """LP-relaxation bound (MCLP upper when ``k`` given, LSCP lower otherwise); None on timeout."""
    m, n = classes.shape
    opts = {"time_limit": time_limit}
    if k is None:
        res = optimize.linprog(
            np.ones(n), A_ub=-classes, b_ub=-np.ones(m), bounds=(0, 1), method="highs", options=opts
        )
        return float(np.ceil(res.fun - 1e-6)) if res.status == 0 else None
    link = sparse.hstack([-classes, sparse.eye_array(m, format="csr")], format="csr")
    budget = sparse.csr_array(np.concatenate([np.ones(n), np.zeros(m)])[None, :])
    res = optimize.linprog(
        np.concatenate([np.zeros(n), -weight]),
        A_ub=sparse.vstack([link, budget], format="csr"),
        b_ub=np.concatenate([np.zeros(m), [k]]),
        bounds=(0, 1),
        method="highs",
        options=opts,
    )
    return -float(res.fun) if res.status == 0 else None


def covered_weight(classes: sparse.csr_array, weight: np.ndarray, chosen: np.ndarray) -> float:
    """Weight of the classes reached by at least one chosen column."""
    if len(chosen) == 0:
        return 0.0
    hit = np.asarray(classes[:, chosen].sum(axis=1)).ravel() > 0
    return float(weight[hit].sum())


def _greedy_mclp(cols: sparse.csr_array, weight: np.ndarray, k: int) -> np.ndarray:
    remaining = weight.astype(float).copy()
    chosen: list[int] = []
    for _ in range(k):
        gain = cols @ remaining
        j = int(np.argmax(gain))
        if gain[j] <= _EPS:
            break
        chosen.append(j)
        remaining[cols.indices[cols.indptr[j] : cols.indptr[j + 1]]] = 0.0
    return np.asarray(chosen, dtype=np.intp)


def _swap(
    classes: sparse.csr_array,
    cols: sparse.csr_array,
    weight: np.ndarray,
    chosen: np.ndarray,
    *,
    deadline: float,
) -> np.ndarray:
    """Best-improvement 1-swap local search: replace one chosen site by one unchosen site."""
    chosen = chosen.copy()
    n = cols.shape[0]
    count = _cover_count(cols, chosen, classes.shape[0])
    while time.perf_counter() < deadline and len(chosen) and len(chosen) < n:
        once = np.where(count == 1, weight, 0.0)
        gain_add = cols @ np.where(count == 0, weight, 0.0)
        best, move = _EPS * max(1.0, float(weight.sum())), None
        for pos, s in enumerate(chosen):
            rows = cols.indices[cols.indptr[s] : cols.indptr[s + 1]]
            only_s = np.zeros_like(weight)
            only_s[rows] = once[rows]
            delta = gain_add + cols @ only_s - only_s.sum()
            delta[chosen] = -np.inf
            j = int(np.argmax(delta))
            if delta[j] > best:
                best, move = float(delta[j]), (pos, j)
        if move is None:
            break
        pos, j = move
        out = chosen[pos]
        count[cols.indices[cols.indptr[out] : cols.indptr[out + 1]]] -= 1
        count[cols.indices[cols.indptr[j] : cols.indptr[j + 1]]] += 1
        chosen[pos] = j
    return np.sort(chosen)


def _cover_count(cols: sparse.csr_array, chosen: np.ndarray, m: int) -> np.ndarray:
    count = np.zeros(m, dtype=np.int64)
    for s in chosen:
        count[cols.indices[cols.indptr[s] : cols.indptr[s + 1]]] += 1
    return count


def _status(res: optimize.OptimizeResult) -> str:
    """Map scipy.milp status to ours: optimal, time_limit (with incumbent), infeasible, failed."""
    if res.status == 0:
        return "optimal"
    if res.status == 1 and res.x is not None:
        return "time_limit"
    if res.status == 2:
        return "infeasible"
    return "failed"
