"""Bulk loading of validated layer frames into PostGIS: COPY to a staging table, then upsert.

A frame holds one row per record with the layer's fields (``geodata.layers``), parent codes, a
``geometry`` column in EPSG:4326 (may be empty where the layer derives it) and optionally
``_record``, the record's number in its source file, used in reject reports. Re-loading updates by
``code``; parents that the frame does not give (building, grid, community) are derived by
location. Everything runs in the caller's transaction: the caller commits or rolls back.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text
from tqdm import tqdm

from geodata.addresses import building_parts
from geodata.layers import Layer, get_layer
from gridsvc.errors import Forbidden, Reject

CHUNK_ROWS = 50_000
STAGE = "_gridsvc_stage"


@dataclass(frozen=True)
class LoadResult:
    """What one load did."""

    layer: str
    inserted: int
    updated: int
    rejects: tuple[Reject, ...] = field(default=())
    seconds: float = 0.0

    @property
    def loaded(self) -> int:
        """Records inserted or updated."""
        return self.inserted + self.updated


def load_layer(
    conn: Connection,
    layer_name: str,
    frame: gpd.GeoDataFrame | pd.DataFrame,
    *,
    source: str = "input",
    skip_invalid: bool = False,
    progress: bool = False,
) -> LoadResult:
    """Load ``frame`` into the table of ``layer_name`` inside the caller's transaction.

    Parameters
    ----------
    conn
        An open connection in a transaction; nothing is committed here.
    layer_name
        One of :data:`geodata.layers.LAYERS`.
    frame
        Validated records (see the module docstring).
    source
        Name of the input, used in reject reports.
    skip_invalid
        Load the records whose parent codes exist and return the others as rejects. When False
        (the default) and any parent code is unknown, nothing is loaded and every reject is
        returned: the caller raises.
    progress
        Show a progress bar while copying.

    Returns
    -------
    LoadResult
        Counts, rejects and time taken.
    """
    started = time.perf_counter()
    layer = get_layer(layer_name)
    if layer.name == "buildings":
        frame = with_building_parts(frame)
    _stage(conn, layer, frame, progress=progress)
    rejects = _parent_rejects(conn, layer, source)
    if rejects and not skip_invalid:
        conn.exec_driver_sql(f"DROP TABLE {STAGE}")
        return LoadResult(layer.name, 0, 0, tuple(rejects), time.perf_counter() - started)
    if rejects:
        bad = sorted({r.record for r in rejects if r.record is not None})
        conn.execute(text(f"DELETE FROM {STAGE} WHERE rec = ANY(:bad)"), {"bad": bad})
    _resolve(conn, layer)
    outside = _scope_rejects(conn, layer, source)
    if outside and not skip_invalid:
        conn.exec_driver_sql(f"DROP TABLE {STAGE}")
        return LoadResult(layer.name, 0, 0, tuple(outside), time.perf_counter() - started)
    if outside:
        bad = sorted({r.record for r in outside if r.record is not None})
        conn.execute(text(f"DELETE FROM {STAGE} WHERE rec = ANY(:bad)"), {"bad": bad})
        rejects = sorted([*rejects, *outside], key=lambda r: (r.record or 0, r.field or ""))
    inserted, updated = _upsert_in_scope(conn, layer, given=set(frame.columns))
    conn.exec_driver_sql(f"DROP TABLE {STAGE}")
    return LoadResult(layer.name, inserted, updated, tuple(rejects), time.perf_counter() - started)


def with_building_parts(frame: pd.DataFrame) -> pd.DataFrame:
    """Buildings with ``compound`` and ``number`` filled from names like "翠湖小区3号楼" where
    the frame gives none (a given value is kept)."""
    if "name" not in frame.columns:
        return frame
    parts = [building_parts(n if isinstance(n, str) else None) for n in frame["name"]]
    out = frame.copy()
    for i, column in enumerate(("compound", "number")):
        derived = pd.Series([p[i] for p in parts], index=frame.index, dtype=object)
        given = out[column] if column in out.columns else pd.Series(None, index=frame.index)
        out[column] = given.where(given.notna(), derived).astype(object)
    return out


# --- staging -----------------------------------------------------------------------------------


def _stage_columns(layer: Layer) -> list[str]:
    return ["rec", *layer.field_names, "wkb"]


def _stage(conn: Connection, layer: Layer, frame: pd.DataFrame, *, progress: bool) -> None:
    columns = _stage_columns(layer)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {STAGE} ("
        + ", ".join(f'"{c}" {"int" if c == "rec" else "text"}' for c in columns)
        + ") ON COMMIT DROP"
    )
    table = _stage_frame(layer, frame)
    raw = conn.connection.driver_connection
    copy_sql = f"COPY {STAGE} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    chunks = range(0, len(table), CHUNK_ROWS)
    bar = tqdm(total=len(table), unit="rec", desc=f"load {layer.name}", disable=not progress)
    with raw.cursor() as cur, cur.copy(copy_sql) as copy:
        for start in chunks:
            part = table.iloc[start : start + CHUNK_ROWS]
            buffer = io.StringIO()
            part.to_csv(buffer, header=False, index=False)
            copy.write(buffer.getvalue())
            bar.update(len(part))
    bar.close()
    conn.exec_driver_sql(f"CREATE INDEX ON {STAGE} (code)")
    conn.exec_driver_sql(f"ANALYZE {STAGE}")


def _stage_frame(layer: Layer, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as text columns in staging order, geometry as hex WKB."""
    n = len(frame)
    out = pd.DataFrame(index=range(n))
    records = frame["_record"] if "_record" in frame else pd.Series(np.arange(1, n + 1))
    out["rec"] = np.asarray(records, dtype=np.int64)
    for name in layer.field_names:
        values = frame[name] if name in frame else pd.Series([None] * n)
        out[name] = [_cell(v) for v in values]
    geoms = frame.geometry.values if isinstance(frame, gpd.GeoDataFrame) else [None] * n
    out["wkb"] = _hex_wkb(np.asarray(geoms, dtype=object), multi=layer.geometry)
    return out


