"""Every input format, text encoding and CRS imports to the same WGS84 records."""

import geopandas as gpd
import numpy as np
import prcoords
import pytest
from io_helpers import (
    BUILDING,
    count,
    feature,
    make_district,
    point,
    run,
    scalar,
    write_csv,
    write_geojson,
    write_xlsx,
    write_zipped_shapefile,
)
from pyproj import Geod, Transformer
from shapely import Point
from sqlalchemy import text

from gridsvc.errors import InputRejected

GEOD = Geod(ellps="WGS84")
#: Three households: two in the east grid (one inside building B1), one in the west grid.
HOUSEHOLDS = [
    ("H1", "张三", 114.3125, 30.5825, 3),
    ("H2", "李小四", 114.3150, 30.5850, 2),
    ("H3", "王五", 114.3050, 30.5850, 1),
]


@pytest.fixture
def district(conn):
    return make_district(conn)


def stored(conn):
    rows = conn.execute(
        text(
            "SELECT h.code, h.name, h.size, ST_X(h.geom), ST_Y(h.geom), g.code, b.code "
            "FROM households h LEFT JOIN grids g ON g.id = h.grid_id "
            "LEFT JOIN buildings b ON b.id = h.building_id ORDER BY h.code"
        )
    ).all()
    return [tuple(r) for r in rows]


def assert_households(conn, tolerance_m=0.01):
    rows = stored(conn)
    assert [r[0] for r in rows] == ["H1", "H2", "H3"]
    assert [r[1] for r in rows] == ["张三", "李小四", "王五"]
    assert [r[2] for r in rows] == [3, 2, 1]
    assert [r[5] for r in rows] == [
        "420106001001002",
        "420106001001002",
        "420106001001001",
    ]
    assert [r[6] for r in rows] == ["B1", None, None]
    for (_, _, _, lon, lat, _, _), (_, _, want_lon, want_lat, _) in zip(
        rows, HOUSEHOLDS, strict=True
    ):
        assert GEOD.inv(lon, lat, want_lon, want_lat)[2] < tolerance_m


def lonlat_rows():
    return [[c, n, lon, lat, s] for c, n, lon, lat, s in HOUSEHOLDS]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_lonlat_in_every_encoding(district, settings, tmp_path, encoding):
    path = write_csv(
        tmp_path / "h.csv", ["code", "name", "lon", "lat", "size"], lonlat_rows(), encoding
    )
    result = run(district, settings, "households", path, crs="EPSG:4326")
    assert result.inserted == 3
    assert_households(district)


def test_gb18030_only_characters_survive(district, settings, tmp_path):
    rows = lonlat_rows()
    rows[0][1] = "张𠀀"  # a CJK Extension B character: in GB18030, not in GBK
    path = write_csv(tmp_path / "h.csv", ["code", "name", "lon", "lat", "size"], rows, "gb18030")
    run(district, settings, "households", path, crs="4326")
    assert scalar(district, "SELECT name FROM households WHERE code = 'H1'") == "张𠀀"


@pytest.mark.parametrize(
    ("lon_name", "lat_name"),
    [("lng", "lat"), ("longitude", "latitude"), ("经度", "纬度"), ("LON", "Lat")],
)
def test_csv_accepts_common_coordinate_column_names(
    district, settings, tmp_path, lon_name, lat_name
):
    path = write_csv(
        tmp_path / "h.csv", ["code", "name", lon_name, lat_name, "size"], lonlat_rows()
    )
    run(district, settings, "households", path, crs="EPSG:4326")
    assert_households(district)


def test_csv_with_chinese_headers_and_semicolons(district, settings, tmp_path):
    path = tmp_path / "h.csv"
    rows = [[*r, flag] for r, flag in zip(lonlat_rows(), ["是", "否", ""], strict=True)]
    lines = ["编码;姓名;经度;纬度;人数;独居老人"] + [";".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines), encoding="gbk")
    result = run(district, settings, "households", path, crs="EPSG:4326")
    assert result.ignored_columns == ()
    assert_households(district)
    flags = district.execute(text("SELECT elderly_alone FROM households ORDER BY code")).scalars()
    assert list(flags) == [True, False, False]


def test_csv_wkt_column(district, settings, tmp_path):
    rows = [[c, n, f"POINT ({lon} {lat})", s] for c, n, lon, lat, s in HOUSEHOLDS]
    path = write_csv(tmp_path / "h.csv", ["code", "name", "wkt", "size"], rows)
    run(district, settings, "households", path, crs="EPSG:4326")
    assert_households(district)


def test_csv_ewkt_declares_its_srid(district, settings, tmp_path):
    rows = [[c, n, f"SRID=4326;POINT ({lon} {lat})", s] for c, n, lon, lat, s in HOUSEHOLDS]
    path = write_csv(tmp_path / "h.csv", ["code", "name", "wkt", "size"], rows)
    run(district, settings, "households", path)
    assert_households(district)


