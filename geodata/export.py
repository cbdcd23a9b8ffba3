"""Export of layers to GeoJSON, GeoPackage, CSV or XLSX, with names and phones masked.

Exportable layers live in a registry (:data:`EXPORTERS`): each maps a layer name to a function
``(conn, scope) -> GeoDataFrame`` in EPSG:4326. Every layer of :mod:`geodata.layers` is
registered; other features register theirs (for example pairings) with :func:`exporter`.
Privacy: unless ``unmasked`` is given, sensitive text fields are masked (张*三, 138****1234)
and sensitive yes/no flags (elderly living alone, disabled, ...) are left out; an unmasked
export is logged at WARNING and written to ``audit_log``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geodata.layers import LAYERS, Layer
from geodata.sheets import write_csv, write_xlsx
from gridsvc.errors import InputRejected, NotFound, Reject

log = logging.getLogger(__name__)
FORMATS = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".csv": "csv",
    ".xlsx": "xlsx",
}


@dataclass(frozen=True)
class Scope:
    """Which records to export: everything, one street or one community (by code)."""

    street_code: str | None = None
    community_code: str | None = None


@dataclass(frozen=True)
class Exporter:
    """How to fetch one exportable layer, and which columns are private."""

    fetch: Callable[[Connection, Scope], gpd.GeoDataFrame]
    masked: tuple[str, ...] = ()
    omitted: tuple[str, ...] = ()


#: Exportable layers by name.
EXPORTERS: dict[str, Exporter] = {}


def exporter(name: str, *, masked: tuple[str, ...] = (), omitted: tuple[str, ...] = ()):
    """Register ``fetch(conn, scope) -> GeoDataFrame`` as the exporter of layer ``name``."""

    def register(fetch: Callable[[Connection, Scope], gpd.GeoDataFrame]):
        EXPORTERS[name] = Exporter(fetch, masked, omitted)
        return fetch

    return register


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote."""

    layer: str
    path: Path
    records: int
    masked: bool


def export_layer(
    conn: Connection,
    layer: str,
    path: str | Path,
    *,
    scope: Scope | None = None,
    unmasked: bool = False,
    user: str | None = None,
) -> ExportResult:
    """Write ``layer`` to ``path``; the format follows the extension.

    Parameters
    ----------
    conn
        An open connection.
    layer
        A name in :data:`EXPORTERS`.
    path
        ``.geojson``/``.json``, ``.gpkg``, ``.csv`` (UTF-8 with BOM, lon/lat or WKT columns) or
        ``.xlsx``.
    scope
        Limit to one street or community.
    unmasked
        Write names and phones in clear and include sensitive flags; logged at WARNING and
        recorded in ``audit_log`` in the caller's transaction (the caller commits).
    user
        Who asked, for the log line.

    Raises
    ------
    InputRejected
        Unknown layer or extension.
    NotFound
        The scope's street or community code does not exist.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if layer not in EXPORTERS:
        _refuse("layer", f"unknown layer {layer!r}; expected one of {', '.join(EXPORTERS)}")
    if fmt is None:
        _refuse("path", f"unknown extension {path.suffix!r}; expected {', '.join(FORMATS)}")
    scope = scope or Scope()
    _check_scope(conn, scope)
    spec = EXPORTERS[layer]
    frame = spec.fetch(conn, scope)
    if unmasked:
        audit_unmasked(conn, layer=layer, path=path, records=len(frame), user=user)
    else:
        frame = privatise(frame, masked=spec.masked, omitted=spec.omitted)
    write_frame(frame, path, layer=layer, fmt=fmt)
    return ExportResult(layer, path, len(frame), not unmasked)


def audit_unmasked(
    conn: Connection, *, layer: str, path: Path, records: int, user: str | None
) -> None:
    """Record an unmasked export: a WARNING log line, and an ``audit_log`` row (caller commits)."""
    who = user or "unknown user"
    log.warning("unmasked export of %s (%d records) to %s by %s", layer, records, path, who)
    if conn.scalar(text("SELECT to_regclass('audit_log') IS NOT NULL")):
        from gridsvc.accounts.audit import record

        details = {"layer": layer, "path": str(path), "records": records}
        record(conn, "export.unmasked", username=who, target=layer, details=details)


def _refuse(field: str, reason: str) -> NoReturn:
    raise InputRejected(reason, [Reject("export", None, field, reason)])


def _check_scope(conn: Connection, scope: Scope) -> None:
    for table, noun, code in (
        ("streets", "street", scope.street_code),
        ("communities", "community", scope.community_code),
    ):
        found = (
            code is None
            or conn.execute(text(f"SELECT 1 FROM {table} WHERE code = :c"), {"c": code}).first()
        )
        if not found:
            raise NotFound(f"no {noun} with code {code!r}")


# --- privacy -----------------------------------------------------------------------------------


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 张小三 → 张*三, 欧阳小明 → 欧**明; empty stays empty."""
    if not name:
        return name
    if len(name) <= 2:
        return name[0] + "*" * (len(name) - 1) if len(name) == 2 else "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str | None) -> str | None:
    """13812341234 → 138****1234; shorter numbers keep their last two characters."""
    if not phone:
        return phone
    if len(phone) >= 8:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * max(len(phone) - 2, 0) + phone[-2:]


