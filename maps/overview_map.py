"""The overview map of a street or district: a page that fetches aggregated GeoJSON (communities
and grids shaded by coverage) and, when zoomed in, the households of the visible box.

The page holds no data itself: it asks the service, so a 1,000,000-household district costs
one aggregated answer of polygons, and household points only ever for a small box.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import folium
from branca.element import MacroElement
from folium.template import Template

from maps.controls import HtmlControl, legend_html
from maps.coverage_map import RAMP
from maps.labels import label
from maps.offline import prune_default_links
from maps.tiles import add_tiles, tile_spec


@dataclass(frozen=True)
class OverviewOptions:
    """Where the data comes from and when the detail appears."""

    areas_url: str
    points_url: str
    lang: str = "zh"
    tiles: str = "none"
    tianditu_key: str = ""
    grid_zoom: int = 14  # communities below this zoom, grids from it
    points_zoom: int = 17  # households from this zoom (the box is then small)


class _Overview(MacroElement):
    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, o = {{ this.config|tojson }};
            function color(share) {
                if (share === null || share === undefined) return "#cccccc";
                var i = Math.min(o.ramp.length - 1, Math.floor(share * o.ramp.length));
                return o.ramp[i];
            }
            function tip(p) {  // text only: names never become HTML
                var el = document.createElement("div"), b = document.createElement("b");
                b.textContent = p.name || p.code;
                el.appendChild(b);
                var share = p.paired_share === null ? "–" : Math.round(p.paired_share * 100) + "%";
                var line = document.createElement("div");
                line.textContent = o.t.households + " " + p.households.toLocaleString() + " · " +
                    o.t.share + " " + share;
                el.appendChild(line);
                return el;
            }
            function areas(weight, opacity) {
                return L.geoJSON(null, {
                    style: function (f) {
                        return {color: "#1f4e9c", weight: weight, fillOpacity: opacity,
                                fillColor: color(f.properties.paired_share)};
                    },
                    onEachFeature: function (f, layer) {
                        layer.bindTooltip(tip(f.properties), {sticky: true});
                    }
                });
            }
            var communities = areas(2, 0.55), grids = areas(1, 0.45);
            var points = L.layerGroup(), loaded = null;
            function show(layer, on) {
                if (on && !map.hasLayer(layer)) map.addLayer(layer);
                if (!on && map.hasLayer(layer)) map.removeLayer(layer);
            }
            function householdsInView() {
                var b = map.getBounds(), key = b.toBBoxString();
                if (key === loaded) return;
                loaded = key;
                fetch(o.points + "?bbox=" + key, {credentials: "same-origin"})
                    .then(function (r) { return r.ok ? r.json() : {features: []}; })
                    .then(function (fc) {
                        points.clearLayers();
                        fc.features.forEach(function (f) {
                            var c = f.geometry.coordinates, p = f.properties.paired;
                            var m = L.circleMarker([c[1], c[0]], {radius: 4, weight: 1,
                                fillOpacity: 0.85, color: p ? "#1a9850" : "#d73027",
                                fillColor: p ? "#66bd63" : "#f46d43"});
                            var el = document.createElement("div");
                            el.textContent = o.t.household + " " + f.properties.code + " · " +
                                (p ? o.t.paired : o.t.unpaired);
                            m.bindTooltip(el);
                            points.addLayer(m);
                        });
                    });
            }
            function update() {
                var z = map.getZoom();
                show(communities, z < o.gridZoom);
                show(grids, z >= o.gridZoom);
                show(points, z >= o.pointsZoom);
                if (z >= o.pointsZoom) { householdsInView(); return; }
                points.clearLayers();
                loaded = null;
            }
            var started = performance.now();
            fetch(o.areas, {credentials: "same-origin"})
                .then(function (r) { return r.json(); })
                .then(function (fc) {
                    fc.features.forEach(function (f) {
                        (f.properties.layer === "community" ? communities : grids).addData(f);
                    });
                    var bounds = communities.getBounds();
                    if (bounds.isValid()) map.fitBounds(bounds);
                    update();
                    var took = Math.round(performance.now() - started);
                    document.body.setAttribute("data-drawn-ms", took);
                });
            map.on("zoomend moveend", update);
        })();
        {% endmacro %}
        """
    )

    def __init__(self, config: dict[str, object]) -> None:
        super().__init__()
        self._name = "Overview"
        self.config = config


def build_overview(options: OverviewOptions) -> folium.Map:
    """The overview map page (render it with :func:`maps.report.map_html`: no CDN)."""
    lang = options.lang
    m = folium.Map(location=[35.0, 105.0], zoom_start=4, tiles=None, control_scale=True,
                   width="100%", height="100%")  # fmt: skip
    m.options["maxZoom"] = 19
    prune_default_links(m)
    add_tiles(m, tile_spec(options.tiles, tianditu_key=options.tianditu_key))
    texts = {
        "households": label("households_count", lang),
        "share": label("share_paired", lang),
        "household": label("household", lang),
        "paired": label("paired", lang),
        "unpaired": label("unpaired", lang),
    }
    config = {
        "areas": options.areas_url,
        "points": options.points_url,
        "gridZoom": options.grid_zoom,
        "pointsZoom": options.points_zoom,
        "ramp": RAMP,
        "t": texts,
    }
    json.dumps(config)  # plain data only
    _Overview(config).add_to(m)
    items = [
        {"kind": "ramp", "colors": RAMP, "label": label("share_paired", lang)},
        {"kind": "dot", "color": "#66bd63", "edge": "#1a9850", "size": 8,
         "label": f"{label('household', lang)}·{label('paired', lang)}"},
        {"kind": "dot", "color": "#f46d43", "edge": "#d73027", "size": 8,
         "label": f"{label('household', lang)}·{label('unpaired', lang)}"},
    ]  # fmt: skip
    HtmlControl(legend_html(label("legend", lang), items, open_=True), position="bottomright",
                css_class="gs-legend-box").add_to(m)  # fmt: skip
    return m
