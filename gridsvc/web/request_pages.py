"""Pages of residents' requests and micro-wishes.

Phone (members, cadres): 我的工单 (accept, decline with a reason, done with a note; a cadre sees
their members' open and overdue orders) and the wish board (claim). Desktop (planners): create,
dispatch and follow requests. 回音壁: the community's board of how requests were handled, as a
page and a printable offline HTML file: category, grid, status, days to close, satisfaction;
never a name, phone or household code.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, flash, redirect, render_template, request, url_for
from sqlalchemy import text

from gridsvc.errors import Forbidden, GridsvcError, NotFound
from gridsvc.requests import service, wishes
from gridsvc.web import db
from gridsvc.web.auth import current_user
from gridsvc.web.i18n import lang, t

bp = Blueprint("requests_pages", __name__)

#: Dispatch reasons are stored in Chinese (the issue's wording); English pages translate them.
_REASON_EN = (
    (r"结对党员已有(\d+)件在办", r"paired member already holds \1 open"),
    (r"就近有余力党员 (\d+) 米", r"nearest member with room \1 m"),
    (r"（同楼）", " (same building)"),
    (r"结对党员暂不在岗", "paired member unavailable"),
    (r"结对党员已退回", "paired member declined"),
    (r"结对党员无余力", "paired member has no room"),
    (r"社区无有余力党员，转联系干部", "no member with room: to the cadre"),
    (r"社区暂无有余力党员，待派单", "no member with room: waiting"),
    (r"超时升级至联系干部", "overdue: escalated to the cadre"),
    (r"超时升级至社区", "overdue: escalated to the community"),
    (r"结对党员", "paired member"),
    (r"未结对", "not paired"),
    (r"退回：", "declined: "),
    (r"，", "; "),
)


def why(reason: str | None) -> str:
    """A dispatch reason in the page's language."""
    if not reason or lang() == "zh":
        return reason or ""
    for pattern, repl in _REASON_EN:
        reason = re.sub(pattern, repl, reason)
    return reason


