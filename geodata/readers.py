"""Readers of import files (GeoJSON, GeoPackage, zipped Shapefile, CSV, XLSX) into raw frames.

Each reader guards before it parses: the file size, the JSON nesting depth (counted on the raw
text, no recursion) and, for WKT cells, the nesting and vertex count. A reader does not judge
the records: it returns every record as read, numbered from 1 in ``_record`` (the feature number,
or the row number below the header), with the geometry in the file's own CRS. Records it cannot
read at all (a row with too many cells, a non-numeric longitude, malformed WKT or GeoJSON
geometry) come back as rejects with an empty geometry.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from gridsvc.errors import InputRejected, Reject

LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "东经")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "北纬")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape", "几何", "坐标串")
SUFFIXES = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".zip": "shapefile",
    ".shp": "shapefile",
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
}
_EWKT = re.compile(r"^\s*SRID=(\d+);", re.IGNORECASE)


@dataclass(frozen=True)
class RawInput:
    """One file as read: records in ``frame`` (with ``_record``), its CRS and read errors."""

    source: str
    frame: gpd.GeoDataFrame
    crs: CRS | None
    rejects: tuple[Reject, ...] = ()
    encoding: str | None = None
    has_geometry: bool = True
    notes: tuple[str, ...] = field(default=())


def read_input(
    path: str | Path,
    *,
    max_nesting: int = 32,
    max_vertices: int = 10_000,
    max_mb: float = 1024.0,
    encoding: str | None = None,
    layer: str | None = None,
    max_unzipped_mb: float = 1024.0,
    max_zip_ratio: float = 200.0,
) -> RawInput:
    """Read one import file, guarding size and nesting before any parsing.

    Parameters
    ----------
    path
        The file; its suffix chooses the reader (``.geojson``/``.json``, ``.gpkg``, ``.zip`` or
        ``.shp``, ``.csv``/``.txt``, ``.xlsx``).
    max_nesting, max_vertices
        Caps checked before geometries are parsed (JSON text, WKT cells).
    max_mb
        Larger files are refused unread.
    encoding
        Text encoding of a CSV or a Shapefile's attributes; default: detected (CSV tries UTF-8,
        with or without BOM, then GB18030, which covers GBK and GB2312).
    layer
        The target layer's name: picks the like-named table of a multi-table GeoPackage.
    max_unzipped_mb, max_zip_ratio
        Archives (zipped Shapefile, XLSX) are refused unread when their members would
        decompress to more than ``max_unzipped_mb`` in all, or one member of 1 MB or more
        would grow more than ``max_zip_ratio`` times (:func:`check_archive`).

    Raises
    ------
    InputRejected
        The file as a whole cannot be read: unknown format, too large, too deeply nested, not
        decodable, no header, several tables and none named ``layer``, an archive that would
        decompress too far.
    """
    path = Path(path)
    source = path.name
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(SUFFIXES))
        _refuse(source, f"unknown file type {path.suffix!r}; expected one of {known}")
    if not path.is_file():
        _refuse(source, "no such file")
    size_mb = path.stat().st_size / 1e6
    if size_mb > max_mb:
        _refuse(source, f"file is {size_mb:.0f} MB, more than the {max_mb:g} MB cap")
    if kind == "geojson":
        return read_geojson(path, max_nesting=max_nesting)
    if path.suffix.lower() in ARCHIVES:
        check_archive(path, max_unzipped_mb=max_unzipped_mb, max_ratio=max_zip_ratio)
    if kind in {"gpkg", "shapefile"}:
        return read_ogr(path, encoding=encoding, layer=layer)
    table = read_csv_rows(path, encoding) if kind == "csv" else read_xlsx_rows(path)
    header, rows, used = table
    return table_input(
        source, header, rows, encoding=used, max_nesting=max_nesting, max_vertices=max_vertices
    )


def _refuse(source: str, reason: str, field_name: str | None = None) -> NoReturn:
    raise InputRejected(
        f"{source}: file rejected, nothing imported", [Reject(source, None, field_name, reason)]
    )


# --- archives ----------------------------------------------------------------------------------

#: Suffixes of files that are zip archives (a zipped Shapefile, an XLSX workbook).
ARCHIVES = (".zip", ".xlsx")
#: Members smaller than this (uncompressed) are not judged by their ratio: tiny files of
#: repeated bytes (a .cpg, an XLSX style sheet) compress well and are harmless.
RATIO_FLOOR = 1 << 20
#: How much of a Shapefile's ``.dbf`` records the encoding is detected from.
ENCODING_SAMPLE = 1 << 20


def check_archive(path: Path, *, max_unzipped_mb: float, max_ratio: float) -> None:
    """Refuse a zip bomb before anything in it is read: from the central directory only.

    The total uncompressed size must stay within ``max_unzipped_mb`` and no member of
    :data:`RATIO_FLOOR` bytes or more may grow more than ``max_ratio`` times. Python's zip
    reader stops at each member's declared size, so a directory that under-declares cannot
    make a later read grow further.

    Raises
    ------
    InputRejected
        Naming the member, its sizes and the setting that refused it.
    """
    source = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        _refuse(source, f"not a readable zip archive: {exc}")
    total = sum(m.file_size for m in members)
    if total > max_unzipped_mb * 1e6:
        _refuse(
            source,
            f"archive would decompress to {total / 1e6:,.0f} MB, more than the "
            f"{max_unzipped_mb:g} MB cap (GRIDSVC_MAX_UNZIPPED_MB)",
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= RATIO_FLOOR and ratio > max_ratio:
            _refuse(
                source,
                f"archive member {member.filename!r} would grow {ratio:,.0f} times "
                f"({member.compress_size:,d} to {member.file_size:,d} bytes), more than the "
                f"cap of {max_ratio:g} (GRIDSVC_MAX_ZIP_RATIO)",
                "file",
            )


# --- GeoJSON -----------------------------------------------------------------------------------

_CHUNK = 1 << 24
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1
_MARK = _OPEN != 0
_MARK[ord('"')] = True


def _depth_steps(data: bytes) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per chunk, at each quote and bracket: the nesting depth after it, and feature openings.

    Escaped backslashes and quotes are blanked first (same length, left to right as JSON reads
    them); then a quote's parity tells what lies inside a string, where brackets do not count.
    Vectorised over the quotes and brackets only, chunked: linear time, bounded memory.
    """
    data = data.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    quotes, depth = 0, 0
    for offset in range(0, len(data), _CHUNK):
        count = min(_CHUNK, len(data) - offset)
        arr = np.frombuffer(data, dtype=np.uint8, count=count, offset=offset)
        marks = arr[np.flatnonzero(_MARK[arr])]
        if not len(marks):
            continue
        inside = (np.cumsum(marks == ord('"'), dtype=np.int32) + quotes) % 2 == 1
        step = _OPEN[marks]
        step[inside] = 0
        levels = np.cumsum(step, dtype=np.int32) + depth
        yield levels, (marks == ord("{")) & (levels == 3) & ~inside
        quotes, depth = int(inside[-1]), int(levels[-1])


