"""Phone pages of members and cadres (360-414 px, no request leaving the intranet).

我的联系户 (households by due date), a household card with 记一次联系 (one tap on a channel logs
it), the phone on request (audited), the person's history; a cadre's members with overdue counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from gridsvc.contacts import log_contact
from gridsvc.contacts import mine as service
from gridsvc.errors import Forbidden, GridsvcError
from gridsvc.web import cache, db
from gridsvc.web.auth import current_user
from gridsvc.web.i18n import t

bp = Blueprint("mobile", __name__, url_prefix="/my")


def _person() -> Any:
    user = current_user()
    if not (user.is_person or user.can_plan):
        raise Forbidden(f"user {user.username!r} (role {user.role}) has no households of their own")
    return user


@bp.route("/")
def households() -> Any:
    """我的联系户: a member's households (a cadre's: their members' first)."""
    user = _person()
    if user.role == "cadre" and not request.args.get("all"):
        return redirect(url_for(".members"))
    body = cache.personal("my_households", request.script_root, build=_households_body)
    return render_template("my_households.html", body=body)


def _households_body() -> tuple[Markup, datetime | None]:
    """The list of :func:`households` (no per-request value in it) and until when it holds."""
    page = service.my_households(db.conn(), current_user(), settings=db.settings())
    html = render_template("_my_households_list.html", rows=page.rows, late=page.late)
    return Markup(html), page.valid_until


@bp.route("/households/<string:code>")
def household(code: str) -> str:
    """A household's card: building, masked phone, cadence state, 记一次联系, history."""
    user = _person()
    card = service.household_card(db.conn(), user, code, settings=db.settings())
    return render_template("my_household.html", card=card, phone=None, now_local=_now_local())


def _now_local() -> str:
    """Now in Beijing time as a ``datetime-local`` value (the form's default)."""
    return service.today_text(db.settings()).replace(" ", "T")


@bp.route("/households/<string:code>/phone", methods=["POST"])
def phone(code: str) -> str:
    """The phone number in clear for the paired member (audited)."""
    user = _person()
    number = service.reveal_phone(db.conn(), user, code, ip=request.remote_addr)
    card = service.household_card(db.conn(), user, code, settings=db.settings())
    return render_template("my_household.html", card=card, phone=number, now_local=_now_local())


@bp.route("/households/<string:code>/contact", methods=["POST"])
def contact(code: str) -> Any:
    """Log a contact from the card's form; back to the list with a message."""
    user = _person()
    form = request.form
    try:
        lon = float(form["lon"]) if form.get("lon") else None
        lat = float(form["lat"]) if form.get("lat") else None
        log_contact(
            db.conn(),
            user,
            household=code,
            channel=form.get("channel", ""),
            note=form.get("note") or None,
            at=(form.get("at") or "").replace("T", " ") or None,
            lon=lon,
            lat=lat,
            settings=db.settings(),
            ip=request.remote_addr,
        )
    except (GridsvcError, ValueError) as exc:
        message = exc.message if isinstance(exc, GridsvcError) else str(exc)
        card = service.household_card(db.conn(), user, code, settings=db.settings())
        status = exc.http_status if isinstance(exc, GridsvcError) else 422
        page = render_template(
            "my_household.html", card=card, phone=None, error=message, now_local=_now_local()
        )
        return page, status
    flash(f"{t('contact_logged')}：{code}", "ok")
    return redirect(url_for(".households"), 303)


@bp.route("/history")
def history() -> str:
    """The person's own contacts, newest first."""
    user = _person()
    offset = max(request.args.get("offset", 0, type=int), 0)
    page = service.my_history(db.conn(), user, settings=db.settings(), offset=offset)
    return render_template("my_history.html", page=page)


@bp.route("/members")
def members() -> str:
    """A cadre's members with each one's overdue count."""
    user = current_user()
    rows = service.cadre_members(db.conn(), user, settings=db.settings())
    return render_template("my_members.html", rows=rows)


def init_app(app: Flask) -> None:
    """Register the phone pages."""
    app.register_blueprint(bp)
