"""Rebalance proposals for the web pages: a stored proposal, its diff lines and diff map."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from gridsvc.errors import NotFound
from gridsvc.portal._sql import frame
from gridsvc.settings import Settings
from maps.coverage_map import MapData, MapOptions
from maps.diff_map import build_diff_map
from maps.report import map_html

_PROPOSAL = """
SELECT p.id, c.code AS community, p.community_id, p.base_version, p.run_id, p.status,
       p.summary, p.changes, p.created_by, p.created_at, p.decided_by, p.decided_at, p.reason,
       coalesce(pl.version, 0) AS plan_version
FROM proposals p JOIN communities c ON c.id = p.community_id
LEFT JOIN plans pl ON pl.community_id = p.community_id
WHERE p.id = :i
"""
_POLYGONS = """
SELECT t.code, t.name, ST_AsBinary(t.geom) AS wkb, count(h.id) AS households,
       count(hp.household_id) AS paired
FROM {table} t
LEFT JOIN households h ON h.{key} = t.id
LEFT JOIN household_pairs hp ON hp.household_id = h.id AND hp.run_id = :run
WHERE t.community_id = :c AND t.geom IS NOT NULL GROUP BY t.id
"""
_RUN_PAIRS = """
SELECT h.code AS household, m.code AS member, ST_X(h.geom) AS x0, ST_Y(h.geom) AS y0,
       ST_X(m.geom) AS x1, ST_Y(m.geom) AS y1
FROM household_pairs hp JOIN households h ON h.id = hp.household_id
JOIN members m ON m.id = hp.member_id WHERE hp.run_id = :run
"""
_PLACES = "SELECT code, ST_X(geom) AS x, ST_Y(geom) AS y FROM {table} WHERE code = ANY(:codes)"
COUNTS = ("kept", "moved", "new", "dropped")


def load_proposal(conn: Connection, proposal_id: int) -> dict[str, Any]:
    """A stored proposal with its counts, changes and the community's current plan version.

    ``stale`` is true when the plan moved on since the proposal was made. Raises
    :class:`NotFound` for a proposal outside the caller's scope (row-level security).
    """
    row = conn.execute(text(_PROPOSAL), {"i": proposal_id}).mappings().first()
    if row is None:
        raise NotFound(f"proposal {proposal_id}: no such proposal in your scope")
    body = dict(row)
    body["counts"] = {k: int(body["summary"].get(k, 0)) for k in COUNTS}
    body["forced"] = int(body["summary"].get("forced", 0))
    for key in ("created_at", "decided_at"):
        body[key] = body[key].isoformat() if body[key] else None
    body["stale"] = body["status"] == "open" and body["plan_version"] != body["base_version"]
    return body


def diff_lines(conn: Connection, proposal: dict[str, Any]) -> gpd.GeoDataFrame:
    """One line a pair, household → member: ``kind``, ``household``, ``member``, ``reason``.

    Kinds: ``kept``, ``moved`` (the new pair) with ``moved_from`` (the old one), ``new`` and
    ``dropped``. A pair whose member no longer exists has no line.
    """
    pairs = frame(conn, _RUN_PAIRS, {"run": proposal["run_id"]})
    changes = pd.DataFrame(
        proposal["changes"], columns=["kind", "client", "old_server", "server", "reason"]
    )
    kind = dict(zip(changes["client"], changes["kind"], strict=True))
    reason = dict(zip(changes["client"], changes["reason"], strict=True))
    now = pairs.assign(
        kind=[kind.get(h, "kept") for h in pairs["household"]],
        reason=[reason.get(h, "") for h in pairs["household"]],
    )
    before = changes[changes["kind"].isin(["moved", "dropped"])]
    old = _old_pairs(conn, before)
    table = pd.concat([now, old], ignore_index=True)
    coords = table[["x0", "y0", "x1", "y1"]].to_numpy(float).reshape(-1, 2, 2)
    geometry = shapely.linestrings(coords) if len(table) else []
    return gpd.GeoDataFrame(
        table[["kind", "household", "member", "reason"]], geometry=geometry, crs=4326
    )


def _old_pairs(conn: Connection, before: pd.DataFrame) -> pd.DataFrame:
    """Lines of the pairs a proposal ends (household → its old member)."""
    households = _places(conn, "households", before["client"]).add_suffix("0")
    members = _places(conn, "members", before["old_server"]).add_suffix("1")
    out = before.join(households, on="client").join(members, on="old_server")
    out = out.rename(columns={"client": "household", "old_server": "member"})
    out["kind"] = np.where(out["kind"] == "moved", "moved_from", "dropped")
    return out.dropna(subset=["x0", "x1"])[
        ["household", "member", "x0", "y0", "x1", "y1", "kind", "reason"]
    ]


def _places(conn: Connection, table: str, codes: pd.Series) -> pd.DataFrame:
    wanted = sorted({str(c) for c in codes.dropna()})
    return frame(conn, _PLACES.format(table=table), {"codes": wanted}).set_index("code")


def _base(conn: Connection, proposal: dict[str, Any]) -> MapData:
    params = {"c": proposal["community_id"], "run": proposal["run_id"]}
    community = frame(
        conn,
        "SELECT code, name, ST_AsBinary(geom) AS wkb FROM communities "
        "WHERE id = :c AND geom IS NOT NULL",
        params,
    )
    grids = frame(conn, _POLYGONS.format(table="grids", key="grid_id"), params)
    buildings = frame(conn, _POLYGONS.format(table="buildings", key="building_id"), params)
    return MapData(
        communities=_polygons(community), grids=_polygons(grids), buildings=_polygons(buildings)
    )


def _polygons(table: pd.DataFrame) -> gpd.GeoDataFrame:
    wkb = [bytes(v) if isinstance(v, memoryview) else v for v in table["wkb"]]
    geometry = shapely.from_wkb(wkb) if wkb else []
    return gpd.GeoDataFrame(table.drop(columns="wkb"), geometry=geometry, crs=4326)


def render_diff_map(
    conn: Connection, proposal_id: int, *, settings: Settings, lang: str = "zh"
) -> str:
    """The proposal's diff map as one page with every asset inlined (no CDN; values escaped)."""
    proposal = load_proposal(conn, proposal_id)
    options = MapOptions(
        lang=lang, tiles=settings.tiles, tianditu_key=settings.tianditu_key, masked=True
    )
    return map_html(build_diff_map(_base(conn, proposal), diff_lines(conn, proposal), options))
