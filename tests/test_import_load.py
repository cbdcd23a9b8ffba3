"""The importer end to end: all-or-nothing, --skip-invalid, re-import, derivation, repair, caps."""

import csv
import json
import time

import numpy as np
import pytest
import shapely
from io_helpers import (
    COMMUNITY,
    GRID_EAST,
    count,
    feature,
    make_district,
    point,
    scalar,
    write_csv,
    write_geojson,
)
from shapely import Polygon, box
from sqlalchemy import text

from geodata import readers
from geodata.importer import import_file
from geodata.readers import json_depth
from gridsvc.errors import InputRejected

HEADER = ["code", "name", "lon", "lat", "size"]


@pytest.fixture
def district(conn):
    return make_district(conn)


def run(conn, settings, layer, path, **options):
    return import_file(conn, layer, path, settings=settings, **options)


def table(conn):
    rows = conn.execute(
        text("SELECT code, name, size, ST_AsText(geom) FROM households ORDER BY code")
    )
    return [tuple(r) for r in rows]


def last_log(conn):
    row = conn.execute(
        text(
            "SELECT layer, source, inserted, updated, rejected, repaired FROM import_log "
            "ORDER BY id DESC LIMIT 1"
        )
    ).one()
    return tuple(row)


def test_all_or_nothing_leaves_the_data_unchanged(district, settings, tmp_path):
    good = write_csv(tmp_path / "good.csv", HEADER, [["H1", "张三", 114.315, 30.585, 2]])
    run(district, settings, "households", good, crs="4326")
    before = table(district)
    rows = [
        ["H1", "张三丰", 114.316, 30.586, 3],
        ["H2", "李四", 114.316, 30.586, 1],
        ["H3", "王五", 0, 0, 1],
    ]
    bad = write_csv(tmp_path / "bad.csv", HEADER, rows)
    with pytest.raises(InputRejected) as err:
        run(district, settings, "households", bad, crs="4326")
    assert [(r.record, r.field) for r in err.value.rejects] == [(3, "geometry")]
    assert table(district) == before
    assert last_log(district) == ("households", "bad.csv", 0, 0, 1, 0)


def test_unknown_parent_rolls_back_the_whole_load(district, settings, tmp_path):
    rows = [["H1", 114.31, 30.585, "B1"], ["H2", 114.31, 30.585, "NOPE"]]
    path = write_csv(tmp_path / "h.csv", ["code", "lon", "lat", "building_code"], rows)
    with pytest.raises(InputRejected):
        run(district, settings, "households", path, crs="4326")
    assert count(district, "households") == 0
    assert scalar(district, "SELECT to_regclass('pg_temp._gridsvc_stage') IS NULL")


def test_skip_invalid_imports_the_rest_and_writes_rejects(district, settings, tmp_path):
    rows = [
        ["H1", "张三", 114.315, 30.585, 2],
        ["H2", "李四", 30.585, 114.315, 1],
        ["H3", "王五", 114.305, 30.585, "many"],
        ["H4", "赵六", 114.305, 30.586, 4],
    ]
    path = write_csv(tmp_path / "h.csv", HEADER, rows)
    result = run(district, settings, "households", path, crs="4326", skip_invalid=True)
    assert (result.inserted, result.updated) == (2, 0)
    assert [c for c, *_ in table(district)] == ["H1", "H4"]
    assert result.rejects_path == tmp_path / "h.csv.rejects.csv"
    with result.rejects_path.open(encoding="utf-8-sig") as handle:
        written = list(csv.DictReader(handle))
    assert [(w["record"], w["field"]) for w in written] == [("2", "geometry"), ("3", "size")]
    assert written[0]["source"] == "h.csv" and "swapped" in written[0]["reason"]
    assert last_log(district) == ("households", "h.csv", 2, 0, 2, 0)


def test_skip_invalid_also_skips_unknown_parents(district, settings, tmp_path):
    rows = [["H1", 114.31, 30.585, "B1"], ["H2", 114.31, 30.585, "NOPE"]]
    path = write_csv(tmp_path / "h.csv", ["code", "lon", "lat", "building_code"], rows)
    out = tmp_path / "rejects.csv"
    result = run(
        district, settings, "households", path, crs="4326", skip_invalid=True, rejects_path=out
    )
    assert result.inserted == 1 and result.rejects_path == out
    assert "unknown building code" in out.read_text(encoding="utf-8-sig")