def json_depth(data: bytes) -> tuple[int, int | None]:
    """Maximum nesting depth of JSON text and the feature (1-based) where it is first reached.

    No parse, no recursion: a linear scan. The feature number assumes a FeatureCollection
    (features open at depth 3); None when the deepest point is outside any feature.
    """
    deepest, feature, features = 0, None, 0
    for levels, starts in _depth_steps(data):
        if len(levels) and int(levels.max()) > deepest:
            where = int(np.argmax(levels))
            deepest = int(levels[where])
            feature = features + int(starts[: where + 1].sum()) or None
        features += int(starts.sum())
    return deepest, feature


def read_geojson(path: Path, *, max_nesting: int) -> RawInput:
    """Read a GeoJSON FeatureCollection (or one Feature); no ``crs`` member means WGS84."""
    source = path.name
    data = path.read_bytes()
    depth, record = json_depth(data)
    if depth > max_nesting:
        reason = f"JSON nested {depth} deep, more than the cap of {max_nesting}"
        raise InputRejected(
            f"{source}: file rejected, nothing imported",
            [Reject(source, record, "geometry", reason)],
        )
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        _refuse(source, f"not valid JSON: {exc}")
    features, crs = _features(source, doc)
    rows = [f.get("properties") if isinstance(f, dict) else None for f in features]
    rows = [r if isinstance(r, dict) else {} for r in rows]
    geoms, rejects = _geojson_geometries(source, features)
    frame = gpd.GeoDataFrame(pd.DataFrame(rows, dtype=object), geometry=geoms)
    frame.insert(0, "_record", np.arange(1, len(frame) + 1))
    return RawInput(source, frame, crs, tuple(rejects), "utf-8")


