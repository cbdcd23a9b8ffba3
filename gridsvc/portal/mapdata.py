"""Map data of a street or community from PostGIS, for the ``maps`` builders (the data edge)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from gridsvc.coverage._data import load_scope, resolve_scope
from gridsvc.coverage.blindspots import BlindSpots, blindspots_from_frames
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
    report = coverage_from_frames(data, settings=settings)
    spots = blindspots_from_frames(data, settings=settings)
    summary = {v: report.summary.get(k) for k, v in SUMMARY_KEYS.items()}
    return map_data_from_frames(conn, data, spots=spots, summary=summary)


def map_data_from_frames(
    conn: Connection,
    data: ScopeData,
    *,
    spots: BlindSpots,
    summary: dict[str, object],
    pair_lines: bool = True,
    members: frozenset[str] = frozenset(),
) -> MapData:
    """The map layers of loaded scope frames; names, phones and polygons read once here.

    Names and phones are passed in clear: the map builder masks them (``MapOptions.masked``).
    ``pair_lines`` False leaves member→household lines out except those of ``members``.
    """
    ids = data.scope.community_ids.tolist()
    people = _people(conn, ids, data.scope.street_ids.tolist())
    hh_paired = data.households["household_id"].isin(data.household_pairs["household_id"])
    households = _points(_with_contacts(data, data.households.assign(paired=hh_paired.to_numpy())))
    load = data.household_pairs.groupby("member_id").size()
    members_frame = data.members.assign(
        load=data.members["member_id"].map(load).fillna(0).astype(int).to_numpy()
    ).merge(people["members"], on="member_id", how="left")
    members_frame = _points(
        _member_contacts(data, members_frame.assign(active=members_frame["load"] > 0))
    )
    cadre_load = data.member_pairs.groupby("cadre_id").size()
    cadres = data.cadres.assign(
        load=data.cadres["cadre_id"].map(cadre_load).fillna(0).astype(int).to_numpy()
    ).merge(people["cadres"], on="cadre_id", how="left")
    stations = data.stations.merge(people["stations"], on="station_id", how="left")
    streets = frame(
        conn,
        "SELECT code, name, ST_AsBinary(geom) AS wkb FROM streets "
        "WHERE id = ANY(:s) AND geom IS NOT NULL",
        {"s": data.scope.street_ids.tolist()},
    )
    return MapData(
        streets=_polygons(streets),
        communities=_polygons(
            frame(
                conn,
                "SELECT code, name, ST_AsBinary(geom) AS wkb FROM communities "
                "WHERE id = ANY(:ids) AND geom IS NOT NULL",
                {"ids": ids},
            )
        ),
        grids=_counted(_polygons(_grid_names(data, people["grids"])), data, hh_paired, "grid_id"),
        buildings=_contact_counts(
            _counted(
                _polygons(data.buildings.merge(people["buildings"], on="building_id", how="left")),
                data,
                hh_paired,
                "building_id",
            ),
            data,
        ),
        households=households,
        members=members_frame,
        pairs=_lines(data, "household", only=None if pair_lines else members),
        cadres=_points(cadres),
        cadre_pairs=_lines(data, "member"),
        stations=_points(stations),
        blindspots=dict(spots.frames),
        summary=summary,
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


def _people(conn: Connection, ids: list[int], streets: list[int]) -> dict[str, pd.DataFrame]:
    """Names (and phones) of the scope's members, cadres, stations and buildings."""
    return {
        "members": frame(
            conn,
            "SELECT id AS member_id, name, phone FROM members WHERE community_id = ANY(:ids)",
            {"ids": ids},
        ),
        "cadres": frame(
            conn,
            "SELECT id AS cadre_id, name, phone FROM cadres WHERE community_id = ANY(:ids) "
            "OR (community_id IS NULL AND street_id = ANY(:s))",
            {"ids": ids, "s": streets},
        ),
        "stations": frame(
            conn,
            "SELECT id AS station_id, name, services FROM stations",
        ),
        "buildings": frame(
            conn,
            "SELECT id AS building_id, name FROM buildings WHERE community_id = ANY(:ids)",
            {"ids": ids},
        ),
        "grids": frame(
            conn,
            "SELECT id AS grid_id, name FROM grids WHERE community_id = ANY(:ids)",
            {"ids": ids},
        ),
    }


def _grid_names(data: ScopeData, names: pd.DataFrame) -> pd.DataFrame:
    """Grids named as people say them: their own name, else 翠湖社区第1网格 (the community's
    name and the grid's number)."""
    comm = data.communities.set_index("community_id")["name"]
    grids = data.grids.merge(names, on="grid_id", how="left")
    number = grids["code"].astype(str).str[-3:].str.lstrip("0").replace("", "0")
    made = grids["community_id"].map(comm).fillna("") + "第" + number + "网格"
    grids["name"] = grids["name"].where(grids["name"].notna() & (grids["name"] != ""), made)
    return grids


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


def _lines(
    data: ScopeData, kind: str, *, only: frozenset[str] | None = None
) -> gpd.GeoDataFrame | None:
    """Member→household or cadre→member lines with ``member_code`` / ``cadre_code``."""
    if kind == "household":
        pairs, a, b = data.household_pairs, data.members, data.households
        a_key, b_key, label = "member_id", "household_id", "member_code"
    else:
        pairs, a, b = data.member_pairs, data.cadres, data.members
        a_key, b_key, label = "cadre_id", "member_id", "cadre_code"
    if only is not None:
        chosen = a.loc[a["code"].isin(sorted(only)), a_key]
        pairs = pairs[pairs[a_key].isin(chosen)]
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
