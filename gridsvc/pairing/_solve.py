"""Solve a pairing problem: coverage, active-set search, Lagrangian bound, explanation."""

from __future__ import annotations

from dataclasses import replace
from time import perf_counter
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order
from scipy.spatial import cKDTree

from gridsvc.pairing import result as R
from gridsvc.pairing._arcs import (
    Instance,
    all_allowed,
    candidate_arcs,
    merge_clients,
    relaxation_arcs,
)
from gridsvc.pairing._bound import (
    build_relaxation,
    evaluate,
    greedy_open,
    outside_cost,
    server_values,
    subgradient,
)
from gridsvc.pairing._flow import Flow, solve_flow, units_on
from gridsvc.pairing._parts import building_bound
from gridsvc.pairing._price import price_and_resolve
from gridsvc.pairing._start import building_start
from gridsvc.pairing.problem import time_budget

if TYPE_CHECKING:
    from gridsvc.pairing.problem import PairingProblem

LARGE_NODES = 5_000
"""Above this many client nodes the relaxation's arcs are each node's nearest servers (not
every server of its building)."""
BOUND_SHARE = 0.15
"""Share of the time limit the building decomposition bound may take (it stops early when
its price steps stall)."""
BOUND_FLOOR_S = 0.2
"""Least seconds the building bound gets (half the time limit when that is less)."""


def solve_problem(
    problem: PairingProblem,
    *,
    gap_tolerance: float,
    time_limit: float | None,
    k_nearest: int,
    split: bool,
    kicks: int = 20,
    certify_seconds: float = 2.0,
) -> R.PairingResult:
    """Solve ``problem`` whole, or community by community when nothing couples them."""
    opts = {
        "gap_tolerance": gap_tolerance,
        "time_limit": time_limit,
        "k_nearest": k_nearest,
        "kicks": kicks,
        "certify_seconds": certify_seconds,
    }
    if split and _splittable(problem):
        return _solve_split(problem, **opts)
    return _solve_one(problem, **opts)


def _splittable(p: PairingProblem) -> bool:
    if p.max_active is not None or p.cross_community or (p.server_community < 0).any():
        return False
    if len(np.unique(p.client_community)) < 2:
        return False
    pc, ps = p.pinned.T if p.pinned.size else (np.empty(0, int), np.empty(0, int))
    return bool((p.client_community[pc] == p.server_community[ps]).all())


def _key(flow: Flow, inst: Instance) -> tuple[int, int, float]:
    return (int(flow.unpaired.sum()), int(flow.shortfall.sum()), flow.total_cost)