def test_reimport_updates_by_code_and_duplicates_nothing(district, settings, tmp_path):
    rows = [["H1", "张三", 114.315, 30.585, 2], ["H2", "李四", 114.305, 30.585, 1]]
    path = write_csv(tmp_path / "h.csv", HEADER, rows)
    first = run(district, settings, "households", path, crs="4326")
    rows[0][1], rows[0][4] = "张三丰", 5
    rows[1][2] = 114.316  # moved from the west grid to the east grid
    path = write_csv(tmp_path / "h.csv", HEADER, rows)
    again = run(district, settings, "households", path, crs="4326")
    assert (first.inserted, first.updated, again.inserted, again.updated) == (2, 0, 0, 2)
    assert count(district, "households") == 2
    assert scalar(district, "SELECT name || size FROM households WHERE code = 'H1'") == "张三丰5"
    grid = scalar(
        district,
        "SELECT g.code FROM households h JOIN grids g ON g.id = h.grid_id WHERE h.code = 'H2'",
    )
    assert grid == GRID_EAST


def test_reimport_without_a_column_keeps_its_values(district, settings, tmp_path):
    rows = [["H1", "张三", 114.315, 30.585, 4]]
    run(district, settings, "households", write_csv(tmp_path / "a.csv", HEADER, rows), crs="4326")
    path = write_csv(
        tmp_path / "b.csv", ["code", "name", "lon", "lat"], [["H1", "张三", 114.315, 30.585]]
    )
    run(district, settings, "households", path, crs="4326")
    assert scalar(district, "SELECT size FROM households WHERE code = 'H1'") == 4


