"""Rosters: the address-based household and member sheets communities keep, made importable.

A 住户信息表 or 党员花名册 names its people by address, not by point or building code. Before
validation, :func:`prepare_roster` maps the sheet's Chinese headers onto the layer's fields
(姓名, 性别, 出生日期, 所在支部, 联系电话, 居住地址, 党员类型, 是否可结对, 身份证号 …), turns a
身份证号 into a keyed hash (or drops it, ``GRIDSVC_ID_NUMBERS``), resolves every address to a
building with :mod:`geodata.addresses`, and gives records without a code the code of the
household already stored at that (building, unit, room) or with that ID hash, else a new one.
Every record gets a row in the match report; an address that names no single building is a
reject naming why. The database is read here (buildings, existing records), never written.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geodata.addresses import (
    REASONS,
    Address,
    Building,
    BuildingIndex,
    Match,
    parse_address,
    unmatched,
)
from geodata.addresses import _number_text as number_text
from geodata.layers import Layer
from geodata.readers import RawInput, normalise_name
from gridsvc.errors import InputRejected, Reject
from gridsvc.settings import Settings

ROSTER_LAYERS = ("households", "members")
#: Columns a roster may give that are read here and not stored as they are.
INPUT_ONLY = ("address", "compound", "building_no", "id_number")
#: Roster headers accepted for a field (besides the field's own name and validate's aliases).
HEADERS: dict[str, tuple[str, ...]] = {
    "address": (
        "地址",
        "住址",
        "居住地址",
        "家庭住址",
        "现住址",
        "现居住地址",
        "详细地址",
        "门牌地址",
    ),
    "compound": ("小区", "小区名称", "院落", "所在小区", "小区(院落)", "小区/院落", "小区院落"),
    "building_no": ("楼栋号", "楼号", "楼栋", "栋号", "幢号", "楼幢号"),
    "unit": ("单元", "单元号"),
    "room": ("门牌", "门牌号", "室", "室号", "房号", "房间号"),
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "身份证", "证件号码", "户主身份证号"),
    "name": ("户主姓名", "户主", "姓名"),
    "phone": ("联系电话", "电话", "手机", "手机号"),
    "size": ("家庭人口", "人口数", "户人口", "家庭人数"),
    "gender": ("性别",),
    "birth_date": ("出生日期", "出生年月", "出生年月日"),
    "branch": ("所在支部", "支部", "党支部", "所属支部"),
    "kind": ("党员类型",),
    "eligible": ("是否可结对", "可结对"),
}
GENDERS = {
    "男": "male",
    "男性": "male",
    "m": "male",
    "女": "female",
    "女性": "female",
    "f": "female",
}
#: 党员类型 as branch secretaries write it ("党员" dropped first).
MEMBER_TYPES = {
    "在职": "in_service",
    "在职进社区": "in_service",
    "退休": "retired",
    "离休": "retired",
    "离退休": "retired",
    "流动": "mobile",
    "外出流动": "mobile",
    "居民": "resident",
    "社区": "resident",
    "无固定职业": "resident",
    "其他": "resident",
}
_ID = re.compile(r"^(\d{17}[\dX]|\d{15})$")
_DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
    "%Y年%m月%d日",
    "%Y-%m",
    "%Y/%m",
    "%Y.%m",
    "%Y年%m月",
    "%Y-%m-%dT%H:%M:%S",
)


@dataclass(frozen=True)
class ReportRow:
    """One record of the match report."""

    record: int
    address: str | None
    compound: str | None
    building_no: str | None
    unit: str | None
    room: str | None
    building_code: str | None
    building_name: str | None
    match: str | None
    score: float | None
    reason: str | None
    code: str | None = None
    code_from: str | None = None
    why: str | None = None
    args: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The row as written to the report CSV."""
        return {name: getattr(self, name) for name in REPORT_COLUMNS}


REPORT_COLUMNS = (
    "record",
    "address",
    "compound",
    "building_no",
    "unit",
    "room",
    "building_code",
    "building_name",
    "match",
    "score",
    "reason",
    "code",
    "code_from",
)


