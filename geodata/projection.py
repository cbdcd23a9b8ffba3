"""Metric projections: pick a UTM zone from the data and project lon/lat arrays to metres."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import Transformer


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone holding (lon, lat)."""
    zone = int(np.clip((lon + 180.0) // 6.0 + 1, 1, 60))
    return (32600 if lat >= 0 else 32700) + zone


def metric_epsg(lon: ArrayLike, lat: ArrayLike) -> int:
    """The UTM zone for a set of points: the zone of their median position."""
    lon_arr = np.asarray(lon, dtype=float)
    lat_arr = np.asarray(lat, dtype=float)
    if lon_arr.size == 0:
        raise ValueError("no points to choose a projection from")
    return utm_epsg(float(np.median(lon_arr)), float(np.median(lat_arr)))


@lru_cache(maxsize=16)
def _transformer(src: int, dst: int) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def to_metres(
    lon: ArrayLike, lat: ArrayLike, *, epsg: int | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Project WGS84 lon/lat to metres; returns ``(x, y, epsg)``.

    The zone is chosen from the data unless ``epsg`` is given (use one zone for a whole scope so
    distances between its parts stay comparable).
    """
    lon_arr = np.asarray(lon, dtype=float)
    lat_arr = np.asarray(lat, dtype=float)
    code = epsg or metric_epsg(lon_arr, lat_arr)
    x, y = _transformer(4326, code).transform(lon_arr, lat_arr)
    return np.asarray(x), np.asarray(y), code


def to_lonlat(
    x: ArrayLike, y: ArrayLike, *, epsg: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Back from metres in ``epsg`` to WGS84 lon/lat."""
    lon, lat = _transformer(epsg, 4326).transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)
