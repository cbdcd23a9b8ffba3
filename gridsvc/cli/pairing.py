"""CLI of the pairing engine: pair, rebalance, plan accept|reject, and the export layer."""

from __future__ import annotations

import getpass

import click
import geopandas as gpd
import shapely
from sqlalchemy import Connection

from geodata.export import Scope, exporter
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
@click.pass_context
def pair(
    ctx: click.Context,
    street_code: str | None,
    community_code: str | None,
    level: str,
    time_limit: float | None,
) -> None:
    """Pair households with members and members with cadres; make it the current plan."""
    from tqdm import tqdm

    from gridsvc.pairing.result import BOUND_REASONS_EN
    from gridsvc.pairing.service import run_pairing

    check_one_scope(street_code, community_code)
    with get_engine(ctx).begin() as conn, tqdm(total=1.0, unit="", disable=None) as bar:

        def progress(share: float, what: str) -> None:
            bar.update(share - bar.n)
            bar.set_postfix_str(what)

        report = run_pairing(
            conn,
            settings=get_settings(ctx),
            street_code=street_code,
            community_code=community_code,
            level=level,
            created_by=getpass.getuser(),
            progress=progress,
            time_limit=time_limit,
        )
    for run in report.runs:
        gap = f"{run.gap:.2%}" if run.gap is not None else "–"
        if run.gap is None and run.bound_reason:
            gap += f" (bound unavailable: {BOUND_REASONS_EN.get(run.bound_reason, '')})"
        click.echo(
            f"run {run.id} {run.level} {run.scope}: {run.case}, paired {run.n_paired}/"
            f"{run.n_clients} (max {run.coverage_bound}), active {run.n_active}, reserve "
            f"{run.n_reserve}, cost {run.cost_m:,.0f} m, gap {gap}, {run.status}, "
            f"{run.seconds:.2f} s"
        )
    for code, version in sorted(report.versions.items()):
        click.echo(f"plan {code}: version {version}")


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
