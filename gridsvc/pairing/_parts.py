"""Lower bound by decomposition into buildings, coupled by the price of crossing between them.

Every pair either stays inside a building (its household and member live there) or crosses
between two. Split a crossing pair's cost: a share ``alpha`` is charged to the household's
building as an *export*, the rest to the member's building as an *import*, and a coupling price
``mu`` is added to every export and taken off every import (exports and imports are equal in
number, so it cancels). Each building then poses its own problem: open some of its members
(each within its load range), keep some households inside, export the others, import to fill
the open members' minimum loads. Any plan of the whole community gives every building a
solution of its problem at no more than its share of the cost, so the sum of the buildings'
optima, for any ``alpha`` and ``mu``, is a lower bound; ``mu`` is searched (the sum is concave
in it).

Inside a building the bound is relaxed further, still validly: a household kept inside costs at
least its cheapest pair to any member of its building, an exported one at least ``alpha`` times
its cheapest pair outside, an imported unit at least the building's cheapest import. What it
keeps exactly is what the Lagrangian bound of :mod:`gridsvc.pairing._bound` loses: members come
in whole numbers with minimum and maximum loads, so a building of 29 households with 3 members
(15-25 each) must export or import (one member: 25 kept and 4 out; two: 30 needed), and
co-located members cannot all take the same households.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np
from scipy.spatial import cKDTree

from gridsvc.pairing._arcs import Instance

NEAREST = 32
"""Nearest servers (nodes) looked at for each node's export (each server's import)."""


@dataclass(frozen=True, eq=False)
class _Part:
    """One building: its nodes, the internal cost floor of each, its servers' loads."""

    nodes: np.ndarray
    c_in: np.ndarray  # cheapest pair inside per node (inf: none)
    lo_cum: np.ndarray  # (q + 1,) least total minimum load of q open servers (forced first)
    hi_cum: np.ndarray  # (q + 1,) most total maximum load of q open servers
    q_min: int  # forced servers (they are open)
    imp: float  # import cost floor per unit, before ``(1 - alpha)`` and its price


def building_bound(
    inst: Instance, *, cover: int, upper: float, deadline: float = np.inf, alpha: float = 0.5
) -> float:
    """Lower bound on the pair cost when every one of ``cover`` units is paired.

    ``upper`` is a known plan's cost (it sizes the price steps). Returns ``nan`` when the
    decomposition does not apply (some units stay unpaired, or no node has a building).
    """
    units = int(inst.weight.sum())
    if cover != units or not units or not (inst.building >= 0).any():
        return np.nan
    node_part, srv_part = _part_keys(inst)
    keys = np.unique(node_part)
    c_in = _inside_cost(inst, node_part, srv_part)
    out_cost, out_part, floor = _outside(inst, node_part, srv_part, keys)
    parts = _parts(inst, node_part, srv_part, keys, c_in, _import_cost(inst, node_part, srv_part))
    if parts is None:
        return np.nan
    n_prices = len(keys) + 1  # one per part; the last: parts without households

    def at(price: np.ndarray) -> tuple[float, np.ndarray]:
        export, dest = _export(out_cost, out_part, floor, alpha, price)
        return _evaluate(parts, inst.weight, export, dest, alpha, price)

    # one price for every part first (a line search: the bound is concave in it), then one
    # price per part by subgradient ascent from there
    nearest = out_cost.min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    scale = float(np.median(nearest)) if nearest.size else 1000.0
    mu = _maximise(lambda mu: at(np.full(n_prices, mu))[0], -scale, scale, deadline, rounds=6)
    price = np.full(n_prices, mu if np.isfinite(mu) else 0.0)
    best, theta, stall = -np.inf, 1.0, 0
    for _ in range(200):
        value, g = at(price)
        if not np.isfinite(value):
            return np.nan
        if not np.isfinite(best) or value > best + 1e-9 * max(1.0, abs(best)):
            best, stall = value, 0
        else:
            stall += 1
            if stall >= 8:
                theta, stall = theta / 2, 0
        norm = float(g @ g)
        if norm == 0 or theta < 1e-3 or perf_counter() > deadline or upper - best <= 0:
            break
        price = price + theta * max(upper - value, 1e-9 * abs(upper)) / norm * g
    return float(best)


