"""Who is asking: API tokens (Bearer) or a session cookie checked against the user's version.

A session cookie holds the user id and the user's ``session_version``; logging out bumps the
version, so a cookie copied before logout stops working. A session ends after its lifetime
(GRIDSVC_SESSION_HOURS) or when unused for GRIDSVC_SESSION_IDLE_MINUTES. Cookie sessions must
send a CSRF token on every unsafe request (forms carry it; scripts use tokens instead); a request
with no credential at all gets 401 first.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

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
from gridsvc.accounts.login import log_in
from gridsvc.accounts.passwords import MAX_LENGTH
from gridsvc.accounts.users import User, end_sessions, get_user
from gridsvc.web import db
from gridsvc.web.i18n import t

#: Seconds between two refreshes of a session's last-seen time (each refresh sets a cookie).
SEEN_EVERY = 60

csrf = CSRFProtect()
bp = Blueprint("auth", __name__)
PUBLIC = {"auth.login", "static", "api-docs.openapi_json", "pages.lang"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField(validators=[DataRequired(), Length(max=64)])
    password = PasswordField(validators=[DataRequired(), Length(max=MAX_LENGTH)])


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
    now = time.time()
    if now - session.get("at", 0) >= current_app_lifetime():
        return Credential()  # expired: matches no one
    idle = db.settings().session_idle_minutes * 60
    if now - session.get("seen", session.get("at", 0)) >= idle:
        return Credential()  # unused for too long
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
        if not g.via_token and time.time() - session.get("seen", 0) >= SEEN_EVERY:
            session["seen"] = time.time()
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
    g.user = user = callers.user_of(row)
    db.rescope()
    _touch(credential, row)  # the token's row is visible once the scope is set
    if user.scope_level != "all":  # now the scope's codes are visible
        full = get_user(db.conn(), user.id)
        if full is not None:  # the codes and the scope's name, kept in the cache with the user
            user = replace(
                user,
                street_code=full.street_code,
                community_code=full.community_code,
                scope_name=full.scope_name,
            )
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
    if request.routing_exception is not None:  # 404/405 (with Allow) before credentials or CSRF
        return None
    if any("\x00" in str(v) for v in (request.view_args or {}).values()):
        abort(404, description="no such resource: the path contains a NUL byte")
    public = request.endpoint in PUBLIC or request.endpoint is None
    if public:  # no database work for the login page, the OpenAPI document, static files
        g.user, g.via_token = None, False
    else:
        _load_user()
    if not public and g.user is None:  # no credential: 401 (or the login page) before CSRF
        if request.path.startswith("/api/"):
            abort(401, description="log in or send 'Authorization: Bearer <token>'")
        if request.method in UNSAFE:  # a form posted after the session ended: log in again
            return redirect(url_for("auth.login", next=request.path), code=303)
        return redirect(url_for("auth.login", next=request.full_path))
    if request.method in UNSAFE and not g.via_token:
        csrf.protect()
    return None


def safe_next(target: str | None, default: str) -> str:
    """``target`` as a path of this site, or ``default``.

    Browsers drop control characters (tab, newline) and read ``\\`` as ``/`` in a URL, so the
    target is normalised the same way first; what remains must be a path with no scheme and no
    host (``//host`` and ``/\\host`` are other sites).
    """
    if not target:
        return default
    cleaned = "".join(
        ch for ch in target if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
    )
    cleaned = cleaned.replace("\\", "/").strip()
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return default
    if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//"):
        return default
    return cleaned


def _safe_next(target: str | None) -> str:
    return safe_next(target, url_for("pages.home"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> object:
    """The login page."""
    form = LoginForm()
    if form.validate_on_submit():
        with db.engine().connect() as raw:
            throttle = raw.execution_options(isolation_level="AUTOCOMMIT")
            result = log_in(
                db.conn(),
                throttle,
                form.username.data,
                form.password.data,
                ip=request.remote_addr,
                settings=db.settings(),
            )
        g.commit_anyway = True  # the audit entries stay whatever the answer
        if result.user is not None:
            start_session(result.user)
            return redirect(_safe_next(request.args.get("next")))
        if result.refused:
            minutes = max(1, -(-result.retry_after // 60))
            flash(t("login_throttled").format(minutes=minutes), "error")
            page = render_template("login.html", form=form)
            return page, 429, {"Retry-After": str(result.retry_after)}
        flash(t("login_failed"), "error")
        return render_template("login.html", form=form), 401
    return render_template("login.html", form=form)


def start_session(user: User) -> None:
    """A fresh session cookie for ``user`` (login, or a changed password); the language chosen
    before it is kept."""
    chosen = session.get("lang")
    session.clear()
    if chosen in ("zh", "en"):
        session["lang"] = chosen
    session.permanent = True
    now = time.time()
    session.update(uid=user.id, ver=user.session_version, at=now, seen=now)


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
