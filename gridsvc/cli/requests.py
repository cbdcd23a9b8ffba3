"""``gridsvc requests add|list|import|dispatch|…``, ``gridsvc wishes add|list|claim|done``."""

from __future__ import annotations

import csv
import getpass
import io
import json
from pathlib import Path

import click

from gridsvc.cli._common import check_one_scope, get_engine, get_settings, scope_options

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
LIST_FIELDS = ["id", "household", "category", "status", "member", "reason", "created_at", "due_at"]


@click.group()
def requests() -> None:
    """Residents' requests (点单→下单→接单): add, list, import, dispatch along the pairing."""


@requests.command("add")
@click.option("--household", required=True, metavar="CODE", help="Household code.")
@click.option(
    "--category",
    required=True,
    help="mediation|sanitation|elderly_care|policy|repair|other or 矛盾调解…其他.",
)
@click.option("--text", "text_", required=True, help="What the resident asks.")
@click.option(
    "--channel",
    default="other",
    show_default=True,
    help="visit|phone|grid_worker|wechat_group|other or 上门/电话/网格员/微信群/其他.",
)
@click.option("--at", "at", metavar="TIME", help="When it came in (Beijing time; default now).")
@click.pass_context
def requests_add(
    ctx: click.Context, household: str, category: str, text_: str, channel: str, at: str | None
) -> None:
    """Add a request and dispatch it: prints its id, the member it went to and why."""
    from gridsvc.requests.service import add_request

    settings = get_settings(ctx)
    with get_engine(ctx).begin() as conn:
        row = add_request(
            conn,
            None,
            settings=settings,
            household=household,
            category=category,
            text_=text_,
            channel=channel,
            at=at,
            actor=getpass.getuser(),
        )
    who = row["member"] or (f"cadre {row['cadre']}" if row["cadre"] else "-")
    click.echo(f"request {row['id']}: {row['status']} -> {who} ({row['reason']})")


