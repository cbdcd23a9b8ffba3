"""Lagrangian lower bound on the pair cost (assignment rows relaxed, subgradient ascent).

With client prices ``u`` the problem splits by server: an open server takes its ``lo`` cheapest
reduced costs ``c_ij - u_i`` and then every negative one up to ``hi`` (a sort). Servers open
in the order of their value within ``[kmin, kmax]`` (capacity cover and minimum loads imply
that count) and at most ``max_active``. Pairs outside the candidate arcs are represented by
one "generic" option per client priced at a lower bound of every such pair's cost, so the
bound holds for all pairs, not only the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np
from scipy.spatial import cKDTree

from gridsvc.pairing._arcs import Instance

PAD_COST = 1e30


@dataclass(frozen=True, eq=False)
class Relaxation:
    """Padded per-server item lists of the Lagrangian subproblem."""

    servers: np.ndarray  # (S,) eligible server indices
    node: np.ndarray  # (S, K) node of each item (pad: 0)
    cost: np.ndarray  # (S, K) cost (pad: PAD_COST)
    weight: np.ndarray  # (S, K) units (pad: 0)
    generic: np.ndarray  # (N,) lower bound of any pair outside the items (inf: none)
    lo: np.ndarray
    hi: np.ndarray
    forced: np.ndarray  # (S,) must be open
    kmin: int
    kmax: int
    cover: int  # units to pair (C)
    total: int  # units in all (n)


def build_relaxation(
    inst: Instance,
    node: np.ndarray,
    srv: np.ndarray,
    kth: np.ndarray,
    *,
    cover: int,
    max_active: int | None,
    forced: np.ndarray,
    own_floor: np.ndarray | None = None,
) -> Relaxation:
    """Pad the candidate arcs per eligible server and price the pairs left out.

    ``own_floor``: when the arcs hold only each node's nearest servers of its own building, the
    distance beyond which the others lie (``inf``: all of them are arcs).
    """
    servers = np.flatnonzero(inst.eligible)
    pos = np.full(inst.m, -1)
    pos[servers] = np.arange(len(servers))
    cost, _ = inst.cost(node, srv)
    order = np.lexsort((cost, srv))
    node, srv, cost = node[order], srv[order], cost[order]
    row = pos[srv]
    counts = np.bincount(row, minlength=len(servers))
    k = max(int(counts.max(initial=0)), 1)
    col = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    p_node = np.zeros((len(servers), k), dtype=np.int64)
    p_cost = np.full((len(servers), k), PAD_COST)
    p_w = np.zeros((len(servers), k), dtype=np.int64)
    p_node[row, col] = node
    p_cost[row, col] = cost
    p_w[row, col] = np.minimum(inst.weight[node], inst.hi[srv])
    generic = outside_cost(inst, node, srv, kth, own_floor=own_floor)
    lo, hi = inst.lo[servers], inst.hi[servers]
    f = forced[servers]
    if f.all() and cover >= int(hi.sum()):
        lo = hi  # every server open and the cover needs all capacity: each one is full
    kmin = int(np.searchsorted(np.cumsum(np.sort(hi)[::-1]), cover))
    kmax = int(np.searchsorted(np.cumsum(np.sort(lo)), cover, side="right"))
    if max_active is not None:
        kmax = min(kmax, max_active)
    kmax = max(kmax, int(f.sum()))
    return Relaxation(
        servers,
        p_node,
        p_cost,
        p_w,
        generic,
        lo,
        hi,
        f,
        min(kmin, kmax),
        kmax,
        cover,
        int(inst.weight.sum()),
    )


def outside_cost(
    inst: Instance,
    node: np.ndarray,
    srv: np.ndarray,
    kth: np.ndarray,
    *,
    own_floor: np.ndarray | None = None,
) -> np.ndarray:
    """Per node, the least cost of a unit paired off the candidate arcs (``own_floor``: as in
    :func:`build_relaxation`)."""
    floor = _outside_floor(inst, node, srv, kth)
    if own_floor is not None:  # own-building servers left out: no penalty, this far at least
        floor = np.minimum(floor, own_floor)
    generic = floor * inst.cost_weight
    if np.any(inst.churn_weight):
        generic = generic + np.where(inst.current >= 0, inst.churn_weight, 0.0)
    return generic


def _outside_floor(
    inst: Instance, node: np.ndarray, srv: np.ndarray, kth: np.ndarray, *, k: int = 16
) -> np.ndarray:
    """Lower bound of each node's cost to any allowed server outside its arcs (penalties in).

    Such a server is at least the k-th nearest distance away and in another building (every
    server of the node's building is an arc); it is in another grid too unless it is one of
    the node's grid, whose nearest non-arc server is looked up per grid.
    """
    floor = kth + inst.building_penalty + inst.grid_penalty
    if not inst.grid_penalty or not np.isfinite(kth).any():
        return np.minimum(floor, kth + inst.building_penalty)
    arcs = np.sort(node * inst.m + srv)
    elig = np.flatnonzero(inst.eligible)
    sg = inst.s_grid[elig]
    for g in np.unique(inst.grid[(inst.grid >= 0) & np.isfinite(kth)]):
        nodes = np.flatnonzero((inst.grid == g) & np.isfinite(kth))
        own = elig[sg == g]
        if not own.size:
            continue
        kk = min(k, len(own))
        d, j = cKDTree(inst.s_xy[own]).query(inst.xy[nodes], k=kk)
        d, j = d.reshape(len(nodes), kk), own[j.reshape(len(nodes), kk)]
        key = nodes[:, None] * inst.m + j
        pos = np.minimum(np.searchsorted(arcs, key), len(arcs) - 1)
        outside = arcs[pos] != key
        first = np.where(outside.any(1), d[np.arange(len(nodes)), outside.argmax(1)], d[:, -1])
        floor[nodes] = np.minimum(floor[nodes], first + inst.building_penalty)
    return floor


def server_values(rel: Relaxation, u: np.ndarray, weight: np.ndarray, *, generic: bool = True):
    """Value of opening each server at prices ``u``, with the units it takes of which nodes."""
    r = rel.cost - u[rel.node]
    r[rel.weight == 0] = PAD_COST
    h = int(rel.hi.max(initial=0))
    gen = np.flatnonzero(np.isfinite(rel.generic)) if generic else np.empty(0, np.int64)
    nodes, w = rel.node, rel.weight
    if gen.size and h:
        gr = rel.generic[gen] - u[gen]
        top = gen[np.argsort(gr)[:h]]
        g_node = np.broadcast_to(top, (len(rel.servers), len(top)))
        r = np.hstack([r, np.broadcast_to(rel.generic[top] - u[top], g_node.shape)])
        nodes = np.hstack([rel.node, g_node])
        w = np.hstack([rel.weight, np.broadcast_to(weight[top], g_node.shape)])
    h = min(h, r.shape[1])
    if h < r.shape[1]:
        part = np.argpartition(r, h - 1, axis=1)[:, :h]
        r, nodes, w = (np.take_along_axis(a, part, axis=1) for a in (r, nodes, w))
    o = np.argsort(r, axis=1)
    r, nodes, w = (np.take_along_axis(a, o, axis=1) for a in (r, nodes, w))
    before = np.cumsum(w, axis=1) - w
    mand = np.clip(rel.lo[:, None] - before, 0, w)
    extra = (np.clip(rel.hi[:, None] - before, 0, w) - mand) * (r < 0)
    take = mand + extra
    value = (take * np.where(take > 0, r, 0.0)).sum(axis=1)
    can = w.sum(axis=1) >= rel.lo
    return np.where(can | rel.forced, value, np.inf), take, nodes


def evaluate(rel: Relaxation, u: np.ndarray, weight: np.ndarray):
    """Bound value, units taken per node and the open mask for prices ``u``."""
    if int(rel.hi.max(initial=0)) == 0 or rel.cost.shape[1] == 0:
        return float(weight @ u), np.zeros_like(weight), np.zeros(len(rel.servers), bool)
    value, take, nodes = server_values(rel, u, weight)
    opened = _select(rel, value)
    taken = np.bincount(nodes[opened].ravel(), take[opened].ravel(), minlength=len(weight))
    umax = float(u.max(initial=0.0))
    bound = float(weight @ u) - (rel.total - rel.cover) * umax + float(value[opened].sum())
    return bound, taken, opened


def _select(rel: Relaxation, value: np.ndarray) -> np.ndarray:
    opened = rel.forced.copy()
    free = np.flatnonzero(~rel.forced & np.isfinite(value))
    free = free[np.argsort(value[free], kind="stable")]
    room = max(rel.kmax - int(opened.sum()), 0)
    need = max(rel.kmin - int(opened.sum()), 0)
    neg = int((value[free] < 0).sum())
    opened[free[: min(room, max(neg, need))]] = True
    return opened


def subgradient(
    rel: Relaxation,
    weight: np.ndarray,
    u0: np.ndarray,
    upper: float,
    *,
    iterations: int,
    gap_tolerance: float,
    on_open=None,
    every: int = 10,
    deadline: float = np.inf,
    averaged: bool = False,
):
    """Ascend the Lagrangian dual; return the best bound and prices.

    ``on_open(mask)`` is called every ``every`` iterations with the subproblem's open servers
    and may return a better upper bound (a feasible cost). With ``averaged`` the third value
    returned is how often each server opened over the second half of the iterations (an
    estimate of the LP relaxation's openings) instead of the upper bound.
    """
    u = u0.astype(np.float64).copy()
    best, best_u = -np.inf, u.copy()
    theta, stall = 2.0, 0
    opened_sum = np.zeros(len(rel.servers))
    for it in range(iterations):
        bound, taken, opened = evaluate(rel, u, weight)
        if it >= iterations // 2:
            opened_sum += opened
        if not np.isfinite(best) or bound > best + 1e-9 * max(1.0, abs(best)):
            best, best_u, stall = bound, u.copy(), 0
        else:
            stall += 1
            if stall >= 15:
                theta, stall = theta / 2, 0
        if on_open is not None and it % every == every - 1:
            upper = min(upper, on_open(rel.servers[opened]))
        if upper - best <= gap_tolerance * abs(upper) or theta < 1e-4:
            break
        if perf_counter() > deadline:
            break
        # ascend in node prices (u * weight): each node's share left unpaired or over-taken
        g = (weight - taken) / np.maximum(weight, 1)
        if rel.total > rel.cover:  # some clients stay unpaired: search prices u <= 0
            g[(u >= 0) & (g > 0)] = 0.0
        norm = float(g @ g)
        if norm == 0:
            best = max(best, bound)
            break
        u = u + theta * (upper - bound) / norm * g / np.maximum(weight, 1)
        if rel.total > rel.cover:
            np.minimum(u, 0.0, out=u)
    if averaged:
        return best, best_u, opened_sum / max(iterations - iterations // 2, 1)
    return best, best_u, upper


def greedy_open(
    rel: Relaxation, u: np.ndarray, weight: np.ndarray, *, consume_min: bool = True
) -> np.ndarray:
    """Servers to open, best Lagrangian value first, each consuming the clients it takes.

    Unlike the subproblem (where co-located servers all see the same cheap clients), a server
    only counts clients that earlier servers left, so openings spread over the demand. Servers
    keep opening while they pay for themselves or capacity is short of the cover.
    """
    r = np.where(rel.weight > 0, rel.cost - u[rel.node], PAD_COST)
    order_r = np.argsort(r, axis=1)
    first = np.take_along_axis(r, order_r[:, :1], axis=1)[:, 0]
    left = weight.astype(np.int64).copy()
    opened = rel.forced.copy()
    cap = int(rel.hi[opened].sum())
    sequence = np.concatenate([np.flatnonzero(rel.forced), np.argsort(first, kind="stable")])
    for j in sequence:
        if opened[j] and not rel.forced[j]:
            continue
        if int(opened.sum()) >= rel.kmax and not rel.forced[j]:
            break
        cols = order_r[j][rel.weight[j, order_r[j]] > 0]
        nodes = rel.node[j, cols]
        avail = np.minimum(left[nodes], rel.weight[j, cols])
        rr = r[j, cols]
        before = np.cumsum(avail) - avail
        mand = np.clip(rel.lo[j] - before, 0, avail)
        extra = (np.clip(rel.hi[j] - before, 0, avail) - mand) * (rr < 0)
        take = mand + extra
        if avail.sum() < rel.lo[j] and not rel.forced[j]:
            continue
        if rel.forced[j] or float(take @ rr) < 0 or cap < rel.cover:
            if not rel.forced[j]:
                opened[j] = True
                cap += int(rel.hi[j])
            np.subtract.at(left, nodes, mand if consume_min else take)
    if cap < rel.cover:
        rest = np.flatnonzero(~opened)
        for j in rest[np.argsort(first[rest], kind="stable")]:
            if cap >= rel.cover or int(opened.sum()) >= rel.kmax:
                break
            opened[j] = True
            cap += int(rel.hi[j])
    return opened
