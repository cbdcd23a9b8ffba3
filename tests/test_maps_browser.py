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
