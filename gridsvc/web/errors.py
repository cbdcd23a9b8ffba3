"""One error handler: domain errors and HTTP errors as JSON (API) or an error page (pages)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from gridsvc.errors import GridsvcError

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _reply(status: int, error: str, message: str, details: Any = None) -> Response | tuple:
    if _wants_json():
        body: dict[str, Any] = {"error": error, "message": message}
        if details is not None:
            body["details"] = details
        return jsonify(body), status
    if status == 404:  # one page for "no such record" and "outside your scope", on every route
        message, details = "", None
    return render_template("error.html", status=status, message=message, details=details), status


def handle_csrf(exc: CSRFError) -> Response | tuple:
    """A form posted without a valid token (the session expired, or the page is stale): back
    to the login page, which returns to the page the user was on."""
    if _wants_json():
        return _reply(400, "CSRFError", exc.description or "CSRF token missing or invalid")
    from gridsvc.web.i18n import t

    flash(t("session_expired"), "error")
    back = _same_site_path(request.referrer) or request.path
    return redirect(url_for("auth.login", next=back), 303)


def _same_site_path(url: str | None) -> str | None:
    """The path (and query) of ``url`` when it points at this site."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _validation_message(messages: Any) -> str:
    """``query parameter 'community': Missing data...`` from marshmallow's nested messages."""
    parts = []
    for where, fields in (messages or {}).items():
        for name, problems in (fields or {}).items():
            text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else problems
            parts.append(f"{where} parameter {name!r}: {text}")
    return ", ".join(parts) or "invalid request"


def _validation_rejects(messages: Any) -> list[dict[str, Any]]:
    """marshmallow's nested messages as the rejects every other 422 carries (source, field,
    reason), so a client reads one shape whichever check refused the request."""
    rejects = []
    for where, fields in (messages or {}).items():
        for name, problems in (fields or {}).items():
            text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else problems
            rejects.append(
                {"source": where, "record": None, "field": name, "reason": str(text), "value": None}
            )
    return rejects


def handle_domain(exc: GridsvcError) -> Response | tuple:
    """A :class:`GridsvcError` with its own status and message."""
    return _reply(exc.http_status, type(exc).__name__, exc.message, exc.details)


def handle_http(exc: HTTPException) -> Response | tuple:
    """404, 405, 413, 422 (validation, naming the field) and friends."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    if status == 422 and "messages" in data:
        message = _validation_message(data["messages"])
        return _reply(status, "InvalidRequest", message, _validation_rejects(data["messages"]))
    if status == 413:
        limit = request.max_content_length or 0
        message = f"request body too large: the limit is {limit // (1024 * 1024)} MB"
        return _reply(status, "TooLarge", message)
    message = exc.description or exc.name
    reply = _reply(status, exc.name.replace(" ", ""), message)
    allowed = getattr(exc, "valid_methods", None)
    if status == 405 and allowed:  # RFC 9110: a 405 names the methods the resource allows
        body, code = reply if isinstance(reply, tuple) else (reply, status)
        return body, code, {"Allow": ", ".join(sorted(allowed))}
    return reply


def handle_unexpected(exc: Exception) -> Response | tuple:
    """Anything else: logged with its traceback, a 500 without internals."""
    if isinstance(exc, HTTPException):
        return handle_http(exc)
    log.exception("unexpected error on %s %s", request.method, request.path)
    return _reply(500, "InternalError", "internal error: the server logged the details")


def init_app(app: Flask) -> None:
    """Register the handlers (after flask-smorest's own, which they replace)."""
    app.register_error_handler(GridsvcError, handle_domain)
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(Exception, handle_unexpected)
