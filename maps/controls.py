"""Leaflet controls drawn on the map: legend, summary panel, and zoom-dependent layers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from branca.element import MacroElement
from folium.template import Template

from maps.safe import finalize

_ENV = jinja2.Environment(autoescape=True, finalize=finalize, undefined=jinja2.StrictUndefined)

_BOX_CSS = (
    "background:rgba(255,255,255,.92);padding:6px 9px;border-radius:5px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.35);font:12px/1.45 sans-serif;max-width:260px;"
)

LEGEND = _ENV.from_string(
    """<details class="gs-legend" style="{{ css }}"{{ ' open' if open_ else '' }}>
<summary style="cursor:pointer"><b>{{ title }}</b></summary>
{%- for item in items %}
<div class="gs-legend-item">
{%- if item.kind == 'ramp' -%}
<span style="display:inline-block;width:90px;height:10px;vertical-align:middle;
background:linear-gradient(to right,{{ item.colors|join(',') }})"></span>
<span>0–100% {{ item.label }}</span>
{%- elif item.kind == 'line' -%}
<span style="display:inline-block;width:18px;border-top:2px {{ item.dash }} {{ item.color }};
vertical-align:middle"></span> {{ item.label }}
{%- else -%}
<span style="display:inline-block;width:{{ item.size }}px;height:{{ item.size }}px;
border-radius:{{ '50%' if item.kind == 'dot' else '2px' }};background:{{ item.color }};
border:1px solid {{ item.edge }};vertical-align:middle"></span> {{ item.label }}
{%- endif %}</div>
{%- endfor %}</details>"""
)

SUMMARY = _ENV.from_string(
    """<div class="gs-summary" style="{{ css }}"><b>{{ title }}</b>
<table>{% for name, value in rows %}<tr><td>{{ name }}</td>
<td style="text-align:right;padding-left:8px"><b>{{ value }}</b></td></tr>{% endfor %}</table>
</div>"""
)


class HtmlControl(MacroElement):
    """A Leaflet control holding a fixed piece of HTML (escaped when it was rendered)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var control = L.control({position: {{ this.position|tojson }}});
            control.onAdd = function () {
                var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
                div.innerHTML = {{ this.html|tojson }};
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            control.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, html: str, *, position: str, css_class: str) -> None:
        super().__init__()
        self._name = "HtmlControl"
        self.html = html
        self.position = position
        self.css_class = css_class


class ShowFromZoom(MacroElement):
    """Add a layer when the map is zoomed in to ``zoom`` or closer, remove it when zoomed out."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, layer = {{ this.layer.get_name() }};
            var limit = {{ this.zoom|tojson }}, before = map.getZoom();
            map.on("zoomend", function () {
                var now = map.getZoom();
                if (now >= limit && before < limit && !map.hasLayer(layer)) map.addLayer(layer);
                if (now < limit && before >= limit && map.hasLayer(layer)) map.removeLayer(layer);
                before = now;
            });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, layer: Any, *, zoom: int) -> None:
        super().__init__()
        self._name = "ShowFromZoom"
        self.layer = layer
        self.zoom = zoom


class SelectLines(MacroElement):
    """Click a feature of ``points`` to draw the features of ``lines`` whose ``key`` property
    equals its ``code`` (at any zoom); click it again to hide them."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, points = {{ this.points.get_name() }};
            var lines = {{ this.lines.get_name() }}, chosen = L.layerGroup().addTo(map);
            var key = {{ this.key|tojson }}, style = {{ this.style|tojson }}, shown = null;
            points.on("click", function (e) {
                var code = e.layer.feature.properties.code;
                chosen.clearLayers();
                shown = shown === code ? null : code;
                if (shown === null) return;
                lines.eachLayer(function (line) {
                    if (line.feature.properties[key] === code) {
                        var drawn = {style: style, interactive: false};
                        chosen.addLayer(L.geoJSON(line.feature, drawn));
                    }
                });
            });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, points: Any, lines: Any, *, key: str, style: Mapping[str, Any]) -> None:
        super().__init__()
        self._name = "SelectLines"
        self.points = points
        self.lines = lines
        self.key = key
        self.style = dict(style)


def legend_html(title: str, items: list[Mapping[str, Any]], *, open_: bool = True) -> str:
    """The legend box (a ``<details>``): items of kind ``ramp``, ``line``, ``dot``, ``square``."""
    return LEGEND.render(css=_BOX_CSS, title=title, items=items, open_=open_)


def summary_html(title: str, rows: list[tuple[str, str]]) -> str:
    """The summary panel: (label, value) rows."""
    return SUMMARY.render(css=_BOX_CSS, title=title, rows=rows)


#: Map chrome that keeps out of the way: the layer list and the legend scroll instead of
#: covering each other; on a phone (narrow screen) the summary hides, and the layer list and
#: legend collapse behind their buttons so the map keeps the screen.
_LAYOUT_CSS = """
.leaflet-control-layers-expanded{max-height:46vh;overflow-y:auto}
.gs-legend-box .gs-legend{max-height:36vh;overflow-y:auto}
.gs-focus-label{font-weight:bold;border:2px solid #b30000}
@media (max-width:700px){
 .gs-summary-box{display:none}
 .gs-legend-box .gs-legend{max-width:60vw;font-size:11px}
 .leaflet-control-layers-expanded{max-height:55vh;font-size:12px}
}
"""


class PhoneLayout(MacroElement):
    """CSS for the map's controls, and on narrow screens a collapsed layer list and legend."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}<style>{{ this.css }}</style>{% endmacro %}
        {% macro script(this, kwargs) %}
        (function () {
            if (!window.matchMedia("(max-width: 700px)").matches) return;
            var map = {{ this._parent.get_name() }}, control = {{ this.control.get_name() }};
            map.removeControl(control);
            control.options.collapsed = true;
            control.addTo(map);
            var legends = document.querySelectorAll("details.gs-legend");
            legends.forEach(function (d) { d.open = false; });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, control: Any) -> None:
        super().__init__()
        self._name = "PhoneLayout"
        self.control = control
        self.css = _LAYOUT_CSS
