"""Column generation for a fixed active set: price every allowed pair against the flow's dual
potentials, add the improving ones, re-solve; when none is left the flow is optimal over every
allowed pair, not only its candidate arcs (the certificate of a fixed set's cost).

Potentials come from the residual graph of the optimal flow. Client nodes sit between hubs
(servers, the shortfall source ``F``, the sink ``T``), so the graph is first reduced to hubs:
each client links the hubs it can be taken from to the hubs it can go to. Bellman-Ford over a
few hundred hubs is then cheap (vectorised relaxation rounds).
"""

from __future__ import annotations

from time import perf_counter

import numpy as np

from gridsvc.pairing._arcs import Instance
from gridsvc.pairing._flow import EVEN_PIECES, Flow, solve_flow, units_on

PRICE_LIMIT = 4_000_000
"""Price at most this many node × server pairs (about 100 MB; beyond: no certificate)."""


def _icost(inst: Instance, flow: Flow, node: np.ndarray, srv: np.ndarray) -> np.ndarray:
    return np.rint(inst.cost(node, srv)[0] * flow.scale)


def _hub_edges(inst, active, node, srv, flow):
    """Residual edges between hubs (servers 0..a-1, F = a, T = a + 1) and each client node's
    ways in (hub, cost), as arrays."""
    act = np.flatnonzero(active)
    a = len(act)
    pos = np.full(inst.m, -1)
    pos[act] = np.arange(a)
    f_hub, t_hub = a, a + 1
    keep = active[srv]
    node, srv = node[keep], srv[keep]
    used = units_on(flow, node, srv, inst.m)
    cap = np.minimum(inst.weight[node], inst.hi[srv])
    c = _icost(inst, flow, node, srv)
    unp = flow.unpaired
    # ways into a client node (reverse residual arcs) and out of it (forward ones)
    has = used > 0
    in_n = np.concatenate([node[has], np.flatnonzero(unp > 0)])
    in_h = np.concatenate([pos[srv[has]], np.full(int((unp > 0).sum()), t_hub)])
    in_c = np.concatenate([-c[has], np.full(int((unp > 0).sum()), -float(flow.m1))])
    fwd = used < cap
    paired_some = unp < inst.weight
    out_n = np.concatenate([node[fwd], np.flatnonzero(paired_some)])
    out_h = np.concatenate([pos[srv[fwd]], np.full(int(paired_some.sum()), t_hub)])
    out_c = np.concatenate([c[fwd], np.full(int(paired_some.sum()), float(flow.m1))])
    # hub -> hub through a client: each way in joined with each way out of the same node
    o = np.argsort(in_n, kind="stable")
    in_n, in_h, in_c = in_n[o], in_h[o], in_c[o]
    start = np.searchsorted(in_n, out_n, "left")
    count = np.searchsorted(in_n, out_n, "right") - start
    rep = np.repeat(np.arange(len(out_n)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    src = in_h[np.repeat(start, count) + k]
    eu, ev, ew = [src], [out_h[rep]], [in_c[np.repeat(start, count) + k] + out_c[rep]]
    # the root reaches every client at 0, hence every hub a client can go to
    eu.append(np.full(len(out_n), a + 2))
    ev.append(out_h)
    ew.append(out_c)
    # shortfall arcs F -> server (cost M2, capacity lo) and the F -> T bypass
    lo, hi = inst.lo[act], inst.hi[act]
    short = flow.shortfall[act]
    for mask, u, v, w in (
        (short < lo, np.full(a, f_hub), np.arange(a), float(flow.m2)),
        (short > 0, np.arange(a), np.full(a, f_hub), -float(flow.m2)),
    ):
        eu.append(u[mask])
        ev.append(v[mask])
        ew.append(np.full(int(mask.sum()), w))
    bypass = int(lo.sum() - short.sum())
    if short.sum() > 0:
        eu.append([f_hub]), ev.append([t_hub]), ew.append([0.0])
    if bypass > 0:
        eu.append([t_hub]), ev.append([f_hub]), ew.append([0.0])
    # server -> T above the minimum load: the next even-load piece, or back the last one
    load = flow.load[act]
    span = hi - lo
    above = np.clip(load - lo, 0, None)
    if flow.even:
        piece = np.maximum(1, -(-span // EVEN_PIECES))
        nxt, last = (above // piece).astype(float), ((above - 1) // piece).astype(float)
    else:
        nxt = last = np.zeros(a)
    up, down = above < span, above > 0
    eu += [np.arange(a)[up], np.full(int(down.sum()), t_hub)]
    ev += [np.full(int(up.sum()), t_hub), np.arange(a)[down]]
    ew += [nxt[up], -last[down]]
    edges = tuple(
        np.concatenate([np.asarray(x, dtype=t) for x in e])
        for e, t in ((eu, np.int64), (ev, np.int64), (ew, np.float64))
    )
    return edges, (in_n, in_h, in_c), pos, a + 3


def potentials(inst, active, node, srv, flow):
    """Shortest-path potentials of hubs and client nodes in the flow's residual graph, or
    ``None`` when Bellman-Ford does not settle (it always should for an optimal flow)."""
    (u, v, w), (in_n, in_h, in_c), pos, hubs = _hub_edges(inst, active, node, srv, flow)
    # one edge per (u, v), the cheapest; grouped by head for vectorised relaxation rounds
    key = u * hubs + v
    o = np.lexsort((w, key))
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[o][1:] != key[o][:-1]
    u, v, w = u[o][first], v[o][first], w[o][first]
    o = np.argsort(v, kind="stable")
    u, v, w = u[o], v[o], w[o]
    heads, starts = np.unique(v, return_index=True)
    d = np.full(hubs, np.inf)
    d[-1] = 0.0
    for _ in range(hubs + 1):
        if not len(u):
            break
        best = np.minimum.reduceat(d[u] + w, starts)
        new = d.copy()
        new[heads] = np.minimum(d[heads], best)
        if np.array_equal(new, d):
            break
        d = new
    else:
        return None
    d_node = np.zeros(inst.n_nodes)  # the root reaches every client at 0
    np.minimum.at(d_node, in_n, d[in_h] + in_c)
    return d, d_node, pos


class _Pairs:
    """Every allowed pair to the active servers with its cost in metres, posed once."""

    def __init__(self, inst: Instance, active: np.ndarray) -> None:
        servers = np.flatnonzero(active)
        node = np.repeat(np.arange(inst.n_nodes), len(servers))
        srv = np.tile(servers, inst.n_nodes)
        cost, dist = inst.cost(node, srv)
        ok = inst.allowed(node, srv, dist)
        self.node, self.srv, self.cost = node[ok], srv[ok], cost[ok]
        self.key = self.node * inst.m + self.srv

    def price(self, inst, active, node, srv, flow, *, per_node: int):
        """Pairs off the arcs with a negative reduced cost, at most ``per_node`` per client
        node (most negative first), and the sum over all of them of reduced cost × capacity
        (integer cost units: what they could still save); ``None`` when the potentials do not
        settle."""
        pot = potentials(inst, active, node, srv, flow)
        if pot is None:
            return None
        d_hub, d_node, pos = pot
        red = np.rint(self.cost * flow.scale) + d_node[self.node] - d_hub[pos[self.srv]]
        neg = np.flatnonzero(red < -0.5)
        have = np.sort(node * inst.m + srv)
        if len(have):
            at = np.minimum(np.searchsorted(have, self.key[neg]), len(have) - 1)
            neg = neg[have[at] != self.key[neg]]
        cap = np.minimum(inst.weight[self.node[neg]], inst.hi[self.srv[neg]])
        saving = float(red[neg] @ cap)
        o = neg[np.lexsort((red[neg], self.node[neg]))]
        n_ = self.node[o]
        rank = np.arange(len(o)) - np.searchsorted(n_, n_)
        take = o[rank < per_node]
        return self.node[take], self.srv[take], saving


def price_and_resolve(
    inst: Instance,
    active: np.ndarray,
    node: np.ndarray,
    srv: np.ndarray,
    flow: Flow,
    *,
    deadline: float = np.inf,
    gap_tolerance: float = 0.0,
    rounds: int = 12,
    per_node: int = 16,
) -> tuple[Flow, float, int]:
    """Add improving pairs and re-solve until none is left, the gap is within tolerance or
    the deadline passes.

    Returns the flow, a lower bound on the cost of any pairing of the active set with the same
    clients paired and shortfall (the LP dual at the flow's potentials over every allowed
    pair: the flow's cost less what the pairs still improving could save; ``-inf`` when they
    cannot be priced), and the number of flows solved.
    """
    flows = 0
    have = np.sort(node * inst.m + srv)
    used = flow.node * inst.m + flow.srv
    at = np.minimum(np.searchsorted(have, used), max(len(have) - 1, 0))
    if len(used) and (not len(have) or (have[at] != used).any()):
        # the flow was widened beyond these arcs: pose its arcs too (a search of the flow's
        # few arcs in the sorted arcs, not a union of both: 0.1 s of a deficit community)
        keys = np.union1d(have, used)
        node, srv = keys // inst.m, keys % inst.m
        flow = solve_flow(inst, active, node, srv, even=flow.even)
        flows += 1
    if inst.n_nodes * int(active.sum()) > PRICE_LIMIT:
        return flow, -np.inf, flows
    pairs = _Pairs(inst, active)
    done = 0
    while True:
        priced = pairs.price(inst, active, node, srv, flow, per_node=per_node)
        if priced is None:
            return flow, -np.inf, flows
        add_n, add_s, saving = priced
        bound = certified_bound(flow) + saving / flow.scale
        close = flow.total_cost - bound <= gap_tolerance * abs(flow.total_cost)
        if not len(add_n) or close or perf_counter() > deadline or done == rounds:
            return flow, bound, flows
        node, srv = np.concatenate([node, add_n]), np.concatenate([srv, add_s])  # all fresh
        flow = solve_flow(inst, active, node, srv, even=flow.even)
        flows += 1
        done += 1


def certified_bound(flow: Flow) -> float:
    """Lower bound from a flow optimal over its arcs' LP dual: its cost less what integer
    rounding (half a unit per arc unit) and the even-load term (under ``EVEN_PIECES`` units per
    client) could hide."""
    slack = (0.5 + (EVEN_PIECES if flow.even else 0.5)) * flow.n_paired / flow.scale
    return flow.total_cost - slack
