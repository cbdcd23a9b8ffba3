"""Map data of a street or community from PostGIS, for the ``maps`` builders (the data edge)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from gridsvc.coverage._data import load_scope, resolve_scope
from gridsvc.coverage.blindspots import blindspots_from_frames
from gridsvc.coverage.frames import ScopeData
from gridsvc.coverage.report import coverage_from_frames
from gridsvc.portal._sql import frame
from gridsvc.settings import Settings
from maps.coverage_map import MapData

SUMMARY_KEYS = {
    "households": "households_total",
    "paired": "households_paired",
    "paired_share": "household_coverage",
    "members": "members_total",
    "active": "members_active",
    "reserve": "members_reserve",
    "cadres": "cadres_total",
    "loads_below_min": "loads_below_min",
    "loads_above_max": "loads_above_max",
}


def load_map_data(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
) -> MapData:
    """Every layer of the coverage map of a scope (polygons, points, pairs, blind spots).

    Raises
    ------
    NotFound
        When the code names no street or community the caller may see.
    """
    scope = resolve_scope(conn, street_code=street_code, community_code=community_code)
    data = load_scope(conn, scope, settings=settings, geometry=True)
    ids = scope.community_ids.tolist()
    hh_paired = data.households["household_id"].isin(data.household_pairs["household_id"])
    households = _points(_with_contacts(data, data.households.assign(paired=hh_paired.to_numpy())))
    load = data.household_pairs.groupby("member_id").size()
    members = data.members.assign(
        load=data.members["member_id"].map(load).fillna(0).astype(int).to_numpy()
    )
    members = _points(_member_contacts(data, members.assign(active=members["load"] > 0, name=None)))
    cadre_load = data.member_pairs.groupby("cadre_id").size()
    cadres = data.cadres.assign(
        load=data.cadres["cadre_id"].map(cadre_load).fillna(0).astype(int).to_numpy(), name=None
    )
    report = coverage_from_frames(data, settings=settings)
    spots = blindspots_from_frames(data, settings=settings)
    return MapData(
        communities=_polygons(
            frame(
                conn,
                "SELECT code, name, ST_AsBinary(geom) AS wkb FROM communities "
                "WHERE id = ANY(:ids) AND geom IS NOT NULL",
                {"ids": ids},
            )
        ),
        grids=_counted(_polygons(data.grids), data, hh_paired, "grid_id"),
        buildings=_contact_counts(
            _counted(_polygons(data.buildings), data, hh_paired, "building_id"), data
        ),
        households=households,
        members=members,
        pairs=_lines(data, "household"),
        cadres=_points(cadres),
        cadre_pairs=_lines(data, "member"),
        stations=_points(data.stations.assign(name=None)),
        blindspots=dict(spots.frames),
        summary={v: report.summary.get(k) for k, v in SUMMARY_KEYS.items()},
        requests=_requests(conn, ids),
    )


def _requests(conn: Connection, ids: list[int]) -> gpd.GeoDataFrame | None:
    """Open requests and those of the last 90 days as points: status, category, recent (no
    household code or text: the map is shown beside names only where they are masked)."""
    from sqlalchemy import text

    if not conn.scalar(text("SELECT to_regclass('requests') IS NOT NULL")):
        return None
    rows = frame(
        conn,
        "SELECT r.state AS status, r.category, "
        "r.created_at > now() - interval '90 days' AS recent, "
        "coalesce(ST_X(h.geom), ST_X(ST_Centroid(b.geom)), ST_X(ST_Centroid(g.geom))) AS lon, "
        "coalesce(ST_Y(h.geom), ST_Y(ST_Centroid(b.geom)), ST_Y(ST_Centroid(g.geom))) AS lat "
        "FROM requests r LEFT JOIN households h ON h.id = r.household_id "
        "LEFT JOIN buildings b ON b.id = r.building_id LEFT JOIN grids g ON g.id = r.grid_id "
        "WHERE r.community_id = ANY(:ids) AND (r.created_at > now() - interval '90 days' "
        "OR r.state NOT IN ('done', 'visited'))",
        {"ids": ids},
    )
    rows = rows.dropna(subset=["lon", "lat"])
    geometry = gpd.points_from_xy(rows["lon"].astype(float), rows["lat"].astype(float), crs=4326)
    return gpd.GeoDataFrame(rows.drop(columns=["lon", "lat"]), geometry=geometry, crs=4326)


def _with_contacts(data: ScopeData, households: pd.DataFrame) -> pd.DataFrame:
    """``contact_status`` of each household (empty when unpaired or without a contact log)."""
    if data.contacts is None:
        return households
    status = data.contacts.set_index("household_id")["status"]
    return households.assign(
        contact_status=households["household_id"].map(status).astype(object).fillna("").to_numpy()
    )


def _contact_counts(buildings: gpd.GeoDataFrame, data: ScopeData) -> gpd.GeoDataFrame:
    """``contact_ok|due_soon|overdue|never``: households of each building in each status."""
    if data.contacts is None or "building_id" not in buildings:
        return buildings
    table = pd.crosstab(data.contacts["building_id"], data.contacts["status"])
    out = buildings
    for status in ("ok", "due_soon", "overdue", "never"):
        counts = table[status] if status in table else pd.Series(dtype=int)
        out[f"contact_{status}"] = out["building_id"].map(counts).fillna(0).astype(int)
    return out


def _member_contacts(data: ScopeData, members: pd.DataFrame) -> pd.DataFrame:
    """``contacted_share``: a member's households contacted within cadence (None: none)."""
    if data.contacts is None:
        return members
    done = (~data.contacts["overdue"].astype(bool)).groupby(data.contacts["member_id"]).mean()
    return members.assign(contacted_share=members["member_id"].map(done).to_numpy())


