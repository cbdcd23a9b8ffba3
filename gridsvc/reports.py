"""The report service: one builder for the CLI (``gridsvc report``), the API (``/api/report``),
the pages (下载报告) and jobs.

The scope is resolved to ids once and its frames are loaded once (:func:`load_scope`); coverage,
blind spots, the map layers, station reach and every table derive from those frames, so every
caller gets the same document for the same scope, user and language. Drawing is :mod:`maps`'
job. Sections beyond the built-in ones plug in through :data:`SECTIONS` (a list of builders).
"""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gridsvc.coverage._data import load_scope, resolve_scope
from gridsvc.coverage.blindspots import BlindSpots, blindspots_from_frames
from gridsvc.coverage.frames import ScopeData
from gridsvc.coverage.reach import station_reach_table
from gridsvc.coverage.report import CoverageReport, coverage_from_frames
from gridsvc.errors import Forbidden
from gridsvc.load_ranges import fill_ranges
from gridsvc.portal.mapdata import map_data_from_frames
from gridsvc.settings import Settings
from maps.coverage_map import MapData, MapOptions
from maps.report import ReportData, ReportSection, render_report

log = logging.getLogger(__name__)

SUMMARY_KEYS = (
    "households",
    "paired",
    "paired_share",
    "members",
    "active",
    "reserve",
    "without_cadre",
    "cadres",
    "distance_mean_m",
    "distance_p95_m",
    "distance_max_m",
    "same_building_share",
)
TABLE_COLUMNS = (
    "code",
    "name",
    "households",
    "paired",
    "paired_share",
    "members",
    "active",
    "reserve",
    "without_cadre",
    "load_mean",
    "distance_mean_m",
    "distance_p95_m",
)


@dataclass(frozen=True)
class ReportInputs:
    """What a section builder reads: the loaded frames and everything derived from them."""

    conn: Connection
    data: ScopeData
    coverage: CoverageReport
    spots: BlindSpots
    settings: Settings
    lang: str
    masked: bool


#: Builders of sections after the built-in ones, in order. Each takes the :class:`ReportInputs`
#: and returns a :class:`maps.report.ReportSection`, or None to leave its section out. Another
#: module adds its own with ``SECTIONS.append(builder)`` (e.g. 联系情况, contacts).
SectionBuilder = Callable[[ReportInputs], "ReportSection | None"]
SECTIONS: list[SectionBuilder] = []


def build_report(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
    unmasked: bool = False,
    allowed: bool = False,
    user: str | None = None,
    user_id: int | None = None,
    members: frozenset[str] = frozenset(),
) -> str:
    """Render the report of a street or a community as one self-contained HTML page.

    Parameters
    ----------
    conn
        A connection to the gridsvc database (the web app's is scoped by row-level security).
    street_code, community_code
        The scope (exactly one).
    settings
        Tiles, language (``settings.lang``), time zone, life circles, load ranges, reach metric
        and the far-pair distance.
    unmasked
        Names and phones in clear and sensitive flags included; needs ``allowed``; audited here.
    allowed
        Whether the caller may see full detail (the CLI's operator may; web roles decide).
    user, user_id
        Who asked; printed in the report and written to the audit log. Default: the OS user.
    members
        Member codes whose lines to their households are drawn (and shown from the start).

    Raises
    ------
    Forbidden
        When ``unmasked`` is asked without ``allowed``.
    NotFound
        When the code names no street or community (the caller may see).
    """
    if unmasked and not allowed:
        raise Forbidden("a report with full personal detail needs the right to see it")
    if bool(street_code) == bool(community_code):
        raise ValueError("give exactly one of street_code or community_code")
    user = user or getpass.getuser()
    data = gather_report(
        conn,
        street_code=street_code,
        community_code=community_code,
        settings=settings,
        user=user,
        members=members,
        masked=not unmasked,
    )
    html = render_report(data, report_options(settings, masked=not unmasked, members=members))
    if unmasked:
        log_unmasked(conn, scope=data.scope, user=user, user_id=user_id)
    return html