@dataclass(frozen=True)
class Roster:
    """A raw input made ready for validation, with its match report and rejects."""

    raw: RawInput
    report: tuple[ReportRow, ...] = ()
    rejects: tuple[Reject, ...] = ()
    id_numbers: str | None = None
    addressed: bool = False
    community_ids: tuple[int, ...] = ()

    @property
    def rejected_records(self) -> set[int]:
        """Records this step rejected."""
        return {r.record for r in self.rejects if r.record is not None}


def hash_id_number(value: str, secret: str) -> str:
    """The keyed hash of a normalised 身份证号 (HMAC-SHA256 under a key derived from
    ``secret``): the same person gives the same hash in every import; the number cannot be
    read back from it."""
    key = hmac.new(secret.encode(), b"gridsvc id_number v1", hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def load_index(conn: Connection, *, settings: Settings) -> BuildingIndex:
    """The buildings the connection may see, indexed for matching."""
    rows = conn.execute(
        text(
            "SELECT b.id, b.code, b.name, b.compound, b.number, b.community_id, c.name, c.code "
            "FROM buildings b LEFT JOIN communities c ON c.id = b.community_id"
        )
    ).all()
    return BuildingIndex(
        (Building(*row) for row in rows),
        fuzzy_min=settings.address_fuzzy_min,
        fuzzy_margin=settings.address_fuzzy_margin,
    )


def prepare_roster(
    conn: Connection,
    raw: RawInput,
    layer: Layer,
    *,
    settings: Settings,
    columns: dict[str, str] | None = None,
    index: BuildingIndex | None = None,
) -> Roster:
    """Map a roster's headers and values, hash ID numbers, resolve addresses, find codes.

    Parameters
    ----------
    conn
        Reads buildings and the layer's existing records (under the caller's scope).
    raw
        The file as read.
    layer
        ``households`` or ``members``.
    settings
        ``id_numbers``, ``secret_key``, ``address_fuzzy_min``, ``address_fuzzy_margin``.
    columns
        The ``--column`` mapping ``{field: column}``; may name ``address`` and its parts too.
    index
        A prepared :class:`BuildingIndex` (default: loaded from ``conn``).

    Raises
    ------
    InputRejected
        A 身份证号 column to hash and no ``GRIDSVC_SECRET_KEY``.
    """
    frame = _renamed(raw.frame, layer, columns or {})
    records = frame["_record"].to_numpy()
    rejects: list[Reject] = []
    _map_values(frame, raw.source, records, rejects)
    id_numbers = _id_numbers(frame, raw.source, records, settings, rejects)
    parts = [c for c in ("address", "compound", "building_no") if c in frame.columns]
    if not parts:
        frame = frame.drop(columns=[c for c in INPUT_ONLY if c in frame.columns])
        return Roster(_with_frame(raw, frame), (), tuple(rejects), id_numbers)
    index = index or load_index(conn, settings=settings)
    resolved = _resolve(frame, raw, index, conn, rejects)
    report = _codes(conn, layer, resolved, raw.source, rejects)
    communities = {b.community_id for b in resolved.buildings if b and b.community_id}
    out = resolved.frame.drop(columns=[c for c in INPUT_ONLY if c in resolved.frame.columns])
    return Roster(
        _with_frame(raw, out),
        report,
        tuple(sorted(rejects, key=lambda r: (r.record or 0, r.field or ""))),
        id_numbers,
        True,
        tuple(sorted(communities)),
    )


def _with_frame(raw: RawInput, frame: pd.DataFrame) -> RawInput:
    import geopandas as gpd

    return replace(raw, frame=gpd.GeoDataFrame(frame, geometry=raw.frame.geometry.name))


# --- headers and values ------------------------------------------------------------------------


def _renamed(frame: pd.DataFrame, layer: Layer, mapping: dict[str, str]) -> pd.DataFrame:
    wanted = set(layer.field_names) | set(INPUT_ONLY)
    renames: dict[str, str] = {}
    for target, column in mapping.items():
        if target in INPUT_ONLY:
            renames[normalise_name(column)] = target
    present = set(frame.columns) | set(renames.values())
    for target, aliases in HEADERS.items():
        if target not in wanted or target in present:
            continue
        alias = next((a for a in aliases if a in frame.columns and a not in renames), None)
        if alias is not None:
            renames[alias] = target
            present.add(target)
    out = frame.rename(columns=renames)
    if "id_hash" in out.columns:  # made here from a 身份证号 only, never taken from a file
        out = out.drop(columns="id_hash")
    return out


def _cells(series: pd.Series, *, nfkc: bool = True) -> list[str | None]:
    """Cells as stripped text (half-width unless ``nfkc`` is false); empty ones as None."""
    out: list[str | None] = []
    for value in series.to_numpy(dtype=object):
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        else:
            cell = str(value)
            cell = (unicodedata.normalize("NFKC", cell) if nfkc else cell).strip()
            out.append(cell or None)
    return out


def _map_values(
    frame: pd.DataFrame, source: str, records: np.ndarray, rejects: list[Reject]
) -> None:
    if "gender" in frame.columns:
        frame["gender"] = [
            None if v is None else GENDERS.get(v.lower(), v) for v in _cells(frame["gender"])
        ]
    if "kind" in frame.columns:
        frame["kind"] = [_member_type(v) for v in _cells(frame["kind"])]
    if "birth_date" in frame.columns:
        dates = []
        for record, value in zip(records, _cells(frame["birth_date"]), strict=True):
            parsed = _date(value)
            if value is not None and parsed is None:
                reason = "not a date (write it as 1956-03-02)"
                rejects.append(Reject(source, int(record), "birth_date", reason, value))
            dates.append(parsed)
        frame["birth_date"] = dates


def _member_type(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.removesuffix("党员")
    return MEMBER_TYPES.get(key, value)


def _date(value: str | None) -> str | None:
    if value is None:
        return None
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if date(1900, 1, 1) <= parsed <= date.today():
            return parsed.isoformat()
        return None
    return None


def _id_numbers(
    frame: pd.DataFrame,
    source: str,
    records: np.ndarray,
    settings: Settings,
    rejects: list[Reject],
) -> str | None:
    """Hash (or drop) the 身份证号 column in place; ``hashed``, ``dropped`` or None."""
    if "id_number" not in frame.columns:
        return None
    values = _cells(frame.pop("id_number"))
    if settings.id_numbers == "drop":
        return "dropped"
    if not settings.secret_key:
        raise InputRejected(
            f"{source}: file rejected, nothing imported",
            [
                Reject(
                    source,
                    None,
                    "id_number",
                    "a 身份证号 column is hashed with GRIDSVC_SECRET_KEY, which is not set "
                    "(set it, or GRIDSVC_ID_NUMBERS=drop to leave the column out)",
                )
            ],
        )
    hashes: list[str | None] = []
    for record, value in zip(records, values, strict=True):
        number = None if value is None else value.upper().replace(" ", "")
        if number is not None and not _ID.match(number):
            reason = f"not a 身份证号 ({len(number)} characters; 18 digits, the last may be X)"
            rejects.append(Reject(source, int(record), "id_number", reason))
            number = None
        hashes.append(None if number is None else hash_id_number(number, settings.secret_key))
    frame["id_hash"] = hashes
    return "hashed"


# --- addresses ---------------------------------------------------------------------------------


@dataclass
class _Resolved:
    frame: pd.DataFrame
    addresses: list[Address | None]
    matches: list[Match | None]
    buildings: list[Building | None]
    given: list[str | None]


@lru_cache(maxsize=65_536)
def _parse(text_: str) -> Address:
    return parse_address(text_)


def _part(value: str | None, *, building: bool = False) -> str | None:
    """A building/unit/room cell as a number: "3", "3号楼", "三", "2单元", "501室", "A座"."""
    if value is None:
        return None
    flat = re.sub(r"(号楼|号院楼|#楼|栋楼|栋|幢|座|号|#|单元|门|室|户|层)$", "", value.strip())
    flat = unicodedata.normalize("NFKC", flat).upper().lstrip("第")
    try:
        return number_text(flat) if flat else None
    except ValueError:
        return value if not building else None


def _resolve(
    frame: pd.DataFrame,
    raw: RawInput,
    index: BuildingIndex,
    conn: Connection,
    rejects: list[Reject],
) -> _Resolved:
    n = len(frame)
    records = frame["_record"].to_numpy()
    none: list[str | None] = [None] * n

    def column(name: str) -> list[str | None]:
        return _cells(frame[name]) if name in frame.columns else list(none)

    address = _cells(frame["address"], nfkc=False) if "address" in frame.columns else list(none)
    compound, building_no = column("compound"), column("building_no")
    unit, room = column("unit"), column("room")
    building_code = column("building_code")
    community = _community_ids(conn, column("community_code"))
    has_point = np.asarray(
        [g is not None and not getattr(g, "is_empty", True) for g in raw.frame.geometry.array],
        dtype=bool,
    )
    by_code = index.by_code
    parsed: list[Address | None] = []
    matches: list[Match | None] = []
    buildings: list[Building | None] = []
    codes: list[str | None] = list(building_code)
    for i in range(n):
        a = _parse(address[i]) if address[i] else None
        c = compound[i] or (a.compound if a else None)
        number = _part(building_no[i], building=True) or (a.building_no if a else None)
        unit[i] = _part(unit[i]) or (a.unit if a else None)
        room[i] = _part(room[i]) or (a.room if a else None)
        parsed.append(
            Address(address[i] or "", c, number, unit[i], room[i], a.community if a else None)
        )
        if building_code[i] or has_point[i]:
            matches.append(None)
            given = building_code[i]
            buildings.append(by_code.get(given) if given else None)
            continue
        if a is None and number is None and c is None:
            matches.append(None)
            buildings.append(None)
            continue
        if number is None:
            found = _problem(a)
        else:
            found = index.match(
                c, number, community_id=community[i], community=a.community if a else None
            )
        matches.append(found)
        buildings.append(found.building)
        if found.building is not None:
            codes[i] = found.building.code
        else:
            field = "address" if address[i] else "building_no"
            value = address[i] or " ".join(v for v in (c, building_no[i]) if v)
            rejects.append(Reject(raw.source, int(records[i]), field, str(found.reason), value))
    frame = frame.copy()
    frame["building_code"] = codes
    frame["unit"] = unit
    frame["room"] = room
    return _Resolved(frame, parsed, matches, buildings, building_code)


def _problem(a: Address | None) -> Match:
    """The unmatched address whose building number could not be read."""
    if a is None or a.problem in (None, REASONS["no_number"]):
        return unmatched("no_number")
    if a.problem == REASONS["empty"]:
        return unmatched("empty")
    return unmatched("unreadable", value=a.problem)


def _community_ids(conn: Connection, codes: list[str | None]) -> list[int | None]:
    wanted = sorted({c for c in codes if c})
    if not wanted:
        return [None] * len(codes)
    rows = conn.execute(
        text("SELECT code, id FROM communities WHERE code = ANY(:c)"), {"c": wanted}
    ).all()
    ids: dict[str, int] = {code: id_ for code, id_ in rows}
    return [ids.get(c) if c else None for c in codes]


# --- codes: update by code, else (building, unit, room), else ID hash --------------------------


def _codes(
    conn: Connection,
    layer: Layer,
    resolved: _Resolved,
    source: str,
    rejects: list[Reject],
) -> tuple[ReportRow, ...]:
    frame = resolved.frame
    n = len(frame)
    records = frame["_record"].to_numpy()
    none: list[str | None] = [None] * n
    codes = _cells(frame["code"]) if "code" in frame.columns else list(none)
    names = _cells(frame["name"]) if "name" in frame.columns else list(none)
    hashes = _cells(frame["id_hash"]) if "id_hash" in frame.columns else list(none)
    units, rooms = _cells(frame["unit"]), _cells(frame["room"])
    known = _existing(conn, layer, resolved.buildings, hashes)
    bad = {r.record for r in rejects}
    source_of: list[str | None] = []
    for i in range(n):
        if codes[i]:
            source_of.append("given")
            continue
        b = resolved.buildings[i]
        if b is None or int(records[i]) in bad:
            source_of.append(None)
            continue
        place = (b.id, units[i], rooms[i]) + ((names[i],) if layer.name == "members" else ())
        found = known.by_place.get(place)
        how = "building/unit/room"
        id_hash = hashes[i]
        if found is None and id_hash:
            found, how = known.by_hash.get(id_hash), "id_hash"
        if found is None:
            found, how = _new_code(layer, b, units[i], rooms[i], names[i]), "new"
        if found is None:
            rejects.append(Reject(source, int(records[i]), "room", REASONS["no_room"]))
            resolved.matches[i] = unmatched("no_room")
        codes[i] = found
        source_of.append(how if found else None)
    frame["code"] = codes
    return tuple(
        _report_row(resolved, i, int(records[i]), codes[i], source_of[i]) for i in range(n)
    )


@dataclass(frozen=True)
class _Known:
    by_place: dict[tuple, str]
    by_hash: dict[str, str]


def _existing(
    conn: Connection, layer: Layer, buildings: list[Building | None], hashes: list[str | None]
) -> _Known:
    ids = sorted({b.id for b in buildings if b is not None})
    wanted = sorted({h for h in hashes if h})
    rows = conn.execute(
        text(
            f"SELECT code, building_id, unit, room, name, id_hash FROM {layer.table} "
            "WHERE building_id = ANY(:ids) OR id_hash = ANY(:hashes)"
        ),
        {"ids": ids, "hashes": wanted},
    ).all()
    by_place: dict[tuple, str] = {}
    by_hash: dict[str, str] = {}
    for code, building_id, unit, room, name, id_hash in rows:
        key = (building_id, unit, room) + ((name,) if layer.name == "members" else ())
        by_place.setdefault(key, code)
        if id_hash:
            by_hash.setdefault(id_hash, code)
    return _Known(by_place, by_hash)


def _new_code(
    layer: Layer, b: Building, unit: str | None, room: str | None, name: str | None
) -> str | None:
    """A new record's code: its building, unit and room (a member: and a digest of its name)."""
    if layer.name == "households":
        return None if room is None else f"{b.code}-{unit or 0}-{room}"
    digest = hashlib.sha1(f"{unit}|{room}|{name}".encode()).hexdigest()[:8]
    return f"{b.code}-M{digest}"


def _report_row(
    resolved: _Resolved, i: int, record: int, code: str | None, code_from: str | None
) -> ReportRow:
    a = resolved.addresses[i]
    m = resolved.matches[i]
    b = resolved.buildings[i]
    if m is None:
        how = "building_code" if resolved.given[i] else ("point" if b is None else None)
    else:
        how = m.how if m.building else None
    return ReportRow(
        record,
        a.text if a and a.text else None,
        a.compound if a else None,
        a.building_no if a else None,
        a.unit if a else None,
        a.room if a else None,
        b.code if b else None,
        b.name if b else None,
        how,
        m.score if m is not None and m.building is not None else None,
        None if m is None else m.reason,
        code,
        code_from,
        None if m is None else m.why,
        () if m is None else m.args,
    )


# --- the report file ---------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def write_report(rows: tuple[ReportRow, ...] | list[ReportRow], path: str | Path) -> Path:
    """Write the match report as CSV (UTF-8 with BOM for Excel); formula-like cells as text."""
    path = Path(path)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REPORT_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _safe(v) for k, v in row.to_dict().items()})
    return path


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value
