"""One connection per request, as the app role, in a transaction limited to the user's scope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from flask import Flask, Response, current_app, g
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine

from gridsvc.accounts.scope import app_database_url, apply_scope, scope_sql
from gridsvc.db import make_engine
from gridsvc.settings import Settings


def settings() -> Settings:
    """The settings of the running app, in this request's language (blind-spot reasons, maps)."""
    from gridsvc.web.i18n import lang

    base: Settings = current_app.config["GRIDSVC_SETTINGS"]
    chosen = lang()
    return base if chosen == base.lang else base.with_(lang=chosen)


def engine() -> Engine:
    """The app role's engine (pooled; the scope is set per transaction, never per connection)."""
    return current_app.extensions["gridsvc.engine"]


def conn() -> Connection:
    """This request's connection, in a transaction scoped to ``g.user`` (set by auth)."""
    if "conn" not in g:
        items, params = scope_sql(g.get("user"))
        first_row("SELECT " + items, params)
    return g.conn


def first_row(sql: str, params: Mapping[str, Any]) -> Any:
    """Run ``sql`` (psycopg placeholders) on this request's connection; its first row or None.

    The request's first statement opens the connection straight on the driver (no SQLAlchemy
    statement overhead). A pooled connection the server has dropped (a restart) is replaced and
    the statement run again, once; this replaces a pre-ping round trip on every checkout.
    """
    if "conn" in g:
        return g.conn.exec_driver_sql(sql, dict(params)).first()
    try:
        return _open(sql, params)
    except psycopg.OperationalError:
        if not g.conn.connection.driver_connection.broken:
            raise
    g.pop("conn").invalidate()
    engine().dispose()  # the server went away: every pooled connection is dead
    return _open(sql, params)


def _open(sql: str, params: Mapping[str, Any]) -> Any:
    g.conn = engine().connect()
    g.conn.begin()
    raw = g.conn.connection.driver_connection
    return raw.cursor(row_factory=namedtuple_row).execute(sql, params).fetchone()


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
    app.extensions["gridsvc.engine"] = make_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=False,  # see first_row
    )
    app.after_request(_finish)
    app.teardown_request(_teardown)
