"""Coverage commands: ``gridsvc coverage``, ``gridsvc blindspots`` and ``gridsvc sites``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pandas as pd

from gridsvc.cli._common import check_one_scope, get_engine, get_settings, scope_options

_HEADERS_ZH = {
    "code": "编码",
    "name": "名称",
    "households": "户数",
    "paired": "已结对",
    "paired_share": "结对率",
    "contacted": "周期内已联系",
    "contacted_share": "联系率",
    "members": "党员",
    "eligible": "可结对",
    "active": "在岗",
    "reserve": "储备",
    "without_cadre": "无干部联系",
    "load_mean": "平均户数",
    "load_max": "最多户数",
    "distance_mean_m": "平均距离m",
    "distance_p95_m": "P95距离m",
    "distance_max_m": "最远m",
    "same_building_share": "同楼率",
    "same_grid_share": "同网格率",
    "cadres": "干部",
    "cadre_load_mean": "干部平均联系",
    "rank": "排序",
    "building_code": "楼栋",
    "new_households": "新覆盖户数",
    "new_weight": "新覆盖权重",
    "lon": "经度",
    "lat": "纬度",
}
_TABLE_COLUMNS = [
    "code", "name", "households", "paired", "paired_share", "contacted_share", "members",
    "eligible", "active",
    "reserve", "without_cadre", "load_mean", "load_max", "distance_mean_m", "distance_p95_m",
    "distance_max_m", "same_building_share", "same_grid_share", "cadres", "cadre_load_mean",
]  # fmt: skip


@click.command("coverage")
@scope_options
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--buildings", is_flag=True, help="JSON: include one row per building.")
@click.pass_context
def coverage(
    ctx: click.Context,
    street_code: str | None,
    community_code: str | None,
    fmt: str,
    buildings: bool,
) -> None:
    """Coverage of a street or community: households paired, members, cadres, loads, distances,
    Red Station reach at the life circles (everything when no scope is given).

    Reach is walked along the roads where a roads layer is loaded around the scope (off-road
    access included), straight elsewhere; GRIDSVC_REACH_METRIC=straight|network forces one."""
    from gridsvc.coverage import compute_coverage

    check_one_scope(street_code, community_code)
    settings = get_settings(ctx)
    with get_engine(ctx).connect() as conn:
        report = compute_coverage(
            conn, street_code=street_code, community_code=community_code, settings=settings
        )
    if fmt == "json":
        _echo_json(report.to_dict(buildings=buildings))
        return
    zh = settings.lang == "zh"
    summary = pd.DataFrame([dict(report.summary)])
    circles = [c for c in summary.columns if c.startswith("reach_")]
    click.echo(
        _table(
            summary,
            [
                "households",
                "paired",
                "paired_share",
                "contacted",
                "contacted_share",
                *circles,
                "members",
                "active",
                "reserve",
                "without_cadre",
                "cadres",
            ],
            zh,
        )
    )
    click.echo(_metric_line(report.distance_metric, report.network, zh))
    rows = report.grids if community_code else report.communities
    click.echo("")
    click.echo(("网格" if zh else "Grids") if community_code else ("社区" if zh else "Communities"))
    click.echo(_table(rows, [*_TABLE_COLUMNS, *circles], zh))
    if not report.pairs_available:
        click.echo("(尚无结对方案)" if zh else "(no pairing plan yet)", err=True)


@click.command("blindspots")
@scope_options
@click.option(
    "--kind", "kinds", multiple=True, help="Only these kinds (repeatable); default all six."
)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "geojson"]), default="json", show_default=True
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="JSON: first N rows of each kind."
)
@click.pass_context
def blindspots(
    ctx: click.Context,
    street_code: str | None,
    community_code: str | None,
    kinds: tuple[str, ...],
    fmt: str,
    limit: int | None,
) -> None:
    """Blind spots, ranked: unpaired households, members with no cadre, far pairs, grids with no
    eligible member, residential buildings outside the Red Stations' life circles, commercial
    buildings no party organisation covers."""
    from gridsvc.coverage import find_blindspots

    check_one_scope(street_code, community_code)
    settings = get_settings(ctx)
    with get_engine(ctx).connect() as conn:
        spots = find_blindspots(
            conn,
            street_code=street_code,
            community_code=community_code,
            kinds=kinds or None,
            settings=settings,
        )
    _echo_json(spots.to_geojson() if fmt == "geojson" else spots.to_dict(limit=limit))


@click.group("sites")
def sites() -> None:
    """Red Station siting: suggest sites, show stored suggestions."""


@sites.command("suggest")
@click.option(
    "--community", "community_code", required=True, metavar="CODE", help="12-digit community code."
)
@click.option(
    "--k", type=click.IntRange(min=0), default=None, help="New stations to open (maximal covering)."
)
@click.option(
    "--cover-all",
    is_flag=True,
    help="Instead of --k: the fewest stations that reach everyone reachable.",
)
@click.option(
    "--radius",
    type=click.FloatRange(min=0, min_open=True),
    required=True,
    help="Walking range in metres (300, 500, 1000).",
)
@click.option(
    "--weights",
    default="",
    metavar="NAME=W,...",
    help="Extra weight of vulnerable households (base=1), e.g. elderly_alone=3,children=1.",
)
@click.option(
    "--candidates",
    type=click.Choice(["buildings", "lattice"]),
    default="buildings",
    show_default=True,
    help="Buildings flagged available, or a square lattice.",
)
@click.option(
    "--spacing",
    type=click.FloatRange(min=10),
    default=100.0,
    show_default=True,
    help="Lattice spacing in metres.",
)
@click.option(
    "--points",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Candidate points from a GeoJSON/GeoPackage file (overrides --candidates).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Solver seconds.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_context
def suggest(
    ctx: click.Context,
    community_code: str,
    k: int | None,
    cover_all: bool,
    radius: float,
    weights: str,
    candidates: str,
    spacing: float,
    points: Path | None,
    time_limit: float,
    fmt: str,
) -> None:
    """Suggest where to open Red Stations; prints the sites and the households each newly reaches.

    The run is stored (``gridsvc sites show RUN_ID`` draws it again). Existing stations count as
    open.
    """  # fmt: skip
    from gridsvc.coverage import suggest_sites
    from gridsvc.siting import VulnerabilityWeights

    if (k is None) == (not cover_all):
        raise click.UsageError("give --k N or --cover-all (exactly one)")
    scheme = VulnerabilityWeights.parse(weights)
    source: Any = candidates
    if points is not None:
        import geopandas as gpd

        source = gpd.read_file(points)
    settings = get_settings(ctx)
    with get_engine(ctx).begin() as conn:
        run = suggest_sites(
            conn,
            community_code=community_code,
            radius_m=radius,
            k=None if cover_all else k,
            weights=scheme,
            candidates=source,
            spacing_m=spacing,
            time_limit=time_limit,
            settings=settings,
        )
    if fmt == "json":
        _echo_json(run.to_dict())
        return
    zh = settings.lang == "zh"
    res = run.result
    table = pd.DataFrame(run.to_dict()["sites"])
    click.echo(
        _table(table, ["rank", "building_code", "new_households", "new_weight", "lon", "lat"], zh)
    )
    before = res.covered_count - int(res.new_count.sum())
    label = _SUMMARY_ZH if zh else _SUMMARY_EN
    values = {"b": before, "a": res.covered_count, "t": res.total_count, "bd": res.bound}
    click.echo(label.format(id=run.run_id, m=res.method, s=res.status, g=res.gap, **values))
    click.echo(_metric_line(run.distance_metric, run.network, zh))


_SUMMARY_ZH = "方案 {id}：{m}，{s}，覆盖 {b:,} → {a:,} / {t:,} 户，上界 {bd:,.1f}，差距 {g:.2%}"
_SUMMARY_EN = (
    "run {id}: {m}, {s}, households in range {b:,} → {a:,} of {t:,}, bound {bd:,.1f}, gap {g:.2%}"
)


@sites.command("show")
@click.argument("run_id", type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "geojson"]), default="table", show_default=True
)
@click.pass_context
def show(ctx: click.Context, run_id: int, fmt: str) -> None:
    """The stored sites of a run (``geojson`` to draw them)."""
    from gridsvc.coverage import load_suggestions

    with get_engine(ctx).connect() as conn:
        frame = load_suggestions(conn, run_id)
    if fmt == "geojson":
        click.echo(frame.to_json(drop_id=True, ensure_ascii=False))
        return
    table = pd.DataFrame(frame.drop(columns="geometry")).assign(
        lon=frame.geometry.x.round(6), lat=frame.geometry.y.round(6)
    )
    click.echo(_table(table, list(table.columns), get_settings(ctx).lang == "zh"))


def _metric_line(metric: str, network: Any, zh: bool) -> str:
    """How reach was measured, and what was off the road network (unreachable)."""
    if metric != "network":
        return "距离：直线" if zh else "distance: straight line"
    snap = f"{network.get('snap_m', 0):,.0f}"
    off = network.get("off_network", {})
    if zh:
        parts = "，".join(f"{v:,} {_OFF_ZH.get(k, k)}" for k, v in off.items())
        return f"距离：沿道路步行；离道路超过 {snap} m、不可达的：{parts}"
    parts = ", ".join(f"{v:,} {_OFF_EN.get(k, k)}" for k, v in off.items())
    return f"distance: walked along roads; unreachable, more than {snap} m from any road: {parts}"


_OFF_ZH = {
    "households": "户",
    "buildings": "栋住宅楼",
    "stations": "个驿站",
    "candidates": "个候选点",
}
_OFF_EN = {"buildings": "residential buildings", "candidates": "candidate sites"}


def _table(frame: pd.DataFrame, columns: list[str], zh: bool) -> str:
    cols = [c for c in columns if c in frame.columns]
    shown = frame[cols].copy()
    for c in cols:
        if c.endswith("_share") or c.startswith("reach_"):
            shown[c] = shown[c].map(lambda v: "—" if pd.isna(v) else f"{v:.1%}")
        elif c in {"lon", "lat"}:
            shown[c] = shown[c].map("{:.6f}".format)
        elif pd.api.types.is_float_dtype(shown[c]):
            shown[c] = shown[c].map(lambda v: "—" if pd.isna(v) else f"{v:,.1f}")
    if zh:
        shown = shown.rename(columns=_header_zh)
    return shown.to_string(index=False)


def _header_zh(column: str) -> str:
    if column.startswith("reach_"):
        return f"驿站{column.removeprefix('reach_')}m内"
    return _HEADERS_ZH.get(column, column)


def _echo_json(body: Any) -> None:
    click.echo(json.dumps(body, ensure_ascii=False, indent=1, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