def report_options(
    settings: Settings, *, masked: bool = True, members: frozenset[str] = frozenset()
) -> MapOptions:
    """The map options of a report (and of the map pages) from the settings."""
    return MapOptions(
        lang=settings.lang,
        tiles=settings.tiles,
        tianditu_key=settings.tianditu_key,
        masked=masked,
        rings_m=tuple(settings.life_circles_m),
        selected_members=frozenset(members),
    )


def report_filename(
    scope: str, *, settings: Settings, masked: bool, now: datetime | None = None
) -> str:
    """``report-530102001-20261207-masked.html``: the scope, the local date, masked or not."""
    day = (now or datetime.now(settings.zone)).astimezone(settings.zone).strftime("%Y%m%d")
    safe = re.sub(r"[^0-9A-Za-z_-]", "", scope) or "scope"
    return f"report-{safe}-{day}-{'masked' if masked else 'unmasked'}.html"


def _contacts_section(inputs: ReportInputs) -> ReportSection | None:
    """联系情况 (gridsvc.contacts.report), when the scope keeps a contact log."""
    if inputs.data.contacts is None:
        return None
    from gridsvc.contacts.report import contact_section

    html = contact_section(
        inputs.conn,
        community_ids=inputs.data.scope.community_ids.tolist(),
        settings=inputs.settings,
        lang=inputs.lang,
    )
    return ReportSection(key="contacts", title="", html=html)


SECTIONS.append(_contacts_section)


def gather_report(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
    user: str = "",
    members: frozenset[str] = frozenset(),
    masked: bool = True,
) -> ReportData:
    """Everything a report shows, from one load of the scope (see :func:`build_report`)."""
    scope = resolve_scope(conn, street_code=street_code, community_code=community_code)
    data = load_scope(conn, scope, settings=settings, geometry=True)
    cov = coverage_from_frames(data, settings=settings)
    spots = blindspots_from_frames(data, settings=settings)
    pair_count = len(data.household_pairs)
    reach = _reach(data, settings)
    map_data = map_data_from_frames(
        conn,
        data,
        spots=spots,
        summary=_summary(cov, spots, reach, settings),
        pair_lines=pair_count <= MapOptions.lines_max and not members,
        members=members,
    )
    ranges = _load_ranges(data, settings)
    default = (settings.household_load.min, settings.household_load.max)
    low, high = ranges[0] if len(ranges) == 1 else default
    below, above = (int(cov.summary.get(k) or 0) for k in ("loads_below_min", "loads_above_max"))
    inputs = ReportInputs(conn, data, cov, spots, settings, settings.lang, masked)
    return ReportData(
        title=str(scope.name or street_code or community_code),
        scope=str(street_code or community_code),
        map=map_data,
        communities=_table(cov.communities),
        grids=_table(_grid_table(map_data, cov)),
        loads=_loads(cov.load_distribution, int(cov.summary.get("reserve") or 0)),
        load_range=(low, high),
        loads_outside=(below, above) if len(ranges) > 1 else None,
        distances=_distances(data),
        far_m=settings.far_pair_m,
        blindspots=dict(spots.frames),
        stations=_stations(reach, map_data),
        generated_at=datetime.now(settings.zone),
        generated_by=user,
        plan_version=_plan_version(conn, data),
        sections=tuple(s for s in (build(inputs) for build in SECTIONS) if s is not None),
    )


def log_unmasked(conn: Connection, *, scope: str, user: str, user_id: int | None = None) -> None:
    """Record a full-detail report: in the log, and in ``audit_log`` (``report_unmasked``)."""
    from gridsvc.accounts import audit

    log.warning("unmasked report of %s by %s", scope, user)
    if conn.scalar(text("SELECT to_regclass('audit_log') IS NOT NULL")):
        audit.record(
            conn,
            "report_unmasked",
            username=user,
            user_id=user_id,
            target=f"report {scope}",
            details={"scope": scope},
        )


