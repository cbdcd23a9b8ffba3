"""The report section 联系情况 and the half-monthly digest (self-contained, offline).

:func:`contact_section` renders one HTML fragment (every value escaped) that a report appends:
the share contacted within cadence per grid and member, the overdue list (masked: codes and
buildings, no names or vulnerability flags), and contacts per week for the last 12 weeks as an
inline SVG. :func:`render_digest` is the street's half-monthly analysis paper.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import jinja2
import pandas as pd
from markupsafe import Markup
from sqlalchemy import Connection, text

from gridsvc.contacts.cadence import contact_status, member_figures
from gridsvc.contacts.log import EFFECTIVE
from gridsvc.settings import Settings
from maps.chart import bar_chart_svg
from maps.report import TEMPLATES
from maps.safe import finalize

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    finalize=finalize,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ROWS_MAX = 200

LABELS: dict[str, dict[str, str]] = {
    "title": {"zh": "联系情况", "en": "Contacts"},
    "cadence_note": {
        "zh": "周期内联系：上次联系距今未超过联系周期（困难户 {v} 天，其他 {d} 天）",
        "en": "Contacted within cadence: last contact no older than the cadence "
        "({v} days for vulnerable households, {d} for the others)",
    },
    "summary": {
        "zh": "已结对 {paired} 户，周期内已联系 {done} 户（{share}），"
        "逾期 {late} 户，其中从未联系 {never} 户",
        "en": "{paired} households paired, {done} contacted within cadence ({share}), "
        "{late} overdue, of which {never} never contacted",
    },
    "weekly": {"zh": "近12周每周联系次数", "en": "Contacts per week, last 12 weeks"},
    "week_axis": {"zh": "周（起始日）", "en": "Week (starting)"},
    "by_grid": {"zh": "各网格周期内联系率", "en": "Contacted within cadence, by grid"},
    "by_member": {"zh": "各党员联系情况（逾期多者在前）", "en": "By member (most overdue first)"},
    "overdue": {"zh": "逾期未联系住户（已脱敏）", "en": "Households overdue (masked)"},
    "grid": {"zh": "网格", "en": "Grid"},
    "member": {"zh": "党员", "en": "Member"},
    "household": {"zh": "住户", "en": "Household"},
    "building": {"zh": "楼栋", "en": "Building"},
    "paired": {"zh": "已结对", "en": "Paired"},
    "contacted": {"zh": "周期内已联系", "en": "Contacted"},
    "share": {"zh": "联系率", "en": "Share"},
    "overdue_n": {"zh": "逾期", "en": "Overdue"},
    "last_contact": {"zh": "上次联系", "en": "Last contact"},
    "days_since": {"zh": "距今天数", "en": "Days since"},
    "cadence": {"zh": "周期（天）", "en": "Cadence (days)"},
    "never": {"zh": "从未联系", "en": "never"},
    "none": {"zh": "无", "en": "none"},
    "more": {"zh": "另有 {n} 条未列出", "en": "{n} more not listed"},
    "contacts_n": {"zh": "联系次数", "en": "Contacts"},
    "households_reached": {"zh": "联系到的户数", "en": "Households reached"},
    # digest
    "digest_title": {"zh": "民情分析半月报", "en": "Half-monthly analysis"},
    "period": {"zh": "统计期间", "en": "Period"},
    "generated_at": {"zh": "生成时间", "en": "Generated"},
    "period_by_grid": {"zh": "本期各网格联系情况", "en": "Contacts in the period, by grid"},
    "period_by_member": {"zh": "本期各党员联系情况", "en": "Contacts in the period, by member"},
    "idle_members": {"zh": "本期无联系记录的在岗党员", "en": "Active members with no contact"},
    "never_reached": {"zh": "从未联系的住户", "en": "Households never contacted"},
    "change": {"zh": "与上期相比", "en": "Change since the previous period"},
    "previous": {"zh": "上期", "en": "Previous period"},
    "current": {"zh": "本期", "en": "This period"},
    "figure": {"zh": "指标", "en": "Figure"},
    "requests_note": {
        "zh": "群众诉求办理情况将在诉求登记上线后列入本报告",
        "en": "Residents' requests will be listed here once they are recorded",
    },
}


class _L:
    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in ("zh", "en") else "zh"

    def __getattr__(self, key: str) -> str:
        return LABELS[key][self.lang]

    def __call__(self, key: str, **fmt: object) -> str:
        return LABELS[key][self.lang].format(**fmt)


def weekly_counts(
    conn: Connection, community_ids: list[int], *, end: datetime, zone: str, weeks: int = 12
) -> tuple[list[str], list[int]]:
    """Contacts per week (Monday-start weeks in ``zone``) for the ``weeks`` ending at ``end``."""
    local_end = end.astimezone(ZoneInfo(zone)).date()
    monday = local_end - timedelta(days=local_end.weekday())
    starts = [monday - timedelta(weeks=k) for k in range(weeks - 1, -1, -1)]
    rows = conn.execute(
        text(
            "SELECT date_trunc('week', c.contacted_at AT TIME ZONE :z)::date AS week, count(*) "
            "FROM contacts c WHERE c.community_id = ANY(:ids) AND c.contacted_at >= :start "
            f"AND c.contacted_at <= :end AND {EFFECTIVE} GROUP BY 1"
        ),
        {
            "z": zone,
            "ids": community_ids,
            "start": datetime.combine(starts[0], datetime.min.time(), ZoneInfo(zone)),
            "end": end,
        },
    ).all()
    found = {r.week: int(r.count) for r in rows}
    return [d.strftime("%m-%d") for d in starts], [found.get(d, 0) for d in starts]


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _masked_overdue(state: pd.DataFrame, codes: dict[int, str], zone: str, L: _L) -> list[list]:
    late = state[state["overdue"].astype(bool)].sort_values(
        ["vulnerable", "overdue_days", "household"], ascending=[False, False, True]
    )
    rows = []
    for r in late.head(ROWS_MAX).itertuples():
        last = "" if pd.isna(r.last_at) else r.last_at.tz_convert(zone).strftime("%Y-%m-%d")
        rows.append(
            [
                r.household,
                codes.get(r.building_id, "") if not pd.isna(r.building_id) else "",
                r.member,
                last or L.never,
                "" if pd.isna(r.days_since) else int(r.days_since),
                int(r.cadence_days),
            ]
        )
    return rows


def contact_section(
    conn: Connection,
    *,
    community_ids: list[int],
    settings: Settings,
    lang: str = "zh",
    as_of: datetime | None = None,
) -> str:
    """The 联系情况 section of a report (masked), as an HTML fragment."""
    L = _L(lang)
    state = contact_status(conn, community_ids, settings=settings, as_of=as_of)
    end = as_of or datetime.now(ZoneInfo("UTC"))
    labels, counts = weekly_counts(conn, community_ids, end=end, zone=settings.timezone)
    grids = dict(
        conn.execute(
            text("SELECT id, code FROM grids WHERE community_id = ANY(:i)"), {"i": community_ids}
        ).all()
    )
    buildings = dict(
        conn.execute(
            text("SELECT id, code FROM buildings WHERE community_id = ANY(:i)"),
            {"i": community_ids},
        ).all()
    )
    grid_rows, member_rows = [], []
    if not state.empty:
        done = ~state["overdue"].astype(bool)
        by_grid = (
            state.assign(done=done)
            .groupby("grid_id")
            .agg(paired=("household", "size"), done=("done", "sum"))
        )
        for gid, r in by_grid.iterrows():
            grid_rows.append(
                [grids.get(gid, ""), int(r.paired), int(r.done), _share(int(r.done), int(r.paired))]
            )
        grid_rows.sort(key=lambda row: row[0])
        figures = member_figures(state).sort_values(["overdue", "member"], ascending=[False, True])
        for r in figures.itertuples():
            member_rows.append(
                [r.member, int(r.households), int(r.overdue), f"{r.contacted_share:.0%}"]
            )
    late = int(state["overdue"].sum()) if not state.empty else 0
    never = int(state["last_at"].isna().sum()) if not state.empty else 0
    paired = len(state)
    summary = L(
        "summary",
        paired=paired,
        done=paired - late,
        share=_share(paired - late, paired),
        late=late,
        never=never,
    )
    overdue_rows = _masked_overdue(state, buildings, settings.timezone, L) if late else []
    return _ENV.get_template("contacts_section.html.j2").render(
        L=L,
        summary=summary,
        chart=bar_chart_svg(labels, counts, caption=L.week_axis),
        grid_head=[L.grid, L.paired, L.contacted, L.share],
        grid_rows=grid_rows,
        member_head=[L.member, L.paired, L.overdue_n, L.share],
        member_rows=member_rows[:ROWS_MAX],
        member_more=L("more", n=len(member_rows) - ROWS_MAX)
        if len(member_rows) > ROWS_MAX
        else None,
        overdue_head=[
            L.household,
            L.building,
            L.member,
            L.last_contact,
            L.days_since,
            L.cadence,
        ],
        overdue_rows=overdue_rows,
        overdue_more=L("more", n=late - ROWS_MAX) if late > ROWS_MAX else None,
        cadence_note=L("cadence_note", v=settings.contact_days_vulnerable, d=settings.contact_days),
    )


# --- the half-monthly digest -------------------------------------------------------------------

_PERIOD_SQL = f"""
SELECT {{key}} AS key, count(*) AS contacts, count(DISTINCT c.household_id) AS households
FROM contacts c JOIN households h ON h.id = c.household_id
LEFT JOIN grids g ON g.id = h.grid_id LEFT JOIN members m ON m.id = c.member_id
WHERE c.community_id = ANY(:ids) AND c.contacted_at >= :start AND c.contacted_at <= :end
  AND {EFFECTIVE}