def _features(source: str, doc: Any) -> tuple[list[Any], CRS]:
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection" and isinstance(doc.get("features"), list):
        features = doc["features"]
    elif kind == "Feature":
        features = [doc]
    else:
        _refuse(source, "not a GeoJSON FeatureCollection or Feature")
    crs = CRS.from_epsg(4326)
    member = doc.get("crs")
    if member is not None:
        name = (member.get("properties") or {}).get("name") if isinstance(member, dict) else None
        try:
            crs = CRS.from_user_input(name)
        except Exception:
            _refuse(source, f"unknown CRS {name!r} in the crs member", "crs")
    return features, crs


def _geojson_geometries(source: str, features: list[Any]) -> tuple[np.ndarray, list[Reject]]:
    """Geometries of the features, parsed in one vectorised call; bad ones diagnosed singly."""
    members = [f.get("geometry") if isinstance(f, dict) else None for f in features]
    present = np.array([m is not None for m in members], dtype=bool)
    geoms = np.full(len(members), None, dtype=object)
    texts = [json.dumps(m) for m, p in zip(members, present, strict=True) if p]
    if texts:
        geoms[present] = shapely.from_geojson(texts, on_invalid="ignore")
    rejects = []
    for i in np.flatnonzero(present & ~shapely.is_geometry(geoms)):
        geoms[i], problem = _geojson_geometry(members[i])
        if problem:
            rejects.append(Reject(source, int(i) + 1, "geometry", problem))
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            rejects.append(Reject(source, number, "geometry", "not a GeoJSON Feature"))
    return geoms, rejects


def _geojson_geometry(geom: Any) -> tuple[Any, str | None]:
    try:
        return shapely.from_geojson(json.dumps(geom)), None
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        coords = geom.get("coordinates") if isinstance(geom, dict) else None
        if coords == []:
            return shapely.Point(), None  # an empty geometry, judged by the validator
        return None, f"malformed GeoJSON geometry: {exc}"


# --- GeoPackage and Shapefile (GDAL through pyogrio) -------------------------------------------


