"""Blind spots (盲点) of seven kinds, each listed, counted, ranked and drawable in EPSG:4326."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from gridsvc.coverage._data import load_scope, resolve_scope
from gridsvc.coverage.frames import ScopeData
from gridsvc.coverage.metrics import Enriched, enrich, nearest_distance
from gridsvc.coverage.reach import plain
from gridsvc.errors import InputRejected, Reject
from gridsvc.settings import Settings

#: The seven kinds, in the order of the issues (the seventh: households overdue for a contact).
KINDS = (
    "unpaired_households",
    "members_without_cadre",
    "far_pairs",
    "grids_without_members",
    "station_gaps",
    "uncovered_commercial",
    "overdue_contact",
    "overdue_request",
)

_REASONS = {
    "zh": {
        "unpaired_households": "无党员结对{why}；最近可结对党员 {d}",
        "members_without_cadre": "无干部联系{why}；联系 {load} 户{reserve}；最近干部 {d}",
        "far_pairs": "结对距离 {d}，超过 {limit} m",
        "grids_without_members": "网格内无可结对党员；{n} 户",
        "station_gaps": "最近红色驿站 {d}，超出 {r} m 生活圈；{n} 户",
        "station_gaps.walked": "步行至最近红色驿站 {d}，超出 {r} m 生活圈；{n} 户",
        "station_gaps.unreachable": "沿道路无法到达任何红色驿站；{n} 户",
        "station_gaps.off_network": "距任何道路超过 {snap} m，无法计算步行距离；{n} 户",
        "uncovered_commercial": "商务楼宇/市场无党组织覆盖；{floors} 层，{area} m²",
        "overdue_contact": "{days} 天未联系，超出 {cadence} 天周期{vulnerable}",
        "overdue_contact.never": "从未联系（周期 {cadence} 天）{vulnerable}",
        "overdue_contact.vulnerable": "；困难户",
        "overdue_request": "{category}诉求超期 {days} 天未办结（{state}）{vulnerable}",
        # the pairing's own explanations (pairing_unpaired, pairing_reserve)
        "households.servers_full": "（本社区党员均已满额）",
        "households.beyond_max_distance": "（超出最大结对距离）",
        "households.no_server_in_scope": "（本社区无可结对党员）",
        "members.servers_full": "（干部均已满额）",
        "members.beyond_max_distance": "（超出最大联系距离）",
        "members.no_server_in_scope": "（本街道无干部）",
        "reserve.surplus": "（储备：党员富余）",
        "reserve.not_eligible": "（不可结对）",
        "reserve.max_active_reached": "（储备：在岗人数已达上限）",
        "reserve.no_client_in_reach": "（储备：附近无可结对住户）",
    },
    "en": {
        "unpaired_households": "no member paired{why}; nearest eligible member {d}",
        "members_without_cadre": "no cadre{why}; serves {load} households{reserve}; "
        "nearest cadre {d}",
        "far_pairs": "paired {d} apart, beyond {limit} m",
        "grids_without_members": "no eligible member lives in this grid; {n} households",
        "station_gaps": "nearest Red Station {d}, outside the {r} m life circle; {n} households",
        "station_gaps.walked": "nearest Red Station {d} on foot, outside the {r} m life circle; "
        "{n} households",
        "station_gaps.unreachable": "no Red Station can be reached along the roads; {n} households",
        "station_gaps.off_network": "more than {snap} m from any road: no walking distance; "
        "{n} households",
        "uncovered_commercial": "no party organisation covers it; {floors} floors, {area} m²",
        "overdue_contact": "no contact for {days} days, beyond the {cadence}-day cadence"
        "{vulnerable}",
        "overdue_contact.never": "never contacted (cadence {cadence} days){vulnerable}",
        "overdue_contact.vulnerable": "; vulnerable household",
        "overdue_request": "{category} request {days} days past its time limit ({state})"
        "{vulnerable}",
        "households.servers_full": " (every member of the community is full)",
        "households.beyond_max_distance": " (beyond the longest pair allowed)",
        "households.no_server_in_scope": " (no eligible member in the community)",
        "members.servers_full": " (every cadre is full)",
        "members.beyond_max_distance": " (beyond the longest pair allowed)",
        "members.no_server_in_scope": " (no cadre in the street)",
        "reserve.surplus": " (reserve: more members than needed)",
        "reserve.not_eligible": " (not eligible)",
        "reserve.max_active_reached": " (reserve: the most active members reached)",
        "reserve.no_client_in_reach": " (reserve: no household in reach)",
    },
}


@dataclass(frozen=True)
class BlindSpots:
    """Blind spots of a scope: per kind a GeoDataFrame (EPSG:4326) with ``rank`` and ``reason``.

    Every frame has ``kind``, ``rank`` (1 = most urgent), ``reason``, ``code``,
    ``community_code`` and ``geometry``, plus the figures its ranking uses. Households with no
    member and members with no cadre carry ``building_code`` and the current plan's own
    explanation, ``pairing_reason`` (``servers_full``, ``beyond_max_distance``,
    ``no_server_in_scope``; members also ``reserve_reason``), also worded into ``reason``.
    ``station_gap_counts`` gives, per life circle, the residential buildings and households
    outside it. ``distance_metric`` says how station distances were measured: ``network``
    (walked along the roads loaded around the scope; ``network`` then gives the snap distance
    and the households, buildings and stations off the network) or ``straight``. By network,
    ``station_gaps`` rows carry ``off_network`` (farther than the snap distance from every road:
    no walking distance, so outside every circle).
    """

    scope: Mapping[str, Any]
    frames: Mapping[str, gpd.GeoDataFrame]
    station_gap_counts: Mapping[int, Mapping[str, int]]
    distance_metric: str = "straight"
    network: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> gpd.GeoDataFrame:
        return self.frames[kind]

    def counts(self) -> dict[str, int]:
        """Number of blind spots per kind."""
        return {kind: len(frame) for kind, frame in self.frames.items()}

    def to_geojson(self) -> dict[str, Any]:
        """One FeatureCollection of every kind (each feature has ``kind``, ``rank``, ``reason``)."""
        features: list[Any] = []
        for frame in self.frames.values():
            if len(frame):
                features.extend(json.loads(frame.to_json(na="null", drop_id=True))["features"])
        return {"type": "FeatureCollection", "features": features}

    def to_dict(self, *, limit: int | None = None) -> dict[str, Any]:
        """Counts and, per kind, the ranked rows without geometry (first ``limit`` of each)."""
        rows = {}
        for kind, frame in self.frames.items():
            table = pd.DataFrame(frame.drop(columns="geometry"))
            table = table.head(limit) if limit else table
            rows[kind] = json.loads(table.to_json(orient="records", force_ascii=False))
        return {
            "scope": dict(self.scope),
            "counts": self.counts(),
            "station_gap_counts": {str(k): dict(v) for k, v in self.station_gap_counts.items()},
            "distance_metric": self.distance_metric,
            "network": plain(self.network),
            "blindspots": rows,
            "timings": dict(self.timings),
        }


def find_blindspots(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    kinds: Iterable[str] | None = None,
    settings: Settings,
) -> BlindSpots:
    """List, count and rank the blind spots of a street, a community, or everything.

    Raises
    ------
    InputRejected
        When a kind is not one of :data:`KINDS`.
    NotFound
        When the code names no street or community.
    """
    wanted = check_kinds(kinds)
    t0 = time.perf_counter()
    scope = resolve_scope(conn, street_code=street_code, community_code=community_code)
    data = load_scope(conn, scope, settings=settings, geometry=True)
    t1 = time.perf_counter()
    spots = blindspots_from_frames(data, kinds=wanted, settings=settings)
    t2 = time.perf_counter()
    timings = {"load": t1 - t0, "compute": t2 - t1, "total": t2 - t0}
    return BlindSpots(**{**spots.__dict__, "timings": MappingProxyType(timings)})


def check_kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    """The requested kinds in canonical order; reject unknown names."""
    if kinds is None:
        return KINDS
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        reason = f"unknown blind-spot kind; expected one of {', '.join(KINDS)}"
        raise InputRejected(
            f"kind {bad[0]!r}: {reason}", [Reject("kinds", None, "kind", reason, k) for k in bad]
        )
    return tuple(k for k in KINDS if k in kinds)


def blindspots_from_frames(
    data: ScopeData, *, kinds: tuple[str, ...] = KINDS, settings: Settings
) -> BlindSpots:
    """The pure part of :func:`find_blindspots`: blind spots from loaded frames."""
    circles = tuple(sorted(settings.life_circles_m))
    e = enrich(data, circles=circles, settings=settings)
    text = _REASONS[settings.lang if settings.lang in _REASONS else "zh"]
    comm_code = data.communities.set_index("community_id")["code"]
    builders = {
        "unpaired_households": lambda: _unpaired(e, data, text),
        "members_without_cadre": lambda: _no_cadre(e, data, text),
        "far_pairs": lambda: _far_pairs(e, data, text, settings.far_pair_m),
        "grids_without_members": lambda: _empty_grids(e, data, text),
        "station_gaps": lambda: _station_gaps(e, data, text, circles, settings.road_snap_m),
        "uncovered_commercial": lambda: _commercial(data, text),
        "overdue_contact": lambda: _overdue_contacts(e, data, text),
        "overdue_request": lambda: _overdue_requests(data, text),
    }
    frames = {}
    for kind in kinds:
        frame = builders[kind]()
        frame.insert(0, "kind", kind)
        frame["community_code"] = frame.pop("community_id").map(comm_code)
        frames[kind] = _finish(frame)
    return BlindSpots(
        MappingProxyType(data.scope.to_dict()),
        MappingProxyType(frames),
        MappingProxyType(_gap_counts(e, data, circles)),
        e.reach.metric,
        e.reach.network,
    )


# --- the six kinds (each returns a frame with rank, reason, code, community_id, geometry) ------


def _unpaired(e: Enriched, data: ScopeData, text: dict[str, str]) -> pd.DataFrame:
    """Households with no member, furthest from any eligible member first."""
    hh = e.households[~e.households["paired"]].copy()
    servers = e.members[e.members["eligible"] & e.members["available"]]
    hh["nearest_member_m"] = nearest_distance(_xy(hh), _xy(servers))
    hh["vulnerable"] = hh[["elderly_alone", "disabled", "children"]].sum(axis=1).astype(int)
    hh = _ranked(hh, ["nearest_member_m", "vulnerable"], ascending=[False, False])
    hh["reason"] = [
        text["unpaired_households"].format(d=_m(d), why=_why(text, "households", w))
        for d, w in zip(hh["nearest_member_m"], hh["pairing_reason"], strict=True)
    ]
    hh["building_code"] = _building_codes(hh, data)
    cols = ["code", "community_id", "building_code", "nearest_member_m", "vulnerable"]
    return _points(hh, [*cols, "pairing_reason"])


def _no_cadre(e: Enriched, data: ScopeData, text: dict[str, str]) -> pd.DataFrame:
    """Members with no cadre: active members first, then furthest from any cadre."""
    m = e.members[~e.members["has_cadre"]].copy()
    m["nearest_cadre_m"] = nearest_distance(_xy(m), _xy(e.cadres))
    m = _ranked(m, ["active", "load", "nearest_cadre_m"], ascending=[False, False, False])
    m["reason"] = [
        text["members_without_cadre"].format(
            load=int(n), d=_m(d), why=_why(text, "members", w), reserve=_why(text, "reserve", r)
        )
        for n, d, w, r in zip(
            m["load"], m["nearest_cadre_m"], m["pairing_reason"], m["reserve_reason"], strict=True
        )
    ]
    m["building_code"] = _building_codes(m, data)
    cols = ["code", "community_id", "building_code", "active", "load", "nearest_cadre_m"]
    return _points(m, [*cols, "pairing_reason", "reserve_reason"])


def _far_pairs(e: Enriched, data: ScopeData, text: dict[str, str], limit: float) -> pd.DataFrame:
    """Pairs longer than ``limit`` metres, longest first; drawn as household→member lines."""
    far = e.pairs[e.pairs["distance_m"].astype(float) > limit]
    hh = e.households.set_index("household_id")
    mem = data.members.set_index("member_id")
    far = far.assign(
        code=hh["code"].reindex(far["household_id"]).to_numpy(),
        member_code=mem["code"].reindex(far["member_id"]).to_numpy(),
        distance_m=far["distance_m"].astype(float),
    )
    far = _ranked(far, ["distance_m"], ascending=[False])
    start = hh[["lon", "lat"]].reindex(far["household_id"]).to_numpy(float)
    end = mem[["lon", "lat"]].reindex(far["member_id"]).to_numpy(float)
    end = np.where(np.isnan(end), start, end)  # a member outside the scope: draw a point-line
    lines = shapely.linestrings(np.stack([start, end], axis=1)) if len(far) else []
    far["reason"] = [
        text["far_pairs"].format(d=_m(d), limit=f"{limit:,.0f}") for d in far["distance_m"]
    ]
    cols = ["rank", "reason", "code", "member_code", "community_id", "distance_m"]
    return gpd.GeoDataFrame(far[cols].reset_index(drop=True), geometry=list(lines), crs=4326)


def _overdue_contacts(e: Enriched, data: ScopeData, text: dict[str, str]) -> pd.DataFrame:
    """Paired households overdue for a contact: vulnerable first, then longest overdue (never
    contacted first)."""
    cols = ["code", "community_id", "building_code", "member_code", "days_since", "cadence_days"]
    state = data.contacts
    if state is None or state.empty:
        empty = e.households.iloc[:0].assign(
            rank=[],
            reason=[],
            building_code=[],
            member_code=[],
            days_since=[],
            cadence_days=[],
            vulnerable=[],
        )
        return _points(empty, [*cols, "vulnerable"])
    late = state[state["overdue"].astype(bool)][
        ["household_id", "member", "days_since", "cadence_days", "overdue_days", "vulnerable"]
    ]
    hh = e.households.merge(late, on="household_id", how="inner")
    hh = hh.rename(columns={"member": "member_code"})
    hh["vulnerable"] = hh["vulnerable"].astype(bool)
    hh = _ranked(hh, ["vulnerable", "overdue_days"], ascending=[False, False])
    hh["reason"] = [
        text["overdue_contact.never" if np.isnan(d) else "overdue_contact"].format(
            days="" if np.isnan(d) else int(d),
            cadence=int(c),
            vulnerable=text["overdue_contact.vulnerable"] if v else "",
        )
        for d, c, v in zip(hh["days_since"], hh["cadence_days"], hh["vulnerable"], strict=True)
    ]
    hh["building_code"] = _building_codes(hh, data)
    return _points(hh, [*cols, "vulnerable"])


def _overdue_requests(data: ScopeData, text: dict[str, str]) -> pd.DataFrame:
    """Open requests past their time limit: vulnerable households first, then longest over."""
    from gridsvc.requests.service import CATEGORIES, STATE_LABELS

    cols = ["code", "community_id", "household", "category", "state", "member", "days_over"]
    frame = data.requests
    if frame is None or frame.empty:
        empty = pd.DataFrame(
            {c: pd.Series([], dtype=object) for c in [*cols, "vulnerable", "reason"]}
            | {c: pd.Series([], dtype=float) for c in ("lon", "lat")}
            | {"rank": pd.Series([], dtype="int64")}
        )
        return _points(empty, [*cols, "vulnerable"])
    frame = frame.dropna(subset=["lon", "lat"]).assign(code=lambda f: f["id"].astype(str))
    frame["vulnerable"] = frame["vulnerable"].astype(bool)
    frame = _ranked(frame, ["vulnerable", "days_over"], ascending=[False, False])
    zh = "困难户" in text["overdue_contact.vulnerable"]
    frame["reason"] = [
        text["overdue_request"].format(
            category=CATEGORIES[c] if zh else c.replace("_", " "),
            days=max(int(d), 0),
            state=STATE_LABELS[s] if zh else s.replace("_", " "),
            vulnerable=text["overdue_contact.vulnerable"] if v else "",
        )
        for c, d, s, v in zip(
            frame["category"], frame["days_over"], frame["state"], frame["vulnerable"], strict=True
        )
    ]
    return _points(frame, [*cols, "vulnerable"])


def _empty_grids(e: Enriched, data: ScopeData, text: dict[str, str]) -> pd.DataFrame:
    """Grids where no eligible (and available) member lives, most households first."""
    servers = e.members[e.members["eligible"] & e.members["available"]]
    grids = data.grids[~data.grids["grid_id"].isin(servers["grid_id"])].copy()
    grids["households"] = grids["grid_id"].map(e.households.groupby("grid_id").size())
    grids["households"] = grids["households"].fillna(0).astype(int)
    grids = _ranked(grids, ["households"], ascending=[False])
    grids["reason"] = [text["grids_without_members"].format(n=n) for n in grids["households"]]
    return _polygons(grids, ["code", "community_id", "households"])


def _station_gaps(
    e: Enriched, data: ScopeData, text: dict[str, str], circles: tuple[int, ...], snap_m: float
) -> pd.DataFrame:
    """Residential buildings outside the smallest life circle of every Red Station (walked
    along the roads when the scope has them: see :attr:`BlindSpots.distance_metric`)."""
    b = _residential(e, data, circles)
    walked = e.reach.metric == "network"
    extra = ["off_network"] if walked else []
    if not circles:
        return _polygons(b.iloc[:0].assign(reason=[]), ["code", "community_id", *extra])
    # a building where nobody lives (an empty mixed or new block) is no one's gap
    b = b[(b["station_m"] > circles[0]) & (b["households"] > 0)].copy()
    outside = [f"outside_{r}" for r in circles]
    b["circles_outside"] = b[outside].sum(axis=1).astype(int)
    b = _ranked(b, ["circles_outside", "households", "station_m"], ascending=[False, False, False])
    worst = [circles[n - 1] for n in b["circles_outside"]]
    b["reason"] = [
        _gap_reason(text, d, r, n, off, walked=walked, snap_m=snap_m)
        for d, r, n, off in zip(
            b["station_m"], worst, b["households"], b["off_network"], strict=True
        )
    ]
    b["nearest_station_m"] = b["station_m"]
    cols = ["code", "community_id", "households", "nearest_station_m", *outside, *extra]
    return _polygons(b, cols)


def _gap_reason(
    text: dict[str, str], d: float, r: int, n: int, off: bool, *, walked: bool, snap_m: float
) -> str:
    """Why a building is a station gap: the distance, or why a walked one has none."""
    if not walked:
        return text["station_gaps"].format(d=_m(d), r=r, n=n)
    if off:
        return text["station_gaps.off_network"].format(snap=f"{snap_m:,.0f}", n=n)
    if not np.isfinite(d):
        return text["station_gaps.unreachable"].format(n=n)
    return text["station_gaps.walked"].format(d=_m(d), r=r, n=n)


def _commercial(data: ScopeData, text: dict[str, str]) -> pd.DataFrame:
    """Commercial and mixed buildings (business towers, markets) with no party organisation."""
    b = data.buildings
    org = b["party_org"].fillna("").astype(str).str.strip()
    b = b[b["kind"].isin(["commercial", "mixed"]) & (org == "")].copy()
    b["floor_area_m2"] = b["area_m2"].astype(float) * b["floors"].fillna(1).astype(float)
    b = _ranked(b, ["floor_area_m2"], ascending=[False])
    b["reason"] = [
        text["uncovered_commercial"].format(floors=int(f) if pd.notna(f) else "?", area=f"{a:,.0f}")
        for f, a in zip(b["floors"], b["area_m2"], strict=True)
    ]
    return _polygons(b, ["code", "community_id", "floors", "floor_area_m2"])


# --- helpers -------------------------------------------------------------------------------------


def _residential(e: Enriched, data: ScopeData, circles: tuple[int, ...]) -> pd.DataFrame:
    """Residential (and mixed) buildings with households and distance to the nearest station."""
    residential = data.buildings["kind"].isin(["residential", "mixed"]).to_numpy(bool)
    b = data.buildings[residential].copy()
    b["station_m"] = e.reach.buildings[residential]
    b["off_network"] = e.reach.buildings_off[residential]
    counts = e.households.groupby("building_id").size()
    b["households"] = b["building_id"].map(counts).fillna(0).astype(int)
    for r in circles:
        b[f"outside_{r}"] = b["station_m"] > r
    return b


def _gap_counts(
    e: Enriched, data: ScopeData, circles: tuple[int, ...]
) -> dict[int, dict[str, int]]:
    """Per life circle: residential buildings and households outside every station's range."""
    b = _residential(e, data, circles)
    hh_out = {r: int((e.households["station_m"] > r).sum()) for r in circles}
    return {
        r: {"buildings": int(b[f"outside_{r}"].sum()), "households": hh_out[r]} for r in circles
    }


