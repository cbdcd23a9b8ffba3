"""Map pages and HTML reports of a scope for the web app (the report is :mod:`gridsvc.reports`')."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from gridsvc.accounts.users import User
from gridsvc.portal.mapdata import load_map_data
from gridsvc.reports import build_report, report_filename, report_options
from gridsvc.settings import Settings
from maps.coverage_map import build_map
from maps.report import map_html


def render_scope_map(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
    focus: dict[str, Any] | None = None,
) -> str:
    """The coverage map of a scope as one page with every asset inlined (no CDN; masked),
    opened on ``focus`` (``lat``, ``lon``, ``label``) when given, highlighted there."""
    data = load_map_data(
        conn, street_code=street_code, community_code=community_code, settings=settings
    )
    options = report_options(settings)
    if focus:
        options = replace(
            options, focus=(float(focus["lat"]), float(focus["lon"]), str(focus["label"]))
        )
    return map_html(build_map(data, options))


def render_scope_report(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
    lang: str = "zh",
    user: User,
    unmasked: bool = False,
) -> tuple[str, str]:
    """The report of a scope as the CLI writes it, and its file name.

    The same builder as ``gridsvc report`` (:func:`gridsvc.reports.build_report`): for the
    same scope, user and language the same document. Unmasked needs a planner or admin and is
    audited by the builder.
    """
    html = build_report(
        conn,
        street_code=street_code,
        community_code=community_code,
        settings=settings.with_(lang=lang),
        unmasked=unmasked,
        allowed=user.can_plan,
        user=user.username,
        user_id=user.id,
    )
    code = street_code or community_code or "scope"
    return html, report_filename(code, settings=settings, masked=not unmasked)


def render_sites_map(conn: Connection, run_id: int, *, settings: Settings) -> str:
    """A station-suggestion run's sites over its community's map: each site a marker ringed
    by its walking radius, labelled with the households it adds (404 outside the scope)."""
    from sqlalchemy import text

    from gridsvc.coverage.sites import load_suggestions
    from gridsvc.errors import NotFound

    sites = load_suggestions(conn, run_id)
    community = conn.scalar(
        text(
            "SELECT c.code FROM site_runs r JOIN communities c ON c.id = r.community_id "
            "WHERE r.id = :r"
        ),
        {"r": run_id},
    )
    if community is None:
        raise NotFound(f"site run {run_id}: no such run in your scope")
    data = load_map_data(conn, community_code=community, settings=settings)
    zh = settings.lang == "zh"
    reasons = [
        (f"新站点 {r}：新增覆盖 {n:,} 户" if zh else f"new site {r}: reaches {n:,} more households")
        for r, n in zip(sites["rank"], sites["new_households"], strict=True)
    ]
    frame = sites.assign(
        code=sites["building_code"].fillna("").astype(str),
        name=[f"#{r}" for r in sites["rank"]],
        reason=reasons,
    )
    blindspots = {"suggested_sites": frame, **dict(data.blindspots)}
    return map_html(build_map(replace(data, blindspots=blindspots), report_options(settings)))