def _summary(
    cov: CoverageReport, spots: BlindSpots, reach: pd.DataFrame, settings: Settings
) -> dict[str, Any]:
    summary = {k: cov.summary.get(k) for k in SUMMARY_KEYS}
    summary |= {f"reach_{r}": cov.summary.get(f"reach_{r}") for r in settings.life_circles_m}
    summary["stations"] = len(reach)  # the stations that reach the scope's households
    summary["blindspots_total"] = int(sum(spots.counts().values()))
    return summary


def _grid_table(map_data: MapData, cov: CoverageReport) -> pd.DataFrame:
    grids = pd.DataFrame(map_data.grids.drop(columns="geometry"))[["code", "name"]]
    return grids.merge(cov.grids.drop(columns=["community_id"], errors="ignore"), on="code")


def _reach(data: ScopeData, settings: Settings) -> pd.DataFrame:
    """Households within each ring of each station that reaches any household of the scope
    (stations reaching none belong to other reports, whoever may see them)."""
    reach = station_reach_table(
        data,
        rings=tuple(sorted(settings.life_circles_m)),
        metric=settings.reach_metric,
        snap_m=settings.road_snap_m,
    )
    rings = [c for c in reach.columns if c.startswith("within_")]
    if rings:
        reach = reach[reach[rings[-1]] > 0]
    return reach.reset_index(drop=True)


def _stations(reach: pd.DataFrame, map_data: MapData) -> pd.DataFrame:
    names = pd.DataFrame(map_data.stations.drop(columns="geometry"))[["code", "name"]]
    out = reach.drop(columns="station_id").merge(names, on="code", how="left")
    rings = [c for c in out.columns if c.startswith("within_")]
    return out[["code", "name", *rings]]


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    flat = frame.reset_index(drop=True)
    return flat[[c for c in TABLE_COLUMNS if c in flat.columns]]


def _loads(distribution: pd.DataFrame, reserve: int) -> np.ndarray:
    rows = distribution[distribution["kind"] == "households_per_member"]
    active = np.repeat(rows["load"].to_numpy(int), rows["count"].to_numpy(int))
    return np.concatenate([np.zeros(reserve, int), active])


def _load_ranges(data: ScopeData, settings: Settings) -> list[tuple[int, int]]:
    """The distinct households-per-member ranges of the scope's members (resolved by
    :func:`load_scope` as the pairing resolves them)."""
    if data.members.empty:
        rows = pd.DataFrame({"min_load": [], "max_load": []})
        ranges = fill_ranges(rows, settings.household_load)
    else:
        ranges = data.members[["min_load", "max_load"]]
    pairs = {(int(a), int(b)) for a, b in ranges.drop_duplicates().itertuples(index=False)}
    return sorted(pairs) or [(settings.household_load.min, settings.household_load.max)]


def _distances(data: ScopeData) -> np.ndarray:
    d = pd.to_numeric(data.household_pairs["distance_m"], errors="coerce").to_numpy(float)
    return d[np.isfinite(d)]


def _plan_version(conn: Connection, data: ScopeData) -> str | None:
    if not conn.scalar(text("SELECT to_regclass('plans') IS NOT NULL")):
        return None
    rows = conn.execute(
        text(
            "SELECT c.code, max(p.version) AS version FROM plans p "
            "JOIN communities c ON c.id = p.community_id WHERE p.community_id = ANY(:ids) "
            "GROUP BY c.code ORDER BY c.code"
        ),
        {"ids": data.scope.community_ids.tolist()},
    ).all()
    versions = {r.version for r in rows}
    if not rows:
        return None
    if len(versions) == 1:
        return f"v{versions.pop()}"
    return ", ".join(f"{r.code}: v{r.version}" for r in rows)
