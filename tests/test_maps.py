"""Pure tests of the map builders, offline inlining, escaping, masking and reports."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pytest
import shapely
from maps_helpers import XSS, tiny_data

from maps import offline
from maps.chart import load_histogram_svg
from maps.coverage_map import MapOptions, build_map
from maps.geo import display_geometries
from maps.labels import label
from maps.report import map_html, render_report
from maps.safe import esc, mask_name, mask_phone, protect
from maps.tiles import tile_spec

CDN = re.compile(r"(jsdelivr|cdnjs|bootstrapcdn|code\.jquery|unpkg)", re.I)


def test_esc_neutralises_html_and_template_literals():
    out = esc('<img src=x onerror="a">`${x}`\\&\'')
    assert out == ("&lt;img src=x onerror=&quot;a&quot;&gt;&#96;&#36;{x}&#96;&#92;&amp;&#x27;")
    assert esc(None) == "" and esc(float("nan")) == "" and esc(3) == "3"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三丰", "张*丰"),
        ("张三", "张*"),
        ("欧阳小明", "欧**明"),
        ("王", "*"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_name(name, masked):
    assert mask_name(name) == masked


def test_mask_phone():
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("+86 138-1234-1234") == "138****1234"
    assert mask_phone("12345") == "*****"
    assert mask_phone(None) == ""


def test_protect_drops_sensitive_flags_and_masks():
    frame = tiny_data().map.households.head(3)
    safe = protect(frame, masked=True, people=True)
    assert "low_income" not in safe.columns
    assert set(safe["phone"]) == {"138****5678"}
    assert all("*" in n for n in safe["name"])
    full = protect(frame, masked=False, people=True)
    assert "low_income" in full.columns and full["phone"].iloc[0] == "13812345678"


def test_labels():
    assert label("members", "zh") == "党员（在岗/储备）"
    assert label("members", "en") == "Members (active / reserve)"
    assert label("no_such_key", "en") == "no_such_key"
    with pytest.raises(ValueError, match="lang"):
        label("members", "fr")


def test_tile_spec():
    assert tile_spec("none").layers == ()
    assert not tile_spec("osm").gcj02
    assert tile_spec("gaode").gcj02
    with pytest.raises(ValueError, match="tianditu_key"):
        tile_spec("tianditu")
    spec = tile_spec("tianditu", tianditu_key="a&b")
    assert all("tk=a%26b" in url for url, *_ in spec.layers)
    assert tile_spec("http://tiles.intranet/{z}/{x}/{y}.png").layers[0][0].startswith("http://")
    with pytest.raises(ValueError, match="tiles"):
        tile_spec("javascript:alert(1)/{z}/{x}/{y}")


def test_display_geometries_checks_rounds_and_shifts():
    frame = gpd.GeoDataFrame(
        {"code": ["a", "b"]}, geometry=[shapely.Point(102.1234567891, 25.1), shapely.Point(1, 1)]
    )
    with pytest.raises(ValueError, match="no CRS"):
        display_geometries(frame, layer="x")
    frame = frame.set_crs(4326)
    (p, _) = display_geometries(frame, layer="x")
    assert p.x == 102.123457
    (g, _) = display_geometries(frame, layer="x", gcj02=True)
    shift_m = shapely.distance(p, g) * 111_000
    assert 300 < shift_m < 700
    frame.loc[1, "geometry"] = shapely.Point()
    with pytest.raises(ValueError, match=r"x, record 'b', field geometry"):
        display_geometries(frame, layer="x")


def _text(html: str) -> str:
    """The page with JSON's \\uXXXX escapes decoded (folium writes non-ASCII that way)."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), html)


def _layer_names(html: str) -> list[str]:
    block = re.search(r"overlays\s*:\s*\{(.*?)\}", _text(html), re.S).group(1)
    return re.findall(r'"([^"]+)"\s*:', block)


def test_map_has_every_layer_and_no_cdn():
    m = build_map(tiny_data().map)
    html = map_html(m)
    names = _layer_names(html)
    for key in (
        "streets",
        "communities",
        "grids",
        "buildings",
        "households",
        "members",
        "pair_lines",
        "cadres",
        "stations",
    ):
        assert label(key) in names, key
    assert any(n.startswith(label("blindspots")) for n in names)
    assert not CDN.search(html)
    assert "<script src" not in html and "<link " not in html
    assert "L.markerClusterGroup" in html and "图例" in _text(html) and "覆盖概况" in _text(html)


def test_map_masks_people_unless_told():
    data = tiny_data().map
    masked = _text(map_html(build_map(data)))
    assert "张*丰" in masked and "张三丰" not in masked and "13912345678" not in masked
    full = _text(map_html(build_map(data, MapOptions(masked=False))))
    assert "张三丰" in full and "13912345678" in full


def test_map_scales_down_many_households_and_pairs():
    data = tiny_data().map
    html = map_html(build_map(data, MapOptions(cluster_max=10, lines_max=10)))
    assert "L.heatLayer" in html and "L.markerClusterGroup" not in html
    assert label("pair_lines") not in _layer_names(html)
    chosen = map_html(build_map(data, MapOptions(lines_max=10, selected_members=frozenset({"M1"}))))
    assert label("pair_lines") in _layer_names(chosen)


def test_map_in_english_with_gaode_tiles():
    html = map_html(build_map(tiny_data().map, MapOptions(lang="en", tiles="gaode")))
    assert "Members (active / reserve)" in _layer_names(html)
    assert "autonavi" in html
    # drawn coordinates are shifted to GCJ-02: the WGS84 street corner is gone
    assert "[25.05, 102.7]" not in html


