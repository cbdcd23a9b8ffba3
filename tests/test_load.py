"""The bulk loader: upsert by code, parents derived by location, unknown parents rejected."""

import geopandas as gpd
import pandas as pd
import pytest
from shapely import Point, box
from sqlalchemy import text

from geodata.load import load_layer


def frame(rows, geoms):
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=4326)


@pytest.fixture
def district(conn):
    """A street, a community and two grids side by side, one building in the east grid."""
    load_layer(conn, "streets", frame([{"code": "110101001", "name": "东华门街道"}], [None]))
    load_layer(
        conn,
        "communities",
        frame(
            [{"code": "110101001001", "name": "多福巷社区", "street_code": "110101001"}],
            [box(116.40, 39.90, 116.42, 39.91)],
        ),
    )
    load_layer(
        conn,
        "grids",
        frame(
            [
                {"code": "110101001001001", "name": "一网格", "community_code": "110101001001"},
                {"code": "110101001001002", "name": "二网格", "community_code": "110101001001"},
            ],
            [box(116.40, 39.90, 116.41, 39.91), box(116.41, 39.90, 116.42, 39.91)],
        ),
    )
    load_layer(
        conn,
        "buildings",
        frame(
            [{"code": "B1", "name": "1号楼", "floors": 6}], [box(116.412, 39.902, 116.413, 39.903)]
        ),
    )
    return conn


def scalar(conn, sql, **params):
    return conn.execute(text(sql), params).scalar()


def test_building_gets_grid_and_community_by_location(district):
    row = district.execute(
        text(
            "SELECT g.code, c.code, b.kind, ST_GeometryType(b.geom) FROM buildings b "
            "JOIN grids g ON g.id = b.grid_id JOIN communities c ON c.id = b.community_id "
            "WHERE b.code = 'B1'"
        )
    ).one()
    assert tuple(row) == ("110101001001002", "110101001001", "residential", "ST_MultiPolygon")


def test_household_by_building_code_only_gets_a_point_inside_it(district):
    load_layer(district, "households", frame([{"code": "H1", "building_code": "B1"}], [None]))
    inside = scalar(
        district,
        "SELECT ST_Within(h.geom, b.geom) FROM households h "
        "JOIN buildings b ON b.id = h.building_id WHERE h.code = 'H1'",
    )
    assert inside is True
    assert (
        scalar(
            district,
            "SELECT g.code FROM households h JOIN grids g ON g.id = h.grid_id WHERE h.code = 'H1'",
        )
        == "110101001001002"
    )


def test_household_point_finds_building_grid_and_community(district):
    load_layer(
        district,
        "households",
        frame(
            [{"code": "H2", "size": 3, "elderly_alone": True}, {"code": "H3"}],
            [Point(116.4125, 39.9025), Point(116.405, 39.905)],
        ),
    )
    rows = district.execute(
        text(
            "SELECT h.code, b.code, g.code, h.size, h.elderly_alone FROM households h "
            "LEFT JOIN buildings b ON b.id = h.building_id JOIN grids g ON g.id = h.grid_id "
            "WHERE h.code IN ('H2', 'H3') ORDER BY h.code"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("H2", "B1", "110101001001002", 3, True),
        ("H3", None, "110101001001001", 1, False),
    ]


def test_reload_updates_by_code_and_duplicates_nothing(district):
    first = load_layer(
        district, "households", frame([{"code": "H4", "size": 2}], [Point(116.405, 39.905)])
    )
    again = load_layer(
        district, "households", frame([{"code": "H4", "size": 5}], [Point(116.415, 39.905)])
    )
    assert (first.inserted, first.updated, again.inserted, again.updated) == (1, 0, 0, 1)
    row = district.execute(
        text(
            "SELECT count(*), max(h.size), max(g.code) FROM households h "
            "JOIN grids g ON g.id = h.grid_id WHERE h.code = 'H4'"
        )
    ).one()
    assert tuple(row) == (1, 5, "110101001001002")  # moved east: grid re-derived


def test_unknown_parent_codes_reject_all_or_skip(district):
    rows = [
        {"code": "H5", "building_code": "B1"},
        {"code": "H6", "building_code": "NOPE"},
        {"code": "H7", "grid_code": "110101001001999"},
    ]
    result = load_layer(
        district, "households", frame(rows, [None, None, Point(116.405, 39.905)]), source="hh.csv"
    )
    assert result.loaded == 0
    assert [(r.record, r.field, r.value) for r in result.rejects] == [
        (2, "building_code", "NOPE"),
        (3, "grid_code", "110101001001999"),
    ]
    assert "unknown building code" in str(result.rejects[0])
    assert scalar(district, "SELECT count(*) FROM households WHERE code LIKE 'H_'") == 0
    skipped = load_layer(
        district, "households", frame(rows, [None, None, Point(116.405, 39.905)]), skip_invalid=True
    )
    assert skipped.loaded == 1 and len(skipped.rejects) == 2
    assert (
        scalar(district, "SELECT string_agg(code, ',') FROM households WHERE code LIKE 'H_'")
        == "H5"
    )


def test_station_services_and_cadre_levels(district):
    load_layer(
        district,
        "stations",
        frame(
            [{"code": "S1", "name": "驿站", "services": ["日间照料", "四点半课堂"]}],
            [Point(116.405, 39.905)],
        ),
    )
    assert scalar(district, "SELECT services FROM stations WHERE code = 'S1'") == [
        "日间照料",
        "四点半课堂",
    ]
    assert (
        scalar(
            district,
            "SELECT c.code FROM stations s JOIN communities c "
            "ON c.id = s.community_id WHERE s.code = 'S1'",
        )
        == "110101001001"
    )
    load_layer(
        district,
        "cadres",
        frame(
            [
                {"code": "C1", "level": "street", "street_code": "110101001"},
                {
                    "code": "C2",
                    "level": "community",
                    "street_code": "110101001",
                    "community_code": "110101001001",
                },
            ],
            [Point(116.41, 39.905), Point(116.41, 39.905)],
        ),
    )
    assert scalar(district, "SELECT count(*) FROM cadres WHERE code IN ('C1', 'C2')") == 2