def test_csv_polygons_as_wkt(district, settings, tmp_path):
    path = write_csv(
        tmp_path / "b.csv",
        ["code", "name", "floors", "wkt"],
        [["B2", "2号楼", "6", BUILDING.buffer(-0.0002).wkt]],
    )
    run(district, settings, "buildings", path, crs="EPSG:4326")
    assert scalar(district, "SELECT floors FROM buildings WHERE code = 'B2'") == 6


def test_xlsx(district, settings, tmp_path):
    path = write_xlsx(tmp_path / "h.xlsx", ["code", "name", "lon", "lat", "size"], lonlat_rows())
    result = run(district, settings, "households", path, crs="EPSG:4326")
    assert result.inserted == 3
    assert_households(district)


def households_gdf(crs=4326):
    gdf = gpd.GeoDataFrame(
        {
            "code": [h[0] for h in HOUSEHOLDS],
            "name": [h[1] for h in HOUSEHOLDS],
            "size": [h[4] for h in HOUSEHOLDS],
        },
        geometry=[Point(h[2], h[3]) for h in HOUSEHOLDS],
        crs=4326,
    )
    return gdf.to_crs(crs)


def test_geojson_without_crs_member_is_wgs84(district, settings, tmp_path):
    features = [
        feature({"code": c, "name": n, "size": s}, point(lon, lat))
        for c, n, lon, lat, s in HOUSEHOLDS
    ]
    path = write_geojson(tmp_path / "h.geojson", features)
    result = run(district, settings, "households", path)
    assert result.crs == "EPSG:4326"
    assert_households(district)


def test_geopackage(district, settings, tmp_path):
    path = tmp_path / "h.gpkg"
    households_gdf().to_file(path, layer="households", engine="pyogrio")
    run(district, settings, "households", path)
    assert_households(district)


def test_geopackage_with_several_tables_uses_the_layer_named_table(district, settings, tmp_path):
    path = tmp_path / "many.gpkg"
    households_gdf().to_file(path, layer="households", engine="pyogrio")
    households_gdf().iloc[:1].to_file(path, layer="other", engine="pyogrio")
    run(district, settings, "households", path)
    assert count(district, "households") == 3


def test_zipped_shapefile(district, settings, tmp_path):
    path = write_zipped_shapefile(tmp_path / "h.zip", households_gdf())
    run(district, settings, "households", path)
    assert_households(district)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_zipped_shapefile_without_cpg_has_its_encoding_detected(
    district, settings, tmp_path, encoding
):
    path = write_zipped_shapefile(
        tmp_path / "h.zip", households_gdf(), encoding=encoding, cpg=False
    )
    run(district, settings, "households", path)
    assert_households(district)


def test_zipped_shapefile_without_prj_needs_crs(district, settings, tmp_path):
    path = write_zipped_shapefile(tmp_path / "h.zip", households_gdf(), prj=False)
    with pytest.raises(InputRejected) as err:
        run(district, settings, "households", path)
    assert err.value.rejects[0].field == "crs"
    assert "--crs" in err.value.rejects[0].reason
    run(district, settings, "households", path, crs="EPSG:4326")
    assert_households(district)


def test_geojson_in_cgcs2000_epsg_4490(district, settings, tmp_path):
    features = [
        feature({"code": c, "name": n, "size": s}, point(lon, lat))
        for c, n, lon, lat, s in HOUSEHOLDS
    ]
    path = write_geojson(tmp_path / "h.geojson", features, crs="urn:ogc:def:crs:EPSG::4490")
    result = run(district, settings, "households", path)
    assert result.crs == "EPSG:4490"
    assert_households(district, tolerance_m=0.1)


def test_projected_cgcs2000_gauss_kruger_zone_4547(district, settings, tmp_path):
    to_gk = Transformer.from_crs(4326, 4547, always_xy=True)
    rows = []
    for c, n, lon, lat, s in HOUSEHOLDS:
        x, y = to_gk.transform(lon, lat)
        rows.append([c, n, round(x, 3), round(y, 3), s])
    path = write_csv(tmp_path / "h.csv", ["code", "name", "x", "y", "size"], rows)
    run(district, settings, "households", path, crs="4547")
    assert_households(district, tolerance_m=0.1)


def test_projected_zone_from_a_geopackage(district, settings, tmp_path):
    path = tmp_path / "h.gpkg"
    households_gdf(4547).to_file(path, engine="pyogrio")
    run(district, settings, "households", path)
    assert_households(district, tolerance_m=0.1)


