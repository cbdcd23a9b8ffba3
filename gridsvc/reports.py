"""The report service: gather a street's or community's layers and figures, render one HTML file.

Coverage figures and blind spots come from :mod:`gridsvc.coverage`; pairs from the pairing views
``current_household_pairs`` / ``current_member_pairs`` and the version from ``plans`` (when they
exist: before any pairing every household shows as unpaired). Drawing is :mod:`maps`' job.
"""

from __future__ import annotations

import getpass
import json
import logging
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from sqlalchemy import Connection, text

from geodata.projection import metric_epsg, to_metres
from gridsvc.coverage import compute_coverage, find_blindspots
from gridsvc.errors import Forbidden
from gridsvc.load_ranges import fill_ranges, range_sql
from gridsvc.settings import Settings
from maps.coverage_map import MapData, MapOptions
from maps.report import ReportData, render_report

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


def build_report(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
    unmasked: bool = False,
    allowed: bool = False,
    user: str | None = None,
    members: frozenset[str] = frozenset(),
) -> str:
    """Render the report of a street or a community as one self-contained HTML page.

    Parameters
    ----------
    conn
        A connection to the gridsvc database.
    street_code, community_code
        The scope (exactly one).
    settings
        Tiles, language, life circles, load ranges and the far-pair distance.
    unmasked
        Names and phones in clear and sensitive flags included; needs ``allowed`` and is logged.
    allowed
        Whether the caller may see full detail (the CLI's operator may; web roles decide).
    user
        Who asked; printed in the report and logged. Default: the OS user.
    members
        Member codes whose lines to their households are drawn (and shown from the start).

    Raises
    ------
    Forbidden
        When ``unmasked`` is asked without ``allowed``.
    NotFound
        When the code names no street or community.
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
    )
    options = MapOptions(
        lang=settings.lang,
        tiles=settings.tiles,
        tianditu_key=settings.tianditu_key,
        masked=not unmasked,
        rings_m=tuple(settings.life_circles_m),
        selected_members=frozenset(members),
    )
    data = with_contact_section(conn, data, settings=settings)
    html = render_report(data, options)
    if unmasked:
        log_unmasked(conn, scope=data.scope, user=user)
    return html


def with_contact_section(conn: Connection, data: ReportData, *, settings: Settings) -> ReportData:
    """The report with its 联系情况 section (gridsvc.contacts.report) when contacts are kept."""
    if not _exists(conn, "contacts"):
        return data
    from dataclasses import replace

    from gridsvc.contacts.report import contact_section
    from gridsvc.coverage._data import resolve_scope

    code = data.scope or None
    level = {"street_code": code} if code and len(code) == 9 else {"community_code": code}
    ids = resolve_scope(conn, **level).community_ids.tolist()
    section = contact_section(conn, community_ids=ids, settings=settings, lang=settings.lang)
    return replace(data, extra_sections=(*data.extra_sections, section))


def gather_report(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
    user: str = "",
    members: frozenset[str] = frozenset(),
) -> ReportData:
    """Everything a report shows, read from the database (see :func:`build_report`)."""
    cov = compute_coverage(
        conn, street_code=street_code, community_code=community_code, settings=settings
    )
    spots = find_blindspots(
        conn, street_code=street_code, community_code=community_code, settings=settings
    )
    ids, streets = _scope_ids(conn, street_code=street_code, community_code=community_code)
    pairs = _exists(conn, "current_household_pairs") and _exists(conn, "current_member_pairs")
    layers = _layers(
        conn,
        ids=ids,
        streets=streets,
        pairs=pairs,
        lines_max=MapOptions.lines_max,
        members=members,
    )
    grids = _with_counts(layers["grids"], cov.grids)
    buildings = _with_counts(layers["buildings"], cov.buildings)
    summary = {k: cov.summary.get(k) for k in SUMMARY_KEYS}
    summary |= {f"reach_{r}": cov.summary.get(f"reach_{r}") for r in settings.life_circles_m}
    summary["stations"] = len(layers["stations"])
    summary["blindspots_total"] = int(sum(spots.counts().values()))
    ranges = _load_ranges(conn, ids, settings)
    default = (settings.household_load.min, settings.household_load.max)
    low, high = ranges[0] if len(ranges) == 1 else default
    below, above = (int(cov.summary.get(k) or 0) for k in ("loads_below_min", "loads_above_max"))
    outside = (below, above) if len(ranges) > 1 else None
    map_data = MapData(
        streets=layers["streets"],
        communities=layers["communities"],
        grids=grids,
        buildings=buildings,
        households=layers["households"],
        members=layers["members"],
        pairs=layers.get("pairs"),
        cadres=layers["cadres"],
        cadre_pairs=layers.get("cadre_pairs"),
        stations=layers["stations"],
        blindspots=dict(spots.frames),
        summary=summary,
    )
    return ReportData(
        title=str(cov.scope.get("name") or street_code or community_code),
        scope=str(street_code or community_code),
        map=map_data,
        communities=_table(cov.communities),
        grids=_table(
            grids.drop(columns="geometry").merge(
                cov.grids.drop(columns=["households", "paired"], errors="ignore"),
                on="code",
                how="left",
            )
        ),
        loads=_loads(cov.load_distribution, int(cov.summary.get("reserve") or 0)),
        load_range=(low, high),
        loads_outside=outside,
        distances=_distances(conn, ids) if pairs else np.zeros(0),
        far_m=settings.far_pair_m,
        blindspots=dict(spots.frames),
        stations=station_reach(
            layers["stations"], layers["households"], tuple(settings.life_circles_m)
        ),
        generated_at=datetime.now().astimezone(),
        generated_by=user,
        plan_version=_plan_version(conn, ids),
    )


def station_reach(
    stations: gpd.GeoDataFrame, households: gpd.GeoDataFrame, rings: tuple[int, ...]
) -> pd.DataFrame:
    """Households within each walking ring of each Red Station (straight-line metres).

    Returns
    -------
    pandas.DataFrame
        ``code``, ``name`` and ``within_<m>`` per ring.
    """
    out = pd.DataFrame({"code": stations["code"].to_numpy(), "name": stations["name"].to_numpy()})
    if not len(stations) or not len(households):
        for r in rings:
            out[f"within_{r}"] = 0
        return out
    hx, hy = households.geometry.x.to_numpy(), households.geometry.y.to_numpy()
    epsg = metric_epsg(hx, hy)
    tree = cKDTree(np.column_stack(to_metres(hx, hy, epsg=epsg)[:2]))
    sx, sy, _ = to_metres(stations.geometry.x.to_numpy(), stations.geometry.y.to_numpy(), epsg=epsg)
    for r in sorted(rings):
        counts = tree.query_ball_point(np.column_stack([sx, sy]), r=r, return_length=True)
        out[f"within_{r}"] = np.asarray(counts, dtype=int)
    return out


def log_unmasked(conn: Connection, *, scope: str, user: str) -> None:
    """Record a full-detail report: in the log, and in ``audit_log`` when it exists."""
    log.warning("unmasked report of %s by %s", scope, user)
    if _exists(conn, "audit_log"):
        conn.execute(
            text(
                "INSERT INTO audit_log (username, action, target, details) "
                "VALUES (:u, 'report.unmasked', :t, CAST(:d AS jsonb))"
            ),
            {"u": user, "t": scope, "d": json.dumps({"scope": scope})},
        )


def _exists(conn: Connection, name: str) -> bool:
    return bool(conn.scalar(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}))


def _scope_ids(
    conn: Connection, *, street_code: str | None, community_code: str | None
) -> tuple[list[int], list[int]]:
    where = "s.code = :c" if street_code else "c.code = :c"
    rows = conn.execute(
        text(
            "SELECT c.id, c.street_id FROM communities c JOIN streets s ON s.id = c.street_id "
            f"WHERE {where} ORDER BY c.id"
        ),
        {"c": street_code or community_code},
    ).all()
    return [r.id for r in rows], sorted({r.street_id for r in rows})


def _read(conn: Connection, sql: str, params: dict[str, Any]) -> gpd.GeoDataFrame:
    frame = gpd.read_postgis(text(sql), conn, geom_col="geom", params=params)
    return frame.rename_geometry("geometry").set_crs(4326, allow_override=True)


def _layers(
    conn: Connection,
    *,
    ids: list[int],
    streets: list[int],
    pairs: bool,
    lines_max: int,
    members: frozenset[str],
) -> dict[str, gpd.GeoDataFrame]:
    p = {"ids": ids, "streets": streets, "chosen": sorted(members)}
    hh_load = (
        "LEFT JOIN (SELECT member_id, count(*) AS n FROM current_household_pairs "
        "GROUP BY member_id) l ON l.member_id = m.id"
        if pairs
        else "LEFT JOIN (SELECT NULL::int AS member_id, 0 AS n) l ON false"
    )
    m_load = (
        "LEFT JOIN (SELECT cadre_id, count(*) AS n FROM current_member_pairs "
        "GROUP BY cadre_id) l ON l.cadre_id = c.id"
        if pairs
        else "LEFT JOIN (SELECT NULL::int AS cadre_id, 0 AS n) l ON false"
    )
    paired = (
        "EXISTS (SELECT 1 FROM current_household_pairs p WHERE p.household_id = h.id)"
        if pairs
        else "false"
    )
    out = {
        "streets": _read(
            conn,
            "SELECT code, name, geom FROM streets WHERE id = ANY(:streets) AND geom IS NOT NULL",
            p,
        ),
        "communities": _read(
            conn,
            "SELECT code, name, geom FROM communities WHERE id = ANY(:ids) AND geom IS NOT NULL",
            p,
        ),
        "grids": _read(
            conn, "SELECT code, name, geom FROM grids WHERE community_id = ANY(:ids)", p
        ),
        "buildings": _read(
            conn,
            "SELECT code, name, kind, geom FROM buildings WHERE community_id = ANY(:ids)",
            p,
        ),
        "households": _read(
            conn,
            f"SELECT h.code, {paired} AS paired, h.geom FROM households h "
            "WHERE h.community_id = ANY(:ids)",
            p,
        ),
        "members": _read(
            conn,
            "SELECT m.code, m.name, m.phone, m.kind, m.eligible, coalesce(l.n, 0) AS load, "
            f"m.geom FROM members m {hh_load} WHERE m.community_id = ANY(:ids)",
            p,
        ),
        "cadres": _read(
            conn,
            "SELECT c.code, c.name, c.phone, c.level, coalesce(l.n, 0) AS load, c.geom "
            f"FROM cadres c {m_load} WHERE c.community_id = ANY(:ids) "
            "OR (c.community_id IS NULL AND c.street_id = ANY(:streets))",
            p,
        ),
        "stations": _read(
            conn,
            "SELECT code, name, services, geom FROM stations WHERE community_id = ANY(:ids)",
            p,
        ),
    }
    out["members"]["active"] = out["members"]["load"] > 0
    if pairs:
        count = conn.scalar(
            text("SELECT count(*) FROM current_household_pairs WHERE community_id = ANY(:ids)"),
            p,
        )
        if count <= lines_max or members:
            only = " AND m.code = ANY(:chosen)" if members else ""
            out["pairs"] = _read(
                conn,
                "SELECT m.code AS member_code, ST_MakeLine(m.geom, h.geom) AS geom "
                "FROM current_household_pairs p JOIN members m ON m.id = p.member_id "
                "JOIN households h ON h.id = p.household_id "
                f"WHERE p.community_id = ANY(:ids){only}",
                p,
            )
        out["cadre_pairs"] = _read(
            conn,
            "SELECT c.code AS cadre_code, ST_MakeLine(c.geom, m.geom) AS geom "
            "FROM current_member_pairs p JOIN cadres c ON c.id = p.cadre_id "
            "JOIN members m ON m.id = p.member_id WHERE p.community_id = ANY(:ids)",
            p,
        )
    return out


def _with_counts(frame: gpd.GeoDataFrame, counts: pd.DataFrame) -> gpd.GeoDataFrame:
    """Add ``households``/``paired`` from a coverage table (joined on ``code``)."""
    keep = counts[["code", "households", "paired"]].drop_duplicates("code")
    out = frame.merge(keep, on="code", how="left")
    return out.fillna({"households": 0, "paired": 0})


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    flat = frame.reset_index(drop=True)
    return flat[[c for c in TABLE_COLUMNS if c in flat.columns]]


def _loads(distribution: pd.DataFrame, reserve: int) -> np.ndarray:
    rows = distribution[distribution["kind"] == "households_per_member"]
    active = np.repeat(rows["load"].to_numpy(int), rows["count"].to_numpy(int))
    return np.concatenate([np.zeros(reserve, int), active])


def _load_ranges(conn: Connection, ids: list[int], settings: Settings) -> list[tuple[int, int]]:
    """The distinct households-per-member ranges of the scope's members, resolved as the
    pairing resolves them (:mod:`gridsvc.load_ranges`)."""
    rows = pd.DataFrame(
        conn.execute(
            text(
                f"SELECT DISTINCT {range_sql('households', person='m', community='c', street='s')} "
                "FROM members m JOIN communities c ON c.id = m.community_id "
                "JOIN streets s ON s.id = c.street_id WHERE m.community_id = ANY(:ids)"
            ),
            {"ids": ids},
        ).all(),
        columns=["min_load", "max_load"],
    )
    ranges = fill_ranges(rows, settings.household_load)
    return sorted({(int(a), int(b)) for a, b in ranges.itertuples(index=False)})


def _distances(conn: Connection, ids: list[int]) -> np.ndarray:
    rows = conn.execute(
        text("SELECT distance_m FROM current_household_pairs WHERE community_id = ANY(:ids)"),
        {"ids": ids},
    ).scalars()
    return np.fromiter((float(d) for d in rows if d is not None), float)


def _plan_version(conn: Connection, ids: list[int]) -> str | None:
    if not _exists(conn, "plans"):
        return None
    rows = conn.execute(
        text(
            "SELECT c.code, max(p.version) AS version FROM plans p "
            "JOIN communities c ON c.id = p.community_id WHERE p.community_id = ANY(:ids) "
            "GROUP BY c.code ORDER BY c.code"
        ),
        {"ids": ids},
    ).all()
    versions = {r.version for r in rows}
    if not rows:
        return None
    if len(versions) == 1:
        return f"v{versions.pop()}"
    return ", ".join(f"{r.code}: v{r.version}" for r in rows)
