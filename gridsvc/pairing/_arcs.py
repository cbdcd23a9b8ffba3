"""Client nodes (identical clients merged), pair costs and candidate arcs from k-d trees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

DENSE_LIMIT = 400_000
"""Pose every allowed pair when nodes × servers is at most this."""


@dataclass(frozen=True, eq=False)
class Instance:
    """Free clients merged into weighted nodes, and servers with loads left after pins."""

    xy: np.ndarray  # (N, 2) node coordinates
    weight: np.ndarray  # (N,) clients per node
    building: np.ndarray
    grid: np.ndarray
    community: np.ndarray
    current: np.ndarray  # (N,) current server of the node's clients, -1 none
    cost_weight: np.ndarray  # (N,) factor on the node's pair costs
    members: np.ndarray  # client indices sorted by node
    member_start: np.ndarray  # (N + 1,) offsets into members
    s_xy: np.ndarray
    s_building: np.ndarray
    s_grid: np.ndarray
    s_community: np.ndarray
    lo: np.ndarray  # min load left after pins
    hi: np.ndarray  # max load left after pins
    eligible: np.ndarray
    forced: np.ndarray  # servers that must stay active (pinned)
    forbidden: np.ndarray  # sorted node * m + server keys
    max_distance: float | None
    cross_community: bool
    building_penalty: float
    grid_penalty: float
    churn_weight: float | np.ndarray  # metres; per node when clients carry their own churn

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.weight)

    @property
    def m(self) -> int:
        """Number of servers."""
        return len(self.lo)

    def cost(self, node: np.ndarray, srv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cost (metres, penalties and churn included) and distance of node-server pairs."""
        dist = np.hypot(*(self.xy[node] - self.s_xy[srv]).T)
        cost = dist.copy()
        same_b = (self.building[node] == self.s_building[srv]) & (self.building[node] >= 0)
        same_g = (self.grid[node] == self.s_grid[srv]) & (self.grid[node] >= 0)
        cost += np.where(same_b, 0.0, self.building_penalty)
        cost += np.where(same_g, 0.0, self.grid_penalty)
        cost *= self.cost_weight[node]
        churn = np.asarray(self.churn_weight, dtype=np.float64)
        if churn.any():
            moved = (self.current[node] >= 0) & (self.current[node] != srv)
            cost += np.where(moved, churn[node] if churn.ndim else churn, 0.0)
        return cost, dist

    def allowed(self, node: np.ndarray, srv: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """Mask of pairs every hard rule allows (eligibility, scope, distance, forbids)."""
        ok = self.eligible[srv]
        if not self.cross_community:
            sc = self.s_community[srv]
            ok &= (sc == self.community[node]) | (sc < 0)
        if self.max_distance is not None:
            ok &= dist <= self.max_distance
        if self.forbidden.size:
            ok &= ~np.isin(node * self.m + srv, self.forbidden, assume_unique=False)
        return ok

    def groups(self, servers: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(nodes, servers) per scope group: communities, or one group across them."""
        if self.cross_community:
            return [(np.arange(self.n_nodes), servers)]
        out = []
        sc = self.s_community[servers]
        for c in np.unique(self.community):
            nodes = np.flatnonzero(self.community == c)
            out.append((nodes, servers[(sc == c) | (sc < 0)]))
        return out


def merge_clients(
    xy: np.ndarray,
    building: np.ndarray,
    grid: np.ndarray,
    community: np.ndarray,
    current: np.ndarray,
    single: np.ndarray,
    weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Node of each client (identical clients share one) and the first client of each node.

    ``single`` marks clients that must keep a node of their own (named in forbidden pairs).
    """
    n = len(xy)
    key = np.column_stack(
        [
            xy.view(np.int64).reshape(n, 2) if xy.dtype == np.float64 else xy,
            building,
            grid,
            community,
            current,
            np.where(single, np.arange(n), -1),
            weight.view(np.int64),
        ]
    )
    _, first, node = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return node.reshape(-1), first


def _knn(tree_xy: np.ndarray, query_xy: np.ndarray, k: int, radius: float | None):
    k = min(k, len(tree_xy))
    if k == 0 or len(query_xy) == 0:
        return np.empty((len(query_xy), 0)), np.empty((len(query_xy), 0), dtype=np.int64)
    d, i = cKDTree(tree_xy).query(
        query_xy, k=k, distance_upper_bound=np.inf if radius is None else radius * (1 + 1e-9)
    )
    return d.reshape(len(query_xy), k), i.reshape(len(query_xy), k)


def candidate_arcs(
    inst: Instance,
    servers: np.ndarray,
    *,
    k: int,
    server_side: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate (node, server) arcs to ``servers`` and each node's k-th nearest distance.

    Arcs: each node's ``k`` nearest servers, every server of its building and its current
    server, plus each server's nearest nodes (so minimum loads stay reachable); all pairs when
    the instance is small. The k-th distance (``inf`` when every allowed server is an arc)
    bounds the cost of any arc left out.
    """
    kth = np.full(inst.n_nodes, np.inf)
    if len(servers) == 0 or inst.n_nodes == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, kth
    parts_n, parts_s = [], []
    for nodes, srv in inst.groups(servers):
        if len(srv) == 0 or len(nodes) == 0:
            continue
        if len(nodes) * len(srv) <= DENSE_LIMIT:
            parts_n.append(np.repeat(nodes, len(srv)))
            parts_s.append(np.tile(srv, len(nodes)))
            continue
        d, j = _outside_knn(inst, nodes, srv, k)
        ok = np.isfinite(d)
        parts_n.append(np.broadcast_to(nodes[:, None], d.shape)[ok])
        parts_s.append(srv[j[ok]])
        if d.shape[1] == k:
            kth[nodes] = np.where(ok[:, -1], d[:, -1], np.inf)
        if server_side:
            ks = int(min(len(nodes), max(8, 2 * np.median(inst.hi[srv]))))
            d2, i2 = _knn(inst.xy[nodes], inst.s_xy[srv], ks, inst.max_distance)
            ok2 = np.isfinite(d2)
            parts_n.append(nodes[i2[ok2]])
            parts_s.append(np.broadcast_to(srv[:, None], d2.shape)[ok2])
    parts_n.append(np.flatnonzero(np.isin(inst.current, servers)))
    parts_s.append(inst.current[parts_n[-1]])
    bn, bs = _same_building(inst, servers)
    parts_n.append(bn)
    parts_s.append(bs)
    node = np.concatenate(parts_n).astype(np.int64)
    srv = np.concatenate(parts_s).astype(np.int64)
    keys = np.sort(node * inst.m + srv)  # sort and drop repeats: np.unique hashes (slower)
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    node, srv = keys // inst.m, keys % inst.m
    _, dist = inst.cost(node, srv)
    ok = inst.allowed(node, srv, dist)
    return node[ok], srv[ok], kth


def _outside_knn(inst: Instance, nodes: np.ndarray, srv: np.ndarray, k: int):
    """Each node's ``k`` nearest of ``srv`` outside its own building (those inside are all
    arcs anyway): distances ``(n, k)`` (``inf`` pads) and positions in ``srv``.

    In a tower whose members outnumber ``k``, the plain nearest would all be its own, leaving
    its households no way out when those are full.
    """
    sb = inst.s_building[srv]
    own = np.zeros(len(nodes), dtype=np.int64)
    b = inst.building[nodes]
    if (sb >= 0).any():
        counts = np.bincount(sb[sb >= 0])
        own = np.where((b >= 0) & (b < len(counts)), counts[np.clip(b, 0, len(counts) - 1)], 0)
    extra = int(min(own.max(initial=0), 4 * k))
    d, j = _knn(inst.s_xy[srv], inst.xy[nodes], k + extra, inst.max_distance)
    if extra == 0 or d.shape[1] == 0:
        return d, j
    inside = (sb[np.minimum(j, len(srv) - 1)] == b[:, None]) & (b[:, None] >= 0)
    inside &= np.isfinite(d)
    far = d[:, -1].copy()  # servers not looked at are at least this far
    d = np.where(inside, np.inf, d)
    o = np.argsort(d, axis=1, kind="stable")[:, :k]
    d, j = np.take_along_axis(d, o, axis=1), np.take_along_axis(j, o, axis=1)
    if k + extra < len(srv):  # fewer than k outside among those looked at: the last one
        # looked at still bounds what was not (its arc is a duplicate of an inside one)
        d[:, -1] = np.where(np.isinf(d[:, -1]), far, d[:, -1])
    return d, j


def relaxation_arcs(inst: Instance, servers: np.ndarray, *, k: int, own: int):
    """Candidate arcs for the Lagrangian relaxation of a large instance: each node's ``k + own``
    nearest servers whatever their building (not every server of a tower: ~1 M pairs at 20,000
    households), each server's nearest nodes, current servers.

    Returns ``node, srv, kth, own_floor``: any server left out of a node's arcs is at least
    ``kth`` away and, when in another building, pays the building penalty; ``own_floor`` (the
    same distance, ``inf`` when every server of the node's building is an arc) floors those of
    its own building, which pay none.
    """
    kth = np.full(inst.n_nodes, np.inf)
    own_floor = np.full(inst.n_nodes, np.inf)
    parts_n, parts_s = [], []
    for nodes, srv in inst.groups(servers):
        if len(srv) == 0 or len(nodes) == 0:
            continue
        kk = min(k + own, len(srv))
        d, j = _knn(inst.s_xy[srv], inst.xy[nodes], kk, inst.max_distance)
        ok = np.isfinite(d)
        parts_n.append(np.broadcast_to(nodes[:, None], d.shape)[ok])
        parts_s.append(srv[j[ok]])
        if kk < len(srv):  # what was not looked at lies beyond the last one looked at
            kth[nodes] = d[:, -1]
            b = inst.building[nodes]
            sb = inst.s_building[srv]
            counts = np.bincount(sb[sb >= 0], minlength=int(max(b.max(initial=0), 0)) + 1)
            found = ((sb[np.minimum(j, len(srv) - 1)] == b[:, None]) & ok).sum(axis=1)
            short = (b >= 0) & (found < counts[np.maximum(b, 0)])
            own_floor[nodes[short]] = d[short, -1]
        ks = int(min(len(nodes), max(8, 2 * np.median(inst.hi[srv]))))
        d2, i2 = _knn(inst.xy[nodes], inst.s_xy[srv], ks, inst.max_distance)
        ok2 = np.isfinite(d2)
        parts_n.append(nodes[i2[ok2]])
        parts_s.append(np.broadcast_to(srv[:, None], d2.shape)[ok2])
    parts_n.append(np.flatnonzero(np.isin(inst.current, servers)))
    parts_s.append(inst.current[parts_n[-1]])
    keys = np.sort(np.concatenate(parts_n).astype(np.int64) * inst.m + np.concatenate(parts_s))
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    node, srv = keys // inst.m, keys % inst.m
    _, dist = inst.cost(node, srv)
    ok = inst.allowed(node, srv, dist)
    return node[ok], srv[ok], kth, own_floor


def _same_building(inst: Instance, servers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sb = inst.s_building[servers]
    servers = servers[sb >= 0]
    sb = sb[sb >= 0]
    if not len(servers):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    order = np.argsort(sb, kind="stable")
    sb, servers = sb[order], servers[order]
    lo = np.searchsorted(sb, inst.building, "left")
    hi = np.searchsorted(sb, inst.building, "right")
    cnt = np.where(inst.building >= 0, hi - lo, 0)
    node = np.repeat(np.arange(inst.n_nodes), cnt)
    offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return node, servers[np.repeat(lo, cnt) + offs]


def all_allowed(inst: Instance, nodes: np.ndarray, servers: np.ndarray):
    """Every allowed (node, server) pair between the given nodes and servers."""
    node = np.repeat(nodes, len(servers))
    srv = np.tile(servers, len(nodes))
    _, dist = inst.cost(node, srv)
    ok = inst.allowed(node, srv, dist)
    return node[ok], srv[ok]
