"""Map pages and HTML reports of a scope, drawn by the ``maps`` builders (assets inlined)."""

from __future__ import annotations

from sqlalchemy import Connection

from gridsvc.coverage._data import resolve_scope
from gridsvc.portal.mapdata import load_map_data
from gridsvc.settings import Settings
from maps.coverage_map import MapOptions, build_map
from maps.report import ReportData, map_html, render_report


def _options(settings: Settings, lang: str) -> MapOptions:
    return MapOptions(
        lang=lang, tiles=settings.tiles, tianditu_key=settings.tianditu_key, masked=True
    )


def render_scope_map(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
    lang: str = "zh",
) -> str:
    """The coverage map of a scope as one page with every asset inlined (no CDN)."""
    data = load_map_data(
        conn, street_code=street_code, community_code=community_code, settings=settings
    )
    return map_html(build_map(data, _options(settings, lang)))


def render_scope_report(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
    lang: str = "zh",
    user: str = "",
) -> str:
    """The self-contained HTML report of a scope (masked)."""
    scope = resolve_scope(conn, street_code=street_code, community_code=community_code)
    data = load_map_data(
        conn, street_code=street_code, community_code=community_code, settings=settings
    )
    report = ReportData(
        title=scope.name or "",
        scope=scope.code or "",
        map=data,
        far_m=settings.far_pair_m,
        load_range=(settings.household_load.min, settings.household_load.max),
        blindspots={k: v.drop(columns="geometry") for k, v in data.blindspots.items()},
        generated_by=user,
    )
    from gridsvc.reports import with_contact_section

    report = with_contact_section(conn, report, settings=settings.with_(lang=lang))
    return render_report(report, _options(settings, lang))