def privatise(
    frame: gpd.GeoDataFrame, *, masked: tuple[str, ...], omitted: tuple[str, ...]
) -> gpd.GeoDataFrame:
    """A copy with ``masked`` columns masked and ``omitted`` columns dropped."""
    out = frame.drop(columns=[c for c in omitted if c in frame.columns])
    for column in masked:
        if column in out.columns:
            mask = mask_phone if "phone" in column else mask_name
            out[column] = [mask(v) for v in out[column]]
    return out


# --- fetching ----------------------------------------------------------------------------------


def _scope_sql(layer: Layer) -> tuple[str, str]:
    """SQL conditions on alias ``t`` selecting a street (``:street``) or community (``:comm``)."""
    comm_of_street = (
        "SELECT c.id FROM communities c JOIN streets s ON s.id = c.street_id WHERE s.code = :street"
    )
    if layer.name == "streets":
        return (
            "t.code = :street",
            "t.id IN (SELECT street_id FROM communities WHERE code = :comm)",
        )
    if layer.name == "communities":
        return "t.street_id IN (SELECT id FROM streets WHERE code = :street)", "t.code = :comm"
    columns = {p.column for p in layer.parents}
    by_street = (
        "t.street_id IN (SELECT id FROM streets WHERE code = :street)"
        if "street_id" in columns
        else f"t.community_id IN ({comm_of_street})"
    )
    if "community_id" not in columns:  # a street-level layer (roads): the community's street
        return by_street, "t.street_id IN (SELECT street_id FROM communities WHERE code = :comm)"
    return by_street, "t.community_id IN (SELECT id FROM communities WHERE code = :comm)"


def layer_query(layer: Layer, scope: Scope) -> tuple[str, dict[str, str]]:
    """SELECT of a layer's columns, parent codes and WKB geometry, limited to ``scope``."""
    selects = ["t.code"]
    for f in layer.fields:
        selects.append(
            f"array_to_string(t.{f.name}, ';') AS {f.name}" if f.kind == "list" else f"t.{f.name}"
        )
    joins = []
    for i, parent in enumerate(layer.parents):
        selects.append(f"p{i}.code AS {parent.field}")
        joins.append(f"LEFT JOIN {parent.layer} p{i} ON p{i}.id = t.{parent.column}")
    selects.append("ST_AsBinary(t.geom) AS wkb")
    by_street, by_comm = _scope_sql(layer)
    where, params = "", {}
    if scope.street_code:
        where, params = f"WHERE {by_street}", {"street": scope.street_code}
    elif scope.community_code:
        where, params = f"WHERE {by_comm}", {"comm": scope.community_code}
    sql = (
        f"SELECT {', '.join(selects)} FROM {layer.table} t {' '.join(joins)} {where} "
        "ORDER BY t.code"
    )
    return sql, params