def _points(table: pd.DataFrame) -> gpd.GeoDataFrame:
    geometry = shapely.points(table["lon"].to_numpy(float), table["lat"].to_numpy(float))
    return gpd.GeoDataFrame(
        table.drop(columns=["x", "y"], errors="ignore"), geometry=geometry, crs=4326
    )


def _polygons(table: pd.DataFrame) -> gpd.GeoDataFrame:
    geometry = (
        shapely.from_wkb([bytes(v) if isinstance(v, memoryview) else v for v in table["wkb"]])
        if len(table)
        else []
    )
    out = table.drop(columns=["wkb", "x", "y", "lon", "lat"], errors="ignore")
    return gpd.GeoDataFrame(out, geometry=geometry, crs=4326)


def _counted(
    polygons: gpd.GeoDataFrame, data: ScopeData, paired: pd.Series, key: str
) -> gpd.GeoDataFrame:
    counts = data.households.assign(paired=paired.to_numpy()).groupby(key)["paired"]
    table = counts.agg(households="size", paired="sum")
    out = polygons.merge(table, left_on=key, right_index=True, how="left")
    out = out.fillna({"households": 0, "paired": 0})
    if "name" not in out:
        out["name"] = out["code"]
    return out


def _lines(data: ScopeData, kind: str) -> gpd.GeoDataFrame | None:
    """Member→household or cadre→member lines with ``member_code`` / ``cadre_code``."""
    if kind == "household":
        pairs, a, b = data.household_pairs, data.members, data.households
        a_key, b_key, label = "member_id", "household_id", "member_code"
    else:
        pairs, a, b = data.member_pairs, data.cadres, data.members
        a_key, b_key, label = "cadre_id", "member_id", "cadre_code"
    if pairs.empty:
        return None
    left = pairs.merge(a[[a_key, "code", "lon", "lat"]], on=a_key).merge(
        b[[b_key, "lon", "lat"]], on=b_key, suffixes=("_a", "_b")
    )
    coords = np.stack(
        [left[["lon_a", "lat_a"]].to_numpy(float), left[["lon_b", "lat_b"]].to_numpy(float)],
        axis=1,
    )
    return gpd.GeoDataFrame(
        {label: left["code"].to_numpy()}, geometry=shapely.linestrings(coords), crs=4326
    )