def test_gcj02_input_is_converted_within_a_metre(district, settings, tmp_path):
    rows = []
    for c, n, lon, lat, s in HOUSEHOLDS:
        gcj = prcoords.wgs_gcj((lat, lon))  # independent forward formula
        rows.append([c, n, gcj.lon, gcj.lat, s])
    path = write_csv(tmp_path / "h.csv", ["code", "name", "lng", "lat", "size"], rows)
    run(district, settings, "households", path, crs="gcj02")
    assert_households(district, tolerance_m=1.0)


def test_bd09_input_is_converted_within_a_metre(district, settings, tmp_path):
    rows = []
    for c, n, lon, lat, s in HOUSEHOLDS:
        bd = prcoords.wgs_bd((lat, lon))
        rows.append([c, n, bd.lon, bd.lat, s])
    path = write_xlsx(tmp_path / "h.xlsx", ["code", "name", "lng", "lat", "size"], rows)
    run(district, settings, "households", path, crs="BD09")
    assert_households(district, tolerance_m=1.0)


def test_crs_option_overrides_a_mislabelled_file(district, settings, tmp_path):
    """Data copied from Gaode but saved as 'WGS84': --crs gcj02 wins."""
    features = []
    for c, n, lon, lat, s in HOUSEHOLDS:
        gcj = prcoords.wgs_gcj((lat, lon))
        features.append(feature({"code": c, "name": n, "size": s}, point(gcj.lon, gcj.lat)))
    path = write_geojson(tmp_path / "h.geojson", features)
    run(district, settings, "households", path, crs="gcj02")
    assert_households(district, tolerance_m=1.0)


def test_csv_without_crs_is_refused_naming_the_option(district, settings, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["code", "name", "lon", "lat", "size"], lonlat_rows())
    with pytest.raises(InputRejected) as err:
        run(district, settings, "households", path)
    reject = err.value.rejects[0]
    assert (reject.source, reject.record, reject.field) == ("h.csv", None, "crs")
    assert "gcj02" in reject.reason
    assert count(district, "households") == 0


def test_unknown_crs_is_refused(district, settings, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["code", "name", "lon", "lat", "size"], lonlat_rows())
    with pytest.raises(InputRejected) as err:
        run(district, settings, "households", path, crs="EPSG:999999")
    assert err.value.rejects[0].field == "crs"
    assert "unknown CRS" in err.value.rejects[0].reason


def test_unknown_crs_member_in_geojson_is_refused(district, settings, tmp_path):
    features = [feature({"code": "H1"}, point(114.31, 30.58))]
    path = write_geojson(tmp_path / "h.geojson", features, crs="urn:ogc:def:crs:EPSG::999999")
    with pytest.raises(InputRejected) as err:
        run(district, settings, "households", path)
    assert err.value.rejects[0].field == "crs"


def test_csv_without_geometry_places_households_in_their_building(district, settings, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["code", "building_code"], [["H9", "B1"]])
    run(district, settings, "households", path)
    inside = scalar(
        district,
        "SELECT ST_Within(h.geom, b.geom) FROM households h "
        "JOIN buildings b ON b.id = h.building_id",
    )
    assert inside is True


def test_records_without_code_column_map_with_columns_option(district, settings, tmp_path):
    features = [feature({"id": 7, "name": "驿站"}, point(114.301, 30.581))]
    path = write_geojson(tmp_path / "s.geojson", features)
    with pytest.raises(InputRejected) as err:
        run(district, settings, "stations", path)
    assert err.value.rejects[0].field == "code"
    run(district, settings, "stations", path, columns={"code": "id"})
    assert scalar(district, "SELECT community_id IS NOT NULL FROM stations WHERE code = '7'")
    assert np.isfinite(scalar(district, "SELECT ST_X(geom) FROM stations"))


def test_xlsx_numeric_codes_booleans_and_chinese_headers(district, settings, tmp_path):
    header = ["编码", "名称", "street_code", "household_min", "household_max"]
    path = write_xlsx(tmp_path / "c.xlsx", header, [[420106001002, "新社区", 420106001, 10.0, 20]])
    run(district, settings, "communities", path)
    row = district.execute(
        text(
            "SELECT name, household_min, household_max FROM communities WHERE code = '420106001002'"
        )
    ).one()
    assert tuple(row) == ("新社区", 10, 20)
    path = write_xlsx(
        tmp_path / "b.xlsx", ["code", "available_site", "wkt"], [["B5", True, BUILDING.wkt]]
    )
    run(district, settings, "buildings", path, crs="4326")
    assert scalar(district, "SELECT available_site FROM buildings WHERE code = 'B5'") is True


def test_header_only_file_imports_nothing(district, settings, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["code", "lon", "lat"], [])
    result = run(district, settings, "households", path, crs="4326")
    assert (result.inserted, result.updated, result.rejects) == (0, 0, ())