def read_ogr(path: Path, *, encoding: str | None, layer: str | None) -> RawInput:
    """Read a GeoPackage table or a (zipped) Shapefile."""
    source = path.name
    if path.suffix.lower() == ".zip":
        _check_zip(path)
    try:
        tables = [str(name) for name, _ in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as exc:
        _refuse(source, f"cannot open: {exc}")
    if not tables:
        _refuse(source, "holds no table")
    if len(tables) > 1 and layer not in tables:
        _refuse(source, f"holds {len(tables)} tables ({', '.join(tables)}); name one {layer!r}")
    table = layer if layer in tables else tables[0]
    if encoding is None and path.suffix.lower() in {".zip", ".shp"}:
        encoding = _shapefile_encoding(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        frame = pyogrio.read_dataframe(path, layer=table, encoding=encoding)
    frame = frame.reset_index(drop=True)
    frame.insert(0, "_record", np.arange(1, len(frame) + 1))
    crs = CRS.from_user_input(frame.crs) if frame.crs is not None else None
    return RawInput(source, frame, crs, (), encoding)


def _shapefile_encoding(path: Path) -> str | None:
    """The attribute encoding of a Shapefile without a ``.cpg``: detected from its ``.dbf``.

    GDAL would read such a file as ISO-8859-1 and garble GBK names without a word. Only the
    header and the first :data:`ENCODING_SAMPLE` bytes of records are read, streamed.
    """
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(n.lower().endswith(".cpg") for n in names):
                return None
            dbf = next((n for n in names if n.lower().endswith(".dbf")), None)
            if dbf is None:
                return None
            with archive.open(dbf) as handle:
                return _dbf_encoding(handle)
    if path.with_suffix(".cpg").exists() or not path.with_suffix(".dbf").exists():
        return None
    with path.with_suffix(".dbf").open("rb") as handle:
        return _dbf_encoding(handle)


def _dbf_encoding(handle: IO[bytes]) -> str | None:
    """UTF-8 or GB18030 from a bounded sample of a ``.dbf``; None when its header names a code
    page (GDAL honours it) or neither decodes."""
    header = handle.read(32)
    if len(header) < 32 or header[29] != 0:  # a language driver id names the code page
        return None
    skip = int.from_bytes(header[8:10], "little") - 32
    if skip > 0:
        handle.read(skip)
    sample = handle.read(ENCODING_SAMPLE)
    for name, label in (("utf-8", "UTF-8"), ("gb18030", "GB18030")):
        try:  # not final: a character cut at the sample's end is no error
            codecs.getincrementaldecoder(name)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        return label
    return None


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            shps = [n for n in archive.namelist() if n.lower().endswith(".shp")]
    except zipfile.BadZipFile:
        _refuse(path.name, "not a zip archive")
    if len(shps) != 1:
        _refuse(path.name, f"the zip should hold exactly one .shp file, it holds {len(shps)}")


# --- CSV and XLSX tables -----------------------------------------------------------------------


def decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    """Decode text with ``encoding``, or detect: BOMs, then UTF-8, then GB18030 (⊃ GBK)."""
    if encoding:
        return data.decode(encoding), encoding
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    for candidate in ("utf-8", "gb18030"):
        try:
            return data.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("gb18030", data, 0, 1, "neither UTF-8 nor GB18030")


def read_csv_rows(path: Path, encoding: str | None) -> tuple[list[str], list[list[str]], str]:
    """Header and rows of a CSV (delimiter ``,``, ``;`` or tab, guessed from the header)."""
    try:
        text, used = decode(path.read_bytes(), encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        _refuse(path.name, f"cannot decode the text ({exc}); give --encoding")
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # caps come later, per cell
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as exc:
        _refuse(path.name, f"malformed CSV near line {reader.line_num}: {exc}")
    if not rows:
        _refuse(path.name, "empty file: no header row")
    return rows[0], rows[1:], used


def _cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def read_xlsx_rows(path: Path) -> tuple[list[str], list[list[Any]], str | None]:
    """Header and rows of the first sheet of an XLSX workbook."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        _refuse(path.name, f"not a readable XLSX workbook: {exc}")
    try:
        rows = [[_cell(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()
    if not rows:
        _refuse(path.name, "empty sheet: no header row")
    header = ["" if v is None else str(v) for v in rows[0]]
    return header, rows[1:], None


def normalise_name(name: Any) -> str:
    """A column name as matched: stripped, BOM removed, lower case."""
    return str(name).replace("\ufeff", "").strip().lower()


def table_input(
    source: str,
    header: list[Any],
    rows: list[list[Any]],
    *,
    encoding: str | None = None,
    max_nesting: int = 32,
    max_vertices: int = 10_000,
) -> RawInput:
    """Turn a header and rows of cells into a raw frame, geometry from lon/lat or WKT columns."""
    names = [normalise_name(h) for h in header]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        _refuse(source, f"duplicate column names: {', '.join(dupes)}")
    width = len(names)
    rejects: list[Reject] = []
    good: list[list[Any]] = []
    records: list[int] = []
    for number, row in enumerate(rows, start=1):
        if all(v is None or str(v).strip() == "" for v in row):
            continue
        if len(row) > width and any(str(v).strip() for v in row[width:] if v is not None):
            reason = f"row has {len(row)} cells, the header {width}"
            rejects.append(Reject(source, number, None, reason))
            row = []
        good.append(list(row[:width]) + [None] * (width - len(row)))
        records.append(number)
    frame = pd.DataFrame(good, columns=names, dtype=object)
    frame.insert(0, "_record", np.asarray(records, dtype=np.int64))
    geoms, crs_hint, geom_rejects, has_geometry = _table_geometry(
        source, frame, max_nesting=max_nesting, max_vertices=max_vertices
    )
    rejects += geom_rejects
    gdf = gpd.GeoDataFrame(frame, geometry=geoms)
    return RawInput(source, gdf, crs_hint, tuple(rejects), encoding, has_geometry)


def _column(frame: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in frame.columns), None)


def _table_geometry(
    source: str, frame: pd.DataFrame, *, max_nesting: int, max_vertices: int
) -> tuple[np.ndarray, CRS | None, list[Reject], bool]:
    lon_col, lat_col = _column(frame, LON_NAMES), _column(frame, LAT_NAMES)
    wkt_col = _column(frame, WKT_NAMES)
    n = len(frame)
    if lon_col and lat_col:
        geoms, rejects = _points(source, frame, lon_col, lat_col)
        return geoms, None, rejects, True
    if wkt_col:
        return (*_wkt(source, frame, wkt_col, max_nesting, max_vertices), True)
    if lon_col or lat_col:
        missing = "lat" if lon_col else "lon"
        _refuse(source, f"a {lon_col or lat_col} column but no {missing} column", missing)
    return np.full(n, None, dtype=object), None, [], False


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    text = values.map(lambda v: "" if v is None else str(v).strip())
    empty = (text == "").to_numpy()
    numbers = pd.to_numeric(text.where(~empty, None), errors="coerce").to_numpy(dtype=float)
    bad = ~empty & ~np.isfinite(numbers)
    return numbers, empty, bad


def _points(
    source: str, frame: pd.DataFrame, lon_col: str, lat_col: str
) -> tuple[np.ndarray, list[Reject]]:
    lon, lon_empty, lon_bad = _numbers(frame[lon_col])
    lat, lat_empty, lat_bad = _numbers(frame[lat_col])
    rejects: list[Reject] = []
    records = frame["_record"].to_numpy()
    for col, values, bad in (
        (lon_col, frame[lon_col], lon_bad),
        (lat_col, frame[lat_col], lat_bad),
    ):
        rejects += [
            Reject(source, int(records[i]), col, "not a number", str(values.iat[i]))
            for i in np.flatnonzero(bad)
        ]
    half = lon_empty ^ lat_empty
    rejects += [
        Reject(source, int(records[i]), lat_col if lat_empty[i] else lon_col, "empty coordinate")
        for i in np.flatnonzero(half)
    ]
    ok = ~(lon_empty | lat_empty | lon_bad | lat_bad)
    geoms = np.full(len(frame), None, dtype=object)
    geoms[ok] = shapely.points(lon[ok], lat[ok])
    return geoms, rejects


def _wkt(
    source: str, frame: pd.DataFrame, col: str, max_nesting: int, max_vertices: int
) -> tuple[np.ndarray, CRS | None, list[Reject]]:
    geoms = np.full(len(frame), None, dtype=object)
    rejects: list[Reject] = []
    srids: set[int] = set()
    records = frame["_record"].to_numpy()
    for i, value in enumerate(frame[col]):
        text = "" if value is None else str(value).strip()
        if not text:
            continue
        match = _EWKT.match(text)
        if match:
            srids.add(int(match.group(1)))
            text = text[match.end() :]
        problem = _wkt_guard(text, max_nesting, max_vertices)
        if problem is None:
            try:
                geoms[i] = shapely.from_wkt(text)
            except shapely.errors.GEOSException as exc:
                problem = f"malformed WKT: {exc}"
        if problem:
            rejects.append(Reject(source, int(records[i]), col, problem))
    crs = CRS.from_epsg(srids.pop()) if len(srids) == 1 else None
    return geoms, crs, rejects


def _wkt_guard(text: str, max_nesting: int, max_vertices: int) -> str | None:
    vertices = text.count(",") + 1
    if vertices > max_vertices:
        return f"about {vertices} vertices, more than the cap of {max_vertices}"
    if text.count("(") <= max_nesting:
        return None
    steps = np.frombuffer(text.encode(), dtype=np.uint8)
    depth = np.cumsum((steps == ord("(")).astype(np.int32) - (steps == ord(")")).astype(np.int32))
    deepest = int(depth.max())
    if deepest > max_nesting:
        return f"WKT nested {deepest} deep, more than the cap of {max_nesting}"
    return None
