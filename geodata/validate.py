"""Validation of raw import records against a layer spec: clean frame in WGS84 plus rejects.

Pure: no I/O. Every reject names the file, the record number, the field and the reason. Invalid
polygons are repaired with ``shapely.make_valid(..., method="structure")`` only after the vertex
cap, and reported as repaired, not rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geodata import chinacrs
from geodata.layers import Layer, get_layer
from geodata.readers import LAT_NAMES, LON_NAMES, WKT_NAMES, RawInput, normalise_name
from gridsvc.errors import InputRejected, Reject

#: China's bounding box (lon 73–136, lat 3–54); stored coordinates must lie inside.
CHINA = (73.0, 3.0, 136.0, 54.0)
WGS84 = CRS.from_epsg(4326)
CHINA_SYSTEMS = {"gcj02": "gcj02", "gcj-02": "gcj02", "bd09": "bd09", "bd-09": "bd09"}

#: Header names accepted for a field besides its own name.
ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("编码", "代码", "编号"),
    "name": ("名称", "姓名"),
    "phone": ("电话", "手机", "联系电话"),
    "street_code": ("街道编码", "街道代码"),
    "community_code": ("社区编码", "社区代码"),
    "grid_code": ("网格编码", "网格代码"),
    "building_code": ("楼栋编码", "楼栋代码"),
    "kind": ("类型",),
    "size": ("人数", "户人数"),
    "level": ("级别",),
    "elderly_alone": ("独居老人", "独居"),
    "disabled": ("残疾", "残疾人"),
    "low_income": ("低保", "低收入"),
    "children": ("儿童", "有儿童"),
    "eligible": ("可服务",),
    "floors": ("层数", "楼层数"),
    "services": ("服务", "服务项目"),
}
#: Codes without a fixed digit pattern (buildings, households, people, stations, roads): letters
#: (Chinese included), digits, ``_``, ``.`` and ``-``, starting with a letter or digit, at most
#: :data:`MAX_CODE` characters. They appear in URLs (``/records/<kind>/<code>``) and exports:
#: no ``/``, spaces, controls or formula characters.
CODE_CHARS = re.compile(r"^[^\W_][\w.\-]*$")
MAX_CODE = 64
#: Longest text accepted per field (characters); other text fields :data:`MAX_TEXT`.
MAX_LENGTHS = {"name": 100, "phone": 32, "party_org": 200, "services": 500}
MAX_TEXT = 500
#: Control characters no text field may hold (NUL breaks PostgreSQL text; tab, LF and CR are
#: left to the length and code checks).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: Enum values accepted besides the canonical ones (Chinese labels).
ENUM_ALIASES: dict[str, str] = {
    "住宅": "residential",
    "商业": "commercial",
    "商务": "commercial",
    "商住": "mixed",
    "混合": "mixed",
    "公共": "public",
    "居民": "resident",
    "在职": "in_service",
    "in-service": "in_service",
    "流动": "mobile",
    "退休": "retired",
    "街道": "street",
    "社区": "community",
    "快速路": "expressway",
    "主干路": "arterial",
    "次干路": "secondary",
    "支路": "branch",
    "小区道路": "lane",
    "巷道": "lane",
    "步行道": "footway",
    "人行道": "footway",
    # OpenStreetMap highway=* values that name a road class unambiguously
    "motorway": "expressway",
    "primary": "arterial",
    "tertiary": "branch",
    "service": "lane",
    "path": "footway",
    "pedestrian": "footway",
}
TRUE = {"true", "t", "yes", "y", "1", "是", "真", "有"}
FALSE = {"false", "f", "no", "n", "0", "否", "假", "无"}
#: Inclusive bounds of integer fields (None: open).
BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "size": (1, None),
    "floors": (1, 200),
    "min_load": (0, None),
    "max_load": (0, None),
    "household_min": (0, None),
    "household_max": (0, None),
    "member_min": (0, None),
    "member_max": (0, None),
}
RANGES = (
    ("min_load", "max_load"),
    ("household_min", "household_max"),
    ("member_min", "member_max"),
)
_POINT, _LINESTRING, _POLYGON, _MULTIPOINT, _MULTILINESTRING, _MULTIPOLYGON = 0, 1, 3, 4, 5, 6
_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


@dataclass(frozen=True)
class Validated:
    """Records that passed, in WGS84, with the rejects and the repairs made."""

    frame: gpd.GeoDataFrame
    rejects: tuple[Reject, ...]
    repairs: tuple[Reject, ...]
    columns: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    crs: str | None = None
    total: int = 0


def parse_crs(text: str) -> CRS | str:
    """A ``--crs`` value: ``gcj02``/``bd09``, or any CRS pyproj knows (``4547``, ``EPSG:4490``).

    Raises
    ------
    ValueError
        When the value names no known CRS.
    """
    key = text.strip().lower()
    if key in CHINA_SYSTEMS:
        return CHINA_SYSTEMS[key]
    if key.isdigit():
        key = f"EPSG:{key}"
    try:
        return CRS.from_user_input(key)
    except CRSError:
        raise ValueError(f"unknown CRS {text!r}; give an EPSG code, gcj02 or bd09") from None


def crs_label(crs: CRS | str | None) -> str | None:
    """A short name of a CRS for reports: ``EPSG:4547``, ``gcj02``."""
    if crs is None or isinstance(crs, str):
        return crs
    code = crs.to_epsg()
    return f"EPSG:{code}" if code else crs.name


class _Rejects:
    """Collects rejects and the set of rejected rows (positions in the frame)."""

    def __init__(self, source: str, records: np.ndarray) -> None:
        self.source = source
        self.records = records
        self.items: list[Reject] = []
        self.bad = np.zeros(len(records), dtype=bool)

    def add(
        self,
        mask: np.ndarray,
        name: str | None,
        reason: str | Callable[[int], str],
        values: pd.Series | np.ndarray | None = None,
    ) -> None:
        for i in np.flatnonzero(mask):
            text = reason(int(i)) if callable(reason) else reason
            value = None if values is None else values[i]
            value = None if value is None else str(value)
            self.items.append(Reject(self.source, int(self.records[i]), name, text, value))
        self.bad |= mask


def validate(
    raw: RawInput,
    layer: Layer | str,
    *,
    crs: str | None = None,
    max_vertices: int = 10_000,
    columns: Mapping[str, str] | None = None,
) -> Validated:
    """Check every record of ``raw`` against ``layer``; convert geometry to WGS84.

    Parameters
    ----------
    raw
        A file as read by :mod:`geodata.readers`.
    layer
        The target layer (or its name).
    crs
        The ``--crs`` value: overrides the file's CRS; required when the file declares none.
    max_vertices
        Geometries with more vertices are rejected, before any repair.
    columns
        Extra header mapping ``{field: column in the file}``.

    Returns
    -------
    Validated
        Clean records (``_record``, the layer's columns present in the file, ``geometry``),
        rejects sorted by record, repairs.

    Raises
    ------
    InputRejected
        For a problem of the whole file: no ``code`` column, no or unknown CRS.
    """
    spec = get_layer(layer) if isinstance(layer, str) else layer
    frame, present, ignored = _map_columns(raw, spec, columns or {})
    records = frame["_record"].to_numpy()
    rejects = _Rejects(raw.source, records)
    rejects.items += raw.rejects
    rejects.bad |= np.isin(records, [r.record for r in raw.rejects])
    read_error = rejects.bad.copy()
    values = {name: _text(frame[name]) for name in present}
    converted = _check_fields(spec, values, rejects)
    target = _resolve_crs(raw, crs)
    geoms, repairs = _check_geometry(
        spec, raw, values, rejects, skip=read_error, crs=target, max_vertices=max_vertices
    )
    keep = ~rejects.bad
    out = pd.DataFrame({"_record": records[keep]})
    for name in present:
        out[name] = converted[name][keep]
    clean = gpd.GeoDataFrame(out, geometry=geoms[keep], crs=WGS84)
    unreadable = {r.record for r in raw.rejects if r.field is None}
    reported = [r for r in rejects.items if r.field is None or r.record not in unreadable]
    ordered = sorted(reported, key=lambda r: (r.record or 0, r.field or ""))
    return Validated(
        clean,
        tuple(ordered),
        tuple(repairs),
        tuple(present),
        tuple(ignored),
        crs_label(target),
        len(frame),
    )


# --- columns and text --------------------------------------------------------------------------


def _map_columns(
    raw: RawInput, spec: Layer, mapping: Mapping[str, str]
) -> tuple[pd.DataFrame, list[str], list[str]]:
    frame = pd.DataFrame(raw.frame.drop(columns=raw.frame.geometry.name))
    frame.columns = ["_record", *(normalise_name(c) for c in frame.columns[1:])]
    wanted = {normalise_name(v): k for k, v in mapping.items()}
    for name in spec.field_names:
        for alias in ALIASES.get(name, ()):
            if alias in frame.columns and name not in frame.columns:
                wanted.setdefault(alias, name)
    frame = frame.rename(columns=wanted)
    present = [n for n in spec.field_names if n in frame.columns]
    if "code" not in present:
        reason = "no code column (every layer needs one; map another column with --column)"
        raise InputRejected(
            f"{raw.source}: file rejected, nothing imported",
            [Reject(raw.source, None, "code", reason)],
        )
    geometry_names = {*LON_NAMES, *LAT_NAMES, *WKT_NAMES}
    ignored = [c for c in frame.columns[1:] if c not in present and c not in geometry_names and c]
    return frame, present, ignored


def _text(series: pd.Series) -> np.ndarray:
    """Cells as stripped text, integral floats without ``.0``; empty and missing as None."""
    out = np.empty(len(series), dtype=object)
    for i, value in enumerate(series.to_numpy(dtype=object)):
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            out[i] = None
        elif isinstance(value, (bool, np.bool_)):
            out[i] = "true" if value else "false"
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            out[i] = str(int(value))
        else:
            text = str(value).strip()
            out[i] = text or None
    return out


# --- attribute checks --------------------------------------------------------------------------


def _check_fields(
    spec: Layer, values: dict[str, np.ndarray], rejects: _Rejects
) -> dict[str, np.ndarray]:
    converted = dict(values)
    _check_text(spec, values, rejects)
    _check_codes(spec, values, rejects)
    for f in spec.fields:
        if f.name not in values:
            if f.required:
                rejects.add(np.ones(len(rejects.records), bool), f.name, "required column missing")
            continue
        column = values[f.name]
        empty = np.array([v is None for v in column], dtype=bool)
        if f.required:
            rejects.add(empty, f.name, "required field is empty")
        if f.kind == "int":
            converted[f.name] = _check_int(f.name, column, empty, rejects)
        elif f.kind == "bool":
            converted[f.name] = _check_bool(f.name, column, empty, rejects)
        elif f.kind == "enum":
            converted[f.name] = _check_enum(f.name, f.choices, column, empty, rejects)
        elif f.kind == "list":
            converted[f.name] = np.array(
                [
                    None
                    if v is None
                    else ";".join(p.strip() for p in re.split(r"[,;，；、]", v) if p.strip())
                    for v in column
                ],
                dtype=object,
            )
        if f.sensitive and f.kind == "text":
            masked = np.array([v is not None and "*" in v for v in column], dtype=bool)
            rejects.add(
                masked,
                f.name,
                "looks masked (an export made without --unmasked); "
                "importing it would overwrite the real value",
                column,
            )
    _check_ranges(spec, converted, rejects)
    _check_cadre_level(spec, converted, rejects)
    return converted


def _check_text(spec: Layer, values: dict[str, np.ndarray], rejects: _Rejects) -> None:
    """Every text cell: no control characters (a NUL cannot be stored), bounded length."""
    for name, column in values.items():
        if name == "code" or name.endswith("_code"):
            limit = MAX_CODE
        else:
            limit = MAX_LENGTHS.get(name, MAX_TEXT)
        control = np.array([v is not None and bool(_CONTROL.search(v)) for v in column], bool)
        rejects.add(control, name, "holds a control character (such as NUL)", _shown(column))
        long = np.array([v is not None and len(v) > limit for v in column], bool) & ~control
        rejects.add(
            long,
            name,
            lambda i, column=column, limit=limit: (
                f"{len(column[i]):,d} characters, more than the {limit} allowed"
            ),
            _shown(column),
        )


def _shown(column: np.ndarray) -> np.ndarray:
    """Values as a reject shows them: controls escaped, cut to 80 characters."""
    return np.array(
        [
            None if v is None else repr(v[:80])[1:-1] if _CONTROL.search(v) else v[:80]
            for v in column
        ],
        dtype=object,
    )


def _check_codes(spec: Layer, values: dict[str, np.ndarray], rejects: _Rejects) -> None:
    codes = values["code"]
    empty = np.array([v is None for v in codes], dtype=bool)
    rejects.add(empty, "code", "required field is empty")
    if spec.code_pattern:
        _check_pattern("code", spec.code_pattern, codes, empty, rejects)
    else:
        odd = np.array(
            [
                v is not None
                and len(v) <= MAX_CODE
                and not _CONTROL.search(v)
                and not CODE_CHARS.match(v)
                for v in codes
            ],
            dtype=bool,
        )
        reason = "may hold only letters, digits, '_', '.' and '-', starting with a letter or digit"
        rejects.add(odd, "code", reason, _shown(codes))
    series = pd.Series(codes)
    dupes = series.duplicated(keep="first").to_numpy() & ~empty
    first: dict[str | None, int] = {}
    for i, code in enumerate(codes):
        first.setdefault(code, int(rejects.records[i]))
    rejects.add(
        dupes, "code", lambda i: f"duplicate code, first at record {first[codes[i]]}", codes
    )
    for parent in spec.parents:
        column = values.get(parent.field)
        if column is None:
            if parent.required:
                rejects.add(np.ones(len(codes), bool), parent.field, "required column missing")
            continue
        missing = np.array([v is None for v in column], dtype=bool)
        if parent.required:
            rejects.add(missing, parent.field, "required field is empty")
        pattern = get_layer(parent.layer).code_pattern
        if pattern:
            _check_pattern(parent.field, pattern, column, missing, rejects)
    _check_prefixes(spec, values, rejects)


def _check_pattern(
    name: str, pattern: str, column: np.ndarray, empty: np.ndarray, rejects: _Rejects
) -> None:
    regex = re.compile(pattern)
    bad = np.array([v is not None and not regex.match(v) for v in column], dtype=bool)
    digits = re.search(r"\{(\d+)\}", pattern)
    reason = f"must be {digits.group(1)} digits" if digits else f"must match {pattern}"
    rejects.add(bad & ~empty, name, reason, column)


def _check_prefixes(spec: Layer, values: dict[str, np.ndarray], rejects: _Rejects) -> None:
    """A community's code starts with its street's, a grid's with its community's."""
    pairs = []
    if spec.code_pattern:
        pairs += [("code", p.field) for p in spec.parents if get_layer(p.layer).code_pattern]
    if spec.name == "cadres":
        pairs.append(("community_code", "street_code"))
    for child, parent in pairs:
        if child not in values or parent not in values:
            continue
        a, b = values[child], values[parent]
        bad = np.array(
            [
                x is not None and y is not None and not x.startswith(y)
                for x, y in zip(a, b, strict=True)
            ],
            dtype=bool,
        )
        rejects.add(bad, child, _then(f"does not start with its {parent}", b), a)


def _then(text: str, values: np.ndarray) -> Callable[[int], str]:
    """A reason naming the value of another column in the same record."""
    return lambda i: f"{text} {values[i]}"


def _check_int(name: str, column: np.ndarray, empty: np.ndarray, rejects: _Rejects) -> np.ndarray:
    numbers = pd.to_numeric(pd.Series(column, dtype=object), errors="coerce").to_numpy(float)
    integral = np.isfinite(numbers) & (np.mod(numbers, 1) == 0)
    rejects.add(~empty & ~integral, name, "not a whole number", column)
    lo, hi = BOUNDS.get(name, (None, None))
    ok = ~empty & integral
    if lo is not None:
        rejects.add(ok & (numbers < lo), name, f"must be at least {lo}", column)
    if hi is not None:
        rejects.add(ok & (numbers > hi), name, f"must be at most {hi}", column)
    out = np.full(len(column), None, dtype=object)
    out[ok] = numbers[ok].astype(np.int64)
    return out


def _check_bool(name: str, column: np.ndarray, empty: np.ndarray, rejects: _Rejects) -> np.ndarray:
    lowered = [None if v is None else v.lower() for v in column]
    out = np.array(
        [
            None if v is None else (True if v in TRUE else False if v in FALSE else None)
            for v in lowered
        ],
        dtype=object,
    )
    bad = np.array([v is not None and o is None for v, o in zip(lowered, out, strict=True)])
    rejects.add(bad & ~empty, name, "not a yes/no value (true/false, 1/0, 是/否)", column)
    return out


def _check_enum(
    name: str,
    choices: tuple[str, ...],
    column: np.ndarray,
    empty: np.ndarray,
    rejects: _Rejects,
) -> np.ndarray:
    out = np.array(
        [None if v is None else ENUM_ALIASES.get(v, v.lower()) for v in column], dtype=object
    )
    bad = np.array([v is not None and v not in choices for v in out], dtype=bool)
    rejects.add(bad & ~empty, name, f"must be one of {', '.join(choices)}", column)
    return out


def _check_ranges(spec: Layer, converted: dict[str, np.ndarray], rejects: _Rejects) -> None:
    for lo, hi in RANGES:
        if lo in converted and hi in converted:
            a, b = converted[lo], converted[hi]
            bad = np.array(
                [x is not None and y is not None and x > y for x, y in zip(a, b, strict=True)],
                dtype=bool,
            )
            rejects.add(bad, lo, _then(f"greater than {hi}", b), a)


def _check_cadre_level(spec: Layer, converted: dict[str, np.ndarray], rejects: _Rejects) -> None:
    if spec.name != "cadres" or "level" not in converted:
        return
    level = converted["level"]
    community = converted.get("community_code", np.full(len(level), None, dtype=object))
    street_with = np.array(
        [lv == "street" and c is not None for lv, c in zip(level, community, strict=True)]
    )
    community_without = np.array(
        [lv == "community" and c is None for lv, c in zip(level, community, strict=True)]
    )
    rejects.add(street_with, "community_code", "a street cadre has no community_code", community)
    rejects.add(community_without, "community_code", "a community cadre needs a community_code")


# --- geometry ----------------------------------------------------------------------------------


def _resolve_crs(raw: RawInput, crs: str | None) -> CRS | str | None:
    if crs is not None:
        try:
            return parse_crs(crs)
        except ValueError as exc:
            raise InputRejected(
                str(exc), [Reject(raw.source, None, "crs", str(exc), crs)]
            ) from None
    if (
        raw.crs is None
        and raw.has_geometry
        and shapely.is_geometry(np.asarray(raw.frame.geometry.array, dtype=object)).any()
    ):
        reason = (
            "the file declares no CRS: give --crs (EPSG:4326 for GPS/WGS84, gcj02 for Gaode or "
            "Tencent maps, bd09 for Baidu, or an EPSG code such as 4547)"
        )
        raise InputRejected(
            f"{raw.source}: file rejected, nothing imported",
            [Reject(raw.source, None, "crs", reason)],
        )
    return raw.crs


def _to_wgs84(geoms: np.ndarray, crs: CRS | str | None) -> np.ndarray:
    if crs is None or (isinstance(crs, CRS) and crs.equals(WGS84, ignore_axis_order=True)):
        return geoms
    if isinstance(crs, str):
        convert = chinacrs.TO_WGS84[crs]

        def apply(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(convert(xy[:, 0], xy[:, 1]))
    else:
        transformer = Transformer.from_crs(crs, WGS84, always_xy=True)

        def apply(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    with np.errstate(all="ignore"):
        return shapely.transform(geoms, apply)


def _inside(geoms: np.ndarray) -> np.ndarray:
    bounds = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(bounds).all(axis=1)
            & (bounds[:, 0] >= CHINA[0])
            & (bounds[:, 1] >= CHINA[1])
            & (bounds[:, 2] <= CHINA[2])
            & (bounds[:, 3] <= CHINA[3])
        )


def _first_xy(geom: shapely.Geometry) -> str:
    x, y = shapely.get_coordinates(geom)[0]
    return f"{x:.6f}, {y:.6f}"


def _check_geometry(
    spec: Layer,
    raw: RawInput,
    values: dict[str, np.ndarray],
    rejects: _Rejects,
    *,
    skip: np.ndarray,
    crs: CRS | str | None,
    max_vertices: int,
) -> tuple[np.ndarray, list[Reject]]:
    geoms = np.asarray(raw.frame.geometry.array, dtype=object).copy()
    geoms[skip] = None
    missing = ~shapely.is_geometry(geoms)
    geoms[missing] = None
    building = values.get("building_code")
    has_building = (
        np.array([v is not None for v in building], dtype=bool)
        if building is not None
        else np.zeros(len(geoms), bool)
    )
    if spec.geometry_required:
        rejects.add(missing & ~skip, "geometry", "missing geometry")
    elif spec.geometry == "Point" and not spec.partial:  # a stored record keeps its place
        rejects.add(
            missing & ~skip & ~has_building,
            "geometry",
            "missing geometry and no building_code to place it",
        )
    present = ~missing
    empty = present & shapely.is_empty(np.where(present, geoms, shapely.Point()))
    rejects.add(empty, "geometry", "empty geometry")
    geoms[empty] = None
    live = present & ~empty
    geoms, wrong = _fit_type(spec, geoms, live)
    kinds = shapely.get_type_id(geoms)
    rejects.add(
        wrong,
        "geometry",
        lambda i: (
            f"wrong geometry type: expected {spec.geometry}, "
            f"got {_TYPE_NAMES.get(int(kinds[i]), 'other')}"
        ),
    )
    live &= ~wrong
    counts = np.zeros(len(geoms), dtype=np.int64)
    counts[live] = shapely.get_num_coordinates(geoms[live])
    over = live & (counts > max_vertices)
    rejects.add(
        over, "geometry", lambda i: f"{counts[i]} vertices, more than the cap of {max_vertices}"
    )
    live &= ~over
    source = shapely.force_2d(geoms[live])
    moved = _to_wgs84(source, crs)
    inside = _inside(moved)
    swapped = _inside(_to_wgs84(shapely.transform(source, lambda xy: xy[:, ::-1]), crs))
    idx = np.flatnonzero(live)
    where = np.zeros(len(geoms), bool)
    where[idx[~inside & swapped]] = True
    raw_xy = {int(i): _first_xy(g) for i, g in zip(idx[~inside], source[~inside], strict=True)}
    rejects.add(
        where,
        "geometry",
        lambda i: (
            f"lon/lat swapped? ({raw_xy[i]}) lies outside China as given and inside when swapped"
        ),
    )
    where = np.zeros(len(geoms), bool)
    where[idx[~inside & ~swapped]] = True
    rejects.add(
        where,
        "geometry",
        lambda i: (
            f"outside China (lon 73–136, lat 3–54): first point {raw_xy[i]} in {crs_label(crs)}"
        ),
    )
    geoms[idx] = moved
    live[idx[~inside]] = False
    repairs = _repair(spec, geoms, live, rejects) if spec.geometry == "MultiPolygon" else []
    if spec.geometry == "MultiLineString":
        _reject_invalid_lines(geoms, live, rejects)
    geoms[~live] = None
    return geoms, repairs


def _fit_type(spec: Layer, geoms: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    types = np.full(len(geoms), -1)
    types[live] = shapely.get_type_id(geoms[live])
    if spec.geometry == "Point":
        single = live & (types == _MULTIPOINT)
        single[single] = shapely.get_num_geometries(geoms[single]) == 1
        geoms[single] = shapely.get_geometry(geoms[single], 0)
        ok = (types == _POINT) | single
    elif spec.geometry == "MultiLineString":
        ok = (types == _LINESTRING) | (types == _MULTILINESTRING)
    else:
        ok = (types == _POLYGON) | (types == _MULTIPOLYGON)
    return geoms, live & ~ok


def _repair(spec: Layer, geoms: np.ndarray, live: np.ndarray, rejects: _Rejects) -> list[Reject]:
    idx = np.flatnonzero(live)
    invalid = idx[~shapely.is_valid(geoms[idx])]
    repairs = []
    for i in invalid:
        reason = shapely.is_valid_reason(geoms[i])
        fixed = shapely.make_valid(geoms[i], method="structure", keep_collapsed=False)
        polygons = _polygonal(fixed)
        record = int(rejects.records[i])
        if polygons is None:
            rejects.add(
                _one(len(geoms), i),
                "geometry",
                f"invalid polygon ({reason}) has no area after repair",
            )
            live[i] = False
            continue
        geoms[i] = polygons
        repairs.append(
            Reject(rejects.source, record, "geometry", f"invalid polygon repaired ({reason})")
        )
    return repairs


def _reject_invalid_lines(geoms: np.ndarray, live: np.ndarray, rejects: _Rejects) -> None:
    """Lines are not repaired: a part with fewer than two distinct points is rejected."""
    idx = np.flatnonzero(live)
    bad = idx[~shapely.is_valid(geoms[idx])]
    reasons = {int(i): shapely.is_valid_reason(geoms[i]) for i in bad}
    mask = np.zeros(len(geoms), dtype=bool)
    mask[bad] = True
    rejects.add(mask, "geometry", lambda i: f"invalid line ({reasons[i]})")
    live[bad] = False


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    if geom.is_empty:
        return None
    if shapely.get_type_id(geom) in (_POLYGON, _MULTIPOLYGON):
        return geom
    parts = [
        g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (_POLYGON, _MULTIPOLYGON)
    ]
    return shapely.union_all(parts) if parts else None


def _one(n: int, i: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[i] = True
    return mask