def _part_keys(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """Part of each node and server: its building; alone when it has none."""
    n, m = inst.n_nodes, inst.m
    node_part = np.where(inst.building >= 0, inst.building, -2 - np.arange(n))
    srv_part = np.where(inst.s_building >= 0, inst.s_building, -2 - n - np.arange(m))
    return node_part, srv_part


def _inside_cost(inst: Instance, node_part: np.ndarray, srv_part: np.ndarray) -> np.ndarray:
    """Each node's cheapest allowed pair to an eligible server of its building (inf: none)."""
    out = np.full(inst.n_nodes, np.inf)
    elig = np.flatnonzero(inst.eligible & (inst.s_building >= 0))
    if not elig.size:
        return out
    o = np.argsort(srv_part[elig], kind="stable")
    servers, keys = elig[o], srv_part[elig][o]
    lo = np.searchsorted(keys, node_part, "left")
    cnt = np.searchsorted(keys, node_part, "right") - lo
    node = np.repeat(np.arange(inst.n_nodes), cnt)
    offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    srv = servers[np.repeat(lo, cnt) + offs]
    cost, dist = inst.cost(node, srv)
    ok = inst.allowed(node, srv, dist)
    np.minimum.at(out, node[ok], cost[ok])
    return out


def _outside(inst: Instance, node_part: np.ndarray, srv_part: np.ndarray, keys: np.ndarray):
    """Each node's allowed pairs to its nearest eligible servers of other parts: costs
    ``(N, k)`` (inf: not allowed), the part index of each (``len(keys)``: a part without
    households) and a floor of the cost of any server beyond them (inf: none)."""
    elig = np.flatnonzero(inst.eligible)
    n = inst.n_nodes
    k = min(NEAREST, len(elig))
    if not k:
        return np.full((n, 1), np.inf), np.zeros((n, 1), np.int64), np.full(n, np.inf)
    d, j = cKDTree(inst.s_xy[elig]).query(inst.xy, k=k)
    d, j = d.reshape(n, k), elig[j.reshape(n, k)]
    node = np.repeat(np.arange(n), k)
    cost, dist = inst.cost(node, j.ravel())
    ok = inst.allowed(node, j.ravel(), dist) & (srv_part[j.ravel()] != node_part[node])
    cost = np.where(ok, cost, np.inf).reshape(n, k)
    pos = np.searchsorted(keys, srv_part[j])
    part = np.where(keys[np.minimum(pos, len(keys) - 1)] == srv_part[j], pos, len(keys))
    floor = np.full(n, np.inf)
    if k < len(elig):  # a server beyond the k nearest is further and in another building
        floor = (d[:, -1] + inst.building_penalty) * inst.cost_weight
        if inst.max_distance is not None:
            floor = np.where(d[:, -1] > inst.max_distance, np.inf, floor)
    return cost, part, floor


def _import_cost(inst: Instance, node_part: np.ndarray, srv_part: np.ndarray) -> np.ndarray:
    """A floor of each server's cheapest allowed pair to a node of another part."""
    out = np.full(inst.m, np.inf)
    servers = np.flatnonzero(inst.eligible)
    if not servers.size or not inst.n_nodes:
        return out
    k = min(NEAREST, inst.n_nodes)
    d, i = cKDTree(inst.xy).query(inst.s_xy[servers], k=k)
    d, i = d.reshape(len(servers), k), i.reshape(len(servers), k)
    srv = np.repeat(servers, k)
    cost, dist = inst.cost(i.ravel(), srv)
    ok = inst.allowed(i.ravel(), srv, dist) & (node_part[i.ravel()] != srv_part[srv])
    np.minimum.at(out, srv[ok], cost[ok])
    if k < inst.n_nodes:
        beyond = (d[:, -1] + inst.building_penalty) * float(inst.cost_weight.min(initial=1.0))
        if inst.max_distance is not None:
            beyond = np.where(d[:, -1] > inst.max_distance, np.inf, beyond)
        out[servers] = np.minimum(out[servers], beyond)
    return out


def _parts(inst, node_part, srv_part, keys, c_in, imp) -> list[_Part] | None:
    """Each part's nodes and servers (parts without households share the last price)."""
    nodes_of = _group(node_part)
    elig = np.flatnonzero(inst.eligible)
    srv_of = _group(srv_part[elig], elig)
    parts = []
    for key in list(keys) + sorted(set(srv_of) - set(keys.tolist())):
        nodes = nodes_of.get(int(key), np.empty(0, np.int64))
        srv = srv_of.get(int(key), np.empty(0, np.int64))
        f = inst.forced[srv]
        free_lo = np.sort(inst.lo[srv[~f]].astype(float))
        free_hi = np.sort(inst.hi[srv[~f]].astype(float))[::-1]
        f_lo, f_hi = float(inst.lo[srv[f]].sum()), float(inst.hi[srv[f]].sum())
        parts.append(
            _Part(
                nodes=nodes,
                c_in=c_in[nodes] if srv.size else np.full(len(nodes), np.inf),
                lo_cum=f_lo + np.concatenate([[0.0], np.cumsum(free_lo)]),
                hi_cum=f_hi + np.concatenate([[0.0], np.cumsum(free_hi)]),
                q_min=int(f.sum()),
                imp=float(imp[srv].min(initial=np.inf)),
            )
        )
    return parts


def _group(keys: np.ndarray, values: np.ndarray | None = None) -> dict[int, np.ndarray]:
    values = np.arange(len(keys)) if values is None else values
    if not len(keys):
        return {}
    o = np.argsort(keys, kind="stable")
    k, v = keys[o], values[o]
    cuts = np.flatnonzero(np.diff(k)) + 1
    return {int(g[0]): vals for g, vals in zip(np.split(k, cuts), np.split(v, cuts), strict=True)}


def _export(out_cost, out_part, floor, alpha: float, price: np.ndarray):
    """Each node's export cost at the destination prices and the part it goes to."""
    c = alpha * out_cost + price[out_part]
    j = np.argmin(c, axis=1)
    rows = np.arange(len(c))
    best, dest = c[rows, j], out_part[rows, j]
    beyond = alpha * floor + price.min()
    far = beyond < best
    return np.where(far, beyond, best), np.where(far, int(np.argmin(price)), dest)


def _evaluate(parts, weight, export, dest, alpha: float, price: np.ndarray):
    """Sum of the parts' optima and the subgradient (exports to a part minus its imports)."""
    total = 0.0
    g = np.zeros(len(price))
    for k, p in enumerate(parts):
        at = min(k, len(price) - 1)
        value, kept, imports = _part_value(p, weight, export, alpha, price[at])
        if not np.isfinite(value):
            return np.inf, g
        total += value
        g[at] -= imports
        left = weight[p.nodes] - kept
        np.add.at(g, dest[p.nodes], left)
    return total, g


def _part_value(p: _Part, weight: np.ndarray, export: np.ndarray, alpha: float, price: float):
    """Least cost of one part: ``(value, units kept per node, units imported)``."""
    w = weight[p.nodes]
    e, ci = export[p.nodes], p.c_in
    stuck = ~np.isfinite(e)
    if (stuck & ~np.isfinite(ci)).any():
        return np.inf, w, 0
    # units in the order they are kept: those that cannot leave, then cheapest to keep
    d = np.where(stuck, -np.inf, ci - e)
    d = np.where(np.isfinite(ci) | stuck, d, np.inf)
    o = np.argsort(d, kind="stable")
    unit_d = np.repeat(np.where(stuck, ci, ci - e)[o], w[o])
    must = int(w[stuck].sum())
    can = int(w[np.isfinite(ci) | stuck].sum())
    base = float(e[~stuck] @ w[~stuck])
    s = np.concatenate([[0.0], np.cumsum(unit_d[:can])])
    x = np.arange(can + 1, dtype=float)
    imp = (1 - alpha) * p.imp - price
    qs = np.arange(max(p.q_min, 1), len(p.lo_cum))
    best, arg = (base, (0, 0.0)) if p.q_min == 0 and must == 0 else (np.inf, (0, 0.0))
    if qs.size:
        lq = p.lo_cum[qs][:, None]
        uq = p.hi_cum[qs][:, None]
        fits = (x >= must) & (x <= uq)
        if np.isfinite(imp):
            y = uq - x if imp < 0 else np.maximum(lq - x, 0)
            cost = base + s + y * imp
        else:
            y = np.zeros_like(fits, dtype=float)
            fits &= x >= lq
            cost = base + s + 0 * uq
        cost = np.where(fits, cost, np.inf)
        flat = int(np.argmin(cost))
        if cost.flat[flat] < best:
            qi, xi = divmod(flat, len(x))
            best, arg = float(cost.flat[flat]), (xi, float(y[qi, xi]) if y.ndim else 0.0)
    before = np.cumsum(w[o]) - w[o]
    kept = np.zeros(len(w), np.int64)
    kept[o] = np.clip(arg[0] - before, 0, w[o])
    return best, kept, arg[1]


def _maximise(f, a: float, b: float, deadline: float, *, rounds: int) -> float:
    """Argument of the best value seen by a golden-section search of a concave ``f`` on
    ``[a, b]`` (0 is tried first)."""
    if not np.isfinite(a) or not np.isfinite(b) or a >= b:
        return 0.0
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    best = max([(f(0.0), 0.0), (fc, c), (fd, d)])
    for _ in range(rounds):
        if perf_counter() > deadline:
            break
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
        best = max(best, (fc, c), (fd, d))
    return float(best[1])
