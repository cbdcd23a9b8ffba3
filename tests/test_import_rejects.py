"""Bad input: every reject names the file, the record, the field and the reason; nothing loads."""

import json

import pytest
from io_helpers import (
    COMMUNITY,
    STREET,
    count,
    feature,
    make_district,
    point,
    write_csv,
    write_geojson,
)
from shapely import box

from geodata.importer import import_file
from gridsvc.errors import InputRejected

TABLES = ("streets", "communities", "grids", "buildings", "households", "members", "cadres")


@pytest.fixture
def district(conn):
    return make_district(conn)


def snapshot(conn):
    return {t: count(conn, t) for t in TABLES}


def rejected(conn, settings, layer, path, **options):
    """Import ``path`` expecting rejection; return (record, field, reason) of every reject."""
    before = snapshot(conn)
    with pytest.raises(InputRejected) as err:
        import_file(conn, layer, path, settings=settings, **options)
    assert snapshot(conn) == before, "a rejected file changed the database"
    assert all(r.source == path.name for r in err.value.rejects)
    return [(r.record, r.field, r.reason) for r in err.value.rejects]


def only(rejects, record, field):
    """The reason of the single reject of ``record``; asserts its field."""
    mine = [r for r in rejects if r[0] == record]
    assert len(mine) == 1, rejects
    assert mine[0][1] == field, rejects
    return mine[0][2]


def stations(tmp_path, geometries, name="s.geojson"):
    features = [feature({"code": f"S{i}", "name": "驿站"}, g) for i, g in enumerate(geometries, 1)]
    return write_geojson(tmp_path / name, features)


GOOD = point(114.305, 30.585)


def test_missing_geometry(district, settings, tmp_path):
    rejects = rejected(district, settings, "stations", stations(tmp_path, [GOOD, None, GOOD]))
    assert only(rejects, 2, "geometry") == "missing geometry"
    assert len(rejects) == 1


def test_empty_geometry(district, settings, tmp_path):
    empty = {"type": "Point", "coordinates": []}
    rejects = rejected(district, settings, "stations", stations(tmp_path, [GOOD, GOOD, empty]))
    assert only(rejects, 3, "geometry") == "empty geometry"


def test_malformed_geometry(district, settings, tmp_path):
    bad = {"type": "Point", "coordinates": "here"}
    rejects = rejected(district, settings, "stations", stations(tmp_path, [bad]))
    assert only(rejects, 1, "geometry").startswith("malformed GeoJSON geometry")


def test_wrong_geometry_type(district, settings, tmp_path):
    polygon = json.loads(json.dumps(box(114.30, 30.58, 114.301, 30.581).__geo_interface__))
    rejects = rejected(district, settings, "stations", stations(tmp_path, [GOOD, polygon]))
    assert only(rejects, 2, "geometry") == "wrong geometry type: expected Point, got Polygon"


def test_outside_china(district, settings, tmp_path):
    rejects = rejected(district, settings, "stations", stations(tmp_path, [point(2.35, 48.85)]))
    assert only(rejects, 1, "geometry").startswith("outside China (lon 73–136, lat 3–54)")


def test_swapped_lon_lat_is_named(district, settings, tmp_path):
    path = write_csv(
        tmp_path / "h.csv", ["code", "lon", "lat"], [["H1", 114.3, 30.58], ["H2", 30.58, 114.3]]
    )
    rejects = rejected(district, settings, "households", path, crs="EPSG:4326")
    assert only(rejects, 2, "geometry").startswith("lon/lat swapped?")
    assert len(rejects) == 1


def test_swapped_in_a_projected_crs_is_outside(district, settings, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["code", "x", "y"], [["H1", 3_385_000, 531_000]])
    rejects = rejected(district, settings, "households", path, crs="EPSG:4547")
    assert "China" in only(rejects, 1, "geometry")


def test_code_format_per_layer(district, settings, tmp_path):
    rows = [
        ["42010600100", "短社区", STREET],
        ["42010600100X", "字母社区", STREET],
        ["420106001002", "好社区", STREET],
    ]
    path = write_csv(tmp_path / "c.csv", ["code", "name", "street_code"], rows)
    rejects = rejected(district, settings, "communities", path)
    assert only(rejects, 1, "code") == "must be 12 digits"
    assert only(rejects, 2, "code") == "must be 12 digits"
    assert len(rejects) == 2


