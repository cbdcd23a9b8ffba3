"""Requests in the half-monthly digest: by category and grid, closing times and satisfaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from gridsvc.requests.service import CATEGORIES

HEAD = {
    "zh": ["类别", "网格", "登记", "已办结", "超期未办结", "平均办结天数", "平均满意度"],
    "en": [
        "Category",
        "Grid",
        "Received",
        "Closed",
        "Overdue",
        "Mean days to close",
        "Mean satisfaction",
    ],
}
TITLE = {"zh": "群众诉求办理情况", "en": "Residents' requests"}


def request_rows(
    conn: Connection, community_ids: list[int], start: datetime, end: datetime, lang: str
) -> tuple[list[str], list[list]]:
    """Requests received in ``start``..``end`` by category and grid (no names, no codes of
    households): received, closed, overdue now, mean days to close, mean satisfaction."""
    if not conn.scalar(text("SELECT to_regclass('requests') IS NOT NULL")):
        return HEAD.get(lang, HEAD["zh"]), []
    rows = conn.execute(
        text(
            "SELECT r.category, coalesce(g.name, '') AS grid, count(*) AS n, "
            "count(*) FILTER (WHERE r.state IN ('done', 'visited')) AS closed, "
            "count(*) FILTER (WHERE r.state NOT IN ('done', 'visited') AND r.due_at < now()) "
            "AS late, avg(extract(epoch FROM r.closed_at - r.created_at) / 86400) AS days, "
            "avg(r.satisfaction) AS sat "
            "FROM requests r LEFT JOIN households h ON h.id = r.household_id "
            "LEFT JOIN grids g ON g.id = coalesce(r.grid_id, h.grid_id) "
            "WHERE r.community_id = ANY(:ids) AND r.created_at BETWEEN :t0 AND :t1 "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {"ids": community_ids, "t0": start, "t1": end},
    ).all()
    out = []
    for r in rows:
        label = CATEGORIES[r.category] if lang == "zh" else r.category.replace("_", " ")
        days = "" if r.days is None else f"{float(r.days):.1f}"
        sat = "" if r.sat is None else f"{float(r.sat):.1f}"
        out.append([label, r.grid, int(r.n), int(r.closed), int(r.late), days, sat])
    return HEAD.get(lang, HEAD["zh"]), out
