"""Data commands: ``gridsvc import LAYER PATH`` and ``gridsvc export LAYER PATH``."""

from __future__ import annotations

import getpass
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import text

from geodata.layers import LAYERS
from gridsvc.cli._common import check_one_scope, get_engine, get_settings, scope_options
from gridsvc.errors import InputRejected

if TYPE_CHECKING:
    from geodata.importer import ImportResult


def _columns(values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for value in values:
        target, sep, column = value.partition("=")
        if not sep or not target or not column:
            raise click.BadParameter(f"expected FIELD=COLUMN, got {value!r}", param_hint="--column")
        mapping[target.strip()] = column.strip()
    return mapping


@click.command("import")
@click.argument("layer", type=click.Choice(list(LAYERS)))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--crs",
    metavar="CODE",
    help="CRS of the coordinates: an EPSG code (4326, EPSG:4490, 4547...), gcj02 (Gaode, "
    "Tencent) or bd09 (Baidu). Overrides the file's own; required when it declares none "
    "(CSV, XLSX, Shapefile without .prj).",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid records and write the rejected ones to a CSV file "
    "(default: reject the whole file when any record is bad).",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --skip-invalid writes rejects. Default: PATH.rejects.csv.",
)
@click.option(
    "--encoding",
    metavar="ENC",
    help="Text encoding of a CSV or Shapefile (utf-8, gbk, gb18030...). Default: detected.",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="Read FIELD from the file's COLUMN, e.g. --column code=id. Repeatable.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check everything and report what the import would do; write nothing.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Households and members given by address: write the match report (one row per "
    "record: address, parsed parts, matched building, how it matched or why not) to this CSV.",
)
@click.option(
    "--retire-missing",
    is_flag=True,
    help="Households and members given by address: mark those of the roster's communities "
    "that the file no longer holds as moved out (they are reported either way).",
)
@click.pass_context
def import_(
    ctx: click.Context,
    layer: str,
    path: Path,
    crs: str | None,
    skip_invalid: bool,
    rejects_path: Path | None,
    encoding: str | None,
    columns: tuple[str, ...],
    dry_run: bool,
    report_path: Path | None,
    retire_missing: bool,
) -> None:
    """Import LAYER from PATH (GeoJSON, GeoPackage, zipped Shapefile, CSV or XLSX).

    Records are updated by code: importing a file again duplicates nothing. A file imports
    all-or-nothing unless --skip-invalid is given; every rejected record is listed with its
    record number, field and reason (exit code 3).
    """
    from geodata.importer import import_file

    settings = get_settings(ctx)
    mapping = _columns(columns)
    with get_engine(ctx).connect() as conn:
        try:
            result = import_file(
                conn,
                layer,
                path,
                settings=settings,
                crs=crs,
                encoding=encoding,
                skip_invalid=skip_invalid,
                rejects_path=rejects_path,
                columns=mapping,
                progress=not dry_run,
                created_by=getpass.getuser(),
                dry_run=dry_run,
                report_path=report_path,
                retire_missing=retire_missing,
            )
        except InputRejected:
            conn.commit()  # only the import_log row: the import itself was rolled back
            raise
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    _echo_roster(result)
    if dry_run:
        _echo_dry_run(result, skip_invalid)
        return
    click.echo(
        f"{result.layer}: {result.inserted:,d} inserted, {result.updated:,d} updated, "
        f"{len({r.record for r in result.rejects}):,d} rejected, {len(result.repairs):,d} "
        f"repaired in {result.seconds:.1f} s"
    )
    for repair in result.repairs:
        click.echo(f"  {repair}")
    if result.ignored_columns:
        click.echo(f"  ignored columns: {', '.join(result.ignored_columns)}")
    if result.rejects_path:
        click.echo(f"  rejects written to {result.rejects_path}")


def _echo_roster(result: ImportResult) -> None:
    """The address part of an import: matches, ID numbers, missing records."""
    if result.report:
        counts = Counter(row.match or "unmatched" for row in result.report)
        shown = ", ".join(f"{how} {n:,d}" for how, n in sorted(counts.items()))
        click.echo(f"addresses: {shown}")
    if result.report_path:
        click.echo(f"  match report written to {result.report_path}")
    if result.id_numbers:
        click.echo(f"  身份证号 column: {result.id_numbers} (never stored in clear)")
    if result.missing:
        verb = (
            "marked moved out"
            if result.retired
            else "not in this file (--retire-missing marks them moved out)"
        )
        click.echo(f"  {len(result.missing):,d} {result.layer} of these communities {verb}")


def _echo_dry_run(result: ImportResult, skip_invalid: bool) -> None:
    records = len({r.record for r in result.rejects})
    if records and not skip_invalid:
        raise InputRejected(
            f"dry run: {result.source} would be rejected: {records:,d} records "
            "(fix them, or use --skip-invalid to import the rest); nothing written",
            list(result.rejects),
        )
    for reject in result.rejects[:20]:
        click.echo(f"  {reject}")
    if len(result.rejects) > 20:
        click.echo(f"  ... and {len(result.rejects) - 20:,d} more")
    click.echo(
        f"dry run: {result.layer}: {result.inserted:,d} would be inserted, {result.updated:,d} "
        f"updated, {records:,d} rejected; nothing written"
    )


@click.command("export")
@click.argument("layer")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@scope_options
@click.option(
    "--unmasked",
    is_flag=True,
    help="Write names and phones in clear and include sensitive flags (logged and audited).",
)
@click.pass_context
def export(
    ctx: click.Context,
    layer: str,
    path: Path,
    street_code: str | None,
    community_code: str | None,
    unmasked: bool,
) -> None:
    """Export LAYER to PATH: .geojson, .gpkg, .csv (UTF-8 with BOM) or .xlsx.

    Names and phones are masked (张*三, 138****1234) and sensitive household flags left out
    unless --unmasked is given; an unmasked export is logged and written to the audit log.
    """
    from geodata.export import Scope, export_layer

    check_one_scope(street_code, community_code)
    with get_engine(ctx).connect() as conn:
        # Times without an offset (contacts) are written in the configured zone (Beijing time).
        zone = get_settings(ctx).timezone
        conn.execute(text("SELECT set_config('TimeZone', :z, true)"), {"z": zone})
        result = export_layer(
            conn,
            layer,
            path,
            scope=Scope(street_code, community_code),
            unmasked=unmasked,
            user=getpass.getuser(),
        )
        conn.commit()  # the audit row of an unmasked export
    note = "unmasked" if unmasked else "names and phones masked"
    click.echo(f"{result.layer}: {result.records:,d} records written to {path} ({note})")
