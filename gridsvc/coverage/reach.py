"""Distance from households and buildings to the nearest Red Station: straight, or walked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from gridsvc.coverage.frames import ScopeData
from gridsvc.errors import InfeasibleSettings
from gridsvc.siting.network import RoadNetwork, snap_points
from gridsvc.siting.network import nearest_distance as walked


@dataclass(frozen=True)
class Reach:
    """Nearest-station distances of a scope and how they were measured.

    Attributes
    ----------
    metric
        ``network`` (walked along the roads, off-road access included) or ``straight``.
    households, buildings
        Metres to the nearest station per row of the scope's households / buildings; ``inf``
        when no station is reachable (or, by network, the point is off the network).
    households_off, buildings_off
        Per row, whether the point is off the network (always False for ``straight``).
    network
        For ``network``: ``snap_m``, ``segments`` and ``off_network`` counts of households,
        residential buildings and stations farther than ``snap_m`` from every road.
    """

    metric: str
    households: np.ndarray
    buildings: np.ndarray
    households_off: np.ndarray
    buildings_off: np.ndarray
    network: Mapping[str, Any] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """Nested mappings as plain dicts (for JSON)."""
    return {k: plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def nearest_distance(xy: np.ndarray, targets: np.ndarray, *, upper: float = np.inf) -> np.ndarray:
    """Straight distance from each point to its nearest target (inf when none within ``upper``)."""
    if len(targets) == 0 or len(xy) == 0:
        return np.full(len(xy), np.inf)
    dist, _ = cKDTree(targets).query(xy, k=1, distance_upper_bound=upper)
    return dist


def distance_metric(requested: str, network: RoadNetwork | None, *, where: str) -> str:
    """``network`` or ``straight`` for a ``GRIDSVC_REACH_METRIC`` value and the loaded roads.

    Raises
    ------
    InfeasibleSettings
        ``network`` requested where no road is loaded.
    """
    if requested == "straight":
        return "straight"
    if network is None or network.n_segments == 0:
        if requested == "network":
            raise InfeasibleSettings(
                f"GRIDSVC_REACH_METRIC=network: no walkable road is loaded near {where}"
            )
        return "straight"
    return "network"


def station_reach(
    data: ScopeData, *, metric: str = "auto", snap_m: float = 200.0, margin_m: float = 1000.0
) -> Reach:
    """Nearest-station distance of every household and building of ``data``.

    Parameters
    ----------
    data
        The scope's frames (x/y in metres) and, when roads are loaded, its network.
    metric
        ``GRIDSVC_REACH_METRIC``: ``auto``, ``straight`` or ``network``.
    snap_m
        ``GRIDSVC_ROAD_SNAP_M``: farther from every road is off the network.
    margin_m
        Stations farther than this (straight) beyond the scope's extent are left out of the
        network's off-network count (they cannot reach the scope within the largest circle).
    """
    where = f"{data.scope.level} {data.scope.code or ''}".strip()
    chosen = distance_metric(metric, data.network, where=where)
    hh, b, st = _xy(data.households), _xy(data.buildings), _xy(data.stations)
    if chosen == "straight" or data.network is None:
        none = np.zeros(len(hh), bool), np.zeros(len(b), bool)
        return Reach("straight", nearest_distance(hh, st), nearest_distance(b, st), *none)
    net = data.network
    st = st[_near(st, np.vstack([hh, b]), margin_m + snap_m)]
    sources = snap_points(net, st, max_distance=snap_m)
    targets = snap_points(net, np.vstack([hh, b]), max_distance=snap_m)
    dist = walked(net, sources, targets, limit=np.inf)
    off = ~targets.on_network
    residential = data.buildings["kind"].isin(["residential", "mixed"]).to_numpy(bool)
    counts = {
        "households": int(off[: len(hh)].sum()),
        "buildings": int((off[len(hh) :] & residential).sum()),
        "stations": int((~sources.on_network).sum()),
    }
    info = {
        "snap_m": snap_m,
        "segments": net.n_segments,
        "off_network": MappingProxyType(counts),
    }
    n = len(hh)
    return Reach("network", dist[:n], dist[n:], off[:n], off[n:], MappingProxyType(info))


def _near(points: np.ndarray, scope: np.ndarray, margin: float) -> np.ndarray:
    """Which ``points`` lie within ``margin`` of the bounding box of ``scope``."""
    if len(points) == 0 or len(scope) == 0:
        return np.zeros(len(points), dtype=bool)
    lo, hi = scope.min(axis=0) - margin, scope.max(axis=0) + margin
    return ((points >= lo) & (points <= hi)).all(axis=1)


def _xy(frame: pd.DataFrame) -> np.ndarray:
    return frame[["x", "y"]].to_numpy(float) if len(frame) else np.empty((0, 2))


def station_reach_table(
    data: ScopeData,
    *,
    rings: tuple[int, ...],
    metric: str = "auto",
    snap_m: float = 200.0,
) -> pd.DataFrame:
    """Households of the scope within each walking ring of each Red Station.

    Measured as :func:`station_reach` measures (``GRIDSVC_REACH_METRIC``): along the roads when
    a network is loaded and allowed, straight otherwise.

    Returns
    -------
    pandas.DataFrame
        ``station_id``, ``code`` and ``within_<m>`` per ring.
    """
    out = pd.DataFrame(
        {"station_id": data.stations["station_id"].to_numpy(), "code": data.stations["code"]}
    )
    hh, st = _xy(data.households), _xy(data.stations)
    if not len(st) or not len(hh) or not rings:
        return out.assign(**{f"within_{r}": 0 for r in rings})
    where = f"{data.scope.level} {data.scope.code or ''}".strip()
    chosen = distance_metric(metric, data.network, where=where)
    if chosen == "network" and data.network is not None:
        from gridsvc.siting.network import distance_matrix

        sources = snap_points(data.network, st, max_distance=snap_m)
        targets = snap_points(data.network, hh, max_distance=snap_m)
        dist = distance_matrix(data.network, sources, targets, limit=float(max(rings))).tocsr()
        for r in sorted(rings):
            within = dist.copy()
            within.data = (within.data <= r).astype(int)  # stored entries only: all finite
            out[f"within_{r}"] = np.asarray(within.sum(axis=1)).ravel().astype(int)
        return out
    tree = cKDTree(hh)
    for r in sorted(rings):
        out[f"within_{r}"] = np.asarray(tree.query_ball_point(st, r=r, return_length=True), int)
    return out
