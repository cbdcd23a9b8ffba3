"""A small real district from 140 OpenStreetMap building footprints around Jinjiang Road, Kunming.

Data © OpenStreetMap contributors, ODbL 1.0 (see ``tests/data/kunming/README.md``). The footprints
are real; everything else is derived and says so: one street and one community around them, one
grid per residential compound (Voronoi cells of the compounds, clipped to the community, so grids
tile it without gaps or overlaps), households from floor area (one per 90 m² of floor area of
``apartments``; floors from ``levels``), members at 12 % of households, cadres and two Red Stations.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from geodata.load import load_layer
from geodata.projection import metric_epsg

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "kunming"
STREET = "530102900"
COMMUNITY = STREET + "001"
FLOOR_AREA_PER_HOUSEHOLD_M2 = 90.0
KINDS = {
    "apartments": "residential",
    "commercial": "commercial",
    "retail": "commercial",
    "office": "commercial",
    "school": "public",
}


def kunming_layers(folder: Path = DATA, *, seed: int = 7) -> dict[str, gpd.GeoDataFrame]:
    """The derived district as frames for :func:`geodata.load.load_layer` (reads the file)."""
    rng = np.random.default_rng(seed)
    raw = gpd.read_file(folder / "buildings.geojson")
    metric = raw.to_crs(metric_epsg(*raw.union_all().centroid.coords[0]))
    community = shapely.buffer(metric.union_all().convex_hull, 60.0)
    grids = _grids(metric, community)
    buildings = _buildings(raw, metric, grids)
    households = _households(buildings, metric, rng)
    members = households.sample(frac=0.12, random_state=seed).reset_index(drop=True)
    members = members.assign(
        code=[f"KM-M{i + 1:04d}" for i in range(len(members))],
        kind=rng.choice(["retired", "resident", "in_service"], len(members), p=[0.6, 0.2, 0.2]),
        eligible=rng.random(len(members)) > 0.15,
    )[["code", "kind", "eligible", "building_code", "geometry"]]
    centre = community.centroid
    to_wgs = _to_wgs84(metric.crs)
    return {
        "streets": _records(pd.DataFrame({"code": [STREET], "name": ["金江路演示街道"]}), [None]),
        "communities": _records(
            pd.DataFrame({"code": [COMMUNITY], "name": ["金江社区"], "street_code": [STREET]}),
            [to_wgs(community)],
        ),
        "grids": _records(grids.drop(columns="geometry"), [to_wgs(g) for g in grids.geometry]),
        "buildings": _records(buildings.drop(columns="geometry"), list(buildings.geometry)),
        "households": households,
        "members": _records(members.drop(columns="geometry"), list(members.geometry)),
        "cadres": _records(
            pd.DataFrame(
                {
                    "code": [f"KM-C{i:02d}" for i in range(1, 13)],
                    "level": ["street"] * 4 + ["community"] * 8,
                    "street_code": STREET,
                    "community_code": [None] * 4 + [COMMUNITY] * 8,
                }
            ),
            [to_wgs(shapely.Point(centre.x + 3 * i, centre.y)) for i in range(12)],
        ),
        "stations": _records(
            pd.DataFrame(
                {
                    "code": ["KM-S1", "KM-S2"],
                    "name": ["金江红色驿站", "滨江红色驿站"],
                    "services": [["党群服务", "日间照料"], ["四点半课堂"]],
                }
            ),
            [
                to_wgs(shapely.Point(centre.x - 150, centre.y + 100)),
                to_wgs(shapely.Point(centre.x + 250, centre.y - 200)),
            ],
        ),
    }


def load_kunming(conn: Connection, *, progress: bool = False) -> dict[str, int]:
    """Load the Kunming district in the caller's transaction; return counts per layer."""
    counts = {}
    for name, frame in kunming_layers().items():
        result = load_layer(conn, name, frame, source=f"kunming:{name}", progress=progress)
        if result.rejects:
            raise RuntimeError(f"kunming {name}: {result.rejects[0]}")
        counts[name] = result.loaded
    return counts


