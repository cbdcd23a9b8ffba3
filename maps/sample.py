"""Map data from the demo district with a naive nearest-member pairing (tests, bench, pictures).

Not the pairing of gridsvc: each household takes its nearest eligible member of its community
until that member is full, each member its nearest cadre; enough to draw every layer.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import cKDTree

from geodata.demo import generate_demo
from geodata.projection import to_metres
from maps.coverage_map import MapData


def sample_map_data(
    *, households: int | None = None, seed: int = 1, far_m: float = 500.0
) -> tuple[MapData, dict[str, Any]]:
    """Map data for a demo street and the raw pieces a report needs.

    Returns
    -------
    tuple
        ``(MapData, extras)`` where extras holds ``distances`` (metres of every pair),
        ``loads`` (households per member), ``households`` and ``stations`` frames.
    """
    layers = generate_demo(seed=seed, households=households).layers
    hh, members, cadres = layers["households"], layers["members"], layers["cadres"]
    epsg = 32648
    hx, hy = _xy(hh, epsg)
    mx, my = _xy(members, epsg)
    eligible = members["eligible"].to_numpy(bool)
    owner, dist = _assign(hx, hy, mx, my, eligible, cap=25)
    paired = owner >= 0
    load = np.bincount(owner[paired], minlength=len(members))
    members = members.assign(load=load, active=load > 0)
    cx, cy = _xy(cadres, epsg)
    boss, _ = _assign(mx, my, cx, cy, np.ones(len(cadres), bool), cap=15)
    cadres = cadres.assign(load=np.bincount(boss[boss >= 0], minlength=len(cadres)))
    hh = hh.assign(paired=paired)
    pairs = gpd.GeoDataFrame(
        {"member_code": members["code"].to_numpy()[owner[paired]]},
        geometry=shapely.linestrings(
            np.stack(
                [
                    shapely.get_coordinates(members.geometry.to_numpy()[owner[paired]]),
                    shapely.get_coordinates(hh.geometry.to_numpy()[paired]),
                ],
                axis=1,
            )
        ),
        crs=4326,
    )
    with_cadre = boss >= 0
    cadre_pairs = gpd.GeoDataFrame(
        geometry=shapely.linestrings(
            np.stack(
                [
                    shapely.get_coordinates(cadres.geometry.to_numpy()[boss[with_cadre]]),
                    shapely.get_coordinates(members.geometry.to_numpy()[with_cadre]),
                ],
                axis=1,
            )
        ),
        crs=4326,
    ).assign(cadre_code=cadres["code"].to_numpy()[boss[with_cadre]])
    grids = _shares(layers["grids"], hh, "grid_code")
    buildings = _shares(layers["buildings"], hh, "building_code")
    blind = {
        "unpaired_households": _ranked(hh[~paired], "未结对"),
        "members_without_cadre": _ranked(members[~with_cadre], "无干部联系"),
        "far_pairs": _ranked(hh[paired & (dist > far_m)], f"结对距离超过{far_m:.0f}米"),
    }
    summary = {
        "households_total": len(hh),
        "households_paired": int(paired.sum()),
        "household_coverage": float(paired.mean()),
        "members_total": len(members),
        "members_active": int((load > 0).sum()),
        "members_reserve": int((load == 0).sum()),
        "member_coverage": float(with_cadre.mean()),
        "cadres_total": len(cadres),
        "stations_total": len(layers["stations"]),
        "median_distance_m": float(np.median(dist[paired])) if paired.any() else None,
    }
    data = MapData(
        streets=layers["streets"],
        communities=layers["communities"],
        grids=grids,
        buildings=buildings,
        households=hh,
        members=members,
        pairs=pairs,
        cadres=cadres,
        cadre_pairs=cadre_pairs,
        stations=layers["stations"],
        blindspots=blind,
        summary=summary,
    )
    extras = {
        "distances": dist[paired],
        "loads": load[eligible],
        "households": hh,
        "stations": layers["stations"],
        "grids": grids,
        "communities": _shares(layers["communities"], hh, "community_code"),
    }
    return data, extras


def _xy(frame: gpd.GeoDataFrame, epsg: int) -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = to_metres(frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy(), epsg=epsg)
    return x, y


def _assign(
    ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray, ok: np.ndarray, *, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy capacity-limited nearest assignment of points a to points b (-1 when none)."""
    idx = np.flatnonzero(ok)
    owner = np.full(len(ax), -1)
    dist = np.full(len(ax), np.inf)
    if not len(idx):
        return owner, dist
    k = min(8, len(idx))
    d, j = cKDTree(np.column_stack([bx[idx], by[idx]])).query(np.column_stack([ax, ay]), k=k)
    d, j = d.reshape(len(ax), k), j.reshape(len(ax), k)
    room = np.full(len(idx), cap)
    for i in np.argsort(d[:, 0], kind="stable"):
        for col in range(k):
            if room[j[i, col]] > 0:
                room[j[i, col]] -= 1
                owner[i], dist[i] = idx[j[i, col]], d[i, col]
                break
    return owner, dist


def _shares(frame: gpd.GeoDataFrame, hh: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    counts = hh.groupby(key)["paired"].agg(households="size", paired="sum")
    out = frame.merge(counts, left_on="code", right_index=True, how="left")
    return out.fillna({"households": 0, "paired": 0})


def _ranked(frame: gpd.GeoDataFrame, reason: str) -> gpd.GeoDataFrame:
    return frame.assign(rank=np.arange(1, len(frame) + 1), reason=reason)
