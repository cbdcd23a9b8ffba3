"""Shared fixtures: settings, a migrated PostGIS test database, rolled-back connections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from gridsvc.db import drop_database, init_database, make_engine
from gridsvc.settings import Settings, load_settings

DATA = Path(__file__).with_name("data")

# Headless Chromium fixtures (chromium, offline_page), one browser per session for every module.
pytest_plugins = ("browser",)


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings from the environment, pointed at the test database."""
    base = load_settings()
    return base.with_(database_url=base.effective_test_database_url)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """An engine on a test database created afresh and migrated once per session.

    Nothing left by an earlier run (data, or a migration from another branch) can leak in.
    """
    _drop_database(settings.database_url)
    init_database(settings.database_url)
    eng = make_engine(settings.database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def session(conn: Connection) -> Iterator[Session]:
    """An ORM session bound to :func:`conn`; its commits become savepoints."""
    with Session(bind=conn, join_transaction_mode="create_savepoint") as sess:
        yield sess


@pytest.fixture
def data_dir() -> Path:
    """The folder of small real test data files (see its README for sources and licences)."""
    return DATA


@pytest.fixture(scope="session")
def scratch_url(settings: Settings) -> Iterator[str]:
    """A separate, freshly migrated database for tests that must commit (CLI runs)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    scratch = url.set(database=f"{url.database}_scratch").render_as_string(hide_password=False)
    _drop_database(scratch)
    init_database(scratch)
    yield scratch
    _drop_database(scratch)


def _drop_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(url).database or ""
    if "test" not in name:
        raise pytest.UsageError(f"refusing to drop {name!r}: not a test database")
    drop_database(url)
