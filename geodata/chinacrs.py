"""Vectorised conversions between WGS84, GCJ-02 (Gaode, Tencent) and BD-09 (Baidu) lon/lat.

GCJ-02 is WGS84 shifted by a published obfuscation formula (about 500 m in eastern China); BD-09
shifts GCJ-02 once more. PROJ has neither, so they live here. The forward formulas are closed
form; the inverses iterate the forward formula to a fixed point (error well under 1 mm). As in the
standard formula, GCJ-02 applies no offset outside a rough box around China
(lon 72.004–137.8347, lat 0.8293–55.8271). Every function takes and returns ``(lon, lat)``
arrays (scalars work too) in degrees.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

_A = 6378245.0  # Krasovsky 1940 semi-major axis
_EE = 0.00669342162296594323  # its first eccentricity squared
_BD_DLON = 0.0065
_BD_DLAT = 0.0060
_BD_K = np.pi * 3000.0 / 180.0
_TOLERANCE_DEG = 1e-11  # about 1 µm
_MAX_ITERATIONS = 20

Pair = tuple[NDArray[np.float64], NDArray[np.float64]]


def _arrays(lon: ArrayLike, lat: ArrayLike) -> Pair:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Whether each point lies in the box where GCJ-02 applies its offset."""
    x, y = _arrays(lon, lat)
    return (x >= 72.004) & (x <= 137.8347) & (y >= 0.8293) & (y <= 55.8271)


def _offset(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> Pair:
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS84 points; zero outside China."""
    x, y = lon - 105.0, lat - 35.0
    waves = 20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + (
            waves
            + 20.0 * np.sin(y * np.pi)
            + 40.0 * np.sin(y / 3.0 * np.pi)
            + 160.0 * np.sin(y / 12.0 * np.pi)
            + 320.0 * np.sin(y / 30.0 * np.pi)
        )
        * 2.0
        / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + (
            waves
            + 20.0 * np.sin(x * np.pi)
            + 40.0 * np.sin(x / 3.0 * np.pi)
            + 150.0 * np.sin(x / 12.0 * np.pi)
            + 300.0 * np.sin(x / 30.0 * np.pi)
        )
        * 2.0
        / 3.0
    )
    rad = np.radians(lat)
    magic = 1.0 - _EE * np.sin(rad) ** 2
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * np.sqrt(magic)) * np.pi)
    dlon = dlon * 180.0 / (_A / np.sqrt(magic) * np.cos(rad) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _invert(forward, lon: NDArray[np.float64], lat: NDArray[np.float64], guess: Pair) -> Pair:
    """Solve ``forward(x) = (lon, lat)`` by fixed-point iteration from ``guess``."""
    x, y = guess
    for _ in range(_MAX_ITERATIONS):
        fx, fy = forward(x, y)
        ex, ey = fx - lon, fy - lat
        x, y = x - ex, y - ey
        if np.all(np.abs(ex) < _TOLERANCE_DEG) and np.all(np.abs(ey) < _TOLERANCE_DEG):
            break
    return x, y


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """WGS84 to GCJ-02 (the forward formula).

    Parameters
    ----------
    lon, lat
        WGS84 longitudes and latitudes in degrees, any matching shapes.

    Returns
    -------
    tuple of ndarray
        GCJ-02 ``(lon, lat)``; points outside China come back unchanged.
    """
    x, y = _arrays(lon, lat)
    dlon, dlat = _offset(x, y)
    return x + dlon, y + dlat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """GCJ-02 to WGS84, iterating the forward formula to a fixed point (error < 1 mm)."""
    x, y = _arrays(lon, lat)
    dlon, dlat = _offset(x, y)
    return _invert(wgs84_to_gcj02, x, y, (x - dlon, y - dlat))


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """GCJ-02 to BD-09 (Baidu's formula; applied everywhere, as Baidu does)."""
    x, y = _arrays(lon, lat)
    r = np.hypot(x, y) + 0.00002 * np.sin(y * _BD_K)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _BD_K)
    return r * np.cos(theta) + _BD_DLON, r * np.sin(theta) + _BD_DLAT


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """BD-09 to GCJ-02: the usual closed-form inverse refined by iterating the forward formula."""
    x, y = _arrays(lon, lat)
    dx, dy = x - _BD_DLON, y - _BD_DLAT
    r = np.hypot(dx, dy) - 0.00002 * np.sin(dy * _BD_K)
    theta = np.arctan2(dy, dx) - 0.000003 * np.cos(dx * _BD_K)
    return _invert(gcj02_to_bd09, x, y, (r * np.cos(theta), r * np.sin(theta)))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """WGS84 to BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """BD-09 to WGS84 (each inverse step iterated; error < 1 mm)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


#: Converters to WGS84 by the names ``--crs`` accepts.
TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
