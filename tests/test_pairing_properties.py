"""Property test: on random districts every hard rule holds, coverage is the max-flow bound,
the lower bound is below the cost, and with the active set fixed the cost is optimal."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.sparse.csgraph import maximum_flow

from gridsvc.pairing import PairingProblem


def random_problem(seed: int, n: int, m: int) -> PairingProblem:
    rng = np.random.default_rng(seed)
    lo = rng.integers(0, 4, m)
    hi = lo + rng.integers(1, 6, m)
    eligible = rng.random(m) < 0.85
    eligible[rng.integers(m)] = True
    c_comm, s_comm = rng.integers(0, 2, n), rng.integers(0, 2, m)
    cross = bool(rng.random() < 0.3)
    forbidden = (
        {
            (int(c), int(s))
            for c, s in zip(rng.integers(0, n, n // 5), rng.integers(0, m, n // 5), strict=True)
        }
        if n
        else set()
    )
    pins, per = [], np.zeros(m, int)
    for c in rng.permutation(n)[: rng.integers(0, 3)]:
        s = int(rng.integers(m))
        if eligible[s] and per[s] < hi[s] and (int(c), s) not in forbidden:
            pins.append((int(c), s))
            per[s] += 1
    return PairingProblem.from_arrays(
        rng.uniform(0, 300, (n, 2)),
        rng.uniform(0, 300, (m, 2)),
        server_min=lo,
        server_max=hi,
        client_building=rng.integers(-1, 5, n),
        server_building=rng.integers(-1, 5, m),
        client_grid=rng.integers(0, 3, n),
        server_grid=rng.integers(0, 3, m),
        client_community=c_comm,
        server_community=s_comm,
        cross_community=cross,
        server_eligible=eligible,
        pinned=pins or None,
        forbidden=sorted(forbidden) or None,
        max_distance=None if rng.random() < 0.5 else float(rng.uniform(60, 250)),
    )


def allowed_matrix(p: PairingProblem) -> np.ndarray:
    d = np.hypot(*(p.client_xy[:, None, :] - p.server_xy[None, :, :]).transpose(2, 0, 1))
    ok = np.broadcast_to(p.server_eligible, d.shape).copy()
    if not p.cross_community:
        ok &= p.client_community[:, None] == p.server_community[None, :]
    if p.max_distance is not None:
        ok &= d <= p.max_distance
    for c, s in p.forbidden:
        ok[c, s] = False
    return ok


def pair_costs(p: PairingProblem) -> np.ndarray:
    d = np.hypot(*(p.client_xy[:, None, :] - p.server_xy[None, :, :]).transpose(2, 0, 1))
    same_b = (p.client_building[:, None] == p.server_building) & (p.client_building[:, None] >= 0)
    same_g = (p.client_grid[:, None] == p.server_grid) & (p.client_grid[:, None] >= 0)
    return d + np.where(same_b, 0, p.building_penalty) + np.where(same_g, 0, p.grid_penalty)


def max_coverage(p: PairingProblem, ok: np.ndarray) -> int:
    """Max-flow bound: free clients to allowed servers with their room left after pins."""
    n, m = ok.shape
    pins = np.bincount(p.pinned[:, 1], minlength=m) if p.pinned.size else np.zeros(m, int)
    free = np.ones(n, bool)
    free[p.pinned[:, 0]] = False
    src, sink = n + m, n + m + 1
    ci, si = np.nonzero(ok & free[:, None])
    rows = np.concatenate([np.full(n, src), ci, n + np.arange(m)])
    cols = np.concatenate([np.arange(n), n + si, np.full(m, sink)])
    caps = np.concatenate([free.astype(int), np.ones(len(ci), int), p.server_max - pins])
    g = sp.csr_matrix((caps.astype(np.int32), (rows, cols)), shape=(n + m + 2,) * 2)
    return int(maximum_flow(g, src, sink).flow_value) + len(p.pinned)


def fixed_set_optimum(p, ok, cost, active, paired, lower: bool) -> float:
    """LP (integral: a transportation polytope) over every allowed pair to the active servers."""
    n, m = ok.shape
    pins = np.bincount(p.pinned[:, 1], minlength=m) if p.pinned.size else np.zeros(m, int)
    free = np.ones(n, bool)
    free[p.pinned[:, 0]] = False
    ci, si = np.nonzero(ok & free[:, None] & active[None, :])
    if not len(ci):
        return 0.0
    k = len(ci)
    a_client = sp.csr_matrix((np.ones(k), (ci, np.arange(k))), shape=(n, k))
    a_server = sp.csr_matrix((np.ones(k), (si, np.arange(k))), shape=(m, k))
    lo = np.where(active & lower, np.maximum(p.server_min - pins, 0), 0)
    hi = np.where(active, p.server_max - pins, 0)
    a_ub = sp.vstack([a_client, a_server, -a_server, -sp.csr_matrix(np.ones((1, k)))])
    b_ub = np.concatenate([np.ones(n), hi, -lo, [-(paired - len(p.pinned))]])
    res = linprog(cost[ci, si], A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs")
    assert res.status == 0
    return float(res.fun)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(0, 40), m=st.integers(1, 8))
def test_every_hard_rule_holds_on_random_districts(seed, n, m):
    p = random_problem(seed, n, m)
    r = p.solve()
    ok = allowed_matrix(p)
    c, s = r.pair_client, r.pair_server
    pinned = {(int(a), int(b)) for a, b in p.pinned}
    # one server per client, every client accounted for once
    assert len(set(c.tolist())) == len(c)
    assert sorted(c.tolist() + r.unpaired.tolist()) == list(range(n))
    # loads
    load = np.bincount(s, minlength=m)
    assert (load <= p.server_max).all()
    assert (load[~p.server_eligible] == 0).all()
    if r.shortfall == 0:
        assert (load[load > 0] >= p.server_min[load > 0]).all()
    # pins kept; every other pair allowed (scope, max distance, forbids, eligibility)
    got = set(zip(c.tolist(), s.tolist(), strict=True))
    assert pinned <= got
    for a, b in got - pinned:
        assert ok[a, b], (a, b)
    # coverage equals the max-flow bound
    assert r.n_paired == max_coverage(p, ok) == r.coverage_bound
    # bound below cost, and the cost optimal for the active set
    cost = pair_costs(p)
    assert abs(r.cost - cost[c, s].sum()) < 1e-6
    if np.isfinite(r.lower_bound):
        assert r.lower_bound <= r.cost + 1e-6
    if r.shortfall == 0:  # (a shortfall is minimised before cost: another objective)
        best = fixed_set_optimum(p, ok, cost, load > 0, r.n_paired, lower=True)
        free_cost = r.cost - sum(cost[a, b] for a, b in pinned)
        assert free_cost <= best + 0.1 * r.n_paired + 1e-6


def exact_optimum(
    p: PairingProblem, ok: np.ndarray, cost: np.ndarray, paired: int, *, all_open: bool
) -> float | None:
    """The exact optimum (a MIP over every allowed pair) of cost plus churn for ``paired``
    clients, pins kept, servers open or not (``all_open``: every eligible one carries its
    minimum load): what a lower bound must never exceed. ``None`` when infeasible."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n, m = ok.shape
    pins = np.bincount(p.pinned[:, 1], minlength=m) if p.pinned.size else np.zeros(m, int)
    free = np.ones(n, bool)
    free[p.pinned[:, 0]] = False
    ci, si = np.nonzero(ok & free[:, None])
    k = len(ci)
    c = cost[ci, si].copy()
    if p.current is not None:
        c += np.where((p.current[ci] >= 0) & (p.current[ci] != si), p.churn_weight, 0.0)
    lo, hi = np.maximum(p.server_min - pins, 0), p.server_max - pins
    forced = pins > 0
    xs = sp.csr_matrix((np.ones(k), (si, np.arange(k))), shape=(m, k))
    rows = [
        (
            sp.hstack(
                [
                    sp.csr_matrix((np.ones(k), (ci, np.arange(k))), shape=(n, k)),
                    sp.csr_matrix((n, m)),
                ]
            ),
            -np.inf,
            1,
        ),
        (sp.hstack([xs, -sp.diags(hi.astype(float))]), -np.inf, 0),
        (sp.hstack([xs, -sp.diags(lo.astype(float))]), 0, np.inf),
        (
            sp.hstack([sp.csr_matrix(np.ones((1, k))), sp.csr_matrix((1, m))]),
            paired - len(p.pinned),
            paired - len(p.pinned),
        ),
    ]
    cons = [LinearConstraint(a.tocsr(), lb, ub) for a, lb, ub in rows]
    y_lo = (p.server_eligible if all_open else forced).astype(float)
    y_hi = p.server_eligible.astype(float)
    res = milp(
        np.concatenate([c, np.zeros(m)]),
        constraints=cons,
        integrality=np.ones(k + m),
        bounds=Bounds(np.concatenate([np.zeros(k), y_lo]), np.concatenate([np.ones(k), y_hi])),
    )
    if res.status == 2:
        return None
    assert res.status == 0, res.message
    pinned_cost = sum(cost[a, b] for a, b in p.pinned)
    return float(res.fun) + pinned_cost


