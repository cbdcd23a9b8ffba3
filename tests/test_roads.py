"""Roads against a real PostGIS: import, walking reach in coverage, blind spots and siting.

The district (metres east/north of a point in Kunming, UTM 48N) has a river between two bank
roads (y = 0 and y = 100, x 0-1,000) with one footbridge at x = 400::

    BN res (0,115): HN1 HN2        north bank road ──────────────────────
                                    ~~~~~~~~~~~~~~~ river ~~~~~~ bridge x=400
    station S (0,-5)                south bank road ──────────────────────
         BS res (200,-20): HS1
                                        BF res (600,-350): HF  (350 m from any road)

Straight, S reaches BN within 300 m (~120 m); on foot it is ~920 m (400 m along the bank, the
bridge, 400 m back). BF is more than 200 m (GRIDSVC_ROAD_SNAP_M) from every road: off the
network.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import Connection, text

from geodata.export import Scope, export_layer
from geodata.importer import import_file
from geodata.load import load_layer
from geodata.projection import to_lonlat, to_metres
from gridsvc.coverage import compute_coverage, find_blindspots, load_suggestions, suggest_sites
from gridsvc.db import make_engine
from gridsvc.errors import InfeasibleSettings, InputRejected

EPSG = 32648
X0, Y0, _ = to_metres([102.80], [25.10], epsg=EPSG)
STREET, COMMUNITY, GRID = "530102801", "530102801001", "530102801001001"


def _wgs84(geoms: list) -> list:
    """Metre geometries around the origin → WGS84."""

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_lonlat(xy[:, 0] + X0[0], xy[:, 1] + Y0[0], epsg=EPSG))

    return list(shapely.transform(np.asarray(geoms, dtype=object), move))


def _frame(rows: list[dict], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=_wgs84(geoms), crs=4326)


def _load(conn: Connection, layer: str, rows: list[dict], geoms: list) -> None:
    result = load_layer(conn, layer, _frame(rows, geoms))
    assert not result.rejects, result.rejects


ROADS = {
    "RD-S": shapely.LineString([(0, 0), (1000, 0)]),
    "RD-N": shapely.MultiLineString([[(0, 100), (500, 100)], [(500, 100), (1000, 100)]]),
    "RD-B": shapely.LineString([(400, 0), (400, 100)]),
}


@pytest.fixture
def district(conn: Connection) -> Connection:
    return _district(conn)


def _district(conn: Connection) -> Connection:
    """Street, community, grid, buildings, households and the station (no roads)."""
    area = shapely.box(-200, -600, 1200, 400)
    _load(conn, "streets", [{"code": STREET, "name": "滨河街道"}], [area])
    _load(
        conn,
        "communities",
        [{"code": COMMUNITY, "name": "滨河社区", "street_code": STREET}],
        [area],
    )
    _load(conn, "grids", [{"code": GRID, "name": "一网格", "community_code": COMMUNITY}], [area])
    buildings = {"BN": (0, 115), "BS": (200, -20), "BF": (600, -350)}
    _load(
        conn,
        "buildings",
        [{"code": c, "kind": "residential"} for c in buildings],
        [shapely.box(x - 5, y - 5, x + 5, y + 5) for x, y in buildings.values()],
    )
    homes = {"HN1": ("BN", 0, 112), "HN2": ("BN", 1, 113), "HS1": ("BS", 200, -20)}
    homes["HF"] = ("BF", 600, -350)
    _load(
        conn,
        "households",
        [{"code": c, "building_code": b} for c, (b, _, _) in homes.items()],
        [shapely.Point(x, y) for _, x, y in homes.values()],
    )
    _load(conn, "stations", [{"code": "S"}], [shapely.Point(0, -5)])
    return conn


def _roads(conn: Connection) -> None:
    rows = [{"code": c, "street_code": STREET} for c in ROADS]
    _load(conn, "roads", rows, list(ROADS.values()))


def _geojson(path, features: list[tuple[dict, object]]) -> None:
    body = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)}
            for p, g in features
        ],
    }
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")


def test_import_roads_all_or_nothing_then_skip_invalid(district, settings, tmp_path):
    kinds = {"RD-S": "支路", "RD-N": None, "RD-B": "人行道"}
    good = [({"code": c, "kind": kinds[c]}, g) for c, g in ROADS.items()]
    dot = shapely.LineString([(700, 0), (700, 0)])
    square = shapely.box(0, 0, 10, 10)
    features = [*good, ({"code": "RD-X"}, dot), ({"code": "RD-P"}, square)]
    path = tmp_path / "roads.geojson"
    _geojson(path, [(p, _wgs84([g])[0]) for p, g in features])
    with pytest.raises(InputRejected) as bad:
        import_file(district, "roads", path, settings=settings)
    reasons = {r.record: r.reason for r in bad.value.rejects}
    assert set(reasons) == {4, 5}
    assert reasons[4].startswith("invalid line (Too few points")
    assert reasons[5] == "wrong geometry type: expected MultiLineString, got Polygon"
    assert district.scalar(text("SELECT count(*) FROM roads")) == 0
    loaded = import_file(district, "roads", path, settings=settings, skip_invalid=True)
    assert (loaded.inserted, len(loaded.rejects)) == (3, 2)
    rows = district.execute(
        text(
            "SELECT r.code, r.kind, s.code AS street, ST_NumGeometries(r.geom) AS parts, "
            "GeometryType(r.geom) AS type FROM roads r LEFT JOIN streets s ON s.id = r.street_id "
            "ORDER BY r.code"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("RD-B", "footway", STREET, 1, "MULTILINESTRING"),
        ("RD-N", None, STREET, 2, "MULTILINESTRING"),
        ("RD-S", "branch", STREET, 1, "MULTILINESTRING"),
    ]  # street derived by location; 支路 → branch, 人行道 → footway
    again = import_file(district, "roads", path, settings=settings, skip_invalid=True)
    assert (again.inserted, again.updated) == (0, 3)
    scope = Scope(community_code=COMMUNITY)  # roads belong to streets: the community's street
    out = export_layer(district, "roads", tmp_path / "out.geojson", scope=scope)
    back = gpd.read_file(out.path)
    assert sorted(back["code"]) == ["RD-B", "RD-N", "RD-S"]
    assert set(back.geom_type) == {"MultiLineString"}


def test_reach_and_station_gaps_with_and_without_roads(district, settings):
    before = compute_coverage(district, community_code=COMMUNITY, settings=settings)
    assert before.distance_metric == "straight" and dict(before.network) == {}
    s = before.summary
    assert (s["reach_300"], s["reach_500"], s["reach_1000"]) == (0.75, 0.75, 1.0)
    gaps = find_blindspots(
        district, community_code=COMMUNITY, kinds=["station_gaps"], settings=settings
    )
    assert gaps["station_gaps"]["code"].tolist() == ["BF"]
    with pytest.raises(InfeasibleSettings, match="no walkable road"):
        compute_coverage(
            district, community_code=COMMUNITY, settings=settings.with_(reach_metric="network")
        )

    _roads(district)
    after = compute_coverage(district, community_code=COMMUNITY, settings=settings)
    assert after.distance_metric == "network"
    assert after.network["off_network"] == {"households": 1, "buildings": 1, "stations": 0}
    s = after.summary
    assert (s["reach_300"], s["reach_500"], s["reach_1000"]) == (0.25, 0.25, 0.75)
    body = after.to_dict()
    assert body["distance_metric"] == "network" and body["network"]["snap_m"] == 200

    spots = find_blindspots(
        district, community_code=COMMUNITY, kinds=["station_gaps"], settings=settings
    )
    gaps = spots["station_gaps"].set_index("code")
    assert spots.distance_metric == "network"
    assert gaps.index.tolist() == ["BF", "BN"]  # BF misses all three circles, BN two
    assert gaps.loc["BN", "nearest_station_m"] == pytest.approx(5 + 400 + 100 + 400 + 15, abs=1)
    assert not gaps.loc["BN", "outside_1000"] and gaps.loc["BN", "outside_500"]
    assert gaps.loc["BF", "off_network"] and not gaps.loc["BN", "off_network"]
    assert gaps.loc["BN", "reason"].startswith("步行至最近红色驿站 92")
    assert gaps.loc["BF", "reason"].startswith("距任何道路超过 200 m")
    assert dict(spots.station_gap_counts[300]) == {"buildings": 2, "households": 3}
    assert spots.to_dict()["distance_metric"] == "network"

    forced = settings.with_(reach_metric="straight", lang="en")
    straight = find_blindspots(
        district, community_code=COMMUNITY, kinds=["station_gaps"], settings=forced
    )
    assert straight.distance_metric == "straight"
    assert straight["station_gaps"]["code"].tolist() == ["BF"]
    assert "off_network" not in straight["station_gaps"].columns
    wider = compute_coverage(
        district, community_code=COMMUNITY, settings=settings.with_(road_snap_m=400)
    )
    assert wider.network["off_network"]["households"] == 0
    assert wider.summary["reach_1000"] == 1.0  # HF now walks 350 + 600 + 5 = 955 m


def test_siting_walks_when_roads_are_loaded(district):
    """P1 is 50 m from HF (which S does not reach) but 300 m from any road; P2 is on the north
    bank by BN. Straight, S already reaches BN, so P1 is the best new site; on foot S reaches
    only BS, P2 reaches BN's two households and P1 nobody."""
    points = _frame(
        [{"name": "P1"}, {"name": "P2"}], [shapely.Point(600, -300), shapely.Point(100, 105)]
    )
    kwargs = {"community_code": COMMUNITY, "radius_m": 300, "k": 1, "candidates": points}
    straight = suggest_sites(district, **kwargs)
    assert straight.distance_metric == "straight"
    chosen = straight.sites.to_crs(EPSG).geometry
    assert chosen.x.round().tolist() == [round(X0[0] + 600)]
    res = straight.result
    assert (res.covered_count - int(res.new_count.sum()), res.covered_count) == (3, 4)

    _roads(district)
    walked = suggest_sites(district, **kwargs)
    assert walked.distance_metric == "network"
    assert walked.sites.to_crs(EPSG).geometry.x.round().tolist() == [round(X0[0] + 100)]
    res = walked.result
    assert res.new_count.tolist() == [2] and res.covered_count == 3  # HF stays out of reach
    assert walked.network["off_network"] == {"households": 1, "candidates": 1, "stations": 0}
    body = walked.to_dict()
    assert (
        body["distance_metric"] == "network" and body["network"]["off_network"]["candidates"] == 1
    )
    stored = load_suggestions(district, walked.run_id)
    assert stored["distance_metric"].tolist() == ["network"]
    assert load_suggestions(district, straight.run_id)["distance_metric"].tolist() == ["straight"]


