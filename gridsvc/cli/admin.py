"""Administration commands: ``gridsvc db init`` and ``gridsvc demo``."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url

from gridsvc.cli._common import get_engine, get_settings
from gridsvc.db import init_database


@click.group()
def db() -> None:
    """Create and migrate the database."""


@db.command("init")
@click.pass_context
def db_init(ctx: click.Context) -> None:
    """Create the database and PostGIS when missing, then apply every migration.

    Safe to run again: it only does what is missing.
    """
    settings = get_settings(ctx)
    created = init_database(settings.database_url)
    if settings.app_db_password:
        from gridsvc.accounts.scope import set_app_password
        from gridsvc.db import make_engine

        engine = make_engine(settings.database_url)
        with engine.begin() as conn:
            set_app_password(conn, settings.app_db_password)
        engine.dispose()
    name = make_url(settings.database_url).database
    click.echo(f"database {name}: {'created and ' if created else ''}migrated to the latest schema")


@click.command()
@click.option("--seed", default=1, show_default=True, help="Random seed: same seed, same street.")
@click.option(
    "--households",
    type=click.IntRange(min=100),
    default=None,
    help="Total households; more than one street's worth builds a whole city. "
    "Default: one street of 5 communities (~18,600 households).",
)
@click.option("--kunming", is_flag=True, help="Load the small real-footprint Kunming district.")
@click.pass_context
def demo(ctx: click.Context, seed: int, households: int | None, kunming: bool) -> None:
    """Generate and load a deterministic demo district (running it again updates it by code)."""
    from geodata.demo import load_demo
    from geodata.kunming import load_kunming

    engine = get_engine(ctx)
    with engine.begin() as conn:
        if kunming:
            summary = load_kunming(conn, progress=True)
        else:
            summary = load_demo(conn, seed=seed, households=households, progress=True)
    for layer, count in summary.items():
        click.echo(f"{layer:12s} {count:>9,d}")
