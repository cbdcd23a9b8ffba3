"""Who is asking: API tokens (Bearer) or a session cookie checked against the user's version.

A session cookie holds the user id and the user's ``session_version``; logging out bumps the
version, so a cookie copied before logout stops working. Cookie sessions must send a CSRF token
on every unsafe request (forms carry it; scripts use tokens instead).
"""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from gridsvc.accounts import audit, tokens
from gridsvc.accounts.users import User, authenticate, end_sessions, get_user
from gridsvc.web import db
from gridsvc.web.i18n import t

csrf = CSRFProtect()
bp = Blueprint("auth", __name__)
PUBLIC = {"auth.login", "static", "api-docs.openapi_json", "pages.lang"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField(validators=[DataRequired(), Length(max=64)])
    password = PasswordField(validators=[DataRequired(), Length(max=256)])


def current_user() -> User:
    """The authenticated user (views behind :func:`_require_login` only)."""
    return g.user


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _load_user() -> None:
    g.user = None
    g.via_token = False
    token = _bearer()
    connection = db.conn(scoped=False)
    if token is not None:
        user_id = tokens.user_id_for_token(connection, token)
        user = get_user(connection, user_id) if user_id else None
        if user is None or not user.active:
            abort(401, description="invalid or revoked API token")
        g.user, g.via_token = user, True
    elif "uid" in session:
        user = get_user(connection, session["uid"])
        fresh = time.time() - session.get("at", 0) < current_app_lifetime()
        if user and user.active and user.session_version == session.get("ver") and fresh:
            g.user = user
        else:
            session.clear()
    db.rescope()
    if g.user is not None and g.user.scope_level != "all":
        g.user = get_user(connection, g.user.id)  # now the scope's codes are visible


def current_app_lifetime() -> float:
    """Seconds a login session lasts."""
    from flask import current_app

    return current_app.permanent_session_lifetime.total_seconds()


def _guard() -> object:
    if any("\x00" in str(v) for v in (request.view_args or {}).values()):
        abort(404, description="no such resource: the path contains a NUL byte")
    public = request.endpoint in PUBLIC or request.endpoint is None
    if public:  # no database work for the login page, the OpenAPI document, static files
        g.user, g.via_token = None, False
    else:
        _load_user()
    if request.method in UNSAFE and not g.via_token:
        csrf.protect()
    if public:
        return None
    if g.user is None:
        if request.path.startswith("/api/"):
            abort(401, description="log in or send 'Authorization: Bearer <token>'")
        return redirect(url_for("auth.login", next=request.full_path))
    return None


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("pages.home")


@bp.route("/login", methods=["GET", "POST"])
def login() -> object:
    """The login page."""
    form = LoginForm()
    if form.validate_on_submit():
        connection = db.conn()
        user = authenticate(connection, form.username.data, form.password.data)
        audit.record(
            connection,
            "login" if user else "login_failed",
            user=user,
            username=form.username.data,
            ip=request.remote_addr,
        )
        if user is not None:
            session.clear()
            session.permanent = True
            session.update(uid=user.id, ver=user.session_version, at=time.time())
            return redirect(_safe_next(request.args.get("next")))
        flash(t("login_failed"), "error")
        g.commit_anyway = True
        return render_template("login.html", form=form), 401
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> object:
    """End every session of the user (copied cookies included)."""
    user = g.get("user")
    if user is not None:
        end_sessions(db.conn(), user.id)
        audit.record(db.conn(), "logout", user=user, ip=request.remote_addr)
    session.clear()
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    """CSRF protection, the login guard before every request, the login pages."""
    csrf.init_app(app)
    app.before_request(_guard)
    app.register_blueprint(bp)
