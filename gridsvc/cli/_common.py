"""What every CLI command shares: settings and engine from the context, error reporting."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import Engine

from gridsvc.db import engine_from_settings
from gridsvc.errors import GridsvcError
from gridsvc.settings import Settings, load_settings


class DomainError(click.ClickException):
    """A :class:`GridsvcError` shown to the user, exiting with its own code."""

    def __init__(self, error: GridsvcError) -> None:
        super().__init__(error.message)
        self.exit_code = error.exit_code
        self.error = error

    def show(self, file: Any = None) -> None:
        """Print the message and, for rejected input, one line per rejected record."""
        super().show(file)
        for reject in getattr(self.error, "rejects", [])[:200]:
            click.echo(f"  {reject}", err=True, file=file)
        extra = len(getattr(self.error, "rejects", [])) - 200
        if extra > 0:
            click.echo(f"  ... and {extra} more", err=True, file=file)


class GridsvcGroup(click.Group):
    """A click group that turns domain errors and malformed settings into clean exits."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; map :class:`GridsvcError` to its exit code."""
        try:
            return super().invoke(ctx)
        except GridsvcError as exc:
            raise DomainError(exc) from exc


def get_settings(ctx: click.Context) -> Settings:
    """The settings of this invocation, read from the environment once."""
    root = ctx.find_root()
    if "gridsvc.settings" not in root.meta:
        try:
            root.meta["gridsvc.settings"] = load_settings()
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    return root.meta["gridsvc.settings"]


def get_engine(ctx: click.Context) -> Engine:
    """The engine of the configured database, disposed when the command ends."""
    root = ctx.find_root()
    if "gridsvc.engine" not in root.meta:
        engine = engine_from_settings(get_settings(ctx))
        root.call_on_close(engine.dispose)
        root.meta["gridsvc.engine"] = engine
    return root.meta["gridsvc.engine"]


def scope_options(func: Any) -> Any:
    """Add the mutually exclusive ``--street CODE`` / ``--community CODE`` options."""
    func = click.option(
        "--community", "community_code", metavar="CODE", help="12-digit community code."
    )(func)
    return click.option("--street", "street_code", metavar="CODE", help="9-digit street code.")(
        func
    )


def check_one_scope(street_code: str | None, community_code: str | None) -> None:
    """Refuse ``--street`` together with ``--community``."""
    if street_code and community_code:
        raise click.UsageError("give --street or --community, not both")