def test_parent_code_format(district, settings, tmp_path):
    path = write_csv(
        tmp_path / "c.csv", ["code", "name", "street_code"], [["420106001002", "社区", "4201"]]
    )
    rejects = rejected(district, settings, "communities", path)
    assert ("street_code", "must be 9 digits") in [(f, r) for _, f, r in rejects]


def test_child_code_must_start_with_parent_code(district, settings, tmp_path):
    wkt = box(114.30, 30.58, 114.305, 30.585).wkt
    rows = [
        ["420106001001003", "三网格", COMMUNITY, wkt],
        ["420106009001004", "错网格", COMMUNITY, wkt],
    ]
    path = write_csv(tmp_path / "g.csv", ["code", "name", "community_code", "wkt"], rows)
    rejects = rejected(district, settings, "grids", path, crs="4326")
    assert only(rejects, 2, "code") == "does not start with its community_code 420106001001"


def test_duplicate_codes_in_the_file(district, settings, tmp_path):
    rows = [["H1", 114.31, 30.58], ["H2", 114.31, 30.58], ["H1", 114.31, 30.58]]
    path = write_csv(tmp_path / "h.csv", ["code", "lon", "lat"], rows)
    rejects = rejected(district, settings, "households", path, crs="4326")
    assert only(rejects, 3, "code") == "duplicate code, first at record 1"


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("kind", "castle", "must be one of residential, commercial, mixed, public"),
        ("floors", "six", "not a whole number"),
        ("floors", "3.5", "not a whole number"),
        ("floors", "0", "must be at least 1"),
        ("floors", "300", "must be at most 200"),
        ("available_site", "maybe", "not a yes/no value (true/false, 1/0, 是/否)"),
    ],
)
def test_malformed_fields(district, settings, tmp_path, column, value, reason):
    wkt = box(114.301, 30.581, 114.302, 30.582).wkt
    rows = [["B7", "7号楼", "", "", "", wkt], ["B8", "8号楼", "", "", "", wkt]]
    header = ["code", "name", "kind", "floors", "available_site", "wkt"]
    rows[1][header.index(column)] = value
    path = write_csv(tmp_path / "b.csv", header, rows)
    rejects = rejected(district, settings, "buildings", path, crs="4326")
    assert rejects == [(2, column, reason)]


def test_required_field_empty(district, settings, tmp_path):
    path = write_csv(
        tmp_path / "s.csv", ["code", "name"], [["420106002", "新街道"], ["420106003", " "]]
    )
    assert rejected(district, settings, "streets", path) == [(2, "name", "required field is empty")]


def test_required_parent_column_missing(district, settings, tmp_path):
    path = write_csv(tmp_path / "c.csv", ["code", "name"], [["420106001009", "社区"]])
    assert rejected(district, settings, "communities", path) == [
        (1, "street_code", "required column missing")
    ]


def test_cadre_level_and_community_must_agree(district, settings, tmp_path):
    header = ["code", "name", "level", "street_code", "community_code", "lon", "lat"]
    rows = [
        ["C1", "赵一", "street", STREET, "", 114.31, 30.585],
        ["C2", "钱二", "street", STREET, COMMUNITY, 114.31, 30.585],
        ["C3", "孙三", "community", STREET, "", 114.31, 30.585],
        ["C4", "李四", "社区", STREET, COMMUNITY, 114.31, 30.585],
        ["C5", "周五", "community", STREET, "420199001001", 114.31, 30.585],
    ]
    path = write_csv(tmp_path / "c.csv", header, rows)
    rejects = rejected(district, settings, "cadres", path, crs="4326")
    assert only(rejects, 2, "community_code") == "a street cadre has no community_code"
    assert only(rejects, 3, "community_code") == "a community cadre needs a community_code"
    assert only(rejects, 5, "community_code") == f"does not start with its street_code {STREET}"
    assert {r[0] for r in rejects} == {2, 3, 5}


