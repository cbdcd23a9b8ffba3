"""Reports opened in headless Debian chromium with networking off."""

from __future__ import annotations

import pytest
from maps_helpers import tiny_data

from maps.coverage_map import MapOptions
from maps.labels import label
from maps.report import write_report
from maps.sample import sample_map_data

pytestmark = pytest.mark.browser

OVERLAYS = (
    "() => [...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
    ".map(l => l.textContent.trim())"
)

# Hover every feature so that each tooltip renders its HTML (where an XSS would run).
HOVER_ALL = """() => {
    document.querySelectorAll('.leaflet-control-layers-overlays input:not(:checked)')
        .forEach(input => input.click());
    const texts = [];
    for (const key of Object.keys(window)) {
        const group = window[key];
        if (!key.startsWith('geo_json_') || !group || !group.getTooltip || !group.getTooltip()) {
            continue;
        }
        group.eachLayer(layer => {
            if (!layer._map) return;
            const at = layer.getLatLng ? layer.getLatLng() : layer.getBounds().getCenter();
            layer.fire('mouseover', {latlng: at}, true);
            const el = group.getTooltip().getElement();
            texts.push(el ? el.innerText : '');
            layer.fire('mouseout', {latlng: at}, true);
        });
    }
    return texts;
}"""


def test_demo_street_report_opens_offline(tmp_path, offline_page):
    data, extras = sample_map_data()
    path = tmp_path / "street.html"
    from maps.report import ReportData

    report = ReportData(
        title="示例街道",
        scope="530102001",
        map=data,
        communities=extras["communities"].drop(columns="geometry"),
        grids=extras["grids"].drop(columns="geometry"),
        loads=extras["loads"],
        distances=extras["distances"],
        blindspots=dict(data.blindspots),
    )
    write_report(path, report)
    offline_page.open(path, wait_ms=300)
    assert offline_page.errors == []
    assert offline_page.requests == []
    drawn = offline_page.drawn_pixels(".folium-map")
    assert drawn > 50_000, drawn
    names = offline_page.page.evaluate(OVERLAYS)
    for key in (
        "streets",
        "communities",
        "grids",
        "buildings",
        "households",
        "members",
        "cadres",
        "stations",
    ):
        assert label(key) in names, (key, names)
    assert offline_page.page.locator("aside.gs-tables table").count() >= 5
    offline_page.page.screenshot(path=str(tmp_path / "street.png"))


def test_english_report_without_tiles(tmp_path, offline_page):
    path = tmp_path / "en.html"
    write_report(path, tiny_data(), MapOptions(lang="en"))
    offline_page.open(path)
    assert offline_page.errors == [] and offline_page.requests == []
    assert "Members (active / reserve)" in offline_page.page.evaluate(OVERLAYS)
    assert offline_page.drawn_pixels(".folium-map") > 10_000


def test_hostile_names_never_run(tmp_path, offline_page):
    path = tmp_path / "xss.html"
    write_report(path, tiny_data(hostile=True), MapOptions(masked=False))
    offline_page.open(path, wait_ms=200)
    page = offline_page.page
    tooltips = page.evaluate(HOVER_ALL)
    assert len(tooltips) > 50
    page.wait_for_timeout(200)
    # the payloads are shown as text, and none of them ran
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src=x]").count() == 0
    assert offline_page.errors == []
    assert "<img src=x" in page.locator("h1").inner_text()
    assert sum("<img src=x" in text for text in tooltips) > 5, tooltips[:5]
    assert sum("${" in text for text in tooltips) > 5, tooltips[:5]


MAP = (
    "Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])"
    ".find(m => m && m.getZoom)"
)
CHECKED = (
    "() => [...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
    ".filter(l => l.querySelector('input').checked).map(l => l.textContent.trim())"
)


def _zoom_to(page, zoom: float) -> None:
    page.evaluate(f"z => {{ const m = {MAP}; m.setZoom(z, {{animate: false}}); }}", zoom)
    page.wait_for_timeout(150)


def test_street_scale_shows_a_readable_default(tmp_path, offline_page):
    data, _ = sample_map_data()
    path = tmp_path / "street.html"
    from maps.report import ReportData

    write_report(path, ReportData(title="示例街道", scope="530102001", map=data))
    offline_page.open(path, wait_ms=300)
    page = offline_page.page
    fitted = page.evaluate(f"() => {MAP}.getZoom()")
    assert 13 <= fitted < 16, fitted
    shown = page.evaluate(CHECKED)
    for key in ("streets", "communities", "grids", "buildings", "stations"):
        assert label(key) in shown, (key, shown)
    detail = [label(k) for k in ("households", "members", "pair_lines", "cadres")]
    assert not set(detail) & set(shown), shown
    rings = [n for n in page.evaluate(OVERLAYS) if "步行圈" in n]
    assert len(rings) == 3 and [n for n in rings if n in shown] == ["500米步行圈"]
    spots = [n for n in shown if n.startswith(label("blindspots"))]
    assert spots and all("按楼栋汇总" in n for n in spots if "住户" in n), shown
    # members and their lines appear from zoom 16 and go again when zoomed out
    _zoom_to(page, 16)
    assert {label("members"), label("pair_lines")} <= set(page.evaluate(CHECKED))
    _zoom_to(page, fitted)
    assert label("pair_lines") not in page.evaluate(CHECKED)
    # at street scale a click on a member draws that member's lines only
    page.evaluate(
        """name => [...document.querySelectorAll('.leaflet-control-layers-overlays label')]
        .find(l => l.textContent.trim() === name).querySelector('input').click()""",
        label("members"),
    )
    selected = """code => {
        const m = MAP;
        return Object.values(m._layers).filter(l => l.feature && l.feature.properties
            && l.feature.properties.member_code === code).length;
    }""".replace("MAP", MAP)
    code = page.evaluate(
        """() => {
        const m = MAP;
        for (const key of Object.keys(window).filter(k => k.startsWith('geo_json_'))) {
            const group = window[key];
            if (!group || !group._map || !group.eachLayer) continue;
            let found = null;
            group.eachLayer(l => { if (!found && l.feature && l.feature.properties.load > 0
                && l.feature.properties.kind) found = l; });
            if (found) {
                found.fire('click', {latlng: found.getLatLng()}, true);
                return found.feature.properties.code;
            }
        }
        return null;
    }""".replace("MAP", MAP)
    )
    assert code is not None
    assert page.evaluate(selected, code) > 0
    assert page.evaluate(selected, "no such member") == 0
    assert offline_page.errors == [] and offline_page.requests == []