def _local(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


def _overdue(row: dict[str, Any]) -> bool:
    if row["status"] not in ("dispatched", "accepted", "in_progress", "waiting", "returned"):
        return False
    return bool(row["due_at"]) and datetime.fromisoformat(row["due_at"]) < datetime.now(
        datetime.fromisoformat(row["due_at"]).tzinfo
    )


def _globals() -> dict[str, Any]:
    return {"why": why, "local": _local, "overdue": _overdue}


@bp.route("/my/orders")
def my_orders() -> str:
    """我的工单: a member's open orders (a cadre: their members' open and overdue orders)."""
    user = current_user()
    if not (user.is_person or user.can_plan):
        raise Forbidden(f"user {user.username!r} (role {user.role}) has no orders")
    conn = db.conn()
    member = None
    if user.role == "member":
        member = conn.scalar(text("SELECT code FROM members WHERE id = :i"), {"i": user.member_id})
    rows = []
    for status in ("dispatched", "accepted", "in_progress", "escalated"):
        page = service.list_requests(
            conn, settings=db.settings(), status=status, member=member, limit=200
        )
        rows += page["requests"]
    if user.role == "cadre":
        cadre = conn.scalar(text("SELECT code FROM cadres WHERE id = :i"), {"i": user.cadre_id})
        rows = [r for r in rows if r["member"] or r["cadre"] == cadre]
    rows.sort(key=lambda r: r["due_at"] or "")
    return render_template("my_orders.html", rows=rows, **_globals())


@bp.route("/my/orders/<int:request_id>", methods=["POST"])
def order_action(request_id: int) -> Any:
    """Accept, decline (with a reason), start or finish (with a note) an order from the phone."""
    user = current_user()
    form = request.form
    try:
        service.act(
            db.conn(),
            user,
            request_id,
            form.get("action", ""),
            settings=db.settings(),
            version=form.get("version", type=int),
            note=form.get("note") or None,
            ip=request.remote_addr,
        )
    except GridsvcError as exc:  # the page again with the error, and the error's status
        flash(exc.message, "error")
        return my_orders(), exc.http_status
    flash(t("req_done_ok"), "ok")
    return redirect(url_for(".my_orders"), 303)


@bp.route("/my/wishes")
def wish_board() -> str:
    """The community's wish board: open wishes to claim, and the member's own."""
    user = current_user()
    if not (user.is_person or user.can_plan):
        raise Forbidden(f"user {user.username!r} (role {user.role}) has no wish board")
    page = wishes.list_wishes(db.conn(), settings=db.settings(), limit=200)
    mine = None
    if user.role == "member":
        mine = db.conn().scalar(
            text("SELECT code FROM members WHERE id = :i"), {"i": user.member_id}
        )
    return render_template("my_wishes.html", rows=page["wishes"], mine=mine, **_globals())


@bp.route("/my/wishes/<int:wish_id>", methods=["POST"])
def wish_action(wish_id: int) -> Any:
    """Claim or mark fulfilled a wish from the phone."""
    form = request.form
    try:
        wishes.act_wish(
            db.conn(),
            current_user(),
            wish_id,
            form.get("action", ""),
            settings=db.settings(),
            version=form.get("version", type=int),
            note=form.get("note") or None,
            ip=request.remote_addr,
        )
    except GridsvcError as exc:
        flash(exc.message, "error")
        return wish_board(), exc.http_status
    flash(t("req_done_ok"), "ok")
    return redirect(url_for(".wish_board"), 303)


@bp.route("/requests")
def requests_page() -> str:
    """Planners: the requests of the scope, filters, a form to register one, dispatch all."""
    user = current_user()
    status = request.args.get("status") or None
    if status not in (None, *service.STATE_LABELS):
        status = None
    offset = max(request.args.get("offset", 0, type=int), 0)
    overdue_only = request.args.get("overdue") == "1"
    page = service.list_requests(
        db.conn(),
        settings=db.settings(),
        status=status,
        overdue=overdue_only,
        limit=50,
        offset=offset,
    )
    return render_template(
        "requests.html",
        page=page,
        status=status,
        overdue_only=overdue_only,
        can_plan=user.can_plan,
        categories=list(service.CATEGORIES),
        channels=list(service.CHANNELS),
        states=list(service.STATE_LABELS),
        **_globals(),
    )


@bp.route("/requests", methods=["POST"])
def requests_create() -> Any:
    """Register a request (dispatched at once) or dispatch every waiting one."""
    user = current_user()
    form = request.form
    try:
        if form.get("dispatch"):
            counts = service.dispatch_requests(db.conn(), user, settings=db.settings())
            flash(f"{t('req_dispatched')}：{counts['dispatched'] + counts['to_cadre']}", "ok")
        else:
            row = service.add_request(
                db.conn(),
                user,
                settings=db.settings(),
                household=form.get("household", "").strip(),
                category=form.get("category", ""),
                text_=form.get("text", ""),
                channel=form.get("channel") or None,
                ip=request.remote_addr,
            )
            flash(
                f"#{row['id']} → {row['member'] or row['cadre'] or '-'}（{why(row['reason'])}）",
                "ok",
            )
    except GridsvcError as exc:
        flash(exc.message, "error")
        return requests_page(), exc.http_status
    return redirect(url_for(".requests_page"), 303)


def _echo_rows(community: str) -> tuple[str, list[dict[str, Any]]]:
    conn = db.conn()
    name = conn.scalar(text("SELECT name FROM communities WHERE code = :c"), {"c": community})
    if name is None:
        raise NotFound(f"community {community!r}: not in your scope")
    rows = conn.execute(
        text(
            "SELECT r.category, g.name AS grid, r.state AS status, r.satisfaction, "
            "CASE WHEN r.closed_at IS NOT NULL THEN "
            "greatest(0, ceil(extract(epoch FROM r.closed_at - r.created_at) / 86400))::int END "
            "AS days_to_close, (r.created_at AT TIME ZONE :tz)::date AS day "
            "FROM requests r JOIN communities co ON co.id = r.community_id "
            "LEFT JOIN households h ON h.id = r.household_id "
            "LEFT JOIN grids g ON g.id = coalesce(r.grid_id, h.grid_id) "
            "WHERE co.code = :c ORDER BY r.created_at DESC LIMIT 500"
        ),
        {"c": community, "tz": db.settings().timezone},
    ).all()
    return name, [dict(r._mapping) for r in rows]


@bp.route("/echo/<string:community>")
def echo_wall(community: str) -> Any:
    """回音壁 of a community (``?download=1``: the printable offline HTML file)."""
    name, rows = _echo_rows(community)
    html = render_template("echo_wall.html", name=name, community=community, rows=rows)
    if request.args.get("download") == "1":
        response = Response(html, mimetype="text/html; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="echo-{community}.html"'
        return response
    return html


def init_app(app: Flask) -> None:
    """Register the request pages."""
    app.register_blueprint(bp)