def test_min_load_above_max_load(district, settings, tmp_path):
    header = ["code", "lon", "lat", "min_load", "max_load"]
    rows = [["M1", 114.31, 30.585, 15, 25], ["M2", 114.31, 30.585, 30, 20]]
    path = write_csv(tmp_path / "m.csv", header, rows)
    rejects = rejected(district, settings, "members", path, crs="4326")
    assert rejects == [(2, "min_load", "greater than max_load 20")]


def test_unknown_parent_code(district, settings, tmp_path):
    header = ["code", "lon", "lat", "building_code"]
    rows = [["H1", 114.31, 30.585, "B1"], ["H2", 114.31, 30.585, "B404"]]
    path = write_csv(tmp_path / "h.csv", header, rows)
    rejects = rejected(district, settings, "households", path, crs="4326")
    assert rejects == [(2, "building_code", "unknown building code")]


def test_household_without_geometry_or_building(district, settings, tmp_path):
    path = write_csv(
        tmp_path / "h.csv", ["code", "building_code", "lon", "lat"], [["H1", "", "", ""]]
    )
    rejects = rejected(district, settings, "households", path, crs="4326")
    assert rejects == [(1, "geometry", "missing geometry and no building_code to place it")]


def test_malformed_rows(district, settings, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(
        "code,lon,lat\nH1,114.31,30.58\nH2,114.31,30.58,extra,cells\nH3,abc,30.58\nH4,114.31,\n",
        encoding="utf-8",
    )
    rejects = rejected(district, settings, "households", path, crs="4326")
    assert only(rejects, 2, None) == "row has 5 cells, the header 3"
    assert only(rejects, 3, "lon") == "not a number"
    assert only(rejects, 4, "lat") == "empty coordinate"


def test_malformed_wkt(district, settings, tmp_path):
    path = write_csv(
        tmp_path / "h.csv",
        ["code", "wkt"],
        [["H1", "POINT (114.31 30.58)"], ["H2", "POINT (114.31"]],
    )
    rejects = rejected(district, settings, "households", path, crs="4326")
    assert only(rejects, 2, "wkt").startswith("malformed WKT")


def test_masked_values_from_an_export_are_refused(district, settings, tmp_path):
    header = ["code", "name", "phone", "lon", "lat"]
    rows = [
        ["H1", "张*三", "13812341234", 114.31, 30.585],
        ["H2", "李四", "138****1234", 114.31, 30.585],
    ]
    path = write_csv(tmp_path / "h.csv", header, rows)
    rejects = rejected(district, settings, "households", path, crs="4326")
    assert only(rejects, 1, "name").startswith("looks masked")
    assert only(rejects, 2, "phone").startswith("looks masked")


def test_no_code_column(district, settings, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["name", "lon", "lat"], [["张三", 114.31, 30.585]])
    rejects = rejected(district, settings, "households", path, crs="4326")
    assert rejects[0][:2] == (None, "code")


def test_every_reject_of_a_file_is_reported_at_once(district, settings, tmp_path):
    header = ["code", "lon", "lat", "size", "elderly_alone"]
    rows = [
        ["H1", 114.31, 30.585, "x", "maybe"],
        ["", 114.31, 30.585, 1, ""],
        ["H3", 200, 30, 1, ""],
    ]
    path = write_csv(tmp_path / "h.csv", header, rows)
    rejects = rejected(district, settings, "households", path, crs="4326")
    assert [(r, f) for r, f, _ in rejects] == [
        (1, "elderly_alone"),
        (1, "size"),
        (2, "code"),
        (3, "geometry"),
    ]


def test_reject_message_names_file_record_field_and_reason(district, settings, tmp_path):
    path = write_csv(
        tmp_path / "h.csv", ["code", "lon", "lat", "size"], [["H1", 114.31, 30.585, "two"]]
    )
    with pytest.raises(InputRejected) as err:
        import_file(district, "households", path, settings=settings, crs="4326")
    assert (
        str(err.value.rejects[0]) == "h.csv, record 1, field size: not a whole number (value 'two')"
    )
    assert "1 record rejected, nothing imported" in err.value.message
