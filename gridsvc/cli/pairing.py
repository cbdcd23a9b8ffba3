"""CLI of the pairing engine: pair, rebalance, plan accept|reject, and the export layer."""

from __future__ import annotations

import getpass
import time

import click
import geopandas as gpd
import shapely
from sqlalchemy import Connection, text

from geodata.export import Scope, exporter
from gridsvc import STARTED
from gridsvc.cli._common import check_one_scope, get_engine, get_settings, scope_options


@exporter("pairings")
def _export_pairings(conn: Connection, scope: Scope) -> gpd.GeoDataFrame:
    """One row a pair of the current plans (``gridsvc export pairings PATH``)."""
    from gridsvc.pairing.service import current_pairs

    frame = current_pairs(conn, street_code=scope.street_code, community_code=scope.community_code)
    lines = (
        shapely.linestrings(frame[["x0", "y0", "x1", "y1"]].to_numpy(float).reshape(-1, 2, 2))
        if len(frame)
        else []
    )
    out = frame.drop(columns=["x0", "y0", "x1", "y1"])
    out["distance_m"] = out["distance_m"].round(1)
    return gpd.GeoDataFrame(out, geometry=list(lines), crs=4326)


@click.command("pair")
@scope_options
@click.option(
    "--level",
    type=click.Choice(["households", "members", "all"]),
    default="all",
    show_default=True,
    help="Members→households, cadres→members, or both.",
)
@click.option(
    "--time-limit",
    type=float,
    default=None,
    help="Seconds of active-set search per community [default: by its size, 2 s plus "
    "0.15 ms a household, at most 5 s].",
)
@click.option(
    "--budget",
    type=click.FloatRange(min=1.0),
    metavar="SECONDS",
    help="Wall seconds for the whole run: search time spread over the communities by size "
    "and over GRIDSVC_WORKERS.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Solve every community again, also those whose inputs are unchanged since their plan.",
)
@click.option(
    "--queue",
    is_flag=True,
    help="One job per community on the job queue: gridsvc worker processes on any host share "
    "the run (this command follows it).",
)
@click.option(
    "--resume",
    "resume_run",
    type=int,
    metavar="RUN",
    help="Finish city run RUN (its number is printed): the communities not done yet.",
)
@click.pass_context
def pair(
    ctx: click.Context,
    street_code: str | None,
    community_code: str | None,
    level: str,
    time_limit: float | None,
    budget: float | None,
    force: bool,
    queue: bool,
    resume_run: int | None,
) -> None:
    """Pair households with members and members with cadres; make it the current plan.

    Each community is solved and committed on its own, in GRIDSVC_WORKERS processes (or on the
    job queue with --queue); the members level runs per street after its communities. A repeat
    run skips communities whose inputs are unchanged since their current plan (--force solves
    them again); a run cut short is finished with --resume RUN.
    """
    from gridsvc.pairing import city

    check_one_scope(street_code, community_code)
    settings = get_settings(ctx)
    engine = get_engine(ctx)
    with engine.begin() as conn:
        if resume_run is not None:
            params = city.resume(conn, resume_run)
            parent = resume_run
        else:
            parent = city.create_run(
                conn,
                street_code=street_code,
                community_code=community_code,
                level=level,
                time_limit=time_limit,
                budget=budget,
                workers=settings.workers,
                force=force,
                username=getpass.getuser(),
                budget_spent=time.monotonic() - STARTED,
            )
            params = {}
            if not queue:
                city.resume(conn, parent)  # running, here
                params = dict(
                    conn.execute(
                        text("SELECT params FROM jobs WHERE id = :i"), {"i": parent}
                    ).scalar_one()
                )
                city.fan_out(conn, parent, params, settings)
    click.echo(f"city run {parent} (gridsvc pair --resume {parent} finishes it if cut short)")
    try:
        body = (
            _follow_queue(engine, settings, parent, resumed=resume_run is not None)
            if queue
            else _run_here(engine, settings, parent)
        )
    except KeyboardInterrupt:
        raise click.ClickException(
            f"interrupted: communities committed so far are kept; gridsvc pair --resume {parent}"
        ) from None
    for line in city.summary_lines(body):
        click.echo(line)
    for code, version in sorted(body.get("versions", {}).items()):
        click.echo(f"plan {code}: version {version}")
    if body.get("failed"):
        ctx.exit(1)