class _Search:
    """Min-cost flows for candidate active sets, keeping the best by (unpaired, shortfall, cost)."""

    def __init__(self, inst: Instance, *, k: int, even: bool, max_active: int | None) -> None:
        self.inst, self.k, self.even, self.max_active = inst, k, even, max_active
        self.free = replace(inst, lo=np.zeros_like(inst.lo))
        self.batch = 0.5
        self.window = 12
        self.best: tuple[np.ndarray, Flow] | None = None
        self.seen: set[bytes] = set()
        self.flows = 0
        self._arcs: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def arcs(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate arcs to ``active`` (the last few sets' arcs are kept)."""
        key = active.tobytes()
        if key not in self._arcs:
            if len(self._arcs) >= 4:
                self._arcs.pop(next(iter(self._arcs)))
            on = np.flatnonzero(active)
            if self.inst.n_nodes > LARGE_NODES:  # nearest servers, not a tower's every one
                self._arcs[key] = relaxation_arcs(self.inst, on, k=self.k, own=16)[:3]
            else:
                self._arcs[key] = candidate_arcs(self.inst, on, k=self.k)
        return self._arcs[key]

    def flow(self, active: np.ndarray, *, free: bool = False) -> Flow:
        """Optimal flow to ``active`` over its candidate arcs (``free``: no minimum loads)."""
        node, srv, _ = self.arcs(active)
        self.flows += 1
        if free:
            return solve_flow(self.free, active, node, srv, even=False)
        flow = solve_flow(self.inst, active, node, srv, even=self.even)
        fits = self.max_active is None or int(active.sum()) <= self.max_active
        if fits and (self.best is None or _key(flow, self.inst) < _key(self.best[1], self.inst)):
            self.best = (active.copy(), flow)
        return flow

    def fill(
        self, active: np.ndarray, *, unpaired: int, rounds: int = 4
    ) -> tuple[np.ndarray, Flow]:
        """Open the nearest closed server of each unpaired client until at most ``unpaired``
        clients stay unpaired (or ``rounds`` rounds); return the set and its flow."""
        inst = self.inst
        flow = self.flow(active)
        for _ in range(rounds):
            off = np.flatnonzero(~active & inst.eligible)
            if int(flow.unpaired.sum()) <= unpaired or not off.size:
                break
            _, j = cKDTree(inst.s_xy[off]).query(inst.xy[np.flatnonzero(flow.unpaired)], k=1)
            active = active.copy()
            active[off[np.unique(j)]] = True
            flow = self.flow(active)
        return active, flow

    def drop(
        self, active: np.ndarray, *, unpaired: int, flow: Flow | None = None
    ) -> tuple[np.ndarray, Flow]:
        """Close servers batch by batch until every active one reaches its minimum load.

        The minimum-load flow says how many to close (its shortfall); a free flow (no minimum
        loads, so loads show where clients really are) says which: those whose clients lose
        least by moving to their next nearest server.
        """
        active = active.copy()
        keep = self.inst.forced.copy()
        flow = flow if flow is not None else self.flow(active)
        unpaired = max(unpaired, int(flow.unpaired.sum()))  # closing must not pair fewer
        mean_lo = max(float(np.mean(self.inst.lo[self.inst.eligible])), 1.0)
        free = None
        while True:
            over = 0 if self.max_active is None else int(active.sum()) - self.max_active
            short = int(flow.shortfall.sum())
            if over <= 0 and short == 0:
                return active, flow
            short_at = active & ~keep & (flow.shortfall > 0)
            pool = np.flatnonzero(short_at if short_at.any() and over <= 0 else active & ~keep)
            if not pool.size:
                return active, flow
            q = max(1, int(self.batch * short / mean_lo), (over + 1) // 2)
            if free is None:  # the same set's free flow serves every retry
                free = self.flow(active, free=True)
            close = self._pick_closures(active, free, pool, min(q, len(pool)))
            trial = active.copy()
            trial[close] = False
            nxt = self.flow(trial)
            if int(nxt.unpaired.sum()) > unpaired:  # keep the closed servers they came from
                lost = np.isin(free.node, np.flatnonzero(nxt.unpaired))
                culprits = np.intersect1d(close, free.srv[lost])
                keep[culprits if culprits.size else close[:1]] = True
                continue
            active, flow, free = trial, nxt, None

    def _regret(self, active: np.ndarray, flow: Flow) -> tuple[np.ndarray, np.ndarray]:
        """Cost each server's clients would add moving to their next nearest active server,
        and that fallback server per flow arc."""
        inst = self.inst
        act = np.flatnonzero(active & (flow.load < inst.hi))  # fallbacks with room
        regret = np.zeros(inst.m)
        if len(act) < 2 or not len(flow.node):
            return regret, flow.srv
        _, j = cKDTree(inst.s_xy[act]).query(inst.xy[flow.node], k=2)
        alt = np.where(act[j[:, 0]] == flow.srv, act[j[:, 1]], act[j[:, 0]])
        c_alt, _ = inst.cost(flow.node, alt)
        np.add.at(regret, flow.srv, flow.units * (c_alt - flow.cost))
        return regret, alt

    def _pick_closures(self, active: np.ndarray, flow: Flow, pool: np.ndarray, q: int):
        """Up to ``q`` servers of ``pool`` whose clients lose least by moving to their next
        nearest active server, no two of them each other's fallback."""
        regret, alt = self._regret(active, flow)
        order = pool[np.argsort(regret[pool], kind="stable")]
        chosen: list[int] = []
        blocked = np.zeros(self.inst.m, dtype=bool)
        for s in order:
            if blocked[s]:
                continue
            chosen.append(int(s))
            if len(chosen) >= q:
                break
            blocked[alt[flow.srv == s]] = True
            blocked[flow.srv[alt == s]] = True
        return np.array(chosen, dtype=np.int64)

    def _window(self, active: np.ndarray, flow: Flow, trial: np.ndarray, centres: np.ndarray):
        """Re-solve only the clients of the servers around ``centres`` under ``trial``.

        Returns the cost change and the new flow (everything outside the window kept), or
        ``None`` when the window cannot keep every client paired within the loads.
        """
        inst = self.inst
        act = np.flatnonzero(trial)
        if not act.size:
            return None
        k = min(self.window, len(act))
        _, near = cKDTree(inst.s_xy[act]).query(inst.s_xy[centres], k=k)
        w_new = np.unique(act[np.atleast_1d(near).ravel()])
        w_old = np.union1d(w_new[active[w_new]], centres[active[centres]])
        inside = np.isin(flow.srv, w_old)
        sn, inv = np.unique(flow.node[inside], return_inverse=True)
        weight = np.bincount(inv, weights=flow.units[inside]).astype(np.int64)
        fkeys = inst.forbidden
        if fkeys.size:
            fn, fs = fkeys // inst.m, fkeys % inst.m
            pos = np.searchsorted(sn, fn)
            hit = (pos < len(sn)) & (sn[np.minimum(pos, len(sn) - 1)] == fn)
            fkeys = np.sort(pos[hit] * inst.m + fs[hit])
        sub = replace(
            inst,
            xy=inst.xy[sn],
            weight=weight,
            building=inst.building[sn],
            grid=inst.grid[sn],
            community=inst.community[sn],
            current=inst.current[sn],
            cost_weight=inst.cost_weight[sn],
            forbidden=fkeys,
        )
        mask = np.zeros(inst.m, dtype=bool)
        mask[w_new] = True
        node, srv, _ = candidate_arcs(sub, w_new, k=self.k)
        self.flows += 1
        f = solve_flow(sub, mask, node, srv, even=False)
        if f.unpaired.any() or f.shortfall.any():
            return None
        delta = f.total_cost - float(flow.units[inside] @ flow.cost[inside])
        out = Flow(
            node=np.concatenate([flow.node[~inside], sn[f.node]]),
            srv=np.concatenate([flow.srv[~inside], f.srv]),
            units=np.concatenate([flow.units[~inside], f.units]),
            cost=np.concatenate([flow.cost[~inside], f.cost]),
            load=flow.load
            - np.bincount(flow.srv[inside], flow.units[inside], inst.m).astype(np.int64)
            + f.load,
            shortfall=flow.shortfall,
            unpaired=flow.unpaired,
        )
        return delta, out

    def local(
        self,
        rel,
        *,
        deadline: float,
        start: tuple[np.ndarray, Flow] | None = None,
        opens: int = 6,
        resolve_every: int = 20,
    ) -> None:
        """Swap, open and close servers around the best set while any move improves it.

        Opening candidates are inactive servers that would serve clients cheaper than they
        pay now (Lagrangian value at the current pair costs); each is tried alone and in
        exchange for one of its nearest active servers, least regret first; then closing the
        least-regret servers alone. Moves are priced by re-solving a window of nearby servers
        and their clients; every ``resolve_every`` moves the whole flow is re-solved.
        """
        start = start if start is not None else self.best
        if start is None or start[1].shortfall.any():
            return
        inst = self.inst
        active, flow = start[0].copy(), start[1]
        moves = 0
        while perf_counter() < deadline:
            u = np.zeros(inst.n_nodes)
            np.maximum.at(u, flow.node, flow.cost)
            value, _, _ = server_values(rel, u, inst.weight, generic=False)
            rows = np.flatnonzero(~active[rel.servers] & (value < 0))
            cand = rel.servers[rows[np.argsort(value[rows])]][:opens]
            regret, _ = self._regret(active, flow)
            act = np.flatnonzero(active & ~inst.forced)
            trials = []
            if act.size:
                tree = cKDTree(inst.s_xy[act])
                for j in cand:
                    _, near = tree.query(inst.s_xy[j], k=min(3, len(act)))
                    near = act[np.atleast_1d(near)]
                    trials += [(j, c) for c in [-1, *near[np.argsort(regret[near])]]]
                trials += [(-1, c) for c in act[np.argsort(regret[act])][:opens]]
            moved = False
            for j, c in trials:
                if self.max_active is not None and c < 0 and active.sum() >= self.max_active:
                    continue
                if (j >= 0 and active[j]) or (c >= 0 and not active[c]):
                    continue  # an earlier move of this round changed it
                trial = active.copy()
                if j >= 0:
                    trial[j] = True
                if c >= 0:
                    trial[c] = False
                key = trial.tobytes()
                if key in self.seen:
                    continue
                self.seen.add(key)
                got = self._window(active, flow, trial, np.array([x for x in (j, c) if x >= 0]))
                if got is not None and got[0] < -1e-6:
                    # keep going through the round's other trials: each is priced on the
                    # current flow in its own window, so the round's global work (values,
                    # regrets) is paid once for every move it finds
                    active, flow, moved = trial, got[1], True
                    moves += 1
                if perf_counter() > deadline:
                    break
            if moved and moves < resolve_every:
                continue
            moves = 0
            flow = self.flow(active)  # the whole flow again (recorded when best)
            if not moved:
                return

    def perturb(
        self, rel, *, bound: float, gap_tolerance: float, deadline: float, patience: int = 20
    ) -> None:
        """Iterated local search: kick the best set (swap a few servers at random), descend
        again, keep the best; stop at the gap tolerance, the deadline or ``patience`` kicks
        without improvement."""
        rng = np.random.default_rng(0)
        inst = self.inst
        stale = 0
        while self.best is not None and perf_counter() < deadline and stale < patience:
            active, flow = self.best
            cost = flow.total_cost
            if cost - bound <= gap_tolerance * abs(cost):
                return
            on = np.flatnonzero(active & ~inst.forced)
            off = np.flatnonzero(~active & inst.eligible)
            r = int(min(rng.integers(1, 4), on.size, off.size))
            if r == 0:
                return
            trial = active.copy()
            trial[rng.choice(on, r, replace=False)] = False
            trial[rng.choice(off, r, replace=False)] = True
            self.seen.add(trial.tobytes())
            state = (trial, self.flow(trial))
            if state[1].shortfall.any():
                state = self.drop(trial, unpaired=int(flow.unpaired.sum()), flow=state[1])
            self.local(rel, deadline=deadline, start=state)
            stale = 0 if self.best[1].total_cost < cost - 1e-9 else stale + 1

    def try_open(self, servers: np.ndarray, *, unpaired: int) -> float:
        """Evaluate the servers a Lagrangian subproblem opened; return the best cost so far."""
        active = np.zeros(self.inst.m, dtype=bool)
        active[servers] = True
        active |= self.inst.forced
        key = active.tobytes()
        if key not in self.seen:
            self.seen.add(key)
            self.drop(active, unpaired=unpaired)
        return self.best[1].total_cost if self.best else np.inf


def _certify(inst: Instance, active: np.ndarray, flow: Flow, search: _Search) -> Flow:
    """Widen arcs until no allowed pair outside them could pair one more client.

    Nodes reachable from unpaired ones in the residual graph may only have allowed pairs to
    servers also reached (all full); any other allowed pair is added and the flow re-solved.
    """
    node, srv, _ = search.arcs(active)
    for _ in range(8):
        if not flow.unpaired.any():
            return flow
        n = inst.n_nodes
        cap = np.minimum(inst.weight[node], inst.hi[srv])
        used = units_on(flow, node, srv, inst.m)
        fwd = used < cap
        bwd = used > 0
        src = np.concatenate(
            [node[fwd], n + srv[bwd], np.full(np.count_nonzero(flow.unpaired), n + inst.m)]
        )
        dst = np.concatenate([n + srv[fwd], node[bwd], np.flatnonzero(flow.unpaired)])
        g = csr_matrix((np.ones(len(src)), (src, dst)), shape=(n + inst.m + 1,) * 2)
        reached = breadth_first_order(g, n + inst.m, directed=True, return_predecessors=False)
        z = reached[reached < n]
        r_srv = np.zeros(inst.m, dtype=bool)
        r_srv[reached[(reached >= n) & (reached < n + inst.m)] - n] = True
        others = np.flatnonzero(active & ~r_srv)
        add_n, add_s = all_allowed(inst, z, others)
        if not add_n.size:
            return flow
        keys = np.union1d(node * inst.m + srv, add_n * inst.m + add_s)
        node, srv = keys // inst.m, keys % inst.m
        flow = solve_flow(inst, active, node, srv, even=search.even)
        search.flows += 1
    return flow


def _instance(p: PairingProblem) -> tuple[Instance, np.ndarray]:
    n, m = p.n_clients, p.n_servers
    pin_c, pin_s = (p.pinned[:, 0], p.pinned[:, 1]) if p.pinned.size else (np.empty(0, int),) * 2
    pins = np.bincount(pin_s, minlength=m)
    free = np.ones(n, dtype=bool)
    free[pin_c] = False
    fidx = np.flatnonzero(free)
    single = np.zeros(n, dtype=bool)
    single[p.forbidden[:, 0]] = True
    if p.client_churn is not None:  # a client with its own churn is a node of its own
        single |= p.client_churn > 0
    current = p.current if p.current is not None else np.full(n, -1, dtype=np.int64)
    cweight = np.ones(n) if p.client_weight is None else p.client_weight
    node_of, first = merge_clients(
        np.ascontiguousarray(p.client_xy[fidx]),
        p.client_building[fidx],
        p.client_grid[fidx],
        p.client_community[fidx],
        current[fidx],
        single[fidx],
        cweight[fidx],
    )
    weight = np.bincount(node_of, minlength=len(first)).astype(np.int64)
    cnode = np.full(n, -1, dtype=np.int64)
    cnode[fidx] = node_of
    fc, fs = p.forbidden[:, 0], p.forbidden[:, 1]
    fkeep = cnode[fc] >= 0
    sel = fidx[first]
    inst = Instance(
        xy=p.client_xy[sel],
        weight=weight,
        building=p.client_building[sel],
        grid=p.client_grid[sel],
        community=p.client_community[sel],
        current=current[sel],
        cost_weight=cweight[sel],
        members=fidx[np.argsort(node_of, kind="stable")],
        member_start=np.concatenate([[0], np.cumsum(weight)]),
        s_xy=p.server_xy,
        s_building=p.server_building,
        s_grid=p.server_grid,
        s_community=p.server_community,
        lo=np.maximum(p.server_min - pins, 0),
        hi=p.server_max - pins,
        eligible=p.server_eligible.copy(),
        forced=(pins > 0) & p.server_eligible,
        forbidden=np.unique(cnode[fc[fkeep]] * m + fs[fkeep]),
        max_distance=p.max_distance,
        cross_community=p.cross_community,
        building_penalty=p.building_penalty,
        grid_penalty=p.grid_penalty,
        churn_weight=_node_churn(p, sel),
    )
    return inst, pins


def _node_churn(p: PairingProblem, sel: np.ndarray) -> float | np.ndarray:
    """The churn of each node: the problem's weight, plus the client's own when it has one."""
    if p.current is None:
        return 0.0
    if p.client_churn is None:
        return p.churn_weight
    return p.churn_weight + p.client_churn[sel]


def _solve_one(
    p: PairingProblem,
    *,
    gap_tolerance: float,
    time_limit: float | None,
    k_nearest: int,
    kicks: int,
    certify_seconds: float,
) -> R.PairingResult:
    t0 = perf_counter()
    time_limit = time_budget(p.n_clients) if time_limit is None else float(time_limit)
    timings: dict[str, float] = {"time_limit": time_limit}
    inst, pins = _instance(p)
    timings["prepare"] = perf_counter() - t0
    elig = inst.eligible
    units = int(inst.weight.sum())
    sum_lo, sum_hi = int(inst.lo[elig].sum()), int(inst.hi[elig].sum())
    limit = p.max_active
    selecting = units < sum_lo or (limit is not None and limit < int(elig.sum()))
    case = "deficit" if units > sum_hi else ("surplus" if selecting else "balanced")
    search = _Search(inst, k=k_nearest, even=p.even_loads, max_active=limit)
    if units == 0 or not elig.any():
        flow = solve_flow(inst, elig, np.empty(0, np.int64), np.empty(0, np.int64))
        return _result(p, inst, pins, flow, flow.n_paired, np.nan, case, timings, t0)

    t = perf_counter()
    start = elig if p.current is None else _rebalance_start(inst, p)
    reserve = min(0.5, 0.3 * time_limit)  # for the final bound, pricing, certificate, result
    deadline = t0 + time_limit - reserve
    lazy: dict[str, Flow] = {}

    def all_flow() -> Flow:  # every eligible server active (solved when first needed)
        if "flow" not in lazy:
            lazy["flow"] = _certify(inst, elig, search.flow(elig), search)
        return lazy["flow"]

    # a surplus with nothing that can leave a client out pairs everyone: no flow to prove it
    cover = units if selecting and _covers_all(inst, limit) else all_flow().n_paired
    own_floor = None
    if selecting and inst.n_nodes > LARGE_NODES:  # the relaxation's arcs: a tower's
        # households keep their nearest own members only (all of them were ~1 M pairs)
        node, srv, kth, own_floor = relaxation_arcs(inst, np.flatnonzero(elig), k=k_nearest, own=16)
    else:
        node, srv, kth = search.arcs(elig)
    fixed_bound = -np.inf
    if not selecting:  # every eligible server active: price every allowed pair (LP dual),
        # which also clears a shortfall that only the candidate arcs caused
        flow_all, fixed_bound, flows = price_and_resolve(
            inst,
            elig,
            node,
            srv,
            all_flow(),
            deadline=max(deadline, perf_counter() + certify_seconds),
            gap_tolerance=gap_tolerance,
        )
        search.flows += flows
        lazy["flow"] = flow_all
    selecting = selecting or bool(all_flow().shortfall.any())  # loads in range outrank "all active"
    timings["coverage"] = perf_counter() - t

    t = perf_counter()
    rebalance = p.current is not None
    forced = inst.forced | (elig if not selecting else np.zeros_like(elig))
    rel = None  # every server active and the pricing's dual bound holds: no relaxation to
    # ascend (building it took 0.07 s of a 0.45 s community where members are short)
    if selecting or not np.isfinite(fixed_bound):
        rel = build_relaxation(
            inst, node, srv, kth, cover=cover, max_active=limit, forced=forced, own_floor=own_floor
        )
    cost, _ = inst.cost(node, srv)
    u = np.full(inst.n_nodes, np.inf)
    np.minimum.at(u, node, cost)
    outside = rel.generic if rel else outside_cost(inst, node, srv, kth, own_floor=own_floor)
    nearest = np.minimum(u, outside)  # a unit of a node costs at least this
    u[~np.isfinite(u)] = 0.0
    if cover < units:
        u[:] = 0.0  # some clients stay unpaired: start from prices that make none worth more
    bound = -np.inf
    if selecting:  # balanced and deficit: every eligible server stays active, rebalancing too
        if rebalance:
            search.drop(start, unpaired=units - cover)
        else:
            built = bool((inst.building >= 0).any())
            if built:  # households live in buildings: open members there first
                active, flow = search.fill(building_start(inst), unpaired=units - cover)
                search.drop(active, unpaired=units - cover, flow=flow)
                search.local(rel, deadline=deadline)
            if not built or perf_counter() < deadline - 0.3 * time_limit:
                upper = search.best[1].total_cost if search.best else all_flow().total_cost
                bound, u, often = subgradient(
                    rel,
                    inst.weight,
                    u,
                    upper,
                    iterations=int(min(200, max(40, 100 * time_limit))),
                    gap_tolerance=0.0,
                    averaged=True,
                    deadline=deadline,
                )
                opened = np.zeros(inst.m, dtype=bool)
                opened[rel.servers[often >= 0.5]] = True
                if opened.sum() < rel.kmin:
                    opened[rel.servers[greedy_open(rel, u, inst.weight)]] = True
                active, flow = search.fill(opened | inst.forced, unpaired=units - cover)
                search.drop(active, unpaired=units - cover, flow=flow)
        if search.best is None or _key(search.best[1], inst)[:2] != (units - cover, 0):
            search.drop(elig, unpaired=units - cover, flow=all_flow())
        search.local(rel, deadline=deadline)
    timings["active_set"] = perf_counter() - t

    t = perf_counter()
    best_flow = search.best[1] if search.best else all_flow()
    if not selecting:
        best_flow, bound = all_flow(), fixed_bound
    if best_flow.shortfall.any():
        bound = np.nan
    elif np.isfinite(bound) and not selecting:
        bound = max(bound, _cheapest_units(nearest, inst.weight, cover))
    else:
        if not np.isfinite(bound) and cover == units:  # no ascent yet: nearest or pair costs
            pair_u = np.zeros(inst.n_nodes)
            np.maximum.at(pair_u, best_flow.node, best_flow.cost)
            if evaluate(rel, pair_u, inst.weight)[0] > evaluate(rel, u, inst.weight)[0]:
                u = pair_u
        lb, u, _ = subgradient(
            rel,
            inst.weight,
            u,
            best_flow.total_cost,
            iterations=2000,
            gap_tolerance=gap_tolerance,
            deadline=max(
                perf_counter() + 0.02,
                min(t0 + time_limit - 0.3 * reserve, perf_counter() + 0.25 * time_limit),
            ),
        )
        bound = max(bound, lb, _cheapest_units(nearest, inst.weight, cover))
    if selecting and not best_flow.shortfall.any():  # members come whole: bound by building
        parts = building_bound(
            inst,
            cover=cover,
            upper=best_flow.total_cost,
            deadline=perf_counter()
            + max(min(BOUND_FLOOR_S, 0.5 * time_limit), BOUND_SHARE * time_limit),
        )
        if np.isfinite(parts):
            bound = max(bound, parts)
    timings["bound"] = perf_counter() - t

    t = perf_counter()
    if selecting and not rebalance and np.isfinite(bound):
        search.perturb(
            rel, bound=bound, gap_tolerance=gap_tolerance, deadline=deadline, patience=kicks
        )
    if selecting:
        active, flow = search.best
        if perf_counter() < t0 + time_limit - 0.1:  # the chosen set over every allowed pair
            a_node, a_srv, _ = search.arcs(active)
            flow, _, flows = price_and_resolve(
                inst, active, a_node, a_srv, flow, deadline=t0 + time_limit - 0.1
            )
            search.flows += flows
    else:
        active, flow = elig.copy(), all_flow()
    timings["perturb"] = perf_counter() - t
    flow = _certify(inst, active, flow, search)
    timings["flows"] = float(search.flows)
    return _result(p, inst, pins, flow, cover, bound, case, timings, t0)


def _covers_all(inst: Instance, limit: int | None) -> bool:
    """Whether every client can be paired for sure: no distance limit, forbidden pair or
    active limit, and the eligible servers of each community hold its clients."""
    if limit is not None or inst.max_distance is not None or inst.forbidden.size:
        return False
    elig = np.flatnonzero(inst.eligible)
    if not inst.cross_community and (inst.s_community[elig] < 0).any():
        return False  # servers shared between communities: capacities are not separable
    return all(
        int(inst.hi[servers].sum()) >= int(inst.weight[nodes].sum())
        for nodes, servers in inst.groups(elig)
    )


def _cheapest_units(price: np.ndarray, weight: np.ndarray, cover: int) -> float:
    """Sum of the ``cover`` cheapest units when each node's units cost at least ``price``."""
    ok = np.isfinite(price)
    o = np.argsort(price[ok], kind="stable")
    p, w = price[ok][o], weight[ok][o]
    take = np.clip(cover - (np.cumsum(w) - w), 0, w)
    return float(take @ p)


def _rebalance_start(inst: Instance, p: PairingProblem) -> np.ndarray:
    start = np.zeros(inst.m, dtype=bool)
    cur = p.current[p.current >= 0]
    start[cur] = True
    return (start & inst.eligible) | inst.forced


def _pair_metrics(p: PairingProblem, c: np.ndarray, s: np.ndarray):
    dist = np.hypot(*(p.client_xy[c] - p.server_xy[s]).T)
    same_b = (p.client_building[c] == p.server_building[s]) & (p.client_building[c] >= 0)
    same_g = (p.client_grid[c] == p.server_grid[s]) & (p.client_grid[c] >= 0)
    cost = dist + np.where(same_b, 0, p.building_penalty) + np.where(same_g, 0, p.grid_penalty)
    if p.client_weight is not None:
        cost = cost * p.client_weight[c]
    return dist, same_b, same_g, cost


def _expand(inst: Instance, flow: Flow) -> tuple[np.ndarray, np.ndarray]:
    o = np.argsort(flow.node, kind="stable")
    rep_node = np.repeat(flow.node[o], flow.units[o])
    rep_srv = np.repeat(flow.srv[o], flow.units[o])
    rank = np.arange(len(rep_node)) - np.searchsorted(rep_node, rep_node)
    return inst.members[inst.member_start[rep_node] + rank], rep_srv


def _result(
    p: PairingProblem,
    inst: Instance,
    pins: np.ndarray,
    flow: Flow,
    cover: int,
    bound: float,
    case: str,
    timings: dict[str, float],
    t0: float,
) -> R.PairingResult:
    fc, fs = _expand(inst, flow)
    pc = p.pinned[:, 0] if p.pinned.size else np.empty(0, dtype=np.int64)
    ps = p.pinned[:, 1] if p.pinned.size else np.empty(0, dtype=np.int64)
    c = np.concatenate([fc, pc]).astype(np.int64)
    s = np.concatenate([fs, ps]).astype(np.int64)
    pinned = np.concatenate([np.zeros(len(fc), bool), np.ones(len(pc), bool)])
    o = np.argsort(c, kind="stable")
    c, s, pinned = c[o], s[o], pinned[o]
    dist, same_b, same_g, cost = _pair_metrics(p, c, s)
    load = np.bincount(s, minlength=p.n_servers)
    unpaired = np.setdiff1d(np.arange(p.n_clients), c)
    u_dist = _nearest_server(p, unpaired)
    order = np.argsort(-u_dist, kind="stable")
    unpaired, u_dist = unpaired[order], u_dist[order]
    reason = np.where(
        np.isinf(u_dist),
        R.NO_SERVER_IN_SCOPE,
        np.where(
            (p.max_distance is not None) & (u_dist > (p.max_distance or np.inf)),
            R.BEYOND_MAX_DISTANCE,
            R.ALL_FULL,
        ),
    ).astype(object)
    reserve = np.flatnonzero(load == 0)
    reachable = _has_client_in_reach(p, reserve)
    at_limit = p.max_active is not None and int((load > 0).sum()) >= p.max_active
    r_reason = np.where(
        ~p.server_eligible[reserve],
        R.NOT_ELIGIBLE,
        np.where(~reachable, R.NO_CLIENT_IN_REACH, R.MAX_ACTIVE if at_limit else R.SURPLUS),
    ).astype(object)
    churn, forced = _churn(p, c, s)
    total, objective = float(cost.sum()), float(cost.sum() + churn.sum())
    pin_cost = float(cost[pinned].sum() + churn[pinned].sum())
    lb = float(bound) + pin_cost if np.isfinite(bound) else np.nan
    lb = min(lb, objective) if np.isfinite(lb) else lb
    lb, gap, why = _bound_gap(objective, lb, float(churn[forced].sum()), bool(flow.shortfall.any()))
    timings["total"] = perf_counter() - t0
    return R.PairingResult(
        bound_reason=why,
        status="optimal" if np.isfinite(gap) and gap <= 1e-9 else "feasible",
        case=case,
        pair_client=c,
        pair_server=s,
        pair_distance=dist,
        pair_cost=cost,
        same_building=same_b,
        same_grid=same_g,
        pair_pinned=pinned,
        server_load=load,
        unpaired=unpaired,
        unpaired_reason=reason,
        unpaired_distance=u_dist,
        reserve=reserve,
        reserve_reason=r_reason,
        cost=total,
        lower_bound=lb,
        gap=float(gap),
        coverage_bound=int(cover + len(pc)),
        shortfall=int(flow.shortfall.sum()),
        timings=MappingProxyType(dict(timings)),
        client_ids=p.client_ids,
        server_ids=p.server_ids,
        churn_cost=objective - total,
    )


def _churn(p: PairingProblem, c: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Churn weight per pair whose client leaves its current server (rebalancing), and which
    of those moves the data force (the current server is no longer eligible or in scope)."""
    if p.current is None or not (p.churn_weight or p.client_churn is not None):
        return np.zeros(len(c)), np.zeros(len(c), dtype=bool)
    cur = p.current[c]
    moved = (cur >= 0) & (cur != s)
    gone = ~p.server_eligible[cur]
    if not p.cross_community:
        sc = p.server_community[cur]
        gone |= (sc != p.client_community[c]) & (sc >= 0)
    weight = float(p.churn_weight) + (0.0 if p.client_churn is None else p.client_churn[c])
    return np.where(moved, weight, 0.0), moved & gone


def _bound_gap(
    objective: float, lb: float, forced_churn: float, shortfall: bool
) -> tuple[float, float, str]:
    """The bound and gap to report, NaN with the reason when there is none: a plan below
    minimum loads proves nothing, and a bound of 0 under a positive cost only says the bound
    failed (a "100 % gap" would read as a terrible plan)."""
    if shortfall:
        return np.nan, np.nan, R.BOUND_SHORTFALL
    if not np.isfinite(lb):
        return np.nan, np.nan, R.BOUND_NOT_FOUND
    if objective > 0 and lb <= 1e-9 * objective:
        return np.nan, np.nan, R.BOUND_TRIVIAL
    return lb, _gap(objective, lb, forced_churn), ""


def _gap(objective: float, lb: float, forced_churn: float = 0.0) -> float:
    """Relative gap; churn that no plan can avoid is left out of the denominator, so a
    rebalance's gap is not flattered by the moves the data force."""
    if objective - lb <= 0:
        return 0.0
    base = objective - forced_churn
    return (objective - lb) / base if base > 0 and np.isfinite(lb) else np.nan


def _scope_groups(p: PairingProblem, clients: np.ndarray, servers: np.ndarray):
    if p.cross_community:
        yield clients, servers
        return
    sc = p.server_community[servers]
    for com in np.unique(p.client_community[clients]):
        yield clients[p.client_community[clients] == com], servers[(sc == com) | (sc < 0)]


def _nearest_server(p: PairingProblem, clients: np.ndarray) -> np.ndarray:
    out = np.full(len(clients), np.inf)
    pos = {int(c): i for i, c in enumerate(clients)}
    for cl, sv in _scope_groups(p, clients, np.flatnonzero(p.server_eligible)):
        if len(sv) and len(cl):
            d, _ = cKDTree(p.server_xy[sv]).query(p.client_xy[cl], k=1)
            out[[pos[int(c)] for c in cl]] = d
    return out


def _has_client_in_reach(p: PairingProblem, servers: np.ndarray) -> np.ndarray:
    out = np.zeros(len(servers), dtype=bool)
    if not len(servers) or not p.n_clients:
        return out
    radius = np.inf if p.max_distance is None else p.max_distance
    sc = p.server_community[servers]
    scoped = (sc >= 0) & (not p.cross_community)
    groups = [(np.arange(p.n_clients), np.flatnonzero(~scoped))]
    groups += [
        (np.flatnonzero(p.client_community == c), np.flatnonzero(scoped & (sc == c)))
        for c in np.unique(sc[scoped])
    ]
    for clients, at in groups:
        if len(clients) and len(at):
            d, _ = cKDTree(p.client_xy[clients]).query(p.server_xy[servers[at]], k=1)
            out[at] = d <= radius
    return out


def _solve_split(p: PairingProblem, **opts) -> R.PairingResult:
    from gridsvc.pairing.result import PairingResult

    t0 = perf_counter()
    parts = []
    for com in np.unique(p.client_community):
        ci = np.flatnonzero(p.client_community == com)
        si = np.flatnonzero(p.server_community == com)
        parts.append((ci, si, _solve_one(_subproblem(p, ci, si), **opts)))
    lone = np.setdiff1d(np.arange(p.n_servers), np.concatenate([s for _, s, _ in parts]))
    cat = np.concatenate
    pc = cat([ci[r.pair_client] for ci, _, r in parts])
    o = np.argsort(pc, kind="stable")

    def pairs(attr: str, idx: bool = False) -> np.ndarray:
        vals = [(si[getattr(r, attr)] if idx else getattr(r, attr)) for ci, si, r in parts]
        return cat(vals)[o]

    load = np.zeros(p.n_servers, dtype=np.int64)
    for _, si, r in parts:
        load[si] = r.server_load
    un = cat([ci[r.unpaired] for ci, _, r in parts])
    ud = cat([r.unpaired_distance for *_, r in parts])
    ur = cat([r.unpaired_reason for *_, r in parts])
    uo = np.argsort(-ud, kind="stable")
    res = cat([si[r.reserve] for _, si, r in parts] + [lone])
    rr = cat(
        [r.reserve_reason for *_, r in parts]
        + [np.where(p.server_eligible[lone], R.NO_CLIENT_IN_REACH, R.NOT_ELIGIBLE).astype(object)]
    )
    ro = np.argsort(res, kind="stable")
    cost = sum(r.cost for *_, r in parts)
    # churn over the whole problem: a part drops current servers outside it (a move that
    # every plan pays, so its bound stays valid without it)
    pair_churn, forced = _churn(p, pc, cat([si[r.pair_server] for _, si, r in parts]))
    churn = float(pair_churn.sum())
    # a part without a bound counts 0 (costs are never negative), unless its plan breaks a
    # minimum load: then nothing is proven
    lb = sum(r.lower_bound if r.bound_available else 0.0 for *_, r in parts)
    short = any(r.bound_reason == R.BOUND_SHORTFALL for *_, r in parts)
    lb, gap, why = _bound_gap(cost + churn, lb, float(pair_churn[forced].sum()), short)
    cases = {r.case for *_, r in parts}
    timings: dict[str, float] = {}
    for *_, r in parts:
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    timings["total"] = perf_counter() - t0
    return PairingResult(
        bound_reason=why,
        status="optimal" if all(r.status == "optimal" for *_, r in parts) else "feasible",
        case="deficit" if "deficit" in cases else ("surplus" if "surplus" in cases else "balanced"),
        pair_client=pc[o],
        pair_server=pairs("pair_server", idx=True),
        pair_distance=pairs("pair_distance"),
        pair_cost=pairs("pair_cost"),
        same_building=pairs("same_building"),
        same_grid=pairs("same_grid"),
        pair_pinned=pairs("pair_pinned"),
        server_load=load,
        unpaired=un[uo],
        unpaired_reason=ur[uo],
        unpaired_distance=ud[uo],
        reserve=res[ro],
        reserve_reason=rr[ro],
        cost=float(cost),
        lower_bound=float(lb),
        gap=float(gap),
        coverage_bound=sum(r.coverage_bound for *_, r in parts),
        shortfall=sum(r.shortfall for *_, r in parts),
        timings=MappingProxyType(timings),
        client_ids=p.client_ids,
        server_ids=p.server_ids,
        churn_cost=float(churn),
    )


def _subproblem(p: PairingProblem, ci: np.ndarray, si: np.ndarray) -> PairingProblem:
    cpos = np.full(p.n_clients, -1)
    cpos[ci] = np.arange(len(ci))
    spos = np.full(p.n_servers, -1)
    spos[si] = np.arange(len(si))

    def remap(pairs: np.ndarray) -> np.ndarray:
        if not pairs.size:
            return pairs
        a, b = cpos[pairs[:, 0]], spos[pairs[:, 1]]
        keep = (a >= 0) & (b >= 0)
        return np.column_stack([a[keep], b[keep]])

    current = None
    if p.current is not None:
        cur = p.current[ci]
        current = np.where(cur >= 0, spos[np.maximum(cur, 0)], -1)
    return p.__class__(
        client_xy=p.client_xy[ci],
        server_xy=p.server_xy[si],
        client_building=p.client_building[ci],
        client_grid=p.client_grid[ci],
        client_community=p.client_community[ci],
        server_building=p.server_building[si],
        server_grid=p.server_grid[si],
        server_community=p.server_community[si],
        server_min=p.server_min[si],
        server_max=p.server_max[si],
        server_eligible=p.server_eligible[si],
        pinned=remap(p.pinned),
        forbidden=remap(p.forbidden),
        max_distance=p.max_distance,
        cross_community=p.cross_community,
        max_active=None,
        building_penalty=p.building_penalty,
        grid_penalty=p.grid_penalty,
        even_loads=p.even_loads,
        client_weight=None if p.client_weight is None else p.client_weight[ci],
        current=current,
        churn_weight=p.churn_weight,
        client_churn=None if p.client_churn is None else p.client_churn[ci],
        client_ids=p.client_ids[ci],
        server_ids=p.server_ids[si],
        client_label=p.client_label,
        server_label=p.server_label,
    )
