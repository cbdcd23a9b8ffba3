"""Where a request goes (pure): the paired member, else the nearest member with room, else the
cadre; and every waiting request at once as one min-cost flow over members' spare capacity.

Costs are the pairing's: metres between the household (or place) and the member, plus the
pairing's penalties for another building and another grid (GRIDSVC_BUILDING_PENALTY_M,
GRIDSVC_GRID_PENALTY_M). The paired member costs nothing. A request left without a member costs
``UNSERVED`` (twice for a vulnerable household), far above any arc: the flow serves as many
requests as capacity allows, vulnerable households first, and among those the cheapest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ortools.graph.python import min_cost_flow

from gridsvc.errors import SolverFailed

UNSERVED = 10_000_000
"""Integer cost of a request left without a member (metres; above any arc's cost)."""
CANDIDATES = 24
"""Nearest members of the same community offered to each request in a batch (plus its pair)."""
EARTH_M = 6_371_008.8


@dataclass(frozen=True, eq=False)
class Pool:
    """Members that may take requests: position (metres), building, grid, community, room."""

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    building: np.ndarray
    grid: np.ndarray
    community: np.ndarray
    room: np.ndarray  # spare capacity (cap minus open requests; 0 when unavailable)

    @property
    def m(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, eq=False)
class Waiting:
    """Requests to place: position, building, grid, community, paired member (pool index or -1),
    vulnerable household, members (pool indices) that declined each one."""

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    building: np.ndarray
    grid: np.ndarray
    community: np.ndarray
    paired: np.ndarray
    vulnerable: np.ndarray
    declined: list[frozenset[int]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.ids)


def project(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local equirectangular metres (a street spans a few km: error well under 1 %)."""
    lat0 = np.radians(np.nanmean(lat)) if len(lat) else 0.0
    x = np.radians(np.asarray(lon, dtype=np.float64)) * EARTH_M * np.cos(lat0)
    y = np.radians(np.asarray(lat, dtype=np.float64)) * EARTH_M
    return x, y


def arc_cost(
    w: Waiting,
    p: Pool,
    node: np.ndarray,
    srv: np.ndarray,
    building_penalty: float,
    grid_penalty: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Integer cost (metres + 1) and distance of request-member arcs (the paired member: 0)."""
    dist = np.hypot(w.x[node] - p.x[srv], w.y[node] - p.y[srv])
    same_b = (w.building[node] == p.building[srv]) & (w.building[node] >= 0)
    same_g = (w.grid[node] == p.grid[srv]) & (w.grid[node] >= 0)
    cost = dist + np.where(same_b, 0.0, building_penalty) + np.where(same_g, 0.0, grid_penalty)
    # the paired member costs nothing, any other at least 1: a tie never passes the pair over
    cost = np.where(w.paired[node] == srv, 0, np.rint(cost).astype(np.int64) + 1)
    return cost.astype(np.int64), dist


def candidate_arcs(w: Waiting, p: Pool, k: int = CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """(request, member) arcs: the paired member and the ``k`` nearest of the same community
    with room, minus members that declined the request."""
    from scipy.spatial import cKDTree

    nodes, srvs = [], []
    has_room = p.room > 0
    for community in np.unique(w.community):
        reqs = np.flatnonzero(w.community == community)
        mem = np.flatnonzero((p.community == community) & has_room)
        if len(mem) == 0:
            continue
        kk = min(k, len(mem))
        tree = cKDTree(np.column_stack([p.x[mem], p.y[mem]]))
        _, idx = tree.query(np.column_stack([w.x[reqs], w.y[reqs]]), k=kk)
        idx = np.asarray(idx).reshape(len(reqs), kk)
        nodes.append(np.repeat(reqs, kk))
        srvs.append(mem[idx.ravel()])
    paired = np.flatnonzero(w.paired >= 0)
    paired = paired[p.room[w.paired[paired]] > 0]
    nodes.append(paired)
    srvs.append(w.paired[paired])
    node = np.concatenate(nodes) if nodes else np.zeros(0, dtype=np.int64)
    srv = np.concatenate(srvs) if srvs else np.zeros(0, dtype=np.int64)
    keys = np.unique(node.astype(np.int64) * max(p.m, 1) + srv)
    node, srv = keys // max(p.m, 1), keys % max(p.m, 1)
    if w.declined:
        keep = np.array([s not in w.declined[n] for n, s in zip(node, srv, strict=True)], bool)
        node, srv = node[keep], srv[keep]
    return node, srv


def unserved_cost(w: Waiting) -> np.ndarray:
    """Cost of leaving each request without a member (vulnerable households: twice)."""
    return np.where(w.vulnerable, 2 * UNSERVED, UNSERVED).astype(np.int64)


@dataclass(frozen=True)
class Assignment:
    """Member (pool index, -1: none) of each request, the objective and the arc costs used."""

    srv: np.ndarray
    dist: np.ndarray
    cost: int


def solve_dispatch(
    w: Waiting,
    p: Pool,
    node: np.ndarray,
    srv: np.ndarray,
    *,
    building_penalty: float,
    grid_penalty: float,
) -> Assignment:
    """One min-cost flow (OR-Tools) over members' spare capacity.

    Nodes: requests, members, a sink. Arcs request→member (capacity 1, the pairing's cost),
    request→sink (unserved, ``UNSERVED`` or twice that), member→sink (capacity ``room``).

    Raises
    ------
    SolverFailed
        When OR-Tools does not return OPTIMAL (flows are never read then).
    """
    n, m = w.n, p.m
    cost, dist = arc_cost(w, p, node, srv, building_penalty, grid_penalty)
    sink = n + m
    tails = np.concatenate([node, np.arange(n), n + np.arange(m)])
    heads = np.concatenate([n + srv, np.full(n, sink), np.full(m, sink)])
    caps = np.concatenate([np.ones(len(node)), np.ones(n), np.maximum(p.room, 0)])
    costs = np.concatenate([cost, unserved_cost(w), np.zeros(m)])
    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32),
        heads.astype(np.int32),
        caps.astype(np.int64),
        costs.astype(np.int64),
    )
    supplies = np.concatenate([np.ones(n), np.zeros(m), [-n]]).astype(np.int64)
    smcf.set_nodes_supplies(np.arange(n + m + 1, dtype=np.int32), supplies)
    status = smcf.solve()
    if status != smcf.OPTIMAL:
        raise SolverFailed(f"dispatch min-cost flow ended with status {status!r}, not OPTIMAL")
    flows = np.asarray(smcf.flows(np.arange(len(node), dtype=np.int32)))
    used = flows > 0
    out = np.full(n, -1, dtype=np.int64)
    out[node[used]] = srv[used]
    out_dist = np.full(n, np.nan)
    out_dist[node[used]] = dist[used]
    return Assignment(out, out_dist, int(smcf.optimal_cost()))


def greedy_dispatch(
    w: Waiting,
    p: Pool,
    node: np.ndarray,
    srv: np.ndarray,
    *,
    building_penalty: float,
    grid_penalty: float,
) -> Assignment:
    """The loop a person would run (vulnerable first, each to its cheapest member with room):
    the baseline of the benchmark, not used by the service."""
    cost, dist = arc_cost(w, p, node, srv, building_penalty, grid_penalty)
    room = p.room.copy()
    out = np.full(w.n, -1, dtype=np.int64)
    out_dist = np.full(w.n, np.nan)
    total = 0
    by_node: dict[int, list[int]] = {}
    for i, nd in enumerate(node.tolist()):
        by_node.setdefault(nd, []).append(i)
    unserved = unserved_cost(w)
    for r in sorted(range(w.n), key=lambda r: (not w.vulnerable[r], r)):
        best = None
        for i in by_node.get(r, []):
            if room[srv[i]] > 0 and (best is None or cost[i] < cost[best]):
                best = i
        if best is None:
            total += int(unserved[r])
            continue
        room[srv[best]] -= 1
        out[r], out_dist[r] = srv[best], dist[best]
        total += int(cost[best])
    return Assignment(out, out_dist, total)


def reason(
    *,
    paired: bool,
    had_pair: bool,
    pair_state: str | None,
    cap: int,
    dist: float | None,
    same_building: bool = False,
    cadre: bool = False,
) -> str:
    """Why a request went where it went, in Chinese (stored with the request).

    ``pair_state``: why not the paired member (``full``, ``unavailable``, ``declined``)."""
    if paired:
        return "结对党员"
    why = {
        "full": f"结对党员已有{cap}件在办",
        "unavailable": "结对党员暂不在岗",
        "declined": "结对党员已退回",
    }.get(pair_state or "", "未结对" if not had_pair else "结对党员无余力")
    if cadre:
        return f"{why}，社区无有余力党员，转联系干部"
    if dist is None:
        return f"{why}，社区暂无有余力党员，待派单"
    where = "（同楼）" if same_building else ""
    return f"{why}，就近有余力党员 {dist:.0f} 米{where}"
