"""``gridsvc audit export`` and ``gridsvc audit prune``: the audit log out of the database."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from gridsvc.cli._common import get_engine, get_settings


@click.group()
def audit() -> None:
    """Export or prune the audit log."""


@audit.command("export")
@click.option(
    "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day."
)
@click.option(
    "--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (included)."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file (UTF-8 with BOM, for Excel). Default: standard output (UTF-8, no BOM).",
)
@click.pass_context
def audit_export(ctx: click.Context, start: datetime, end: datetime, out: Path | None) -> None:
    """Write the audit entries of days FROM..TO (Beijing time) as CSV.

    Columns: id, at, username, action, target, street_code, community_code, reason, before,
    after, details, ip. A cell starting with = + - @ TAB or CR is written with a leading
    apostrophe, so a spreadsheet shows it as text. The export is itself audited.
    """
    from gridsvc.accounts.audit import export_csv

    engine = get_engine(ctx)
    if out is None:
        with engine.begin() as conn:
            count = export_csv(conn, sys.stdout, start=start.date(), end=end.date())
        click.echo(f"{count} audit entries", err=True)
        return
    partial = out.with_name(out.name + ".partial")
    try:
        with engine.begin() as conn, partial.open("w", encoding="utf-8-sig", newline="") as fh:
            count = export_csv(conn, fh, start=start.date(), end=end.date())
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"{out}: {count} audit entries")


@audit.command("prune")
@click.pass_context
def audit_prune(ctx: click.Context) -> None:
    """Delete audit entries older than GRIDSVC_AUDIT_RETENTION_DAYS (at least 180; default 365)."""
    from gridsvc.accounts.audit import BEIJING, prune

    days = get_settings(ctx).audit_retention_days
    with get_engine(ctx).begin() as conn:
        deleted, cutoff = prune(conn, retention_days=days)
    when = cutoff.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    click.echo(f"deleted {deleted} audit entries older than {when} (Beijing time, {days} days)")
