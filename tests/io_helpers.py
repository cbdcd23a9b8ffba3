"""Helpers of the import/export tests: a small district in Wuhan and writers of input files."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import openpyxl
import pandas as pd
from shapely import Point, box
from sqlalchemy import Connection, text

from geodata.importer import ImportResult, import_file
from geodata.load import load_layer
from gridsvc.settings import Settings

STREET = "420106001"
COMMUNITY = "420106001001"
GRID_WEST, GRID_EAST = "420106001001001", "420106001001002"
#: Community box in Wuhan (lon 114.30–114.32, lat 30.58–30.59): in CGCS2000 GK zone EPSG:4547.
WEST = box(114.30, 30.58, 114.31, 30.59)
EAST = box(114.31, 30.58, 114.32, 30.59)
BUILDING = box(114.312, 30.582, 114.313, 30.583)


def frame(rows: list[dict[str, Any]], geoms: list[Any]) -> gpd.GeoDataFrame:
    """A GeoDataFrame in EPSG:4326."""
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=4326)


def make_district(conn: Connection) -> Connection:
    """A street, a community, two grids (west, east) and building B1 in the east grid."""
    load_layer(conn, "streets", frame([{"code": STREET, "name": "积玉桥街道"}], [None]))
    load_layer(
        conn,
        "communities",
        frame([{"code": COMMUNITY, "name": "和平社区", "street_code": STREET}], [WEST.union(EAST)]),
    )
    rows = [
        {"code": GRID_WEST, "name": "一网格", "community_code": COMMUNITY},
        {"code": GRID_EAST, "name": "二网格", "community_code": COMMUNITY},
    ]
    load_layer(conn, "grids", frame(rows, [WEST, EAST]))
    load_layer(conn, "buildings", frame([{"code": "B1", "name": "1号楼"}], [BUILDING]))
    return conn


def scalar(conn: Connection, sql: str, **params: Any) -> Any:
    """The single value of a query."""
    return conn.execute(text(sql), params).scalar()


def count(conn: Connection, table: str) -> int:
    """Rows in ``table``."""
    return scalar(conn, f"SELECT count(*) FROM {table}")


def run(
    conn: Connection, settings: Settings, layer: str, path: Path, **options: Any
) -> ImportResult:
    """Import ``path`` with the test settings."""
    return import_file(conn, layer, path, settings=settings, **options)


def write_csv(
    path: Path, header: list[str], rows: list[list[Any]], encoding: str = "utf-8"
) -> Path:
    """A CSV file in ``encoding``."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """An XLSX workbook with one sheet."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def feature(props: dict[str, Any], geometry: dict[str, Any] | None) -> dict[str, Any]:
    """One GeoJSON feature."""
    return {"type": "Feature", "properties": props, "geometry": geometry}


def point(lon: float, lat: float) -> dict[str, Any]:
    """A GeoJSON point."""
    return {"type": "Point", "coordinates": [lon, lat]}


def write_geojson(path: Path, features: list[dict[str, Any]], crs: str | None = None) -> Path:
    """A GeoJSON FeatureCollection, with an old-style ``crs`` member when ``crs`` is given."""
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def write_zipped_shapefile(
    path: Path,
    gdf: gpd.GeoDataFrame,
    *,
    prj: bool = True,
    encoding: str = "utf-8",
    cpg: bool = True,
) -> Path:
    """A zip holding one Shapefile (optionally without its .prj or .cpg)."""
    folder = path.with_suffix("")
    folder.mkdir()
    gdf.to_file(folder / "data.shp", engine="pyogrio", encoding=encoding)
    with zipfile.ZipFile(path, "w") as archive:
        for part in folder.iterdir():
            if (prj or part.suffix != ".prj") and (cpg or part.suffix != ".cpg"):
                archive.write(part, part.name)
    return path


def shapefile_bomb(path: Path, *, padding: int = 1 << 30) -> Path:
    """A ~1 MB zip holding a one-point Shapefile (no .cpg) whose .dbf is followed by ``padding``
    zero bytes: streamed into the archive, never held in memory or on disk unzipped."""
    folder = path.with_suffix("")
    folder.mkdir()
    points = gpd.GeoDataFrame({"code": ["S1"], "name": ["站"]}, geometry=[Point(114.31, 30.585)])
    points.set_crs(4326).to_file(folder / "s.shp", engine="pyogrio", encoding="utf-8")
    chunk = bytes(1 << 24)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for part in sorted(folder.iterdir()):
            if part.suffix == ".cpg":
                continue
            if part.suffix != ".dbf":
                archive.write(part, part.name)
                continue
            with archive.open(part.name, "w", force_zip64=True) as out:
                out.write(part.read_bytes())
                for _ in range(padding // len(chunk)):
                    out.write(chunk)
    return path
