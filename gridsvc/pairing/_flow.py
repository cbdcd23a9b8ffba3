"""Min-cost flow for a fixed set of active servers (OR-Tools), objectives weighted in order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from gridsvc.errors import SolverFailed
from gridsvc.pairing._arcs import Instance

RESOLUTION = 1_000_000
"""The costliest arc is this many integer cost units (costs are rounded to 1e-6 of it)."""
EVEN_PIECES = 10


@dataclass(frozen=True, eq=False)
class Flow:
    """Optimal flow: units per arc, load and shortfall per server, unpaired units per node."""

    node: np.ndarray
    srv: np.ndarray
    units: np.ndarray
    cost: np.ndarray  # metres per unit on each arc
    load: np.ndarray  # (m,)
    shortfall: np.ndarray  # (m,)
    unpaired: np.ndarray  # (N,)
    scale: float = 1.0  # integer cost units per metre
    m1: int = 0  # weight of an unpaired unit
    m2: int = 0  # weight of a unit of shortfall
    even: bool = False  # even-load pieces in the objective

    @property
    def total_cost(self) -> float:
        """Sum of pair costs in metres."""
        return float(self.units @ self.cost)

    @property
    def n_paired(self) -> int:
        """Units paired."""
        return int(self.units.sum())


def units_on(flow: Flow, node: np.ndarray, srv: np.ndarray, m: int) -> np.ndarray:
    """Units the flow puts on each of the arcs ``(node, srv)`` (a superset of its own)."""
    keys = node * m + srv
    order = np.argsort(keys)
    used = np.zeros(len(node), dtype=np.int64)
    at = order[np.searchsorted(keys, flow.node * m + flow.srv, sorter=order)]
    used[at] = flow.units
    return used


def solve_flow(
    inst: Instance,
    active: np.ndarray,
    node: np.ndarray,
    srv: np.ndarray,
    *,
    even: bool = True,
) -> Flow:
    """Optimal pairing over the given arcs to the active servers.

    Lexicographic order by weights: most units paired (``M1``), then least shortfall below
    minimum loads (``M2``), then least cost, then even loads (one integer cost unit per unit
    of load above the minimum, growing by piece). Weights are large enough that no cycle
    trades a higher objective for a lower one.

    Raises
    ------
    SolverFailed
        When OR-Tools does not return OPTIMAL (flows are never read then).
    """
    keep = active[srv]
    node, srv = node[keep], srv[keep]
    n_nodes, m = inst.n_nodes, inst.m
    act = np.flatnonzero(active)
    a = len(act)
    pos = np.full(m, -1, dtype=np.int64)
    pos[act] = np.arange(a)
    cost_m, _ = inst.cost(node, srv)
    scale = RESOLUTION / max(float(cost_m.max(initial=0.0)), 1e-9)
    icost = np.rint(cost_m * scale).astype(np.int64)
    maxc = int(icost.max(initial=0)) + EVEN_PIECES * 2 + 1
    m2 = maxc * (2 * a + 6)
    m1 = 3 * m2
    lo, hi = inst.lo[act], inst.hi[act]
    f_node, t_node = n_nodes + a, n_nodes + a + 1
    w = inst.weight

    tails = [node, np.arange(n_nodes), np.full(a, f_node), [f_node]]
    heads = [n_nodes + pos[srv], np.full(n_nodes, t_node), n_nodes + np.arange(a), [t_node]]
    caps = [np.minimum(w[node], inst.hi[srv]), w, lo, [lo.sum()]]
    costs = [icost, np.full(n_nodes, m1), np.full(a, m2), [0]]
    span = hi - lo
    if even:
        piece = np.maximum(1, -(-span // EVEN_PIECES))
        for t in range(EVEN_PIECES):
            cap = np.clip(span - t * piece, 0, piece)
            use = cap > 0
            tails.append(n_nodes + np.flatnonzero(use))
            heads.append(np.full(use.sum(), t_node))
            caps.append(cap[use])
            costs.append(np.full(use.sum(), t))
    else:
        tails.append(n_nodes + np.arange(a))
        heads.append(np.full(a, t_node))
        caps.append(span)
        costs.append(np.zeros(a, dtype=np.int64))

    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(
        np.concatenate(tails).astype(np.int32),
        np.concatenate(heads).astype(np.int32),
        np.concatenate(caps).astype(np.int64),
        np.concatenate(costs).astype(np.int64),
    )
    supplies = np.concatenate([w, -lo, [lo.sum(), -w.sum()]]).astype(np.int64)
    smcf.set_nodes_supplies(np.arange(len(supplies), dtype=np.int32), supplies)
    status = smcf.solve()
    if status != smcf.OPTIMAL:
        raise SolverFailed(f"min-cost flow ended with status {status!r}, not OPTIMAL")
    flows = np.asarray(smcf.flows(np.arange(len(node) + n_nodes + a, dtype=np.int32)))
    units = flows[: len(node)]
    used = units > 0
    load = np.zeros(m, dtype=np.int64)
    np.add.at(load, srv[used], units[used])
    shortfall = np.zeros(m, dtype=np.int64)
    shortfall[act] = flows[len(node) + n_nodes :]
    return Flow(
        node=node[used],
        srv=srv[used],
        units=units[used],
        cost=cost_m[used],
        load=load,
        shortfall=shortfall,
        unpaired=flows[len(node) : len(node) + n_nodes],
        scale=scale,
        m1=m1,
        m2=m2,
        even=even,
    )
