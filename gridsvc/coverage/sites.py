"""Red Station siting service: pose a community's MCLP/LSCP, solve it, store the suggestions."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geodata.projection import metric_epsg, to_lonlat, to_metres
from gridsvc.coverage._data import load_network
from gridsvc.coverage.reach import distance_metric, plain
from gridsvc.errors import InputRejected, NotFound, Reject
from gridsvc.settings import Settings
from gridsvc.siting import LSCP, MCLP, SitingResult, VulnerabilityWeights, lattice
from gridsvc.siting.network import RoadNetwork, walk_costs

CANDIDATE_SOURCES = ("buildings", "lattice")


@dataclass(frozen=True)
class SiteRun:
    """A stored siting run: its id, the solver result and the suggested sites (EPSG:4326).

    ``sites`` has ``rank``, ``building_code`` (None for lattice or given points),
    ``new_households``, ``new_weight`` and point ``geometry``. ``distance_metric`` is
    ``network`` when "in range" meant walked along the roads (``network`` then gives the snap
    distance, the seconds the walked distances took and the households, candidates and stations
    off the network), ``straight`` otherwise.
    """

    run_id: int
    community_code: str
    result: SitingResult
    sites: gpd.GeoDataFrame
    distance_metric: str = "straight"
    network: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary with the sites as plain rows."""
        rows = pd.DataFrame(self.sites.drop(columns="geometry"))
        rows["lon"] = self.sites.geometry.x.round(6)
        rows["lat"] = self.sites.geometry.y.round(6)
        body = self.result.to_dict()
        body.pop("sites")
        return {
            "run_id": self.run_id,
            "community_code": self.community_code,
            "distance_metric": self.distance_metric,
            "network": plain(self.network),
            "sites": json.loads(rows.to_json(orient="records", force_ascii=False)),
            **body,
        }


def suggest_sites(
    conn: Connection,
    *,
    community_code: str,
    radius_m: float,
    k: int | None,
    weights: VulnerabilityWeights | None = None,
    candidates: str | gpd.GeoDataFrame = "buildings",
    spacing_m: float = 100.0,
    time_limit: float = 60.0,
    created_by: str | None = None,
    settings: Settings | None = None,
) -> SiteRun:
    """Suggest where to open Red Stations in a community and store the run.

    Where roads are loaded around the community (and ``GRIDSVC_REACH_METRIC`` is not
    ``straight``), a household is in range of a site when the walk along the roads, off-road
    access included, is at most ``radius_m``; otherwise the straight distance counts.

    Parameters
    ----------
    conn
        Connection in the caller's transaction (the run is written there).
    community_code
        12-digit community code.
    radius_m
        Walking range in metres (a life circle: 300, 500 or 1,000).
    k
        New stations to open (maximal covering); ``None`` for the fewest stations that reach
        every reachable household (set covering).
    weights
        Vulnerability weights of households; default :class:`VulnerabilityWeights` ().
    candidates
        ``"buildings"`` (buildings flagged ``available_site``), ``"lattice"`` (a square lattice of
        ``spacing_m`` over the community) or a GeoDataFrame of candidate points.
    time_limit
        Seconds for the solver.
    settings
        ``reach_metric`` and ``road_snap_m``; default :class:`~gridsvc.settings.Settings` ().

    Raises
    ------
    NotFound
        Unknown community code.
    InputRejected
        No candidate sites, or bad parameters (naming the field).
    InfeasibleSettings
        ``GRIDSVC_REACH_METRIC=network`` and no road is loaded around the community.
    SolverFailed
        The solver reached no proven result; nothing is stored.
    """
    settings = settings or Settings()
    weights = weights or VulnerabilityWeights()
    comm = conn.execute(
        text("SELECT id, ST_AsBinary(geom) AS wkb FROM communities WHERE code = :c"),
        {"c": community_code},
    ).first()
    if comm is None:
        raise NotFound(f"community {community_code!r}: no such community code")
    hh = _frame(
        conn,
        "SELECT elderly_alone, disabled, children, ST_X(geom) AS lon, ST_Y(geom) AS lat "
        "FROM households WHERE community_id = :c AND moved_out_at IS NULL",
        {"c": comm.id},
    )
    stations = _frame(conn, "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations", {})
    epsg = _epsg(hh, comm.wkb)
    cand = _candidates(conn, comm, candidates, spacing_m, epsg, community_code)
    d_xy = _metres(hh, epsg)
    w = weights.of(
        {c: hh[c].to_numpy() for c in ("elderly_alone", "disabled", "children")}, len(hh)
    )
    existing = _metres(stations, epsg)
    c_xy = _metres(cand, epsg)
    where = f"community {community_code}"
    network = load_network(conn, hh, margin_m=radius_m, epsg=epsg, settings=settings, where=where)
    metric = distance_metric(settings.reach_metric, network, where=where)
    info: dict[str, Any] = {}
    model: MCLP | LSCP
    if metric == "network" and network is not None:
        model, info = _walked_model(
            network, d_xy, c_xy, existing, w, k=k, radius=radius_m, snap_m=settings.road_snap_m
        )
    elif k is None:
        model = LSCP.from_points(d_xy, c_xy, radius=radius_m, weights=w, existing_xy=existing)
    else:
        model = MCLP.from_points(d_xy, c_xy, radius=radius_m, k=k, weights=w, existing_xy=existing)
    result = model.solve(time_limit=time_limit)
    source = candidates if isinstance(candidates, str) else "points"
    run_id = _store(
        conn, comm.id, result, k, radius_m, weights, source, len(cand), created_by, metric
    )
    chosen = cand.iloc[result.sites].reset_index(drop=True)
    sites = gpd.GeoDataFrame(
        {
            "rank": np.arange(1, len(chosen) + 1),
            "building_code": chosen["building_code"].to_numpy(),
            "new_households": result.new_count,
            "new_weight": result.new_weight,
        },
        geometry=gpd.points_from_xy(chosen["lon"], chosen["lat"]),
        crs=4326,
    )
    _store_sites(conn, run_id, sites, chosen["building_id"])
    return SiteRun(run_id, community_code, result, sites, metric, MappingProxyType(info))