@requests.command("list")
@scope_options
@click.option(
    "--status",
    help="waiting|dispatched|accepted|in_progress|done|visited|returned|escalated (or 待派单…).",
)
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@FORMAT
@click.pass_context
def requests_list(
    ctx: click.Context,
    street_code: str | None,
    community_code: str | None,
    status: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Requests newest first (JSON: a list of objects with id, household, category, status,
    member, reason, created_at, due_at)."""
    from gridsvc.requests.service import list_requests

    check_one_scope(street_code, community_code)
    with get_engine(ctx).connect() as conn:
        page = list_requests(
            conn,
            settings=get_settings(ctx),
            street_code=street_code,
            community_code=community_code,
            status=status,
            limit=limit,
        )
    rows = [{k: r[k] for k in LIST_FIELDS} for r in page["requests"]]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LIST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        click.echo(f"{page['total']:,d} requests")
        for r in rows:
            click.echo(
                f"{r['id']:>8} {r['household'] or '-':22s} {r['category']:12s} {r['status']:11s} "
                f"{r['member'] or '-':14s} {r['due_at']} {r['reason'] or ''}"
            )


@requests.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--encoding", help="Text encoding of a CSV (default: UTF-8, else GBK/GB18030).")
@click.pass_context
def requests_import(ctx: click.Context, path: Path, encoding: str | None) -> None:
    """Import history from PATH (CSV/XLSX: household_code, category, text, channel, created_at,
    optional status and member_code). All or nothing, every reject named; the waiting ones are
    then dispatched."""
    from gridsvc.requests.imports import import_requests

    settings = get_settings(ctx)
    with get_engine(ctx).begin() as conn:
        result = import_requests(
            conn, path, settings=settings, encoding=encoding, username=getpass.getuser()
        )
    click.echo(
        f"requests: {result['inserted']:,d} imported, {result['dispatched']:,d} dispatched, "
        f"{result['to_cadre']:,d} to cadres, {result['left_waiting']:,d} left waiting"
    )


@requests.command("dispatch")
@scope_options
@click.pass_context
def requests_dispatch(
    ctx: click.Context, street_code: str | None, community_code: str | None
) -> None:
    """Dispatch every waiting request at once (one min-cost flow over members' spare capacity)."""
    from gridsvc.requests.service import dispatch_requests

    check_one_scope(street_code, community_code)
    with get_engine(ctx).begin() as conn:
        counts = dispatch_requests(
            conn,
            None,
            settings=get_settings(ctx),
            street_code=street_code,
            community_code=community_code,
            actor=getpass.getuser(),
        )
    click.echo(
        f"requests: {counts['dispatched']:,d} dispatched to members, {counts['to_cadre']:,d} to "
        f"cadres, {counts['left_waiting']:,d} left waiting; {counts['cost_m']:,d} m in all"
    )


@requests.command("escalate")
@click.pass_context
def requests_escalate(ctx: click.Context) -> None:
    """Escalate open requests past their time limit (to the member's cadre, then the community)."""
    from gridsvc.requests.service import escalate_overdue

    with get_engine(ctx).begin() as conn:
        n = escalate_overdue(conn, settings=get_settings(ctx), actor=getpass.getuser())
    click.echo(f"requests: {n:,d} escalated")


@requests.command("demo")
@click.pass_context
def requests_demo(ctx: click.Context) -> None:
    """Three months of demo requests and wishes in every state (after pairing; make demo)."""
    from gridsvc.requests.demo import load_demo_requests

    with get_engine(ctx).begin() as conn:
        counts = load_demo_requests(conn, settings=get_settings(ctx))
    if not counts:
        click.echo("requests: demo requests already loaded (or nothing is paired)")
    for state, n in sorted(counts.items()):
        click.echo(f"requests {state:12s} {n:>7,d}")


@click.group()
def wishes() -> None:
    """Micro-wishes (微心愿) of needy households: add, list, claim, done."""


@wishes.command("add")
@click.option("--household", required=True, metavar="CODE")
@click.option(
    "--flag",
    required=True,
    help="low_income|disabled|elderly_alone|hardship_member|left_behind_child "
    "or 低保/残疾/独居老人/困难党员/留守儿童.",
)
@click.option("--text", "text_", required=True)
@click.option("--value", "value", required=True, help="Estimated value in yuan.")
@click.option("--wanted-by", "wanted_by", required=True, metavar="DATE")
@click.pass_context
def wishes_add(
    ctx: click.Context, household: str, flag: str, text_: str, value: str, wanted_by: str
) -> None:
    """Publish a wish to the members of the household's community."""
    from gridsvc.requests.wishes import add_wish

    with get_engine(ctx).begin() as conn:
        row = add_wish(
            conn,
            None,
            settings=get_settings(ctx),
            household=household,
            flag=flag,
            text_=text_,
            value_yuan=value,
            wanted_by=wanted_by,
            actor=getpass.getuser(),
        )
    click.echo(f"wish {row['id']}: {row['status']} ({row['community']})")


@wishes.command("list")
@scope_options
@click.option("--status", help="open|claimed|done|thanked")
@FORMAT
@click.pass_context
def wishes_list(
    ctx: click.Context,
    street_code: str | None,
    community_code: str | None,
    status: str | None,
    fmt: str,
) -> None:
    """Wishes, open ones first."""
    from gridsvc.requests.wishes import list_wishes

    check_one_scope(street_code, community_code)
    with get_engine(ctx).connect() as conn:
        page = list_wishes(
            conn,
            settings=get_settings(ctx),
            street_code=street_code,
            community_code=community_code,
            status=status,
            limit=100000,
        )
    rows = page["wishes"]
    fields = [
        "id",
        "community",
        "flag",
        "text",
        "value_yuan",
        "wanted_by",
        "status",
        "member",
        "unit",
        "open_to_units",
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        for r in rows:
            click.echo(
                f"{r['id']:>6} {r['status']:8s} {r['flag']:18s} {r['value_yuan']:>8.2f} "
                f"{r['wanted_by']} {r['member'] or r['unit'] or '-'} {r['text']}"
            )


@wishes.command("claim")
@click.argument("wish_id", type=int)
@click.option("--member", metavar="CODE", help="The member who claims it.")
@click.option(
    "--unit", metavar="NAME", help="A unit's name (after GRIDSVC_WISH_OPEN_DAYS unclaimed)."
)
@click.pass_context
def wishes_claim(ctx: click.Context, wish_id: int, member: str | None, unit: str | None) -> None:
    """Claim a wish for a member or a unit."""
    from gridsvc.requests.wishes import act_wish

    with get_engine(ctx).begin() as conn:
        row = act_wish(
            conn,
            None,
            wish_id,
            "claim",
            settings=get_settings(ctx),
            member=member,
            unit=unit,
            actor=getpass.getuser(),
        )
    click.echo(f"wish {row['id']}: {row['status']} by {row['member'] or row['unit']}")


@wishes.command("done")
@click.argument("wish_id", type=int)
@click.option("--note", required=True, help="What was given or done.")
@click.pass_context
def wishes_done(ctx: click.Context, wish_id: int, note: str) -> None:
    """Mark a claimed wish fulfilled, with a note."""
    from gridsvc.requests.wishes import act_wish

    with get_engine(ctx).begin() as conn:
        row = act_wish(
            conn,
            None,
            wish_id,
            "done",
            settings=get_settings(ctx),
            note=note,
            actor=getpass.getuser(),
        )
    click.echo(f"wish {row['id']}: {row['status']}")


COMMANDS = (requests, wishes)