def _cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


#: Single geometry type id → its multi type, for layers stored as multi geometries.
_MULTI = {
    "MultiPolygon": (3, shapely.MultiPolygon),
    "MultiLineString": (1, shapely.MultiLineString),
}


def _hex_wkb(geoms: np.ndarray, *, multi: str) -> list[str | None]:
    """Hex WKB of each geometry; single parts of a ``Multi…`` layer wrapped into one."""
    present = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
    out: list[str | None] = [None] * len(geoms)
    if not present.any():
        return out
    chosen = geoms[present]
    if multi in _MULTI:
        single, wrap = _MULTI[multi]
        parts = shapely.get_type_id(chosen) == single
        chosen = chosen.copy()
        chosen[parts] = [wrap([g]) for g in chosen[parts]]
    hexes = shapely.to_wkb(chosen, hex=True, output_dimension=2)
    for i, h in zip(np.flatnonzero(present), hexes, strict=True):
        out[i] = h
    return out


# --- checks ------------------------------------------------------------------------------------


#: The singular noun of each parent layer, for reject reasons.
_NOUNS = {
    "streets": "street",
    "communities": "community",
    "grids": "grid",
    "buildings": "building",
    "households": "household",
    "members": "member",
}


def _parent_rejects(conn: Connection, layer: Layer, source: str) -> list[Reject]:
    rejects: list[Reject] = []
    for parent in layer.parents:
        rows = conn.execute(
            text(
                f'SELECT s.rec, s."{parent.field}" FROM {STAGE} s '
                f'WHERE s."{parent.field}" IS NOT NULL AND NOT EXISTS '
                f'(SELECT 1 FROM {parent.layer} p WHERE p.code = s."{parent.field}") '
                "ORDER BY s.rec"
            )
        )
        rejects += [
            Reject(source, rec, parent.field, f"unknown {_NOUNS[parent.layer]} code", value)
            for rec, value in rows
        ]
    if not layer.geometry_required and "building_code" in layer.field_names:
        rows = conn.execute(
            text(  # a stored record keeps its location (a partial update)
                f"SELECT rec FROM {STAGE} s WHERE wkb IS NULL AND building_code IS NULL "
                f"AND NOT EXISTS (SELECT 1 FROM {layer.table} t WHERE t.code = s.code)"
            )
        )
        rejects += [
            Reject(source, rec, "geometry", "no geometry and no building_code") for (rec,) in rows
        ]
    return sorted(rejects, key=lambda r: (r.record or 0, r.field or ""))


# --- scope: a caller under row-level security writes only inside its street or community --------

#: Layers whose rows belong to a community, and those whose rows belong to a street.
_BY_COMMUNITY = ("grids", "buildings", "households", "members", "stations")
_BY_STREET = ("roads",)


def _scoped(conn: Connection) -> str | None:
    """The caller's scope when it is limited to a street or community (the web app's role
    under row-level security), as words for a reject; None for the owner or an unscoped admin."""
    row = conn.execute(
        text(
            "SELECT nullif(current_setting('app.street', true), ''), "
            "nullif(current_setting('app.community', true), ''), "
            "coalesce(current_setting('app.all', true), '') = 'on'"
        )
    ).one()
    street, community, every = row
    if every or (street is None and community is None):
        return None
    return "your street" if street is not None else "your community"


