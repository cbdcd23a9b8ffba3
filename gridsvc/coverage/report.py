"""The coverage service: a street's or community's figures at every level, as a frozen report."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from gridsvc.coverage._data import load_scope, resolve_scope
from gridsvc.coverage.frames import ScopeData
from gridsvc.coverage.metrics import COUNT_COLUMNS, enrich, level_table, load_distribution
from gridsvc.coverage.reach import plain
from gridsvc.settings import Settings


@dataclass(frozen=True)
class CoverageReport:
    """Coverage of a scope: a summary and one table per level.

    Attributes
    ----------
    scope
        What was asked for: ``level`` (all/street/community), ``code`` and ``name``.
    summary
        The figures of the whole scope (see :attr:`communities` for the columns).
    streets, communities, grids, buildings
        One row per unit with its code: ``households``, ``paired``, ``paired_share``,
        ``reach_<m>`` (share of households within each life circle of a Red Station, measured
        as :attr:`distance_metric` says),
        ``members``, ``eligible``, ``active``, ``reserve``, ``without_cadre``, ``load_mean`` /
        ``load_min`` / ``load_max`` and ``loads_below_min`` / ``loads_above_max`` (households
        per active member against each member's range, resolved as the pairing resolves it:
        :mod:`gridsvc.load_ranges`), ``pairs``, ``distance_mean_m``, ``distance_p95_m``,
        ``distance_max_m``, ``same_building_share``, ``same_grid_share``; streets and
        communities add ``cadres`` and their loads (members per cadre, against each cadre's
        range).
    load_distribution
        ``kind``, ``load``, ``count``: households per active member and members per cadre.
    pairs_available
        False when no pairing plan exists yet (every household counts as unpaired).
    distance_metric
        ``network`` when reach was walked along the roads loaded around the scope (off-road
        access included), ``straight`` otherwise (``GRIDSVC_REACH_METRIC``).
    network
        For ``network``: ``snap_m``, ``segments`` and ``off_network`` (households, residential
        buildings and stations farther than ``snap_m`` from every road: out of reach).
    timings
        Seconds: ``load`` (database), ``compute`` and ``total``.
    """

    scope: Mapping[str, Any]
    summary: Mapping[str, Any]
    streets: pd.DataFrame
    communities: pd.DataFrame
    grids: pd.DataFrame
    buildings: pd.DataFrame
    load_distribution: pd.DataFrame
    pairs_available: bool
    distance_metric: str = "straight"
    network: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self, *, buildings: bool = False) -> dict[str, Any]:
        """JSON-ready dict (NaN → None); building rows only when asked (they can be many)."""
        body: dict[str, Any] = {
            "scope": dict(self.scope),
            "summary": _clean(dict(self.summary)),
            "pairs_available": self.pairs_available,
            "distance_metric": self.distance_metric,
            "network": plain(self.network),
            "streets": _records(self.streets),
            "communities": _records(self.communities),
            "grids": _records(self.grids),
            "load_distribution": _records(self.load_distribution),
            "timings": dict(self.timings),
        }
        if buildings:
            body["buildings"] = _records(self.buildings)
        return body


def compute_coverage(
    conn: Connection,
    *,
    street_code: str | None = None,
    community_code: str | None = None,
    settings: Settings,
) -> CoverageReport:
    """Coverage of a street, a community, or everything (neither code given).

    Raises
    ------
    NotFound
        When the code names no street or community.
    """
    t0 = time.perf_counter()
    scope = resolve_scope(conn, street_code=street_code, community_code=community_code)
    data = load_scope(conn, scope, settings=settings)
    t1 = time.perf_counter()
    report = coverage_from_frames(data, settings=settings)
    t2 = time.perf_counter()
    timings = {"load": t1 - t0, "compute": t2 - t1, "total": t2 - t0}
    return CoverageReport(**{**report.__dict__, "timings": MappingProxyType(timings)})


def coverage_from_frames(data: ScopeData, *, settings: Settings) -> CoverageReport:
    """The pure part of :func:`compute_coverage`: figures from already loaded frames."""
    circles = tuple(settings.life_circles_m)
    e = enrich(data, circles=circles, settings=settings)
    scope_row = level_table(e, "scope", circles=circles)
    tables = {
        level: level_table(e, level, circles=circles)
        for level in ("street", "community", "grid", "building")
    }
    names = _names(data)
    tables = {level: _label(t, names[level]) for level, t in tables.items()}
    summary = {c: scope_row[c].iloc[0] for c in scope_row.columns} if len(scope_row) else {}
    return CoverageReport(
        scope=MappingProxyType(data.scope.to_dict()),
        summary=MappingProxyType(_clean(summary)),
        streets=tables["street"],
        communities=tables["community"],
        grids=tables["grid"],
        buildings=tables["building"],
        load_distribution=load_distribution(e),
        pairs_available=data.pairs_available,
        distance_metric=e.reach.metric,
        network=e.reach.network,
    )


def _names(data: ScopeData) -> dict[str, pd.DataFrame]:
    """Code (and name) columns to put in front of each level's rows."""
    comm = data.communities
    streets = comm.drop_duplicates("street_id").set_index("street_id")[["street_code"]]
    return {
        "street": streets.rename(columns={"street_code": "code"}),
        "community": comm.set_index("community_id")[["code", "name"]],
        "grid": data.grids.set_index("grid_id")[["code"]].join(
            data.grids.set_index("grid_id")["community_id"]
        ),
        "building": data.buildings.set_index("building_id")[["code", "kind", "grid_id"]],
    }


def _label(table: pd.DataFrame, names: pd.DataFrame) -> pd.DataFrame:
    """Put the units' codes in front; units with no row at all get zero counts."""
    out = names.join(table, how="left")
    counts = [c for c in out.columns if c in COUNT_COLUMNS]
    out[counts] = out[counts].fillna(0).astype(int)
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    flat = frame.reset_index() if frame.index.name else frame
    return [_clean(r) for r in flat.to_dict(orient="records")]


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if hasattr(v, "item"):
            v = v.item()
        out[str(k)] = None if isinstance(v, float) and math.isnan(v) else v
    return out
