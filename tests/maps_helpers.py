"""A tiny hand-made district for map and report tests, optionally with hostile names."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import shapely

from maps.coverage_map import MapData
from maps.report import ReportData

XSS = [
    '<img src=x onerror="window.__xss=(window.__xss||0)+1">',
    "${(window.__xss=(window.__xss||0)+1)}",
    "`;window.__xss=(window.__xss||0)+1;`",
    "</script><script>window.__xss=(window.__xss||0)+1</script>",
    "\\`${window.__xss=1}\\",
]
LON, LAT = 102.70, 25.05


def _name(base: str, i: int, hostile: bool) -> str:
    return f"{base}{XSS[i % len(XSS)]}" if hostile else f"{base}{i + 1}"


def tiny_data(*, hostile: bool = False) -> ReportData:
    """Two communities, four grids, eight buildings, 80 households, 6 members, 2 cadres."""
    d = 0.004
    communities = gpd.GeoDataFrame(
        {
            "code": ["530102001001", "530102001002"],
            "name": [_name("社区", i, hostile) for i in range(2)],
        },
        geometry=[shapely.box(LON + i * d, LAT, LON + (i + 1) * d, LAT + d) for i in range(2)],
        crs=4326,
    )
    street = gpd.GeoDataFrame(
        {"code": ["530102001"], "name": [_name("街道", 0, hostile)]},
        geometry=[shapely.box(LON, LAT, LON + 2 * d, LAT + d)],
        crs=4326,
    )
    half = d / 2
    grid_boxes = [shapely.box(LON + i * half, LAT, LON + (i + 1) * half, LAT + d) for i in range(4)]
    grids = gpd.GeoDataFrame(
        {
            "code": [f"530102001{1 + i // 2:03d}{1 + i % 2:03d}" for i in range(4)],
            "name": [_name("网格", i, hostile) for i in range(4)],
            "households": [20, 20, 20, 20],
            "paired": [20, 15, 5, 0],
        },
        geometry=grid_boxes,
        crs=4326,
    )
    centres = [(LON + (i + 0.5) * d / 4, LAT + d / 2) for i in range(8)]
    buildings = gpd.GeoDataFrame(
        {
            "code": [f"B{i}" for i in range(8)],
            "name": [_name("楼", i, hostile) for i in range(8)],
            "households": [10] * 8,
            "paired": [10, 10, 8, 7, 5, 0, 0, 0],
        },
        geometry=[shapely.Point(x, y).buffer(0.0003, cap_style="square") for x, y in centres],
        crs=4326,
    )
    rng = np.random.default_rng(3)
    hx = np.repeat([c[0] for c in centres], 10) + rng.uniform(-2e-4, 2e-4, 80)
    hy = np.repeat([c[1] for c in centres], 10) + rng.uniform(-2e-4, 2e-4, 80)
    paired = np.array([10, 10, 8, 7, 5, 0, 0, 0])
    flags = np.concatenate([np.arange(10) < p for p in paired])
    households = gpd.GeoDataFrame(
        {
            "code": [f"H{i}" for i in range(80)],
            "name": [_name("户主", i, hostile) for i in range(80)],
            "phone": ["13812345678"] * 80,
            "paired": flags,
            "low_income": np.arange(80) % 7 == 0,
        },
        geometry=shapely.points(hx, hy),
        crs=4326,
    )
    members = gpd.GeoDataFrame(
        {
            "code": [f"M{i}" for i in range(6)],
            "name": ["张三丰", "李四", "王五", "赵六", "钱七", _name("孙", 0, hostile)],
            "phone": ["13912345678"] * 6,
            "kind": ["retired", "resident", "in_service", "mobile", "retired", "resident"],
            "active": [True, True, True, True, False, False],
            "load": [20, 10, 5, 5, 0, 0],
        },
        geometry=shapely.points(hx[[0, 12, 25, 33, 60, 70]], hy[[0, 12, 25, 33, 60, 70]]),
        crs=4326,
    )
    owner = np.array([0] * 20 + [1] * 10 + [2] * 5 + [3] * 5)
    hh_paired = np.flatnonzero(flags)
    pairs = gpd.GeoDataFrame(
        {"member_code": members["code"].to_numpy()[owner]},
        geometry=[
            shapely.LineString([members.geometry.iloc[o].coords[0], (hx[h], hy[h])])
            for o, h in zip(owner, hh_paired, strict=True)
        ],
        crs=4326,
    )
    cadres = gpd.GeoDataFrame(
        {
            "code": ["C1", "C2"],
            "name": [_name("干部", 0, hostile), "周八"],
            "phone": ["13700000000", None],
            "level": ["street", "community"],
            "load": [4, 2],
        },
        geometry=shapely.points([LON + d, LON + 0.5 * d], [LAT + d / 3, LAT + d / 3]),
        crs=4326,
    )
    stations = gpd.GeoDataFrame(
        {"code": ["S1"], "name": [_name("驿站", 0, hostile)], "services": [["养老服务", "助残"]]},
        geometry=[shapely.Point(LON + d, LAT + d / 2)],
        crs=4326,
    )
    unpaired = households[~households["paired"]].assign(
        rank=lambda f: np.arange(1, len(f) + 1), reason=_name("未结对", 1, hostile)
    )
    blind = {"unpaired_households": unpaired}
    if hostile:
        blind[XSS[0]] = unpaired.head(2)
    summary = {"households_total": 80, "households_paired": 40, "household_coverage": 0.5}
    data = MapData(
        streets=street,
        communities=communities,
        grids=grids,
        buildings=buildings,
        households=households,
        members=members,
        pairs=pairs,
        cadres=cadres,
        stations=stations,
        blindspots=blind,
        summary=summary,
    )
    return ReportData(
        title=_name("示例街道", 0, hostile),
        scope="530102001",
        map=data,
        communities=communities.drop(columns="geometry").assign(households=[40, 40]),
        grids=grids.drop(columns="geometry"),
        loads=np.array([20, 10, 5, 5, 0, 0]),
        distances=np.linspace(5, 700, 40),
        blindspots=blind,
        generated_at=datetime(2025, 1, 2, 3, 4, tzinfo=UTC),
        generated_by=_name("测试员", 2, hostile),
        plan_version=7,
    )
