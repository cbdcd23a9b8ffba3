"""Pages of accounts: the admin's users page (inside its scope) and the caller's own password.

Views parse the form, call one service of :mod:`gridsvc.accounts.manage` (scope check, audit)
and render. A new password or token is shown once, in the answer to the POST itself (never in a
flash message: those travel in the session cookie).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for

from gridsvc.accounts import manage
from gridsvc.accounts.users import ROLES, list_users, require
from gridsvc.errors import GridsvcError
from gridsvc.web import db
from gridsvc.web.auth import current_user, start_session
from gridsvc.web.i18n import t

bp = Blueprint("accounts", __name__)
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def _admin() -> Any:
    user = current_user()
    require(user, admin=True)
    return user


def _form(name: str) -> str | None:
    value = (request.form.get(name) or "").strip()
    return value or None


def _users_page(status: int = 200, **shown: Any) -> tuple[str, int]:
    users = list_users(db.conn())
    page = render_template("users.html", users=users, roles=ROLES, **shown)
    return page, status


@bp.route("/users", methods=["GET", "POST"])
def users() -> Any:
    """The users of the admin's scope; the form creates one."""
    admin = _admin()
    if request.method == "GET":
        return _users_page()
    scope = _form("scope")
    level = "community" if scope and len(scope) == 12 else "street"
    try:
        made = manage.add_user(
            db.conn(),
            admin,
            _form("username") or "",
            request.form.get("password") or "",
            role=_form("role") or "",
            street_code=scope if level == "street" else None,
            community_code=scope if level == "community" else None,
            lang=_form("lang") or "zh",
            min_password_length=db.settings().password_min_length,
            ip=request.remote_addr,
        )
    except GridsvcError as exc:
        return _users_page(exc.http_status, problem=exc)
    flash(f"{t('user_created')}: {made.username}", "ok")
    return redirect(url_for("accounts.users"))


@bp.route("/users/<string:username>", methods=["GET"])
def user(username: str) -> str:
    """One user of the admin's scope: state, tokens (revoke), new token, password reset."""
    admin = _admin()
    return _user_page(admin, username)[0]


def _user_page(admin: Any, username: str, status: int = 200, **shown: Any) -> tuple[str, int]:
    target = manage.managed_user(db.conn(), admin, username)
    tokens = manage.list_tokens(db.conn(), admin, username)
    return render_template("user.html", target=target, tokens=tokens, **shown), status


@bp.route("/users/<string:username>/active", methods=["POST"])
def set_active(username: str) -> Any:
    """Disable or enable the user (``active`` = 1 or 0)."""
    admin = _admin()
    active = request.form.get("active") == "1"
    manage.set_active(db.conn(), admin, username, active, ip=request.remote_addr)
    flash(f"{t('user_enabled' if active else 'user_disabled')}: {username}", "ok")
    return redirect(url_for("accounts.user", username=username))


@bp.route("/users/<string:username>/password", methods=["POST"])
def reset_password(username: str) -> Any:
    """Reset the user's password to a random one, shown once."""
    admin = _admin()
    secret = manage.reset_password(
        db.conn(),
        admin,
        username,
        min_password_length=db.settings().password_min_length,
        ip=request.remote_addr,
    )
    return _user_page(admin, username, new_password=secret)


@bp.route("/users/<string:username>/tokens", methods=["POST"])
def issue_token(username: str) -> Any:
    """Issue a token for the user, shown once."""
    admin = _admin()
    name = (_form("name") or "script")[:64]
    _, token = manage.issue_token(db.conn(), admin, username, name, ip=request.remote_addr)
    return _user_page(admin, username, new_token=token)


@bp.route("/users/<string:username>/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(username: str, token_id: int) -> Any:
    """Revoke one token of the user."""
    admin = _admin()
    manage.revoke_token(db.conn(), admin, username, token_id, ip=request.remote_addr)
    flash(f"{t('token_revoked')}: {token_id}", "ok")
    return redirect(url_for("accounts.user", username=username))


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    """Change one's own password (the current one required; other sessions end)."""
    me = current_user()
    if request.method == "GET":
        return render_template("account.html")
    new = request.form.get("new_password") or ""
    if new != (request.form.get("confirm_password") or ""):
        flash(t("passwords_differ"), "error")
        return render_template("account.html"), 422
    try:
        changed = manage.change_own_password(
            db.conn(),
            me,
            request.form.get("current_password") or "",
            new,
            min_password_length=db.settings().password_min_length,
            ip=request.remote_addr,
        )
    except GridsvcError as exc:
        return render_template("account.html", problem=exc), exc.http_status
    start_session(changed)
    flash(t("password_changed"), "ok")
    return redirect(url_for("accounts.account"))


def _beijing(value: str | None) -> str:
    """An ISO timestamp as Beijing time, ``YYYY-MM-DD HH:MM``."""
    if not value:
        return ""
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _context() -> dict[str, Any]:
    return {"min_length": db.settings().password_min_length}


def init_app(app: Flask) -> None:
    """Register the pages, the ``beijing`` filter and the password length in templates."""
    app.register_blueprint(bp)
    app.add_template_filter(_beijing, "beijing")
    app.context_processor(_context)
