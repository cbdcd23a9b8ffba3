"""WGS84 ⇄ GCJ-02 ⇄ BD-09 against prcoords (an independent implementation) and round trips."""

import numpy as np
import prcoords
import pytest
from pyproj import Geod

from geodata import chinacrs

GEOD = Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.fixture(scope="module")
def china():
    rng = np.random.default_rng(7)
    return rng.uniform(73.5, 135.0, 2000), rng.uniform(18.0, 53.5, 2000)


def test_forward_matches_prcoords(china):
    lon, lat = china
    gcj = chinacrs.wgs84_to_gcj02(lon, lat)
    bd = chinacrs.wgs84_to_bd09(lon, lat)
    for i in range(0, 2000, 97):
        ref = prcoords.wgs_gcj((lat[i], lon[i]))
        assert gcj[0][i] == pytest.approx(ref.lon, abs=1e-10)
        assert gcj[1][i] == pytest.approx(ref.lat, abs=1e-10)
        ref = prcoords.wgs_bd((lat[i], lon[i]))
        assert bd[0][i] == pytest.approx(ref.lon, abs=1e-10)
        assert bd[1][i] == pytest.approx(ref.lat, abs=1e-10)


def test_inverses_match_prcoords_precise_inverses(china):
    lon, lat = china
    gcj_lon, gcj_lat = chinacrs.wgs84_to_gcj02(lon, lat)
    back = chinacrs.gcj02_to_wgs84(gcj_lon, gcj_lat)
    bd_lon, bd_lat = chinacrs.gcj02_to_bd09(gcj_lon, gcj_lat)
    gcj_back = chinacrs.bd09_to_gcj02(bd_lon, bd_lat)
    for i in range(0, 2000, 97):
        ref = prcoords.gcj_wgs_bored((gcj_lat[i], gcj_lon[i]))
        assert metres(back[0][i], back[1][i], ref.lon, ref.lat) < 0.01
        ref = prcoords.bd_gcj_bored((bd_lat[i], bd_lon[i]))
        assert metres(gcj_back[0][i], gcj_back[1][i], ref.lon, ref.lat) < 0.01


@pytest.mark.parametrize(
    ("forward", "inverse"),
    [
        (chinacrs.wgs84_to_gcj02, chinacrs.gcj02_to_wgs84),
        (chinacrs.gcj02_to_bd09, chinacrs.bd09_to_gcj02),
        (chinacrs.wgs84_to_bd09, chinacrs.bd09_to_wgs84),
    ],
)
def test_round_trips_are_under_a_millimetre(china, forward, inverse):
    lon, lat = china
    back_lon, back_lat = inverse(*forward(lon, lat))
    assert metres(lon, lat, back_lon, back_lat).max() < 0.001


def test_offset_size_in_eastern_china_is_hundreds_of_metres():
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(110, 122, 500), rng.uniform(22, 40, 500)
    shift = metres(lon, lat, *chinacrs.wgs84_to_gcj02(lon, lat))
    assert 300 < shift.mean() < 700
    assert shift.max() < 800


def test_published_reference_point():
    # Tiananmen, the widely quoted example pair of GCJ-02 implementations (eviltransform)
    lon, lat = chinacrs.wgs84_to_gcj02(116.397428, 39.90923)
    assert (round(float(lon), 5), round(float(lat), 5)) == (116.40367, 39.91063)


def test_no_offset_outside_china():
    lon, lat = np.array([2.35, -74.0, 139.7]), np.array([48.85, 40.7, 35.7])
    out = chinacrs.wgs84_to_gcj02(lon, lat)
    np.testing.assert_array_equal(out[0], lon)
    np.testing.assert_array_equal(out[1], lat)
    back = chinacrs.gcj02_to_wgs84(lon, lat)
    np.testing.assert_array_equal(back[0], lon)


def test_scalars_work():
    lon, lat = chinacrs.gcj02_to_wgs84(*chinacrs.wgs84_to_gcj02(114.3, 30.6))
    assert float(lon) == pytest.approx(114.3, abs=1e-9)
    assert float(lat) == pytest.approx(30.6, abs=1e-9)