def _walked_model(
    network: RoadNetwork,
    demand_xy: np.ndarray,
    candidate_xy: np.ndarray,
    existing_xy: np.ndarray,
    weights: np.ndarray,
    *,
    k: int | None,
    radius: float,
    snap_m: float,
) -> tuple[MCLP | LSCP, dict[str, Any]]:
    """The covering model on walked distances, and what the walk reported."""
    t0 = time.perf_counter()
    costs = walk_costs(network, demand_xy, candidate_xy, existing_xy, radius=radius, snap_m=snap_m)
    info = {
        "snap_m": snap_m,
        "segments": network.n_segments,
        "seconds": round(time.perf_counter() - t0, 4),
        "off_network": MappingProxyType(
            {
                "households": costs.off_network["demand"],
                "candidates": costs.off_network["candidates"],
                "stations": costs.off_network["stations"],
            }
        ),
    }
    if k is None:
        model: MCLP | LSCP = LSCP.from_cost_matrix(
            costs.cost, radius=radius, weights=weights, existing_cost=costs.existing
        )
    else:
        model = MCLP.from_cost_matrix(
            costs.cost, radius=radius, k=k, weights=weights, existing_cost=costs.existing
        )
    return model, info


def load_suggestions(conn: Connection, run_id: int) -> gpd.GeoDataFrame:
    """The stored sites of one run, ready to draw (EPSG:4326).

    Raises
    ------
    NotFound
        When no run has this id.
    """
    if conn.scalar(text("SELECT 1 FROM site_runs WHERE id = :r"), {"r": run_id}) is None:
        raise NotFound(f"site run {run_id}: no such run")
    rows = _frame(
        conn,
        "SELECT s.rank, b.code AS building_code, s.new_households, s.new_weight, "
        "r.radius_m, r.distance_metric, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat "
        "FROM site_suggestions s JOIN site_runs r ON r.id = s.run_id "
        "LEFT JOIN buildings b ON b.id = s.building_id WHERE s.run_id = :r ORDER BY s.rank",
        {"r": run_id},
    )
    geom = gpd.points_from_xy(rows.pop("lon"), rows.pop("lat"))
    return gpd.GeoDataFrame(rows, geometry=geom, crs=4326)