def _grids(metric: gpd.GeoDataFrame, community: shapely.Geometry) -> gpd.GeoDataFrame:
    """One grid per compound: Voronoi cells of compound centres, clipped to the community."""
    named = metric[metric["community"].fillna("") != ""]
    centres = named.dissolve("community").centroid
    # Sort west→east, north→south on a coarse row band, as DB11/T 2157-2023 numbers grids.
    order = sorted(centres.index, key=lambda c: (-round(centres[c].y / 250), centres[c].x))
    cells = shapely.voronoi_polygons(
        shapely.MultiPoint([centres[c] for c in order]), extend_to=community
    )
    frames = []
    for k, name in enumerate(order):
        cell = next(p for p in cells.geoms if p.contains(centres[name]))
        frames.append(
            {
                "code": f"{COMMUNITY}{k + 1:03d}",
                "name": f"{name}网格",
                "community_code": COMMUNITY,
                "geometry": shapely.intersection(cell, community),
            }
        )
    return gpd.GeoDataFrame(frames, geometry="geometry", crs=metric.crs)


def _buildings(
    raw: gpd.GeoDataFrame, metric: gpd.GeoDataFrame, grids: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    floors = np.clip(np.rint(raw["levels"].fillna(1.0)), 1, 200).astype(int)
    kind = raw["building"].map(KINDS).fillna("public")
    return gpd.GeoDataFrame(
        {
            "code": "KM-" + raw["id"].astype(str),
            "name": raw["name"].where(raw["name"].fillna("") != "", None),
            "kind": kind,
            "floors": floors,
            "available_site": kind != "residential",
            "community_code": COMMUNITY,
        },
        geometry=raw.geometry.values,
        crs=4326,
    )


def _households(
    buildings: gpd.GeoDataFrame, metric: gpd.GeoDataFrame, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    area = metric.geometry.area.to_numpy() * buildings["floors"].to_numpy()
    per = np.where(
        buildings["kind"] == "residential", np.floor(area / FLOOR_AREA_PER_HOUSEHOLD_M2), 0
    ).astype(int)
    b = np.repeat(np.arange(len(buildings)), per)
    points = shapely.point_on_surface(buildings.geometry.to_numpy()[b])
    frame = pd.DataFrame(
        {
            "code": [f"KM-H{i + 1:05d}" for i in range(len(b))],
            "size": rng.choice([1, 2, 3, 4], len(b), p=[0.2, 0.35, 0.3, 0.15]),
            "building_code": buildings["code"].to_numpy()[b],
        }
    )
    return _records(frame, list(points))


def _to_wgs84(crs: object):
    def convert(geom: shapely.Geometry) -> shapely.Geometry:
        return gpd.GeoSeries([geom], crs=crs).to_crs(4326).iloc[0]

    return convert


def _records(frame: pd.DataFrame, geoms: list) -> gpd.GeoDataFrame:
    frame = frame.reset_index(drop=True)
    frame["_record"] = np.arange(1, len(frame) + 1)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=4326).values, crs=4326)


def pairing_frames(folder: Path = DATA, *, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Households and members of the Kunming community as plain frames for the pairing engine.

    Columns ``x``, ``y`` (metres, the district's UTM zone), ``building``, ``grid`` (integer ids,
    the grid a point lies in, as the loader assigns it) and ``community`` (0); members also
    ``eligible``. No database: benchmarks and engine tests pose the real case from these.
    """
    layers = kunming_layers(folder, seed=seed)
    grids = layers["grids"]
    epsg = metric_epsg(*layers["communities"].geometry.iloc[0].centroid.coords[0])
    cells = grids.to_crs(epsg)
    b_index = pd.Index(layers["buildings"]["code"])
    out = {}
    for name in ("households", "members"):
        points = layers[name].to_crs(epsg)
        hit = gpd.sjoin(points[["geometry"]], cells[["geometry"]], predicate="within", how="left")
        hit = hit[~hit.index.duplicated()]
        frame = pd.DataFrame(
            {
                "x": points.geometry.x.to_numpy(),
                "y": points.geometry.y.to_numpy(),
                "building": b_index.get_indexer(points["building_code"]),
                "grid": hit["index_right"].fillna(-1).astype(int).to_numpy(),
                "community": 0,
            }
        )
        if name == "members":
            frame["eligible"] = points["eligible"].to_numpy(bool)
        out[name] = frame
    return out
