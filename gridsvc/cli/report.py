"""``gridsvc report``: one self-contained HTML map report of a street or a community."""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import click

from gridsvc.cli._common import check_one_scope, get_engine, get_settings, scope_options


@click.command("report")
@scope_options
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write.",
)
@click.option("--lang", type=click.Choice(["zh", "en"]), help="Labels (default: GRIDSVC_LANG).")
@click.option(
    "--tiles",
    help="Base map: none, osm, gaode, tianditu or an XYZ URL (default: GRIDSVC_TILES).",
)
@click.option(
    "--member",
    "members",
    multiple=True,
    metavar="CODE",
    help="Draw the lines from this member to its households (repeatable).",
)
@click.option("--by", "user", help="Name printed as the report's author (default: OS user).")
@click.option(
    "--unmasked",
    is_flag=True,
    help="Names and phones in clear, sensitive household flags included (logged).",
)
@click.pass_context
def report(
    ctx: click.Context,
    street_code: str | None,
    community_code: str | None,
    out: Path,
    lang: str | None,
    tiles: str | None,
    user: str | None,
    members: tuple[str, ...],
    unmasked: bool,
) -> None:
    """Write the coverage map report of a street or community to OUT (opens with no network).

    Names and phones are masked (张*三, 138****1234) and sensitive household flags left out
    unless --unmasked is given; an unmasked report is logged (and written to the audit log).
    """
    from gridsvc.reports import build_report

    check_one_scope(street_code, community_code)
    if not (street_code or community_code):
        raise click.UsageError("give --street CODE or --community CODE")
    settings = get_settings(ctx)
    changes = {k: v for k, v in (("lang", lang), ("tiles", tiles)) if v}
    settings = settings.with_(**changes) if changes else settings
    started = time.perf_counter()
    with get_engine(ctx).connect() as conn:
        try:
            html = build_report(
                conn,
                street_code=street_code,
                community_code=community_code,
                settings=settings,
                unmasked=unmasked,
                allowed=True,  # the CLI's operator holds the database credentials
                user=user or getpass.getuser(),
                members=frozenset(members),
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        conn.commit()  # the audit row of an unmasked report
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    size = len(html.encode("utf-8")) / 1e6
    note = "UNMASKED, logged" if unmasked else "names and phones masked"
    click.echo(f"{out}: {size:.1f} MB in {time.perf_counter() - started:.1f} s ({note})")