def fetch_layer(conn: Connection, layer: Layer, scope: Scope) -> gpd.GeoDataFrame:
    """The records of a base-data layer as a GeoDataFrame in EPSG:4326."""
    sql, params = layer_query(layer, scope)
    result = conn.execute(text(sql), params)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for f in layer.fields:
        if f.kind == "int":
            frame[f.name] = frame[f.name].astype("Int64")
    wkb = frame.pop("wkb").to_numpy(dtype=object)
    present = np.array([w is not None for w in wkb], dtype=bool)
    geoms = np.full(len(wkb), None, dtype=object)
    if present.any():
        geoms[present] = shapely.from_wkb([bytes(w) for w in wkb[present]])
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=4326)


def _register_base_layers() -> None:
    for spec in LAYERS.values():
        masked = tuple(f.name for f in spec.fields if f.sensitive and f.kind == "text")
        omitted = tuple(f.name for f in spec.fields if f.sensitive and f.kind != "text")
        exporter(spec.name, masked=masked, omitted=omitted)(
            lambda conn, scope, spec=spec: fetch_layer(conn, spec, scope)
        )


_register_base_layers()


# --- writing -----------------------------------------------------------------------------------


def tabular(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """A plain table: points as ``lon``/``lat`` columns, other geometry as ``wkt``."""
    out = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    geoms = np.asarray(frame.geometry.array, dtype=object)
    present = shapely.is_geometry(geoms)
    types = np.full(len(geoms), -1)
    types[present] = shapely.get_type_id(geoms[present])
    if present.any() and (types[present] == 0).all():
        lon = np.full(len(geoms), np.nan)
        lat = np.full(len(geoms), np.nan)
        lon[present] = np.round(shapely.get_x(geoms[present]), 7)
        lat[present] = np.round(shapely.get_y(geoms[present]), 7)
        out["lon"], out["lat"] = lon, lat
    else:
        out["wkt"] = [None if g is None else shapely.to_wkt(g, rounding_precision=7) for g in geoms]
    return out


def write_frame(frame: gpd.GeoDataFrame, path: Path, *, layer: str, fmt: str) -> None:
    """Write ``frame`` in ``fmt`` (geojson, gpkg, csv, xlsx); CSV and XLSX cells are never
    formulas (:mod:`geodata.sheets`)."""
    if fmt == "geojson":
        frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    elif fmt == "gpkg":
        frame.to_file(path, driver="GPKG", layer=layer, engine="pyogrio")
    elif fmt == "csv":
        write_csv(tabular(frame), path)
    else:
        write_xlsx({layer: tabular(frame)}, path)


# --- contacts ----------------------------------------------------------------------------------


@exporter("contacts")
def _contacts(conn: Connection, scope: Scope) -> gpd.GeoDataFrame:
    """The effective contacts (corrections applied) in the columns ``contacts import`` reads.

    Times are in the session's time zone without an offset (the caller sets it to
    GRIDSVC_TIMEZONE, Beijing time, which is what the import assumes); a note that a
    spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) is written as text.
    """
    where, params = "", {}
    if scope.street_code:
        where = "AND co.street_id IN (SELECT id FROM streets WHERE code = :street)"
        params = {"street": scope.street_code}
    elif scope.community_code:
        where, params = "AND co.code = :comm", {"comm": scope.community_code}
    result = conn.execute(
        text(
            "SELECT h.code AS household_code, m.code AS member_code, cd.code AS cadre_code, "
            "to_char(c.contacted_at, 'YYYY-MM-DD HH24:MI:SS') AS contacted_at, c.channel, c.note, "
            "c.source, ST_AsBinary(c.geom) AS wkb FROM contacts c "
            "JOIN households h ON h.id = c.household_id "
            "JOIN communities co ON co.id = c.community_id "
            "LEFT JOIN members m ON m.id = c.member_id LEFT JOIN cadres cd ON cd.id = c.cadre_id "
            "WHERE c.id NOT IN (SELECT supersedes FROM contacts WHERE supersedes IS NOT NULL) "
            f"{where} ORDER BY c.contacted_at, c.id"
        ),
        params,
    )
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    wkb = frame.pop("wkb").to_numpy(dtype=object)
    geoms = np.array([None if w is None else shapely.from_wkb(bytes(w)) for w in wkb], dtype=object)
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=4326)