def _candidates(
    conn: Connection,
    comm: Any,
    source: str | gpd.GeoDataFrame,
    spacing_m: float,
    epsg: int,
    community_code: str,
) -> pd.DataFrame:
    """Candidate points: ``building_id``, ``building_code``, ``lon``, ``lat``."""
    if isinstance(source, gpd.GeoDataFrame):
        pts = source.to_crs(4326) if source.crs else source
        if len(pts) == 0 or not (pts.geometry.geom_type == "Point").all():
            raise _reject("candidates", "expected a non-empty frame of points")
        frame = pd.DataFrame({"lon": pts.geometry.x, "lat": pts.geometry.y})
        return frame.assign(building_id=None, building_code=None).reset_index(drop=True)
    if source == "buildings":
        frame = _frame(
            conn,
            "SELECT id AS building_id, code AS building_code, "
            "ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat "
            "FROM buildings "
            "WHERE community_id = :c AND available_site ORDER BY code",
            {"c": comm.id},
        )
        if len(frame) == 0:
            raise _reject(
                "candidates",
                f"community {community_code} has no building flagged available_site; "
                "use --candidates lattice or give points",
            )
        return frame
    if source == "lattice":
        if comm.wkb is None:
            raise _reject("candidates", f"community {community_code} has no boundary for a lattice")
        metric = _to_metric(shapely.from_wkb(bytes(comm.wkb)), epsg)
        pts = lattice(metric.bounds, spacing_m)
        inside = shapely.contains_xy(metric, pts[:, 0], pts[:, 1])
        lon, lat = to_lonlat(pts[inside, 0], pts[inside, 1], epsg=epsg)
        return pd.DataFrame({"building_id": None, "building_code": None, "lon": lon, "lat": lat})
    raise _reject("candidates", f"expected one of {', '.join(CANDIDATE_SOURCES)} or points")


def _to_metric(geom: shapely.Geometry, epsg: int) -> shapely.Geometry:
    def project(coords: np.ndarray) -> np.ndarray:
        x, y, _ = to_metres(coords[:, 0], coords[:, 1], epsg=epsg)
        return np.column_stack([x, y])

    return shapely.transform(geom, project)


def _store(
    conn: Connection,
    community_id: int,
    res: SitingResult,
    k: int | None,
    radius_m: float,
    weights: VulnerabilityWeights,
    source: str,
    n_candidates: int,
    created_by: str | None,
    metric: str,
) -> int:
    before = res.covered_count - int(res.new_count.sum())
    row = {
        "community_id": community_id,
        "problem": res.problem,
        "k": k,
        "radius_m": radius_m,
        "weights": json.dumps(asdict(weights)),
        "candidates": source,
        "n_candidates": n_candidates,
        "method": res.method,
        "status": res.status,
        "objective": res.objective,
        "bound": res.bound,
        "gap": res.gap,
        "households": res.total_count,
        "before": before,
        "after": res.covered_count,
        "wt": res.total_weight,
        "wb": res.base_weight,
        "wa": res.covered_weight,
        "timings": json.dumps(dict(res.timings)),
        "created_by": created_by,
        "metric": metric,
    }
    return int(
        conn.execute(
            text(
                "INSERT INTO site_runs (community_id, problem, k, radius_m, weights, candidates, "
                "n_candidates, method, status, objective, bound, gap, households, "
                "households_covered_before, households_covered_after, weight_total, "
                "weight_covered_before, weight_covered_after, timings, created_by, "
                "distance_metric) VALUES "
                "(:community_id, :problem, :k, :radius_m, CAST(:weights AS jsonb), :candidates, "
                ":n_candidates, :method, :status, :objective, :bound, :gap, :households, :before, "
                ":after, :wt, :wb, :wa, CAST(:timings AS jsonb), :created_by, :metric) "
                "RETURNING id"
            ),
            row,
        ).scalar_one()
    )


def _store_sites(
    conn: Connection, run_id: int, sites: gpd.GeoDataFrame, building_ids: pd.Series
) -> None:
    if len(sites) == 0:
        return
    rows = [
        {
            "run": run_id,
            "rank": int(r),
            "b": None if pd.isna(b) else int(b),
            "n": int(n),
            "w": float(w),
            "lon": float(p.x),
            "lat": float(p.y),
        }
        for r, b, n, w, p in zip(
            sites["rank"],
            building_ids,
            sites["new_households"],
            sites["new_weight"],
            sites.geometry,
            strict=True,
        )
    ]
    conn.execute(
        text(
            "INSERT INTO site_suggestions (run_id, rank, building_id, new_households, new_weight, "
            "geom) VALUES (:run, :rank, :b, :n, :w, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
        ),
        rows,
    )


def _epsg(hh: pd.DataFrame, wkb: Any) -> int:
    if len(hh):
        return metric_epsg(hh["lon"].to_numpy(float), hh["lat"].to_numpy(float))
    if wkb is not None:
        c = shapely.from_wkb(bytes(wkb)).centroid
        return metric_epsg([c.x], [c.y])
    return 32648


def _metres(frame: pd.DataFrame, epsg: int) -> np.ndarray:
    if len(frame) == 0:
        return np.empty((0, 2))
    x, y, _ = to_metres(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float), epsg=epsg)
    return np.column_stack([x, y])


def _frame(conn: Connection, sql: str, params: dict[str, object]) -> pd.DataFrame:
    result = conn.execute(text(sql), params)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _reject(field: str, reason: str) -> InputRejected:
    return InputRejected(f"sites: {field}: {reason}", [Reject("sites", None, field, reason)])