def _why(text: dict[str, str], level: str, reason: str | None) -> str:
    """The pairing's own explanation as a bracketed phrase ('' when it gave none we know)."""
    return text.get(f"{level}.{reason}", "") if reason else ""


def _building_codes(frame: pd.DataFrame, data: ScopeData) -> pd.Series:
    """The code of each row's building (None when it has none)."""
    codes = frame["building_id"].map(data.buildings.set_index("building_id")["code"])
    return codes.astype(object).where(codes.notna(), None)


def _ranked(frame: pd.DataFrame, by: list[str], ascending: list[bool]) -> pd.DataFrame:
    out = frame.sort_values([*by, "code"], ascending=[*ascending, True], kind="stable")
    return out.assign(rank=np.arange(1, len(out) + 1)).reset_index(drop=True)


def _points(frame: pd.DataFrame, cols: list[str]) -> gpd.GeoDataFrame:
    geom = gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float), crs=4326)
    return gpd.GeoDataFrame(frame[["rank", "reason", *cols]], geometry=geom, crs=4326)


def _polygons(frame: pd.DataFrame, cols: list[str]) -> gpd.GeoDataFrame:
    geom = shapely.from_wkb(frame["wkb"].to_numpy(dtype=object)) if len(frame) else []
    return gpd.GeoDataFrame(frame[["rank", "reason", *cols]], geometry=list(geom), crs=4326)


def _finish(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns in a stable order: kind, rank, reason, code, community_code, the rest, geometry."""
    first = ["kind", "rank", "reason", "code", "community_code"]
    rest = [c for c in frame.columns if c not in first and c != "geometry"]
    return frame[[*first, *rest, "geometry"]].reset_index(drop=True)


def _xy(frame: pd.DataFrame) -> np.ndarray:
    return frame[["x", "y"]].to_numpy(float) if len(frame) else np.empty((0, 2))


def _m(d: float) -> str:
    return "—" if not np.isfinite(d) else f"{d:,.0f} m"
