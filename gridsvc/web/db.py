"""One connection per request, as the app role, in a transaction limited to the user's scope."""

from __future__ import annotations

from flask import Flask, Response, current_app, g
from sqlalchemy import Connection, Engine

from gridsvc.accounts.scope import app_database_url, apply_scope
from gridsvc.db import make_engine
from gridsvc.settings import Settings


def settings() -> Settings:
    """The settings of the running app."""
    return current_app.config["GRIDSVC_SETTINGS"]


def engine() -> Engine:
    """The app role's engine (pooled; the scope is set per transaction, never per connection)."""
    return current_app.extensions["gridsvc.engine"]


def conn(*, scoped: bool = True) -> Connection:
    """This request's connection, in a transaction scoped to ``g.user`` (set by auth).

    ``scoped=False`` skips setting the scope (auth sets it right after finding the user).
    """
    if "conn" not in g:
        g.conn = engine().connect()
        g.conn.begin()
        if scoped:
            apply_scope(g.conn, g.get("user"))
    return g.conn


def rescope() -> None:
    """Apply the scope again after the user changed during the request (login)."""
    if "conn" in g:
        apply_scope(g.conn, g.get("user"))


def _finish(response: Response) -> Response:
    connection = g.pop("conn", None)
    if connection is not None:
        try:
            if response.status_code < 400 or g.get("commit_anyway"):
                connection.commit()
            else:
                connection.rollback()
        finally:
            connection.close()
    return response


def _teardown(exc: BaseException | None) -> None:
    connection = g.pop("conn", None)
    if connection is not None:
        connection.rollback()
        connection.close()


def init_app(app: Flask) -> None:
    """Create the app role's engine and close each request's connection."""
    url = app.config.get("GRIDSVC_APP_DATABASE_URL") or app_database_url(
        app.config["GRIDSVC_SETTINGS"]
    )
    app.extensions["gridsvc.engine"] = make_engine(url, pool_size=10, max_overflow=10)
    app.after_request(_finish)
    app.teardown_request(_teardown)
