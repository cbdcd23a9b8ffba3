"""Who is asking: API tokens (Bearer) or a session cookie checked against the user's version.

A session cookie holds the user id and the user's ``session_version``; logging out bumps the
version, so a cookie copied before logout stops working. Cookie sessions must send a CSRF token
on every unsafe request (forms carry it; scripts use tokens instead).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
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

from gridsvc.accounts import audit, callers
from gridsvc.accounts.callers import CallerCache, Credential
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


def _credential() -> Credential | None:
    token = _bearer()
    if token is not None:
        return Credential(token=token)
    if "uid" not in session:
        return None
    if time.time() - session.get("at", 0) >= current_app_lifetime():
        return Credential()  # expired: matches no one
    return Credential(user_id=session["uid"], version=session.get("ver"))


def _load_user() -> None:
    g.user = None
    g.via_token = False
    credential = _credential()
    if credential is None:
        return
    user = _caller(credential) if credential.valid_form else None
    if user is not None:
        g.user, g.via_token = user, credential.token is not None
    elif credential.token is not None:
        abort(401, description="invalid or revoked API token")
    else:
        session.clear()


def _caller(credential: Credential) -> User | None:
    """The credential's user, with this request's transaction scoped to them (see callers)."""
    cache: CallerCache = current_app.extensions["gridsvc.callers"]
    known = cache.get(credential)
    if known is not None:
        row = db.first_row(*callers.confirm_sql(credential, known))
        if row is not None:  # the usual case: one statement, BEGIN included
            _touch(credential, row)
            return known
    row = db.first_row(*callers.lookup_sql(credential))
    if row is None:
        cache.put(credential, None)
        return None
    _touch(credential, row)
    g.user = user = callers.user_of(row)
    db.rescope()
    if user.scope_level != "all":  # now the scope's codes are visible
        full = get_user(db.conn(), user.id)
        codes = (full.street_code, full.community_code) if full else (None, None)
        user = replace(user, street_code=codes[0], community_code=codes[1])
    cache.put(credential, user)
    return user


def _touch(credential: Credential, row: Any) -> None:
    if credential.token is not None and row.stale:
        callers.touch_token(db.conn(), row.token_id)


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
            chosen = session.get("lang")  # the language picked on the login page stays
            session.clear()
            if chosen in ("zh", "en"):
                session["lang"] = chosen
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
    app.extensions["gridsvc.callers"] = CallerCache()
    app.before_request(_guard)
    app.register_blueprint(bp)