def test_building_grid_and_community_derived_by_location(district, settings, tmp_path):
    rows = [["H1", 114.3125, 30.5825], ["H2", 114.305, 30.585]]
    path = write_csv(tmp_path / "h.csv", ["code", "lon", "lat"], rows)
    run(district, settings, "households", path, crs="4326")
    rows = district.execute(
        text(
            "SELECT h.code, b.code, g.code, c.code FROM households h "
            "LEFT JOIN buildings b ON b.id = h.building_id LEFT JOIN grids g ON g.id = h.grid_id "
            "LEFT JOIN communities c ON c.id = h.community_id ORDER BY h.code"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("H1", "B1", GRID_EAST, COMMUNITY),
        ("H2", None, "420106001001001", COMMUNITY),
    ]


def test_bow_tie_polygon_is_repaired_and_reported(district, settings, tmp_path):
    bow_tie = Polygon([(114.301, 30.581), (114.303, 30.583), (114.303, 30.581), (114.301, 30.583)])
    assert not bow_tie.is_valid
    features = [
        feature(
            {"code": "B2", "name": "2号楼"}, box(114.304, 30.584, 114.305, 30.585).__geo_interface__
        ),
        feature({"code": "B3", "name": "领结楼"}, bow_tie.__geo_interface__),
    ]
    path = write_geojson(tmp_path / "b.geojson", json.loads(json.dumps(features)))
    result = run(district, settings, "buildings", path)
    assert result.rejects == ()
    assert [(r.record, r.field) for r in result.repairs] == [(2, "geometry")]
    assert result.repairs[0].reason.startswith("invalid polygon repaired (Self-intersection")
    valid, area = district.execute(
        text("SELECT ST_IsValid(geom), ST_Area(geom) FROM buildings WHERE code = 'B3'")
    ).one()
    repaired = shapely.make_valid(bow_tie, method="structure")
    assert valid and area > 0 and area == pytest.approx(repaired.area, rel=1e-6)
    assert last_log(district)[-1] == 1


def ring(n, *, bow_tie=False):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = np.where(np.arange(n) % 2 == 0, 0.001, 0.0004) if bow_tie else 0.001
    xs, ys = 114.31 + radius * np.cos(angles), 30.585 + radius * np.sin(angles)
    if bow_tie:  # zig-zag across the centre: self-intersections everywhere
        xs[::3], ys[::3] = xs[::3][::-1], ys[::3][::-1]
    coords = np.column_stack([xs, ys])
    return [*coords.tolist(), coords[0].tolist()]


def test_vertex_cap_rejects_a_20000_vertex_polygon_before_repair(district, settings, tmp_path):
    big = {"type": "Polygon", "coordinates": [ring(20_000, bow_tie=True)]}
    assert not shapely.from_geojson(json.dumps(big)).is_valid
    path = write_geojson(tmp_path / "big.geojson", [feature({"code": "BIG"}, big)])
    started = time.perf_counter()
    with pytest.raises(InputRejected) as err:
        run(district, settings, "buildings", path)
    assert time.perf_counter() - started < 1.0
    reject = err.value.rejects[0]
    assert (reject.record, reject.field) == (1, "geometry")
    assert reject.reason == "20001 vertices, more than the cap of 10000"


def test_vertex_cap_on_wkt_cells_before_parsing(district, settings, tmp_path):
    wkt = "POLYGON ((" + ", ".join(f"{x} {y}" for x, y in ring(20_000)) + "))"
    path = write_csv(tmp_path / "b.csv", ["code", "wkt"], [["BIG", wkt]])
    with pytest.raises(InputRejected) as err:
        run(district, settings, "buildings", path, crs="4326")
    assert (err.value.rejects[0].record, err.value.rejects[0].field) == (1, "wkt")
    assert "more than the cap of 10000" in err.value.rejects[0].reason


def nested_collection(depth):
    geometry = {"type": "Point", "coordinates": [114.31, 30.585]}
    for _ in range(depth):
        geometry = {"type": "GeometryCollection", "geometries": [geometry]}
    return geometry


def test_nesting_cap_names_the_feature(district, settings, tmp_path):
    features = [
        feature({"code": "S1"}, point(114.31, 30.585)),
        feature({"code": "S2"}, nested_collection(40)),
    ]
    path = write_geojson(tmp_path / "deep.geojson", features)
    with pytest.raises(InputRejected) as err:
        run(district, settings, "stations", path)
    reject = err.value.rejects[0]
    assert (reject.record, reject.field) == (2, "geometry")
    assert "more than the cap of 32" in reject.reason


def test_nesting_cap_survives_a_hundred_thousand_levels(district, settings, tmp_path):
    path = tmp_path / "bomb.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )
    with pytest.raises(InputRejected) as err:
        run(district, settings, "stations", path)
    assert "100001 deep" in err.value.rejects[0].reason


@pytest.mark.parametrize("chunk", [1 << 24, 5])
def test_json_depth_ignores_brackets_in_strings(monkeypatch, chunk):
    monkeypatch.setattr(readers, "_CHUNK", chunk)  # also across chunk boundaries
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, [2]]}') == (3, None)
    assert json_depth(b'{"a": "\\"[[[["}') == (1, None)  # escaped quote stays in the string
    assert json_depth(b'{"a": "x\\\\", "b": [[1]]}') == (3, None)  # escaped backslash ends it
    collection = b'{"type": "FeatureCollection", "features": [{"g": [1]}, {"g": [[[[1]]]]}]}'
    assert json_depth(collection) == (7, 2)


def test_wkt_nesting_cap(district, settings, tmp_path):
    wkt = "GEOMETRYCOLLECTION (" * 40 + "POINT (114.31 30.585)" + ")" * 40
    path = write_csv(tmp_path / "s.csv", ["code", "wkt"], [["S1", wkt]])
    with pytest.raises(InputRejected) as err:
        run(district, settings, "stations", path, crs="4326")
    assert err.value.rejects[0].reason == "WKT nested 41 deep, more than the cap of 32"


def test_file_size_cap(district, settings, tmp_path):
    path = write_csv(tmp_path / "h.csv", HEADER, [["H1", "张三", 114.315, 30.585, 2]] * 200)
    with pytest.raises(InputRejected) as err:
        run(district, settings.with_(max_import_mb=0.001), "households", path, crs="4326")
    assert "MB cap" in err.value.rejects[0].reason


def test_unknown_file_type(district, settings, tmp_path):
    path = tmp_path / "h.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputRejected) as err:
        run(district, settings, "households", path)
    assert "unknown file type '.xls'" in err.value.rejects[0].reason