def groups(p: PairingProblem):
    """The engine's independent parts: communities, unless a setting couples them."""
    n, m = p.n_clients, p.n_servers
    pc = p.pinned[:, 0] if p.pinned.size else np.empty(0, int)
    ps = p.pinned[:, 1] if p.pinned.size else np.empty(0, int)
    coms = np.unique(p.client_community)
    whole = p.cross_community or len(coms) < 2
    if whole or (p.client_community[pc] != p.server_community[ps]).any():
        return [(np.arange(n), np.arange(m))]
    return [
        (np.flatnonzero(p.client_community == c), np.flatnonzero(p.server_community == c))
        for c in coms
    ]


def group_optimum(p: PairingProblem, ok, ci: np.ndarray, si: np.ndarray, paired: int) -> float:
    """Exact optimum of one part: every eligible server active when the clients cover the
    minimum loads (balanced and deficit), unless that leaves a load short; else free."""
    keep_c = np.zeros(p.n_clients, bool)
    keep_c[ci] = True
    keep_s = np.zeros(p.n_servers, bool)
    keep_s[si] = True
    sub_ok = ok & keep_c[:, None] & keep_s[None, :]
    pins = p.pinned[keep_c[p.pinned[:, 0]]] if p.pinned.size else p.pinned
    if not (p.server_eligible & keep_s).any():
        return 0.0  # nobody can serve this part: nothing paired, nothing paid (no pins either)
    sub = p.with_(pinned=pins, server_eligible=p.server_eligible & keep_s)
    cost = pair_costs(p)
    free = len(ci) - len(pins)
    lo = np.maximum(p.server_min - np.bincount(pins[:, 1], minlength=p.n_servers), 0)
    opt = None
    if free >= lo[sub.server_eligible].sum():
        opt = exact_optimum(sub, sub_ok, cost, paired, all_open=True)
    if opt is None:
        opt = exact_optimum(sub, sub_ok, cost, paired, all_open=False)
    assert opt is not None
    return opt


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(1, 30), m=st.integers(1, 7), churn=st.booleans())
def test_lower_bound_never_exceeds_the_exact_optimum(seed, n, m, churn):
    """The reported bound is proven, not hoped: below the exact MIP optimum, plain and when
    rebalancing (objective = cost + churn), and the gap is measured against the result."""
    p = random_problem(seed, n, m)
    if churn:
        rng = np.random.default_rng(seed + 1)
        current = np.where(rng.random(n) < 0.7, rng.integers(0, m, n), -1)
        pinned = dict(p.pinned.tolist())
        current = np.array([pinned.get(i, c) for i, c in enumerate(current)])
        p = p.with_(current=current, churn_weight=float(rng.uniform(50, 400)))
    r = p.solve()
    if r.shortfall or not np.isfinite(r.lower_bound):
        return
    ok = allowed_matrix(p)
    opt = sum(
        group_optimum(p, ok, ci, si, int(np.isin(r.pair_client, ci).sum())) for ci, si in groups(p)
    )
    assert r.lower_bound <= opt + 1e-6 * max(1.0, opt)
    assert opt <= r.objective + 1e-6 * max(1.0, opt)
    if churn:
        c, s = r.pair_client, r.pair_server
        moved = (p.current[c] >= 0) & (p.current[c] != s)
        assert r.churn_cost == pytest.approx(p.churn_weight * moved.sum())