GROUP BY 1 ORDER BY 1
"""


def _period_counts(conn: Connection, key: str, ids: list[int], start: datetime, end: datetime):
    sql = _PERIOD_SQL.replace("{key}", key)
    return conn.execute(text(sql), {"ids": ids, "start": start, "end": end}).all()


def render_digest(
    conn: Connection,
    *,
    street_code: str,
    start: date,
    end: date,
    settings: Settings,
    lang: str = "zh",
) -> str:
    """The street's half-monthly analysis paper for ``start``..``end`` (inclusive dates, Beijing
    time): one self-contained HTML page, masked, no script and no network.

    Raises
    ------
    NotFound
        When the street code names no street.
    InputRejected
        When ``end`` is before ``start``.
    """
    from gridsvc.coverage._data import resolve_scope
    from gridsvc.errors import InputRejected, Reject

    if end < start:
        reason = "the period ends before it starts"
        raise InputRejected(
            f"--to {end}: {reason}", [Reject("digest", None, "to", reason, str(end))]
        )
    L = _L(lang)
    zone = ZoneInfo(settings.timezone)
    scope = resolve_scope(conn, street_code=street_code)
    ids = scope.community_ids.tolist()
    t0 = datetime.combine(start, datetime.min.time(), zone)
    t1 = datetime.combine(end, datetime.max.time(), zone)
    days = (end - start).days + 1
    p0, p1 = t0 - timedelta(days=days), t0 - timedelta(microseconds=1)
    now_state = contact_status(conn, ids, settings=settings, as_of=t1)
    before = contact_status(conn, ids, settings=settings, as_of=p1)
    this_grid = _period_counts(conn, "g.code", ids, t0, t1)
    this_member = _period_counts(conn, "m.code", ids, t0, t1)
    previous_total = sum(r.contacts for r in _period_counts(conn, "g.code", ids, p0, p1))
    reached = {r.key for r in this_member}
    active = sorted(set(now_state["member"])) if not now_state.empty else []
    never = now_state[now_state["last_at"].isna()] if not now_state.empty else now_state

    def figures(state: pd.DataFrame) -> tuple[int, int, int]:
        if state.empty:
            return 0, 0, 0
        late = int(state["overdue"].sum())
        return len(state) - late, late, int(state["last_at"].isna().sum())

    (done1, late1, never1), (done0, late0, never0) = figures(now_state), figures(before)
    change_rows = [
        [L.contacts_n, previous_total, sum(r.contacts for r in this_grid)],
        [
            L.contacted,
            f"{done0} ({_share(done0, len(before))})",
            f"{done1} ({_share(done1, len(now_state))})",
        ],
        [L.overdue_n, late0, late1],
        [L.never, never0, never1],
    ]
    buildings = dict(
        conn.execute(
            text("SELECT id, code FROM buildings WHERE community_id = ANY(:i)"), {"i": ids}
        ).all()
    )
    never_rows = [
        [
            r.household,
            buildings.get(r.building_id, "") if not pd.isna(r.building_id) else "",
            r.member,
        ]
        for r in never.sort_values("household").head(ROWS_MAX).itertuples()
    ]
    section = contact_section(conn, community_ids=ids, settings=settings, lang=lang, as_of=t1)
    from gridsvc.requests.report import TITLE, request_rows

    requests_head, requests_rows = request_rows(conn, ids, t0, t1, L.lang)
    return _ENV.get_template("digest.html.j2").render(
        lang=lang,
        L=L,
        title=f"{scope.name or street_code} {L.digest_title}",
        period=f"{start:%Y-%m-%d} – {end:%Y-%m-%d}",
        generated_at=datetime.now(zone).strftime("%Y-%m-%d %H:%M"),
        masked_note="个人信息已脱敏" if lang == "zh" else "Personal data masked",
        change_head=[L.figure, L.previous, L.current],
        change_rows=change_rows,
        grid_head=[L.grid, L.contacts_n, L.households_reached],
        grid_rows=[[r.key or "", int(r.contacts), int(r.households)] for r in this_grid],
        member_head=[L.member, L.contacts_n, L.households_reached],
        member_rows=[
            [r.key or "", int(r.contacts), int(r.households)] for r in this_member if r.key
        ],
        idle_head=[L.member],
        idle_rows=[[m] for m in active if m not in reached],
        never_head=[L.household, L.building, L.member],
        never_rows=never_rows,
        never_count=len(never),
        section=Markup(section),
        requests_title=TITLE[L.lang],
        requests_head=requests_head,
        requests_rows=requests_rows,
    )