def _scope_rejects(conn: Connection, layer: Layer, source: str) -> list[Reject]:
    """Records that would land outside the caller's scope (where no community or street of its
    own contains them): named, instead of a row-level security error at the upsert."""
    scope = _scoped(conn)
    if scope is None or layer.name not in (*_BY_COMMUNITY, *_BY_STREET, "cadres"):
        return []
    if layer.name in _BY_STREET:
        where = "street_id IS NULL OR street_id NOT IN (SELECT id FROM streets)"
    elif layer.name == "cadres":
        where = (
            "(community_id IS NULL OR community_id NOT IN (SELECT id FROM communities)) "
            "AND (street_id IS NULL OR street_id NOT IN (SELECT id FROM streets))"
        )
    else:
        where = "community_id IS NULL OR community_id NOT IN (SELECT id FROM communities)"
    rows = conn.execute(text(f"SELECT rec FROM {STAGE} WHERE {where} ORDER BY rec"))
    reason = f"lies outside {scope}: no community of yours contains it"
    return [Reject(source, rec, "geometry", reason) for (rec,) in rows]


def _upsert_in_scope(conn: Connection, layer: Layer, *, given: set[str]) -> tuple[int, int]:
    """:func:`_upsert`; a code that already names a record outside the caller's scope (row-level
    security refuses the update) is refused as :class:`Forbidden`, naming the codes it may."""
    from psycopg.errors import InsufficientPrivilege
    from sqlalchemy.exc import DBAPIError

    try:
        with conn.begin_nested():
            return _upsert(conn, layer, given=given)
    except DBAPIError as exc:
        if not isinstance(exc.orig, InsufficientPrivilege):
            raise
    raise Forbidden(
        f"{layer.name}: some codes already belong to records outside your scope; "
        "nothing imported (ask an administrator of that scope, or use other codes)"
    )


# --- upsert ------------------------------------------------------------------------------------

_CASTS = {
    "int": "::int",
    "bool": "::boolean",
    "list": "",
    "text": "",
    "enum": "",
    "code": "",
    "date": "::date",
    "hash": "",
}


def _value_sql(layer: Layer, name: str) -> str:
    spec = next(f for f in layer.fields if f.name == name)
    if spec.kind == "list":
        return f"coalesce(string_to_array(s.\"{name}\", ';'), '{{}}')"
    return f's."{name}"{_CASTS[spec.kind]}'


def _defaults(layer: Layer) -> dict[str, str]:
    """Columns whose absence means the table's default rather than NULL."""
    return {
        "kind": {"buildings": "'residential'", "members": "'resident'"}.get(layer.name, "NULL"),
        "size": "1",
        "eligible": "true",
        "available": "true",
        "available_site": "false",
        "elderly_alone": "false",
        "disabled": "false",
        "low_income": "false",
        "children": "false",
    }


def _upsert(conn: Connection, layer: Layer, *, given: set[str]) -> tuple[int, int]:
    """Insert new codes, update known ones: plain fields only when the frame has the column.

    Parents come resolved from the stage (absent means derived by location again); an empty
    geometry keeps the stored one.
    """
    defaults = _defaults(layer)
    columns = ["code"]
    values = ["s.code"]
    for f in layer.fields:
        columns.append(f.name)
        value = _value_sql(layer, f.name)
        values.append(f"coalesce({value}, {defaults[f.name]})" if f.name in defaults else value)
    for parent in layer.parents:
        columns.append(parent.column)
        values.append(f"s.{parent.column}")
    columns.append("geom")
    values.append("s.geom")
    kept = {f.name for f in layer.fields} - given
    keep_geom = f"geom = coalesce(EXCLUDED.geom, {layer.table}.geom)"
    updates = ", ".join(
        keep_geom if c == "geom" else f"{c} = EXCLUDED.{c}" for c in columns[1:] if c not in kept
    )
    sql = (
        f"INSERT INTO {layer.table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {STAGE} s "
        f"ON CONFLICT (code) DO UPDATE SET {updates} "
        "RETURNING (xmax = 0)"
    )
    flags = conn.execute(text(sql)).scalars().all()
    inserted = sum(1 for f in flags if f)
    return inserted, len(flags) - inserted


# --- resolution: parent ids and geometry, on the staging table ----------------------------------


