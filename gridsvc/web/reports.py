"""Map pages and HTML reports of a scope for the web app (the report is :mod:`gridsvc.reports`')."""

from __future__ import annotations

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
    lang: str = "zh",
) -> str:
    """The coverage map of a scope as one page with every asset inlined (no CDN; masked)."""
    data = load_map_data(
        conn, street_code=street_code, community_code=community_code, settings=settings
    )
    return map_html(build_map(data, report_options(settings.with_(lang=lang))))


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
