"""The proposal diff map (pure): one layer per kind of change, every value escaped, no CDN."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pytest
import shapely

from maps.coverage_map import MapData, MapOptions
from maps.diff_map import build_diff_map
from maps.report import map_html

EVIL = "<img src=x onerror=alert(1)>`${alert(2)}`\\"


def _js(text: str) -> str:
    """``text`` as it appears inside the map's JavaScript (ASCII JSON escapes)."""
    return json.dumps(text)[1:-1]


def _diff() -> gpd.GeoDataFrame:
    lines = shapely.linestrings(
        [
            [[102.700, 25.040], [102.701, 25.041]],
            [[102.702, 25.040], [102.701, 25.041]],
            [[102.703, 25.042], [102.704, 25.043]],
            [[102.703, 25.042], [102.701, 25.041]],
            [[102.705, 25.044], [102.706, 25.045]],
            [[102.707, 25.046], [102.701, 25.041]],
        ]
    )
    return gpd.GeoDataFrame(
        {
            "kind": ["kept", "kept", "moved", "moved_from", "new", "dropped"],
            "household": ["H1", "H2", f"H3{EVIL}", f"H3{EVIL}", "H4", "H5"],
            "member": ["M1", "M1", "M2", "M1", "M3", EVIL],
            "reason": ["", "", "cheaper", "cheaper", "new household", f"member left {EVIL}"],
        },
        geometry=lines,
        crs=4326,
    )


def test_every_kind_is_a_layer_and_values_are_escaped():
    html = map_html(build_diff_map(MapData(), _diff(), MapOptions(lang="en")))
    for name in ("Kept pairs (2)", "Moved: before (1)", "Moved: after (1)", "New pairs (1)"):
        assert name in html
    assert "Dropped pairs (1)" in html
    assert "<img src=x" not in html and "${alert" not in html and "`${" not in html
    # escaped to entities, then written as JSON (& as \\u0026)
    entities = "&lt;img src=x onerror=alert(1)&gt;&#96;&#36;{alert(2)}&#96;&#92;"
    assert json.dumps(entities)[1:-1].replace("&", "\\u0026") in html
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?(https?:)?//", html)


def test_chinese_labels_by_default_and_kept_lines_capped():
    html = map_html(build_diff_map(MapData(), _diff(), MapOptions(lines_max=1)))
    assert _js("取消的结对 (1)") in html and _js("结对变化") in html
    assert _js("保持的结对") not in html  # more kept lines than lines_max: not drawn


def test_unknown_kind_names_the_field():
    bad = _diff().assign(kind="swapped")
    with pytest.raises(ValueError, match="field kind: unknown"):
        build_diff_map(MapData(), bad)
