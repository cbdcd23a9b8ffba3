"""Contact commands: ``gridsvc contacts import|overdue``, ``gridsvc user import``, ``digest``."""

from __future__ import annotations

import csv
import getpass
import io
import json
from pathlib import Path

import click

from gridsvc.cli._common import check_one_scope, get_engine, get_settings, scope_options


@click.group()
def contacts() -> None:
    """The contact log: import the sheets communities keep, list overdue households."""


@contacts.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--encoding", help="Text encoding of a CSV (default: UTF-8, else GBK/GB18030).")
@click.pass_context
def contacts_import(ctx: click.Context, path: Path, encoding: str | None) -> None:
    """Import contacts from PATH (CSV/XLSX: household_code, member_code, contacted_at, channel,
    note). All or nothing: every rejected row is named; the same household, member and minute
    is counted once. Times without an offset are in GRIDSVC_TIMEZONE (Beijing time)."""
    from gridsvc.contacts.imports import import_contacts

    settings = get_settings(ctx)
    with get_engine(ctx).begin() as conn:
        result = import_contacts(
            conn, path, settings=settings, encoding=encoding, username=getpass.getuser()
        )
    rate = result.rows / result.seconds if result.seconds else 0
    click.echo(
        f"contacts: {result.inserted:,d} inserted, {result.skipped_duplicates:,d} already counted "
        f"(same household, member and minute) of {result.rows:,d} rows in {result.seconds:.1f} s "
        f"({rate:,.0f} rows/s)"
    )


@contacts.command("overdue")
@scope_options
@click.option("--as-of", "as_of", metavar="DATE", help="Date or time (default: now).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option(
    "--by",
    type=click.Choice(["household", "community"]),
    default="household",
    show_default=True,
    help="household: the overdue households and each member's figures; community: the "
    "figures of each community (households, overdue, never, vulnerable_overdue, "
    "contacted_share).",
)
@click.pass_context
def contacts_overdue(
    ctx: click.Context,
    street_code: str | None,
    community_code: str | None,
    as_of: str | None,
    fmt: str,
    by: str,
) -> None:
    """Paired households whose last contact is older than their cadence, or never contacted."""
    from gridsvc.contacts import overdue, overdue_by_community

    check_one_scope(street_code, community_code)
    settings = get_settings(ctx)
    if by == "community":
        with get_engine(ctx).connect() as conn:
            figures = overdue_by_community(
                conn,
                settings=settings,
                street_code=street_code,
                community_code=community_code,
                as_of=as_of,
            )
        _communities(figures.to_dict(), fmt)
        return
    with get_engine(ctx).connect() as conn:
        report = overdue(
            conn,
            settings=settings,
            street_code=street_code,
            community_code=community_code,
            as_of=as_of,
        )
    data = report.to_dict()
    if fmt == "json":
        # compact: the C encoder (an indent takes the pure-Python one: 4 s for a city's list)
        click.echo(json.dumps(data, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(_csv(data["overdue"]), nl=False)
    else:
        _table(data)


COMMUNITY_FIELDS = [
    "community",
    "name",
    "households",
    "overdue",
    "never",
    "vulnerable_overdue",
    "contacted_share",
]


def _communities(data: dict, fmt: str) -> None:
    rows = data["communities"]
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COMMUNITY_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    click.echo(f"as of {data['as_of']}: {len(rows):,d} communities")
    click.echo(
        f"{'community':14s} {'households':>10s} {'overdue':>8s} {'never':>6s} "
        f"{'vuln':>5s} {'contacted':>9s}"
    )
    for r in rows:
        click.echo(
            f"{r['community']:14s} {r['households']:>10,d} {r['overdue']:>8,d} "
            f"{r['never']:>6,d} {r['vulnerable_overdue']:>5,d} {r['contacted_share']:>9.1%}"
        )


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    fields = ["household", "member", "last_contact", "days_since", "cadence_days", "vulnerable"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _table(data: dict) -> None:
    rows = data["overdue"]
    click.echo(f"as of {data['as_of']}: {len(rows):,d} households overdue")
    click.echo(
        f"{'household':24s} {'member':16s} {'last contact':25s} {'days':>5s} {'cad':>4s} vuln"
    )
    for r in rows:
        last = r["last_contact"] or "never"
        days = "" if r["days_since"] is None else str(r["days_since"])
        vuln = "yes" if r["vulnerable"] else ""
        click.echo(
            f"{r['household']:24s} {r['member']:16s} {last:25s} {days:>5s} "
            f"{r['cadence_days']:>4d} {vuln}"
        )
    members = data["members"]
    idle = sum(1 for m in members if m["contacted_share"] == 0)
    click.echo(f"{len(members):,d} members; {idle:,d} with no household contacted within cadence")


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--passwords-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("user-passwords.txt"),
    show_default=True,
    help="Where random passwords are written once (mode 0600).",
)
@click.option("--encoding", help="Text encoding of a CSV (default: UTF-8, else GBK/GB18030).")
@click.pass_context
def user_import(ctx: click.Context, path: Path, passwords_file: Path, encoding: str | None) -> None:
    """Create users from PATH (CSV/XLSX: username, role, member_code or cadre_code, optional
    password, street_code, community_code). All or nothing; random passwords go to
    --passwords-file (mode 0600), never to the screen."""
    from gridsvc.accounts.bulk import import_users
    from gridsvc.cli.admin import _keep_passwords

    with get_engine(ctx).begin() as conn:
        made, count = import_users(conn, path, encoding=encoding, username=getpass.getuser())
        if made:
            _keep_passwords(passwords_file, made)
    click.echo(f"users: {count:,d} created")
    if made:
        click.echo(f"{len(made):,d} random passwords written to {passwords_file} (mode 0600)")


@click.command()
@click.option("--street", "street_code", metavar="CODE", required=True, help="9-digit street.")
@click.option(
    "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day."
)
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def digest(ctx: click.Context, street_code: str, start, end, out: Path) -> None:
    """The half-monthly analysis paper of a street (民情分析): contacts by grid and member in the
    period, households overdue and never reached, members with no contact, changes since the
    previous period of the same length. One self-contained HTML file (offline, masked)."""
    from gridsvc.contacts.report import render_digest

    settings = get_settings(ctx)
    with get_engine(ctx).connect() as conn:
        html = render_digest(
            conn,
            street_code=street_code,
            start=start.date(),
            end=end.date(),
            settings=settings,
            lang=settings.lang,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    click.echo(f"{out}: {len(html.encode()) / 1024:.0f} KB (names and phones masked)")


COMMANDS = (contacts, digest)
