"""Geometry for drawing: checked WGS84 in, simplified, optionally GCJ-02, rounded GeoJSON out."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from maps.safe import esc

DECIMALS = 6  # about 0.1 m: more only inflates the file
METRES_PER_DEGREE = 111_320.0


def display_geometries(
    frame: gpd.GeoDataFrame, *, layer: str, gcj02: bool = False, simplify_m: float = 0.0
) -> np.ndarray:
    """The geometries of ``frame`` ready to draw.

    Parameters
    ----------
    frame
        A GeoDataFrame in EPSG:4326 (other CRSs are converted; a missing CRS is an error).
    layer
        The layer name, used in error messages.
    gcj02
        Shift every coordinate from WGS84 to GCJ-02 (for Gaode tiles).
    simplify_m
        Simplify polygons and lines with this tolerance in metres (topology preserved).

    Returns
    -------
    numpy.ndarray
        Shapely geometries with coordinates rounded to 6 decimals.

    Raises
    ------
    ValueError
        When the CRS is missing or a geometry is missing or empty (naming the record).
    """
    if frame.crs is None:
        raise ValueError(f"{layer}: the frame has no CRS; expected EPSG:4326")
    if frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    geoms = frame.geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        code = frame["code"].iloc[i] if "code" in frame else frame.index[i]
        raise ValueError(f"{layer}, record {code!r}, field geometry: missing or empty")
    if simplify_m > 0:
        geoms = shapely.simplify(geoms, simplify_m / METRES_PER_DEGREE, preserve_topology=True)
    if gcj02:
        from geodata.chinacrs import wgs84_to_gcj02

        def shift(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))

        geoms = shapely.transform(geoms, shift)
    return shapely.transform(geoms, lambda xy: np.round(xy, DECIMALS))


def latlon_rows(geoms: np.ndarray) -> list[list[float]]:
    """``[lat, lon]`` rows of point geometries (as Leaflet wants them)."""
    x = shapely.get_x(geoms)
    y = shapely.get_y(geoms)
    return np.column_stack([y, x]).tolist()


def feature_collection(
    geoms: np.ndarray,
    properties: Mapping[str, Any] | None = None,
    *,
    raw: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection; every value in ``properties`` is escaped.

    Parameters
    ----------
    geoms
        Geometries to draw (see :func:`display_geometries`).
    properties
        Column name → sequence of values shown in tooltips: escaped with :func:`maps.safe.esc`.
    raw
        Column name → sequence of numbers used by styles (never shown as HTML; must be numeric).
    """
    shapes = [json.loads(text) for text in shapely.to_geojson(geoms)]
    columns = {k: [esc(v) for v in values] for k, values in (properties or {}).items()}
    for name, values in (raw or {}).items():
        columns[name] = [_number(v, name) for v in values]
    features = []
    for i, shape in enumerate(shapes):
        props = {k: v[i] for k, v in columns.items()}
        features.append({"type": "Feature", "id": i, "geometry": shape, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _number(value: Any, name: str) -> float | int | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return int(value)
    if not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"style column {name}: expected a number, got {value!r}")
    return value.item() if isinstance(value, np.generic) else value


def style_by_id(styles: list[dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A folium ``style_function`` answering each feature's precomputed style by its id."""
    return lambda feature: styles[feature["id"]]


def walking_area(points: gpd.GeoDataFrame, radius_m: float) -> gpd.GeoDataFrame:
    """The area within ``radius_m`` metres (straight line) of any point, as one polygon.

    Parameters
    ----------
    points
        Points in EPSG:4326 (e.g. Red Stations).
    radius_m
        The walking ring's radius in metres.

    Returns
    -------
    geopandas.GeoDataFrame
        One row (empty when there are no points) with ``radius_m``, in EPSG:4326: the union of
        the rings, buffered in the points' UTM zone.
    """
    from geodata.projection import to_lonlat, to_metres

    if not len(points):
        return gpd.GeoDataFrame({"radius_m": []}, geometry=[], crs=4326)
    lon, lat = points.to_crs(4326).geometry.x.to_numpy(), points.to_crs(4326).geometry.y.to_numpy()
    x, y, epsg = to_metres(lon, lat)
    area = shapely.union_all(shapely.buffer(shapely.points(x, y), radius_m, quad_segs=16))
    back = shapely.transform(
        area, lambda xy: np.column_stack(to_lonlat(xy[:, 0], xy[:, 1], epsg=epsg))
    )
    return gpd.GeoDataFrame({"radius_m": [radius_m]}, geometry=[back], crs=4326)
