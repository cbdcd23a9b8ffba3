"""Building-aware constructive start for the surplus case: open members where households live."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from gridsvc.pairing._arcs import Instance

TARGET_SHARE = 0.35
"""Target load of an opened server, as a share of its range above the minimum (15-25: 18.5):
below the middle leaves buildings room for their neighbours' overflow (generated 11,000
households: start 260,215 m at the middle, 252,990 m at 0.35; 0.2 and 0 no better)."""


def building_start(inst: Instance, *, k: int = 32) -> np.ndarray:
    """Servers to open first: per building about its clients / mean load of its own servers.

    Each building with clients opens what :func:`_open_count` says of its eligible servers
    (``lo``, ``hi``: the median load range of eligible servers; ``mid``: the target load),
    chosen by a greedy weighted 1-median per step.
    Clients of buildings left without an open server, and what a building's own servers cannot
    carry, then go, largest first, to the nearest open server with room, or open the nearest
    eligible server when that is nearer (so the neighbours of a few-member building open
    enough servers to take its overflow, instead of the flow sending it across grids).

    Parameters
    ----------
    inst
        The instance (nodes carry building codes; ``-1`` means none).
    k
        Nearest servers looked at for each uncovered building.

    Returns
    -------
    numpy.ndarray
        Boolean mask of servers to open (forced servers included).
    """
    active = inst.forced.copy()
    elig = np.flatnonzero(inst.eligible)
    if not elig.size or not inst.n_nodes:
        return active
    lo = max(float(np.median(inst.lo[elig])), 1.0)
    hi = max(float(np.median(inst.hi[elig])), lo)
    mid = lo + TARGET_SHARE * (hi - lo)
    load = np.zeros(inst.m)
    nb = inst.building
    sb = np.where(inst.eligible, inst.s_building, -1)
    covered = np.zeros(inst.n_nodes, dtype=bool)
    over: list[tuple] = []  # overflow: units, x, y, community, building
    n_order = np.argsort(nb, kind="stable")
    n_cuts = np.searchsorted(nb[n_order], np.unique(nb[nb >= 0]))
    s_order = np.argsort(sb, kind="stable")
    for start, b in zip(n_cuts, np.unique(nb[nb >= 0]), strict=True):
        nodes = n_order[start : np.searchsorted(nb[n_order], b, "right")]
        lo_s, hi_s = np.searchsorted(sb[s_order], [b, b + 1])
        own = s_order[lo_s:hi_s]
        if not own.size:
            continue
        w = inst.weight[nodes].astype(float)
        h = w.sum()
        q = _open_count(h, len(own), lo, hi, mid)
        if q <= 0:
            continue
        d = np.hypot(*(inst.xy[nodes][:, None, :] - inst.s_xy[own][None, :, :]).transpose(2, 0, 1))
        best = np.full(len(nodes), np.inf)
        taken = np.zeros(len(own), dtype=bool)
        for _ in range(q):
            # a chosen server is out of the running: with co-located servers (one point per
            # building) its column would otherwise tie with every other and win again
            score = np.where(taken, np.inf, (np.minimum(best[:, None], d) * w[:, None]).sum(0))
            j = int(np.argmin(score))
            best = np.minimum(best, d[:, j])
            taken[j] = True
            active[own[j]] = True
            load[own[j]] = min(h / q, hi)
        covered[nodes] = True
        if h > q * hi:  # a few-member building: what its members cannot carry goes next door
            over.append((h - q * hi, *(w @ inst.xy[nodes] / h), inst.community[nodes[0]], b))
    rest = np.flatnonzero(~covered)
    if not rest.size and not over:
        return active
    keys = np.where(nb[rest] >= 0, nb[rest], -2 - rest)  # building-less nodes stand alone
    groups, inv = np.unique(keys, return_inverse=True)
    demand = np.bincount(inv, weights=inst.weight[rest])
    cx = np.bincount(inv, weights=inst.xy[rest, 0] * inst.weight[rest]) / np.maximum(demand, 1)
    cy = np.bincount(inv, weights=inst.xy[rest, 1] * inst.weight[rest]) / np.maximum(demand, 1)
    comm = inst.community[rest[np.unique(inv, return_index=True)[1]]]
    if over:
        extra = np.array(over, dtype=float).reshape(-1, 5)
        demand, cx, cy = (np.concatenate([a, extra[:, i]]) for i, a in enumerate((demand, cx, cy)))
        comm = np.concatenate([comm, extra[:, 3].astype(comm.dtype)])
        groups = np.concatenate([groups, extra[:, 4].astype(groups.dtype)])
    kk = min(k, len(elig))
    _, near = cKDTree(inst.s_xy[elig]).query(np.column_stack([cx, cy]), k=kk)
    near = elig[near.reshape(len(groups), kk)]
    for g in np.argsort(-demand, kind="stable"):
        cand = near[g]
        ok = (
            inst.cross_community
            | (inst.s_community[cand] == comm[g])
            | (inst.s_community[cand] < 0)
        )
        # a building's own closed servers stay closed: its count was chosen on purpose
        ok &= (inst.s_building[cand] != groups[g]) | (groups[g] < 0)
        _place(cand[ok], demand[g], active, load, lo, hi)
    return active


def _place(cand: np.ndarray, need: float, active: np.ndarray, load: np.ndarray, lo, hi) -> None:
    """Give ``need`` units to servers ``cand`` (nearest first): an open one with room takes
    what fits; a closed one opens when at least half a minimum load is left to give it (a
    server opened for one or two clients would fall short), or when nothing else is left."""
    for last in (False, True):
        for j in cand:
            if need <= 0:
                return
            if active[j]:
                take = min(need, hi - load[j])
            elif need >= lo / 2 or last:
                active[j] = True
                take = min(need, hi)
            else:
                continue
            if take > 0:
                load[j] += take
                need -= take


def _open_count(h: float, own: int, lo: float, hi: float, mid: float) -> int:
    """Servers a building of ``h`` clients and ``own`` eligible servers opens.

    When some count carries exactly its clients (``ceil(h / hi) <= q <= floor(h / lo)``), the
    one nearest ``h / mid``; otherwise the count that sends fewest clients across its walls
    (exports ``h - q hi`` or imports ``q lo - h``), opening on ties: a building of 29 with 3
    servers of 15-25 opens 2 and takes 1 from next door rather than sending 4 away; one of 26
    with 2 opens 1 and sends 1 away; a lone server with 10 clients opens and takes 5.
    """
    least, most = int(np.ceil(h / hi)), min(int(h // lo), own)
    if least <= most:
        return int(min(max(round(h / mid), least), most))
    q = np.arange(own + 1)
    cross = np.maximum(h - q * hi, 0) + np.maximum(q * lo - h, 0)
    return int(q[np.flatnonzero(cross == cross.min())[-1]])
