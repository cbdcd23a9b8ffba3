"""Loading a scope's layers and current pairs from PostGIS into frames (coverage's data edge)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection, text

from geodata.projection import metric_epsg, to_metres
from gridsvc.coverage.frames import Scope, ScopeData
from gridsvc.errors import NotFound


def resolve_scope(
    conn: Connection, *, street_code: str | None = None, community_code: str | None = None
) -> Scope:
    """The communities of a street or of one community (all when neither is given).

    Raises
    ------
    NotFound
        When the code names no street or community.
    ValueError
        When both codes are given.
    """
    if street_code and community_code:
        raise ValueError("give street_code or community_code, not both")
    if community_code:
        row = conn.execute(
            text("SELECT id, name, street_id FROM communities WHERE code = :c"),
            {"c": community_code},
        ).first()
        if row is None:
            raise NotFound(f"community {community_code!r}: no such community code")
        return Scope(
            "community", community_code, row.name, np.array([row.id]), np.array([row.street_id])
        )
    if street_code:
        row = conn.execute(
            text("SELECT id, name FROM streets WHERE code = :c"), {"c": street_code}
        ).first()
        if row is None:
            raise NotFound(f"street {street_code!r}: no such street code")
        ids = conn.execute(
            text("SELECT id FROM communities WHERE street_id = :s ORDER BY id"), {"s": row.id}
        ).scalars()
        return Scope("street", street_code, row.name, np.fromiter(ids, int), np.array([row.id]))
    comm = np.fromiter(conn.execute(text("SELECT id FROM communities ORDER BY id")).scalars(), int)
    streets = np.fromiter(conn.execute(text("SELECT id FROM streets ORDER BY id")).scalars(), int)
    return Scope("all", None, None, comm, streets)


def load_scope(conn: Connection, scope: Scope, *, geometry: bool = False) -> ScopeData:
    """Read the scope's layers; ``geometry`` adds WKB polygons of grids and buildings."""
    p = {"ids": scope.community_ids.tolist(), "streets": scope.street_ids.tolist()}
    geom = ", encode(ST_AsBinary(geom), 'hex') AS wkb" if geometry else ""
    communities = _frame(
        conn,
        "SELECT c.id AS community_id, c.code, c.name, c.street_id, s.code AS street_code "
        "FROM communities c JOIN streets s ON s.id = c.street_id WHERE c.id = ANY(%(ids)s)",
        p,
    )
    grids = _frame(
        conn,
        f"SELECT id AS grid_id, code, community_id{geom} FROM grids "
        "WHERE community_id = ANY(%(ids)s)",
        p,
    )
    buildings = _frame(
        conn,
        "SELECT id AS building_id, code, kind, floors, party_org, community_id, grid_id, "
        "ST_Area(geom::geography) AS area_m2, "
        f"ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat{geom} "
        "FROM buildings WHERE community_id = ANY(%(ids)s)",
        p,
    )
    households = _frame(
        conn,
        "SELECT id AS household_id, code, community_id, grid_id, building_id, elderly_alone, "
        "disabled, children, ST_X(geom) AS lon, ST_Y(geom) AS lat "
        "FROM households WHERE community_id = ANY(%(ids)s)",
        p,
    )
    members = _frame(
        conn,
        "SELECT id AS member_id, code, kind, eligible, available, community_id, grid_id, "
        "building_id, ST_X(geom) AS lon, ST_Y(geom) AS lat "
        "FROM members WHERE community_id = ANY(%(ids)s)",
        p,
    )
    cadres = _frame(
        conn,
        "SELECT id AS cadre_id, code, level, street_id, community_id, "
        "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM cadres "
        "WHERE community_id = ANY(%(ids)s) "
        "OR (community_id IS NULL AND street_id = ANY(%(streets)s))",
        p,
    )
    stations = _frame(
        conn, "SELECT id AS station_id, code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations", p
    )
    available = _pairs_exist(conn)
    if available:
        hh_pairs = _frame(
            conn,
            "SELECT household_id, member_id, distance_m, same_building, same_grid "
            "FROM current_household_pairs WHERE community_id = ANY(%(ids)s)",
            p,
        )
        m_pairs = _frame(
            conn,
            "SELECT member_id, cadre_id, distance_m FROM current_member_pairs "
            "WHERE community_id = ANY(%(ids)s)",
            p,
        )
    else:
        cols = ["household_id", "member_id", "distance_m", "same_building", "same_grid"]
        hh_pairs = pd.DataFrame({c: [] for c in cols})
        m_pairs = pd.DataFrame({"member_id": [], "cadre_id": [], "distance_m": []})
    epsg = _epsg(households, buildings)
    frames = [_xy(f, epsg) for f in (buildings, households, members, cadres, stations)]
    return ScopeData(scope, epsg, communities, grids, *frames, hh_pairs, m_pairs, available)


def _epsg(*frames: pd.DataFrame) -> int:
    """The UTM zone of the first non-empty frame's points (the demo's zone when all are empty)."""
    for frame in frames:
        if len(frame):
            return metric_epsg(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
    return 32648


def _pairs_exist(conn: Connection) -> bool:
    names = ("current_household_pairs", "current_member_pairs")
    found = [conn.scalar(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": n}) for n in names]
    return all(found)


def _frame(conn: Connection, sql: str, params: dict[str, object]) -> pd.DataFrame:
    """Run ``sql`` (psycopg ``%(name)s`` parameters) through COPY … CSV: fast for 10⁶ rows."""
    raw = conn.connection.driver_connection
    query = psycopg.ClientCursor(raw).mogrify(sql, params)
    buf = io.BytesIO()
    with raw.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)") as cp:
        for chunk in cp:
            buf.write(chunk)
    buf.seek(0)
    header = buf.readline().decode().strip().split(",")
    buf.seek(0)
    dtype = {c: "string" if c in _TEXT else "float64" for c in header if c in _TEXT | _FLOAT}
    frame = pd.read_csv(buf, dtype=dtype, true_values=["t"], false_values=["f"])
    for c in _TEXT & set(frame.columns):
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


_TEXT = {"code", "name", "street_code", "kind", "party_org", "level", "wkb"}
_FLOAT = {"lon", "lat", "x", "y", "distance_m", "area_m2", "floors"}


def _xy(frame: pd.DataFrame, epsg: int) -> pd.DataFrame:
    """Add ``x``/``y`` metres from ``lon``/``lat`` (NaN stays NaN)."""
    if len(frame) == 0:
        return frame.assign(x=pd.Series(dtype=float), y=pd.Series(dtype=float))
    x, y, _ = to_metres(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float), epsg=epsg)
    return frame.assign(x=x, y=y)