def test_demo_street_walks_at_least_the_straight_line(conn, settings):
    """On the demo's generated roads every walk is at least the straight line, nobody is off the
    network, and reach shrinks accordingly."""
    from geodata.demo import load_demo

    counts = load_demo(conn, seed=1)
    assert counts["roads"] > 300
    street = "530102001"
    walked = compute_coverage(conn, street_code=street, settings=settings)
    straight = compute_coverage(
        conn, street_code=street, settings=settings.with_(reach_metric="straight")
    )
    assert walked.distance_metric == "network" and straight.distance_metric == "straight"
    assert dict(walked.network["off_network"]) == {"households": 0, "buildings": 0, "stations": 0}
    for r in settings.life_circles_m:
        assert walked.summary[f"reach_{r}"] <= straight.summary[f"reach_{r}"]
    assert walked.summary["reach_300"] < straight.summary["reach_300"]
    spots = find_blindspots(conn, street_code=street, kinds=["station_gaps"], settings=settings)
    flat = find_blindspots(
        conn,
        street_code=street,
        kinds=["station_gaps"],
        settings=settings.with_(reach_metric="straight"),
    )
    far = spots["station_gaps"].set_index("code")["nearest_station_m"]
    near = flat["station_gaps"].set_index("code")["nearest_station_m"]
    assert set(near.index) <= set(far.index)
    assert (far.reindex(near.index) >= near - 1e-6).all()


