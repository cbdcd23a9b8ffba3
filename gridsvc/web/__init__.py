"""The Flask web service: server-rendered pages and a JSON/GeoJSON API over the gridsvc services.

``create_app(config=None)`` layers defaults, then the environment (:func:`load_settings`), then
``config`` (tests). Run it with ``gridsvc serve`` (demo) or ``gunicorn 'gridsvc.web:create_app()'``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask

from gridsvc.settings import Settings, load_settings


def _defaults(settings: Settings) -> dict[str, Any]:
    return {
        "GRIDSVC_SETTINGS": settings,
        "SECRET_KEY": settings.secret_key,
        "SESSION_COOKIE_SECURE": settings.cookie_secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "gridsvc_session",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=settings.session_hours),
        "MAX_CONTENT_LENGTH": int(settings.max_upload_mb * 1024 * 1024),
        "WTF_CSRF_CHECK_DEFAULT": False,  # checked in auth for cookie sessions, not for tokens
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "API_TITLE": "gridsvc",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "JSON_AS_ASCII": False,
    }


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application.

    Parameters
    ----------
    config
        Overrides (tests): Flask keys, or ``GRIDSVC_SETTINGS`` with a whole :class:`Settings`.

    Raises
    ------
    ValueError
        When no secret key is configured outside testing (GRIDSVC_SECRET_KEY).
    """
    config = dict(config or {})
    settings = config.pop("GRIDSVC_SETTINGS", None) or load_settings()
    app = Flask(__name__)
    app.config.from_mapping(_defaults(settings))
    app.config.update(config)
    if not app.config["SECRET_KEY"]:
        if not app.testing:
            raise ValueError("GRIDSVC_SECRET_KEY is not set: give the web app a long random key")
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    from gridsvc.web import account_pages, api, auth, db, errors, hardening, i18n, mobile, pages

    db.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    hardening.init_app(app)  # after auth: a request without credentials is 401 first
    api.init_app(app)
    pages.init_app(app)
    account_pages.init_app(app)
    mobile.init_app(app)
    from gridsvc.web import request_pages

    request_pages.init_app(app)
    errors.init_app(app)
    return app