def test_kunming_real_footprints_import(conn, settings, data_dir):
    """140 OpenStreetMap footprints (ODbL, see tests/data/kunming/README.md) as buildings."""
    path = data_dir / "kunming" / "buildings.geojson"
    result = run(conn, settings, "buildings", path, columns={"code": "id"})
    assert result.inserted == 140 and result.rejects == ()
    assert {"community", "height", "levels", "building"} <= set(result.ignored_columns)
    area = scalar(
        conn, "SELECT sum(ST_Area(geom::geography)) FROM buildings WHERE code ~ '^[0-9]+$'"
    )
    assert 80_000 < area < 400_000
    again = run(conn, settings, "buildings", path, columns={"code": "id"})
    assert (again.inserted, again.updated) == (0, 140)


def test_kunming_grids_are_derived_for_the_footprints(conn, settings, data_dir, tmp_path):
    path = data_dir / "kunming" / "buildings.geojson"
    area = shapely.from_geojson(path.read_text(encoding="utf-8"))
    extent = box(*shapely.bounds(area)).buffer(0.001)
    write_csv(tmp_path / "s.csv", ["code", "name"], [["530102001", "金江街道"]])
    run(conn, settings, "streets", tmp_path / "s.csv")
    write_csv(
        tmp_path / "c.csv",
        ["code", "name", "street_code", "wkt"],
        [["530102001001", "金江社区", "530102001", extent.wkt]],
    )
    run(conn, settings, "communities", tmp_path / "c.csv", crs="EPSG:4490")
    west, east = (
        box(extent.bounds[0], extent.bounds[1], extent.centroid.x, extent.bounds[3]),
        box(extent.centroid.x, extent.bounds[1], extent.bounds[2], extent.bounds[3]),
    )
    rows = [
        ["530102001001001", "西网格", "530102001001", west.wkt],
        ["530102001001002", "东网格", "530102001001", east.wkt],
    ]
    write_csv(tmp_path / "g.csv", ["code", "name", "community_code", "wkt"], rows)
    run(conn, settings, "grids", tmp_path / "g.csv", crs="EPSG:4490")
    run(conn, settings, "buildings", path, columns={"code": "id"})
    counts = conn.execute(
        text(
            "SELECT count(*), count(b.grid_id), count(b.community_id) FROM buildings b "
            "JOIN grids g ON g.id = b.grid_id WHERE g.code LIKE '530102001001%'"
        )
    ).one()
    assert tuple(counts) == (140, 140, 140)


def test_partial_update_changes_only_the_given_columns(district, settings, tmp_path):
    """``code,available`` marks members unavailable: every other column, the geometry and the
    parents are kept; a code not stored yet is rejected (it would need every column)."""
    header = ["code", "name", "lon", "lat"]
    rows = [["M1", "李四", 114.315, 30.585], ["M2", "王五", 114.316, 30.586]]
    run(district, settings, "members", write_csv(tmp_path / "m.csv", header, rows), crs="4326")
    before = district.execute(
        text("SELECT code, name, kind, ST_AsText(geom), community_id FROM members ORDER BY code")
    ).all()
    path = write_csv(tmp_path / "u.csv", ["code", "available"], [["M1", "false"]])
    result = run(district, settings, "members", path)
    assert (result.inserted, result.updated, result.rejects) == (0, 1, ())
    after = district.execute(
        text("SELECT code, name, kind, ST_AsText(geom), community_id FROM members ORDER BY code")
    ).all()
    assert after == before
    assert scalar(district, "SELECT available FROM members WHERE code = 'M1'") is False
    assert scalar(district, "SELECT available FROM members WHERE code = 'M2'") is True
    mixed = write_csv(tmp_path / "x.csv", ["code", "available"], [["M2", "false"], ["M9", "1"]])
    with pytest.raises(InputRejected) as refused:
        run(district, settings, "members", mixed)
    (reject,) = refused.value.rejects  # M9 is new: it would need a place
    assert (reject.record, reject.field) == (2, "geometry") and "building_code" in reject.reason
    assert scalar(district, "SELECT available FROM members WHERE code = 'M2'") is True
    done = run(district, settings, "members", mixed, skip_invalid=True)
    assert done.updated == 1 and scalar(district, "SELECT count(*) FROM members") == 2