def test_cli_import_roads_then_walked_coverage_and_siting(scratch_url, tmp_path):
    """The commands on a committed copy of the district (removed afterwards)."""
    from click.testing import CliRunner

    from gridsvc.cli import cli

    engine = make_engine(scratch_url)
    with engine.begin() as conn:
        _district(conn)
    path = tmp_path / "roads.geojson"
    _geojson(path, [({"code": c}, _wgs84([g])[0]) for c, g in ROADS.items()])

    def run(*args: str, **env: str):
        env = {"GRIDSVC_DATABASE_URL": scratch_url, "GRIDSVC_LANG": "en", **env}
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    try:
        assert run("import", "roads", str(path)).exit_code == 0
        table = run("coverage", "--community", COMMUNITY)
        assert table.exit_code == 0
        assert "distance: walked along roads" in table.output and "1 households" in table.output
        spots = json.loads(
            run("blindspots", "--community", COMMUNITY, "--kind", "station_gaps").output
        )
        assert spots["distance_metric"] == "network"
        assert spots["station_gap_counts"]["300"] == {"buildings": 2, "households": 3}
        forced = run(
            "blindspots", "--community", COMMUNITY, "--kind", "station_gaps",
            GRIDSVC_REACH_METRIC="straight",
        )  # fmt: skip
        assert json.loads(forced.output)["distance_metric"] == "straight"
        args = ["sites", "suggest", "--community", COMMUNITY, "--k", "1", "--radius", "300"]
        suggested = run(*args, "--candidates", "lattice", "--format", "json")
        assert json.loads(suggested.output)["distance_metric"] == "network"
        assert "distance: walked" in run(*args, "--candidates", "lattice").output
    finally:
        _remove_district(engine)
        engine.dispose()


def _remove_district(engine) -> None:
    with engine.begin() as conn:
        for sql in (
            "DELETE FROM households WHERE code IN ('HN1', 'HN2', 'HS1', 'HF')",
            "DELETE FROM buildings WHERE code IN ('BN', 'BS', 'BF')",
            "DELETE FROM stations WHERE code = 'S'",
            "DELETE FROM roads WHERE code LIKE 'RD-%'",
            f"DELETE FROM streets WHERE code = '{STREET}'",  # communities, grids, runs cascade
        ):
            conn.execute(text(sql))