def _run_here(engine, settings, parent: int) -> dict:
    """Run a city run's children here (GRIDSVC_WORKERS processes), a tqdm bar per community."""
    from tqdm import tqdm

    from gridsvc.pairing import city

    kids = city.children_now(engine, parent)
    with tqdm(total=len(kids), unit="unit", disable=None) as bar:
        bar.update(sum(k.status in city.TERMINAL for k in kids))

        def on_child(child: city.Child, now: list[city.Child]) -> None:
            bar.update(sum(k.status in city.TERMINAL for k in now) - bar.n)
            bar.set_postfix_str(child.scope)

        return city.run_here(engine, settings, parent, workers=settings.workers, on_child=on_child)


def _follow_queue(engine, settings, parent: int, *, resumed: bool) -> dict:
    """Queue a city run (or its unfinished children) and follow it until it ends."""
    import time

    from tqdm import tqdm

    from gridsvc import jobs
    from gridsvc.pairing import city

    kids = city.children_now(engine, parent)
    if resumed and kids:
        queued = [k.id for k in kids if k.kind == city.COMMUNITY and k.status == "queued"]
        jobs.defer_jobs(settings.database_url, queued, follow=parent)
    else:
        if resumed:  # the worker that took it died before it fanned out
            with engine.begin() as conn:
                conn.execute(text("UPDATE jobs SET status = 'queued' WHERE id = :i"), {"i": parent})
        jobs.defer_job(settings.database_url, parent)
    with tqdm(total=1.0, unit="", disable=None, bar_format="{l_bar}{bar}| {postfix}") as bar:
        while True:
            with engine.connect() as conn:
                row = conn.execute(
                    text("SELECT status, progress, message, result FROM jobs WHERE id = :i"),
                    {"i": parent},
                ).one()
            bar.update(float(row.progress) - bar.n)
            bar.set_postfix_str(row.message or row.status)
            if row.status in city.TERMINAL and row.result:
                return dict(row.result)
            time.sleep(1.0)


@click.command("rebalance")
@click.option(
    "--community", "community_code", metavar="CODE", required=True, help="12-digit community code."
)
@click.pass_context
def rebalance(ctx: click.Context, community_code: str) -> None:
    """Propose a new household plan for a community that changes as few pairs as needed."""
    from gridsvc.pairing.service import propose_rebalance

    with get_engine(ctx).begin() as conn:
        proposal = propose_rebalance(
            conn,
            community_code=community_code,
            settings=get_settings(ctx),
            created_by=getpass.getuser(),
        )
    for change in proposal.changes:
        click.echo(
            f"  {change['kind']:8} {change['client']}: {change['old_server'] or '–'} → "
            f"{change['server'] or '–'} ({change['reason']})"
        )
    click.echo(f"{proposal.summary}")
    click.echo(
        f"proposal {proposal.id} from plan version {proposal.base_version}: "
        f"gridsvc plan accept {proposal.id} | gridsvc plan reject {proposal.id}"
    )


@click.group("plan")
def plan() -> None:
    """Accept or reject rebalance proposals."""


@plan.command("accept")
@click.argument("proposal_id", type=int)
@click.option("--reason", default="", help="Why (kept with the decision).")
@click.pass_context
def accept(ctx: click.Context, proposal_id: int, reason: str) -> None:
    """Make proposal PROPOSAL_ID the plan (refused when the plan changed since)."""
    from gridsvc.pairing.service import accept_proposal

    with get_engine(ctx).begin() as conn:
        outcome = accept_proposal(conn, proposal_id, decided_by=getpass.getuser(), reason=reason)
    click.echo(f"proposal {proposal_id} accepted: plan version {outcome.version}")


@plan.command("reject")
@click.argument("proposal_id", type=int)
@click.option("--reason", default="", help="Why (kept with the decision).")
@click.pass_context
def reject(ctx: click.Context, proposal_id: int, reason: str) -> None:
    """Close proposal PROPOSAL_ID without changing the plan."""
    from gridsvc.pairing.service import reject_proposal

    with get_engine(ctx).begin() as conn:
        reject_proposal(conn, proposal_id, decided_by=getpass.getuser(), reason=reason)
    click.echo(f"proposal {proposal_id} rejected")


COMMANDS = (pair, rebalance, plan)