def test_hostile_names_are_escaped_everywhere():
    report = tiny_data(hostile=True)
    html = _text(render_report(report))
    assert "<img src=x" not in html
    assert "${(window" not in html and "${window" not in html
    assert "`;window" not in html
    assert "</script><script>window" not in html
    assert "&lt;img src=x" in html or "\\u0026lt;img" in html
    for payload in XSS:
        assert payload not in html


def test_inline_assets_fails_loudly(tmp_path, monkeypatch):
    with pytest.raises(offline.MissingAsset, match="no offline copy"):
        offline.inline_assets('<script src="https://cdn.example/evil.js"></script>')
    with pytest.raises(offline.MissingAsset, match="external reference"):
        offline.inline_assets('<img src="https://cdn.example/x.png">')
    monkeypatch.setattr(offline, "NODE_MODULES", tmp_path)
    with pytest.raises(offline.MissingAsset, match="make assets"):
        offline.asset_path("https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js")


def test_inline_css_turns_images_into_data_uris():
    css = offline.inline_css(offline.asset_path("https://x/leaflet.css"))
    assert "url(images/" not in css and "data:image/png;base64," in css


def test_histogram_svg():
    svg = load_histogram_svg(
        np.array([0, 0, 5, 15, 20, 25, 30]),
        low=15,
        high=25,
        x_label="<b>x</b>",
        y_label="y",
        band_label="band",
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "&lt;b&gt;x" in svg and "<b>" not in svg
    assert svg.count('fill="#1a9850"') == 3  # 15, 20, 25 in range


def test_report_tables_and_privacy():
    report = tiny_data()
    html = _text(render_report(report))
    for key in (
        "coverage_by_community",
        "coverage_by_grid",
        "load_distribution",
        "distance_figures",
        "blindspot_lists",
        "plan_version",
        "generated_at",
    ):
        assert label(key) in html, key
    assert "<svg" in html and "2025-01-02 03:04" in html and "测试员3" in html
    assert "个人信息已脱敏" in html and "户主29" not in html and "户**9" in html
    assert label("low_income") not in html and "low_income" not in html
    full = _text(render_report(report, MapOptions(masked=False)))
    assert "户主29" in full and label("low_income") in full and "含完整个人信息" in full
    english = render_report(report, MapOptions(lang="en"))
    assert "Coverage by grid" in english and 'lang="en"' in english


RAW_NAME = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _headers(html: str) -> list[str]:
    aside = html[html.index("<aside") : html.index("</aside>")]
    return [h for h in re.findall(r"<th>(.*?)</th>", aside) if h]


def _visible_aside(html: str) -> str:
    aside = html[html.index("<aside") : html.index("</aside>")]
    return re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", " ", aside, flags=re.S))


@pytest.mark.parametrize("masked", [True, False])
def test_report_headers_and_texts_are_labelled(masked):
    report = tiny_data()
    zh = _text(render_report(report, MapOptions(masked=masked)))
    en = _text(render_report(report, MapOptions(lang="en", masked=masked)))
    for html, lang in ((zh, "zh"), (en, "en")):
        heads = _headers(html)
        assert heads and not [h for h in heads if RAW_NAME.search(h)], heads
        if lang == "zh":
            assert all(CJK.search(h) for h in heads), heads
        else:
            assert not [h for h in heads if CJK.search(h)], heads
        assert not RAW_NAME.findall(_visible_aside(html))
        names = _layer_names(html)
        assert not [n for n in names if RAW_NAME.search(n)], names
    assert label("low_income") in _headers(zh) if not masked else True


def test_point_blindspots_are_grouped_per_building():
    from maps.coverage_map import group_by_building

    points = shapely.points([102.7, 102.7001, 102.7002, 102.7102, 102.71021], [25.05] * 5)
    frame = gpd.GeoDataFrame(
        {
            "rank": [3, 1, 2, 5, 4],
            "reason": ["c", "a", "b", "e", "d"],
            "building_code": ["B1", "B1", "B2", None, None],
        },
        geometry=points,
        crs=4326,
    )
    out = group_by_building(frame)
    assert list(out["building_code"]) == ["B1", "B2", "–"]  # most urgent first
    assert list(out["count"]) == [2, 1, 2] and list(out["rank"]) == [1, 2, 4]
    assert list(out["reason"]) == ["a", "b", "d"]  # the most urgent one's reason
    assert out.geometry.iloc[0].x == pytest.approx(102.70005)


def test_walking_area_is_the_union_of_the_rings():
    from geodata.projection import to_lonlat, to_metres
    from maps.geo import walking_area

    x, y, epsg = to_metres([102.70], [25.05])
    lon, lat = to_lonlat(x + np.array([0.0, 300.0]), y + np.zeros(2), epsg=epsg)
    stations = gpd.GeoDataFrame(geometry=shapely.points(lon, lat), crs=4326)
    area = walking_area(stations, 500)
    assert len(area) == 1 and area.geometry.iloc[0].geom_type == "Polygon"
    probe_lon, probe_lat = to_lonlat(x + np.array([790.0, 810.0]), y + np.zeros(2), epsg=epsg)
    inside, outside = shapely.points(probe_lon, probe_lat)
    assert area.geometry.iloc[0].contains(inside) and not area.geometry.iloc[0].contains(outside)
    assert len(walking_area(stations.iloc[:0], 500)) == 0
