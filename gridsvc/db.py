"""Database access: engines, sessions, database creation and migrations (the data layer's edge)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from gridsvc.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, **kwargs: object) -> Engine:
    """An engine for ``url`` with pre-ping (pooled connections survive a server restart)."""
    return create_engine(url, **{"pool_pre_ping": True, **kwargs})  # type: ignore[arg-type]


def engine_from_settings(settings: Settings) -> Engine:
    """The engine of the configured database."""
    return make_engine(settings.database_url)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


def _maintenance_engine(url: str) -> Engine:
    """An autocommit engine on the server's ``postgres`` database, for CREATE/DROP DATABASE."""
    target = make_url(url).set(database="postgres")
    return make_engine(target.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")


def drop_database(url: str) -> None:
    """Drop the database of ``url`` if it exists, closing its connections (tests, benches)."""
    name = make_url(url).database
    admin = _maintenance_engine(url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def ensure_database(url: str) -> bool:
    """Create the database of ``url`` and the PostGIS extension when missing.

    Returns True when the database was created. Needs a role allowed to create databases.
    """
    target = make_url(url)
    admin = _maintenance_engine(url)
    created = False
    with admin.connect() as conn:
        exists = conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        )
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
            created = True
    admin.dispose()
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    engine.dispose()
    return created


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` using the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Upgrade the database to every head revision (idempotent)."""
    command.upgrade(alembic_config(url), "heads")


def init_database(url: str) -> bool:
    """Create the database and PostGIS when missing, then migrate. Returns True if created."""
    created = ensure_database(url)
    migrate(url)
    return created