def _resolve(conn: Connection, layer: Layer) -> None:
    """Give every staged record its geometry and parent ids before the single upsert.

    Given parent codes are looked up; missing parents are derived by location (building, then
    grid, then community), all on the small temporary stage so the target table is written once.
    """
    columns = ", ".join(f"ADD COLUMN {p.column} int" for p in layer.parents)
    kind = layer.geometry if layer.geometry in _MULTI else "Point"
    conn.exec_driver_sql(
        f"ALTER TABLE {STAGE} ADD COLUMN geom geometry({kind}, 4326)"
        + (f", {columns}" if columns else "")
    )
    geom = "ST_SetSRID(wkb::geometry, 4326)"
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET geom = "
        + (f"ST_Multi({geom})" if kind in _MULTI else geom)
        + " WHERE wkb IS NOT NULL"
    )
    for parent in layer.parents:
        conn.exec_driver_sql(
            f"UPDATE {STAGE} s SET {parent.column} = p.id FROM {parent.layer} p "
            f'WHERE p.code = s."{parent.field}"'
        )
    steps = [_STORED_GEOM]
    if "building_id" in {p.column for p in layer.parents} and kind == "Point":
        steps.insert(0, _POINT_IN_BUILDING)
    steps += _DERIVATIONS.get(layer.name, ())
    for statement in steps:
        conn.exec_driver_sql(statement.format(t=layer.table, s=STAGE))
    conn.exec_driver_sql(f"ANALYZE {STAGE}")


_POINT_IN_BUILDING = (
    "UPDATE {s} s SET geom = ST_PointOnSurface(b.geom) FROM buildings b "
    "WHERE s.geom IS NULL AND s.building_id = b.id"
)
_STORED_GEOM = "UPDATE {s} s SET geom = t.geom FROM {t} t WHERE s.geom IS NULL AND t.code = s.code"
_BUILDING_BY_LOCATION = (
    "UPDATE {s} s SET building_id = b.id FROM buildings b "
    "WHERE s.building_id IS NULL AND ST_Intersects(b.geom, s.geom)"
)
_GRID_FROM_BUILDING = (
    "UPDATE {s} s SET grid_id = b.grid_id FROM buildings b "
    "WHERE s.grid_id IS NULL AND s.building_id = b.id"
)
_GRID_BY_LOCATION = (
    "UPDATE {s} s SET grid_id = g.id FROM grids g "
    "WHERE s.grid_id IS NULL AND ST_Intersects(g.geom, s.geom)"
)
_GRID_OF_POLYGON = (
    "UPDATE {s} s SET grid_id = g.id FROM grids g "
    "WHERE s.grid_id IS NULL AND ST_Intersects(g.geom, ST_PointOnSurface(s.geom))"
)
_COMMUNITY_FROM_GRID = (
    "UPDATE {s} s SET community_id = g.community_id FROM grids g "
    "WHERE s.community_id IS NULL AND s.grid_id = g.id"
)
_COMMUNITY_FROM_BUILDING = (
    "UPDATE {s} s SET community_id = b.community_id FROM buildings b "
    "WHERE s.community_id IS NULL AND s.building_id = b.id"
)
_COMMUNITY_BY_LOCATION = (
    "UPDATE {s} s SET community_id = c.id FROM communities c "
    "WHERE s.community_id IS NULL AND c.geom IS NOT NULL "
    "AND ST_Intersects(c.geom, ST_PointOnSurface(s.geom))"
)
_STREET_BY_LOCATION = (
    "UPDATE {s} s SET street_id = t.id FROM streets t "
    "WHERE s.street_id IS NULL AND t.geom IS NOT NULL "
    "AND ST_Intersects(t.geom, ST_PointOnSurface(s.geom))"
)
_STREET_OF_COMMUNITY_BY_LOCATION = (
    "UPDATE {s} s SET street_id = c.street_id FROM communities c "
    "WHERE s.street_id IS NULL AND c.geom IS NOT NULL "
    "AND ST_Intersects(c.geom, ST_PointOnSurface(s.geom))"
)
_COMMUNITY_OF_GRID_BY_LOCATION = (
    "UPDATE {s} s SET community_id = g.community_id FROM grids g "
    "WHERE s.community_id IS NULL AND ST_Intersects(g.geom, s.geom)"
)

_DERIVATIONS: dict[str, Iterable[str]] = {
    "buildings": (_GRID_OF_POLYGON, _COMMUNITY_FROM_GRID, _COMMUNITY_BY_LOCATION),
    "households": (
        _BUILDING_BY_LOCATION,
        _GRID_FROM_BUILDING,
        _GRID_BY_LOCATION,
        _COMMUNITY_FROM_GRID,
        _COMMUNITY_FROM_BUILDING,
        _COMMUNITY_BY_LOCATION,
    ),
    "stations": (_COMMUNITY_OF_GRID_BY_LOCATION, _COMMUNITY_BY_LOCATION),
    "roads": (_STREET_BY_LOCATION, _STREET_OF_COMMUNITY_BY_LOCATION),
}
_DERIVATIONS["members"] = _DERIVATIONS["households"]
