"""Coverage figures per street, community, grid and building, by vectorised pandas group-bys."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gridsvc.coverage.frames import ScopeData
from gridsvc.coverage.reach import Reach, nearest_distance, station_reach
from gridsvc.settings import Settings

__all__ = ["LEVEL_KEYS", "Enriched", "enrich", "level_table", "nearest_distance"]

LEVEL_KEYS = {
    "street": "street_id",
    "community": "community_id",
    "grid": "grid_id",
    "building": "building_id",
}


@dataclass(frozen=True)
class Enriched:
    """Scope frames with derived columns: pairing state, loads and station distance."""

    households: pd.DataFrame  # + street_id, paired, member_id, station_m
    members: pd.DataFrame  # + street_id, load, active, reserve, has_cadre
    pairs: pd.DataFrame  # household pairs + the household's street/community/grid/building
    cadres: pd.DataFrame  # + load
    reach: Reach  # nearest-station distances of households and buildings, and the metric


def enrich(data: ScopeData, *, circles: tuple[int, ...], settings: Settings) -> Enriched:
    """Join pairs onto households and members; distance to the nearest Red Station (walked
    along the roads when ``data`` has a network and ``GRIDSVC_REACH_METRIC`` allows it)."""
    street_of = data.communities.set_index("community_id")["street_id"]
    hh = data.households.copy()
    hh["street_id"] = hh["community_id"].map(street_of)
    first_pair = data.household_pairs.drop_duplicates("household_id").set_index("household_id")
    hh["member_id"] = hh["household_id"].map(first_pair["member_id"])
    hh["paired"] = hh["member_id"].notna()
    hh["contacted"] = hh["paired"] & hh["household_id"].isin(_contacted(data))
    reach = station_reach(
        data,
        metric=settings.reach_metric,
        snap_m=settings.road_snap_m,
        margin_m=max(circles, default=0),
    )
    hh["station_m"] = reach.households

    pairs = data.household_pairs.merge(
        hh[["household_id", "street_id", "community_id", "grid_id", "building_id"]],
        on="household_id",
        how="inner",
    )
    members = data.members.copy()
    members["street_id"] = members["community_id"].map(street_of)
    load = data.household_pairs.groupby("member_id").size()
    members["load"] = members["member_id"].map(load).fillna(0).astype(int)
    members["active"] = members["load"] > 0
    members["reserve"] = members["eligible"] & members["available"] & ~members["active"]
    members["has_cadre"] = members["member_id"].isin(data.member_pairs["member_id"])
    cadres = data.cadres.copy()
    cadre_load = data.member_pairs.groupby("cadre_id").size()
    cadres["load"] = cadres["cadre_id"].map(cadre_load).fillna(0).astype(int)
    return Enriched(hh, members, pairs, cadres, reach)


def _contacted(data: ScopeData) -> pd.Series:
    """Ids of the paired households contacted within their cadence (empty without a log)."""
    if data.contacts is None or data.contacts.empty:
        return pd.Series([], dtype=int)
    return data.contacts.loc[~data.contacts["overdue"].astype(bool), "household_id"]


def level_table(e: Enriched, level: str, *, circles: tuple[int, ...]) -> pd.DataFrame:
    """One row per unit of ``level`` (``street``, ``community``, ``grid``, ``building`` or
    ``scope`` for the whole scope) with every coverage figure; index is the unit id.

    Loads are checked against each member's and cadre's own resolved range (``min_load`` /
    ``max_load``, see :mod:`gridsvc.load_ranges`), as the pairing checks them."""
    key = LEVEL_KEYS.get(level)
    hh, pairs, members = e.households, e.pairs, e.members
    if key is None:  # the whole scope as one group
        key = "_scope"
        hh, pairs, members = (f.assign(_scope=0) for f in (hh, pairs, members))
    g = hh.groupby(key)
    out = pd.DataFrame(
        {"households": g.size(), "paired": g["paired"].sum(), "contacted": g["contacted"].sum()}
    )
    for r in circles:
        out[f"reach_{r}"] = (hh["station_m"] <= r).groupby(hh[key]).mean()
    out = out.join(_member_figures(members, key), how="outer")
    out = out.join(_pair_figures(pairs, key), how="outer")
    if level in {"street", "community", "scope"}:
        out = out.join(_cadre_figures(e.cadres, key, level), how="outer")
    counts = [c for c in out.columns if c in COUNT_COLUMNS]
    out[counts] = out[counts].fillna(0).astype(int)
    out.insert(2, "paired_share", _share(out["paired"], out["households"]))
    # contacted within cadence, as a share of the paired households (the ones that are due)
    out.insert(4, "contacted_share", _share(out["contacted"], out["paired"]))
    out.index.name = key if key != "_scope" else None
    return out


COUNT_COLUMNS = {
    "households",
    "paired",
    "contacted",
    "members",
    "eligible",
    "active",
    "reserve",
    "without_cadre",
    "loads_below_min",
    "loads_above_max",
    "pairs",
    "cadres",
    "cadre_loads_below_min",
    "cadre_loads_above_max",
}


def _member_figures(members: pd.DataFrame, key: str) -> pd.DataFrame:
    g = members.groupby(key)
    active_load = members["load"].where(members["active"])
    return pd.DataFrame(
        {
            "members": g.size(),
            "eligible": g["eligible"].sum(),
            "active": g["active"].sum(),
            "reserve": g["reserve"].sum(),
            "without_cadre": (~members["has_cadre"]).groupby(members[key]).sum(),
            "load_mean": active_load.groupby(members[key]).mean(),
            "load_min": active_load.groupby(members[key]).min(),
            "load_max": active_load.groupby(members[key]).max(),
            "loads_below_min": (members["active"] & (members["load"] < members["min_load"]))
            .groupby(members[key])
            .sum(),
            "loads_above_max": (members["load"] > members["max_load"]).groupby(members[key]).sum(),
        }
    )


def _pair_figures(pairs: pd.DataFrame, key: str) -> pd.DataFrame:
    dist = pairs["distance_m"].astype(float).groupby(pairs[key])
    return pd.DataFrame(
        {
            "pairs": dist.size(),
            "distance_mean_m": dist.mean(),
            "distance_p95_m": dist.quantile(0.95),
            "distance_max_m": dist.max(),
            "same_building_share": pairs["same_building"].astype(float).groupby(pairs[key]).mean(),
            "same_grid_share": pairs["same_grid"].astype(float).groupby(pairs[key]).mean(),
        }
    )


def _cadre_figures(cadres: pd.DataFrame, key: str, level: str) -> pd.DataFrame:
    """Cadres of each street (street and community cadres) or community (community cadres)."""
    if level == "scope":
        cadres = cadres.assign(_scope=0)
    elif level == "community":
        cadres = cadres[cadres["community_id"].notna()]
    g = cadres.groupby(key)
    return pd.DataFrame(
        {
            "cadres": g.size(),
            "cadre_load_mean": g["load"].mean(),
            "cadre_load_min": g["load"].min(),
            "cadre_load_max": g["load"].max(),
            "cadre_loads_below_min": (cadres["load"] < cadres["min_load"])
            .groupby(cadres[key])
            .sum(),
            "cadre_loads_above_max": (cadres["load"] > cadres["max_load"])
            .groupby(cadres[key])
            .sum(),
        }
    )


def load_distribution(e: Enriched) -> pd.DataFrame:
    """Histogram of loads: ``kind`` (``households_per_member`` of active members,
    ``members_per_cadre`` of all cadres), ``load``, ``count``."""
    parts = []
    for kind, loads in (
        ("households_per_member", e.members.loc[e.members["active"], "load"]),
        ("members_per_cadre", e.cadres["load"]),
    ):
        counts = loads.value_counts().sort_index()
        parts.append(pd.DataFrame({"kind": kind, "load": counts.index, "count": counts.values}))
    return pd.concat(parts, ignore_index=True).astype({"load": int, "count": int})


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (part / whole.where(whole > 0)).astype(float)
