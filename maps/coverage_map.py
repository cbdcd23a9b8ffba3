"""The coverage map: boundaries, buildings, households, members, cadres, stations, blind spots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.colormap import LinearColormap
from folium import plugins

from maps import geo
from maps.controls import (
    HtmlControl,
    PhoneLayout,
    SelectLines,
    ShowFromZoom,
    legend_html,
    summary_html,
)
from maps.labels import column_label, kind_label, label
from maps.offline import prune_default_links
from maps.safe import PLACE_KINDS, esc, mask_name, mask_phone
from maps.tiles import add_tiles, tile_spec

RAMP = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"]  # share paired 0 → 1
ACTIVE, RESERVE, CADRE, PAIR_LINE = "#c00000", "#8c8c8c", "#6a3d9a", "#c00000"
RING_COLORS = ["#e31a1c", "#fd8d3c", "#feb24c", "#fed976"]
WARNING = ["#ff00a8", "#b3007a", "#ff5ecf", "#7a0052", "#ff99e0", "#d4008c"]  # blind spots
CELL_DEG = 0.0005  # about 50 m: point blind spots with no building are grouped by such cells
HEAT = {0.4: "#c6dbef", 0.7: "#6baed6", 1.0: "#08519c"}

_share_color = LinearColormap(RAMP, vmin=0.0, vmax=1.0)


@dataclass(frozen=True)
class MapData:
    """Everything a coverage map can draw; each frame is optional and in EPSG:4326.

    Attributes
    ----------
    streets, communities
        Polygons with ``code`` and ``name``.
    grids, buildings
        Polygons with ``code``, ``name``, ``households`` and ``paired`` (counts); buildings
        with ``contact_<status>`` counts get a layer shaded by contact status.
    households
        Points with ``paired`` (bool); with ``contact_status`` (``ok``, ``due_soon``,
        ``overdue``, ``never``; empty when unpaired) a contact layer is drawn too.
    members
        Points with ``code``, ``name``, ``kind``, ``active`` (bool), ``load`` (households) and
        optionally ``phone`` and ``contacted_share`` (a layer of members by share contacted).
    pairs
        Member→household LineStrings with ``member_code``.
    cadres
        Points with ``code``, ``name``, ``level``, ``load`` (members) and optionally ``phone``.
    cadre_pairs
        Cadre→member LineStrings with ``cadre_code``.
    stations
        Points with ``code``, ``name`` and optionally ``services``.
    blindspots
        Kind → frame with ``rank`` and ``reason`` (and optionally ``code``/``name``).
    summary
        Figure name (a label key) → value, shown in the summary panel.
    """

    streets: gpd.GeoDataFrame | None = None
    communities: gpd.GeoDataFrame | None = None
    grids: gpd.GeoDataFrame | None = None
    buildings: gpd.GeoDataFrame | None = None
    households: gpd.GeoDataFrame | None = None
    members: gpd.GeoDataFrame | None = None
    pairs: gpd.GeoDataFrame | None = None
    cadres: gpd.GeoDataFrame | None = None
    cadre_pairs: gpd.GeoDataFrame | None = None
    stations: gpd.GeoDataFrame | None = None
    blindspots: Mapping[str, gpd.GeoDataFrame] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)
    #: Residents' requests (issue 11): points with ``status``, ``category`` and ``recent``
    #: (registered in the last 90 days): a layer by status and a heat layer per category.
    requests: gpd.GeoDataFrame | None = None


@dataclass(frozen=True)
class MapOptions:
    """How to draw: language, tiles, privacy and the size limits that keep files small."""

    lang: str = "zh"
    tiles: str = "none"
    tianditu_key: str = ""
    masked: bool = True
    cluster_max: int = 20_000
    lines_max: int = 20_000
    selected_members: frozenset[str] = frozenset()
    rings_m: tuple[int, ...] = (300, 500, 1000)
    ring_shown_m: int | None = 500  # the walking ring drawn at first; the others on toggle
    detail_zoom: int = 16  # members and their lines appear from here, households one zoom on
    blindspots_max: int = 3_000
    blindspots_grouped_above: int = 100  # more point blind spots than this: one per building
    blindspots_hidden: frozenset[str] = frozenset(
        {"members_without_cadre", "station_gaps", "overdue_contact"}
    )
    simplify_m: float = 1.0
    compact: bool = False  # collapsed layer control and legend, no summary panel (reports)
    focus: tuple[float, float, str] | None = None  # open on (lat, lon), highlighted, labelled


@dataclass
class _Ctx:
    """What every layer builder needs."""

    m: folium.Map
    opts: MapOptions
    gcj02: bool
    legend: list[dict[str, Any]] = field(default_factory=list)

    def t(self, key: str, **fmt: object) -> str:
        return label(key, self.opts.lang, **fmt)

    def aside(self, text: str) -> str:
        """``text`` in brackets, as the language writes them."""
        return f"（{text}）" if self.opts.lang == "zh" else f" ({text})"

    def geoms(self, frame: gpd.GeoDataFrame, layer: str, *, simplify: bool = False) -> np.ndarray:
        tolerance = self.opts.simplify_m if simplify else 0.0
        return geo.display_geometries(frame, layer=layer, gcj02=self.gcj02, simplify_m=tolerance)


def build_map(data: MapData, options: MapOptions | None = None) -> folium.Map:
    """Draw a coverage map.

    Parameters
    ----------
    data
        The layers to draw (see :class:`MapData`).
    options
        Language, base tiles, masking and size limits (see :class:`MapOptions`).

    Returns
    -------
    folium.Map
        A map whose every layer is in a layer control, with a legend and a summary panel. Render
        it with :func:`maps.report.map_html` to get a page that needs no network.

    Raises
    ------
    ValueError
        On a bad tiles setting, a frame without CRS or a record without geometry.
    """
    opts = options or MapOptions()
    label("legend", opts.lang)  # validates the language
    spec = tile_spec(opts.tiles, tianditu_key=opts.tianditu_key)
    m = folium.Map(
        location=[35.0, 105.0],
        zoom_start=4,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        width="100%",
        height="100%",
    )
    m.options["maxZoom"] = 19  # clusters need it when there are no tiles
    prune_default_links(m)
    add_tiles(m, spec)
    ctx = _Ctx(m, opts, spec.gcj02)
    # people and stations above households and polygons: their tooltips are the ones shown
    folium.map.CustomPane(PEOPLE_PANE, z_index=640).add_to(m)
    for frame, key, color, weight in (
        (data.streets, "streets", "#222222", 3),
        (data.communities, "communities", "#1f4e9c", 2),
    ):
        if frame is not None and len(frame):
            _boundaries(ctx, frame, key, color, weight)
    for frame, key in ((data.grids, "grids"), (data.buildings, "buildings")):
        if frame is not None and len(frame):
            _shaded(ctx, frame, key)
    if data.households is not None and len(data.households):
        _households(ctx, data.households)
    _contact_layers(ctx, data)
    if data.requests is not None and len(data.requests):
        _request_layers(ctx, data.requests)
    if data.members is not None and len(data.members):
        _members(ctx, data.members, data.pairs)
    if data.cadres is not None and len(data.cadres):
        _cadres(ctx, data.cadres, data.cadre_pairs)
    if data.stations is not None and len(data.stations):
        _stations(ctx, data.stations)
    for i, (kind, frame) in enumerate(data.blindspots.items()):
        if frame is not None and len(frame):
            _blindspots(ctx, kind, frame, WARNING[i % len(WARNING)])
    control = folium.LayerControl(collapsed=opts.compact).add_to(m)
    if opts.focus:
        _focus(ctx, *opts.focus)
    else:
        _fit(m, data, ctx)
    HtmlControl(
        legend_html(ctx.t("legend"), ctx.legend, open_=not opts.compact),
        position="bottomright",
        css_class="gs-legend-box",
    ).add_to(m)
    if data.summary and not opts.compact:
        rows = [(column_label(k, opts.lang), format_figure(k, v)) for k, v in data.summary.items()]
        html = summary_html(ctx.t("summary"), rows)
        HtmlControl(html, position="bottomleft", css_class="gs-summary-box").add_to(m)
    PhoneLayout(control).add_to(m)  # after the legend: it closes the legend on a phone
    return m


def format_figure(key: str, value: Any) -> str:
    """A summary figure as text: shares as percentages, counts with thousands separators."""
    if value is None:
        return "–"
    if isinstance(value, float) and (
        "coverage" in key or "share" in key or key.startswith("reach_")
    ):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return str(value)


def _boundaries(ctx: _Ctx, frame: gpd.GeoDataFrame, key: str, color: str, weight: int) -> None:
    geoms = ctx.geoms(frame, key, simplify=True)
    data = geo.feature_collection(geoms, {"code": frame["code"], "name": frame["name"]})
    style = {"color": color, "weight": weight, "fill": False, "opacity": 0.9}
    folium.GeoJson(
        data,
        name=esc(ctx.t(key)),
        style_function=lambda _f: style,
        tooltip=_tooltip(ctx, ["name", "code"], ["name", "code"]),
    ).add_to(ctx.m)
    ctx.legend.append({"kind": "line", "color": color, "dash": "solid", "label": ctx.t(key)})


def _shaded(ctx: _Ctx, frame: gpd.GeoDataFrame, key: str) -> None:
    geoms = ctx.geoms(frame, key, simplify=True)
    households = frame["households"].fillna(0).to_numpy(dtype=float)
    paired = frame["paired"].fillna(0).to_numpy(dtype=float)
    share = np.divide(paired, households, out=np.zeros_like(paired), where=households > 0)
    shown = [f"{s:.0%}" if h > 0 else "–" for s, h in zip(share, households, strict=True)]
    styles = [
        {
            "color": "#555555" if key == "buildings" else "#1f4e9c",
            "weight": 0.6 if key == "buildings" else 1.2,
            "fillColor": _share_color(s) if h > 0 else "#cccccc",
            "fillOpacity": 0.65 if key == "buildings" else 0.35,
        }
        for s, h in zip(share, households, strict=True)
    ]
    props = {
        "name": frame["name"],
        "code": frame["code"],
        "households": households.astype(int),
        "paired": paired.astype(int),
        "share": shown,
    }
    folium.GeoJson(
        geo.feature_collection(geoms, props),
        name=esc(ctx.t(key)),
        style_function=geo.style_by_id(styles),
        tooltip=_tooltip(
            ctx,
            list(props),
            ["name", "code", "households_count", "paired_count", "share_paired"],
        ),
    ).add_to(ctx.m)
    if not any(item["kind"] == "ramp" for item in ctx.legend):
        ctx.legend.append({"kind": "ramp", "colors": RAMP, "label": ctx.t("share_paired")})


_HOUSEHOLD_CALLBACK = """
function (row) {
    var marker = L.circleMarker(new L.LatLng(row[0], row[1]), {
        radius: 4, weight: 1, fillOpacity: 0.85,
        color: row[2] ? "#1a9850" : "#d73027", fillColor: row[2] ? "#66bd63" : "#f46d43"
    });
    if (row[3]) marker.bindTooltip(row[3], {sticky: true});
    return marker;
}
"""


def _households(ctx: _Ctx, frame: gpd.GeoDataFrame) -> None:
    geoms = ctx.geoms(frame, "households")
    rows = geo.latlon_rows(geoms)
    if len(rows) > ctx.opts.cluster_max:
        plugins.HeatMap(
            rows,
            name=esc(ctx.t("households_heat")),
            radius=10,
            blur=12,
            min_opacity=0.15,
            gradient=HEAT,
            show=False,
        ).add_to(ctx.m)
        ctx.legend.append(
            {
                "kind": "square",
                "color": HEAT[1.0],
                "edge": HEAT[0.4],
                "size": 10,
                "label": ctx.t("households_heat"),
            }
        )
        return
    paired = frame["paired"].fillna(False).astype(bool).to_numpy().astype(int)
    codes = frame["code"].astype(str).tolist() if "code" in frame else [""] * len(frame)
    states = (ctx.t("unpaired"), ctx.t("paired"))
    for row, p, code in zip(rows, paired, codes, strict=True):
        tip = f"{ctx.t('household')} {code}<br>{states[int(p)]}" if code else states[int(p)]
        row.extend([int(p), esc(tip).replace("&lt;br&gt;", "<br>")])
    # FastMarkerCluster adds itself to its parent whatever ``show`` says: hide it in a group.
    group = folium.FeatureGroup(name=esc(ctx.t("households")), show=False).add_to(ctx.m)
    plugins.FastMarkerCluster(
        rows,
        callback=_HOUSEHOLD_CALLBACK,
        options={"chunkedLoading": True, "disableClusteringAtZoom": 18, "maxClusterRadius": 40},
        control=False,
    ).add_to(group)
    ShowFromZoom(group, zoom=ctx.opts.detail_zoom + 1).add_to(ctx.m)
    zoom = ctx.t("from_zoom", z=ctx.opts.detail_zoom + 1)
    for key, color in (("paired", "#66bd63"), ("unpaired", "#f46d43")):
        ctx.legend.append(
            {
                "kind": "dot",
                "color": color,
                "edge": color,
                "size": 8,
                "label": f"{ctx.t('households')}·{ctx.t(key)}{ctx.aside(zoom)}",
            }
        )


#: Contact status → colour: within cadence, due within 7 days, overdue, never contacted.
CONTACT_COLORS = {"ok": "#1a9850", "due_soon": "#fdae61", "overdue": "#d73027", "never": "#6a0177"}
CONTACT_STATUSES = tuple(CONTACT_COLORS)

_CONTACT_CALLBACK = """
function (row) {
    var colors = COLORS;
    return L.circleMarker(new L.LatLng(row[0], row[1]), {
        radius: 4, weight: 1, fillOpacity: 0.9, color: colors[row[2]], fillColor: colors[row[2]]
    });
}
""".replace("COLORS", json.dumps(list(CONTACT_COLORS.values())))


def _contact_layers(ctx: _Ctx, data: MapData) -> None:
    """Buildings and households shaded by days since the last contact; members by the share of
    their households contacted within cadence (layers hidden at first)."""
    drawn = False
    b = data.buildings
    if b is not None and len(b) and "contact_never" in b:
        _contact_buildings(ctx, b)
        drawn = True
    h = data.households
    if h is not None and len(h) and "contact_status" in h:
        drawn |= _contact_households(ctx, h)
    if drawn:
        for status, color in CONTACT_COLORS.items():
            ctx.legend.append(
                {"kind": "square", "color": color, "edge": color, "size": 10,
                 "label": ctx.t(f"contact_{status}")}
            )  # fmt: skip
    m = data.members
    if m is not None and len(m) and "contacted_share" in m:
        _contact_members(ctx, m)


#: Request status → colour (waiting and declined red, in hand orange, closed green).
REQUEST_COLORS = {
    "waiting": "#d73027",
    "returned": "#d73027",
    "escalated": "#6a0177",
    "dispatched": "#fc8d59",
    "accepted": "#fdae61",
    "in_progress": "#fee08b",
    "done": "#1a9850",
    "visited": "#006837",
}
REQUEST_CATEGORIES = ("mediation", "sanitation", "elderly_care", "policy", "repair", "other")
_REQUEST_CALLBACK = _CONTACT_CALLBACK.replace(
    json.dumps(list(CONTACT_COLORS.values())), json.dumps(list(REQUEST_COLORS.values()))
)


def _request_layers(ctx: _Ctx, frame: gpd.GeoDataFrame) -> None:
    """Requests as points coloured by status, and a 90-day heat layer per category (hidden)."""
    frame = frame[frame["status"].isin(tuple(REQUEST_COLORS))]
    if not len(frame) or len(frame) > ctx.opts.cluster_max:
        return
    rows = geo.latlon_rows(ctx.geoms(frame, "households"))
    index = {s: i for i, s in enumerate(REQUEST_COLORS)}
    for row, s in zip(rows, frame["status"], strict=True):
        row.append(index[s])
    group = folium.FeatureGroup(name=esc(ctx.t("requests_by_status")), show=False).add_to(ctx.m)
    plugins.FastMarkerCluster(
        rows,
        callback=_REQUEST_CALLBACK,
        options={"chunkedLoading": True, "disableClusteringAtZoom": 17, "maxClusterRadius": 40},
        control=False,
    ).add_to(group)
    shown = set(frame["status"])
    for status, color in REQUEST_COLORS.items():
        if status in shown:
            ctx.legend.append(
                {"kind": "square", "color": color, "edge": color, "size": 10,
                 "label": ctx.t(f"request_{status}")}
            )  # fmt: skip
    recent = frame["recent"].to_numpy(bool)
    for category in REQUEST_CATEGORIES:
        pick = recent & (frame["category"] == category).to_numpy()
        if not pick.any():
            continue
        points = [r[:2] for r, keep in zip(rows, pick, strict=True) if keep]
        name = f"{ctx.t('requests_heat')}{ctx.aside(ctx.t(f'request_cat_{category}'))}"
        layer = folium.FeatureGroup(name=esc(name), show=False).add_to(ctx.m)
        plugins.HeatMap(points, radius=18, blur=14, min_opacity=0.3).add_to(layer)


def _contact_buildings(ctx: _Ctx, frame: gpd.GeoDataFrame) -> None:
    counts = frame[[f"contact_{s}" for s in CONTACT_STATUSES]].fillna(0).to_numpy(int)
    keep = counts.sum(axis=1) > 0
    frame, counts = frame[keep], counts[keep]
    if not len(frame):
        return
    # the status most of the building's households are in (ties: the more urgent one)
    worst_first = counts[:, ::-1]
    status = np.array(CONTACT_STATUSES)[::-1][worst_first.argmax(axis=1)]
    geoms = ctx.geoms(frame, "buildings", simplify=True)
    styles = [
        {"color": "#555555", "weight": 0.6, "fillColor": CONTACT_COLORS[s], "fillOpacity": 0.7}
        for s in status
    ]
    props = {"name": frame["name"], "code": frame["code"]}
    for i, s in enumerate(CONTACT_STATUSES):
        props[f"contact_{s}"] = counts[:, i]
    folium.GeoJson(
        geo.feature_collection(geoms, props),
        name=esc(ctx.t("contact_buildings")),
        style_function=geo.style_by_id(styles),
        tooltip=_tooltip(
            ctx, list(props), ["name", "code", *[f"contact_{s}" for s in CONTACT_STATUSES]]
        ),
        show=False,
    ).add_to(ctx.m)


def _contact_households(ctx: _Ctx, frame: gpd.GeoDataFrame) -> bool:
    frame = frame[frame["contact_status"].isin(CONTACT_STATUSES)]
    if not len(frame) or len(frame) > ctx.opts.cluster_max:
        return False
    rows = geo.latlon_rows(ctx.geoms(frame, "households"))
    index = {s: i for i, s in enumerate(CONTACT_STATUSES)}
    for row, s in zip(rows, frame["contact_status"], strict=True):
        row.append(index[s])
    group = folium.FeatureGroup(name=esc(ctx.t("contact_households")), show=False).add_to(ctx.m)
    plugins.FastMarkerCluster(
        rows,
        callback=_CONTACT_CALLBACK,
        options={"chunkedLoading": True, "disableClusteringAtZoom": 17, "maxClusterRadius": 40},
        control=False,
    ).add_to(group)
    return True


def _contact_members(ctx: _Ctx, frame: gpd.GeoDataFrame) -> None:
    frame = frame[frame["contacted_share"].notna()]
    if not len(frame):
        return
    share = frame["contacted_share"].to_numpy(float)
    styles = [
        {"radius": 6, "fill": True, "color": "#ffffff", "weight": 1,
         "fillColor": _share_color(v), "fillOpacity": 0.95}
        for v in share
    ]  # fmt: skip
    props = {
        "code": frame["code"],
        "contacted_share": [f"{v:.0%}" for v in share],
    }
    folium.GeoJson(
        geo.feature_collection(ctx.geoms(frame, "members"), props),
        name=esc(ctx.t("contact_members")),
        marker=folium.CircleMarker(),
        style_function=geo.style_by_id(styles),
        tooltip=_tooltip(ctx, list(props), ["code", "contacted_share"]),
        show=False,
    ).add_to(ctx.m)


def _person_props(ctx: _Ctx, frame: gpd.GeoDataFrame, kind_column: str) -> dict[str, Any]:
    names = frame["name"].tolist() if "name" in frame else [""] * len(frame)
    phones = frame["phone"].tolist() if "phone" in frame else [""] * len(frame)
    if ctx.opts.masked:
        names = [mask_name(n) for n in names]
        phones = [mask_phone(p) for p in phones]
    kinds = (
        [ctx.t(str(k)) for k in frame[kind_column]] if kind_column in frame else [""] * len(frame)
    )
    return {
        "name": names,
        "code": frame["code"],
        "kind": kinds,
        "load": frame["load"].fillna(0).astype(int),
        "phone": phones,
    }


def _members(ctx: _Ctx, frame: gpd.GeoDataFrame, pairs: gpd.GeoDataFrame | None) -> None:
    geoms = ctx.geoms(frame, "members")
    load = frame["load"].fillna(0).to_numpy(dtype=float)
    active = frame["active"].fillna(False).astype(bool).to_numpy()
    top = max(float(load.max()), 1.0)
    styles = [
        {
            "radius": float(round(2.5 + 4.5 * np.sqrt(n / top), 1)),
            "fill": True,
            "color": "#ffffff",
            "weight": 1,
            "fillColor": ACTIVE if a else RESERVE,
            "fillOpacity": 0.9,
            "pane": PEOPLE_PANE,
        }
        for n, a in zip(load, active, strict=True)
    ]
    props = _person_props(ctx, frame, "kind")
    props["kind"] = [
        f"{k}·{ctx.t('active' if a else 'reserve')}"
        for k, a in zip(props["kind"], active, strict=True)
    ]
    # At street scale members are a carpet of dots: they appear from the detail zoom.
    layer = folium.GeoJson(
        geo.feature_collection(geoms, props),
        name=esc(ctx.t("members")),
        marker=folium.CircleMarker(),
        style_function=geo.style_by_id(styles),
        tooltip=_tooltip(ctx, list(props), ["person", "code", "kind", "load", "phone"]),
        show=False,
    ).add_to(ctx.m)
    ShowFromZoom(layer, zoom=ctx.opts.detail_zoom).add_to(ctx.m)
    zoom = ctx.t("from_zoom", z=ctx.opts.detail_zoom)
    for key, color in (("active", ACTIVE), ("reserve", RESERVE)):
        ctx.legend.append(
            {
                "kind": "dot",
                "color": color,
                "edge": "#fff",
                "size": 10,
                "label": f"{ctx.t(key)}{ctx.aside(zoom)}",
            }
        )
    if pairs is not None and len(pairs):
        lines = _pair_lines(ctx, pairs)
        if lines is not None:
            SelectLines(layer, lines, key="member_code", style=SELECTED_LINE).add_to(ctx.m)


SELECTED_LINE = {"color": PAIR_LINE, "weight": 2, "opacity": 0.9}


def _pair_lines(ctx: _Ctx, pairs: gpd.GeoDataFrame) -> folium.GeoJson | None:
    """The member→household lines: from the detail zoom, or from the start for a selection."""
    chosen = ctx.opts.selected_members
    if chosen:
        pairs = pairs[pairs["member_code"].astype(str).isin(chosen)]
    elif len(pairs) > ctx.opts.lines_max:
        ctx.legend.append(
            {"kind": "line", "color": PAIR_LINE, "dash": "dotted", "label": ctx.t("lines_omitted")}
        )
        return None
    if not len(pairs):
        return None
    codes = pairs["member_code"].astype(str)
    geoms = _merged_lines(ctx.geoms(pairs, "pairs"), codes)
    group = folium.FeatureGroup(name=esc(ctx.t("pair_lines")), show=bool(chosen))
    style = {"color": PAIR_LINE, "weight": 1, "opacity": 0.55}
    lines = folium.GeoJson(
        geo.feature_collection(geoms, {"member_code": np.unique(codes.to_numpy())}),
        style_function=lambda _f: style,
        control=False,
    ).add_to(group)
    group.add_to(ctx.m)
    if not chosen:
        ShowFromZoom(group, zoom=ctx.opts.detail_zoom).add_to(ctx.m)
    hint = ctx.t("lines_hint", z=ctx.opts.detail_zoom)
    ctx.legend.append(
        {
            "kind": "line",
            "color": PAIR_LINE,
            "dash": "solid",
            "label": ctx.t("pair_lines") + ctx.aside(hint),
        }
    )
    return lines


def _cadres(ctx: _Ctx, frame: gpd.GeoDataFrame, pairs: gpd.GeoDataFrame | None) -> None:
    group = folium.FeatureGroup(name=esc(ctx.t("cadres")), show=False)
    if pairs is not None and len(pairs):
        style = {"color": CADRE, "weight": 1, "opacity": 0.6, "dashArray": "4 3"}
        folium.GeoJson(
            geo.feature_collection(
                _merged_lines(ctx.geoms(pairs, "cadre_pairs"), pairs["cadre_code"])
            ),
            style_function=lambda _f: style,
            control=False,
        ).add_to(group)
    props = _person_props(ctx, frame, "level")
    style = {
        "radius": 7,
        "fill": True,
        "color": "#ffffff",
        "weight": 2,
        "fillColor": CADRE,
        "fillOpacity": 1,
        "pane": PEOPLE_PANE,
    }
    folium.GeoJson(
        geo.feature_collection(ctx.geoms(frame, "cadres"), props),
        marker=folium.CircleMarker(),
        style_function=lambda _f: style,
        tooltip=_tooltip(ctx, list(props), ["person", "code", "level", "members_count", "phone"]),
        control=False,
    ).add_to(group)
    group.add_to(ctx.m)
    ctx.legend.append(
        {"kind": "dot", "color": CADRE, "edge": "#fff", "size": 12, "label": ctx.t("cadre")}
    )


def _stations(ctx: _Ctx, frame: gpd.GeoDataFrame) -> None:
    geoms = ctx.geoms(frame, "stations")
    rings = sorted(ctx.opts.rings_m)
    for i, radius in enumerate(rings):
        _walking_ring(ctx, frame, radius, RING_COLORS[i % len(RING_COLORS)])
    services = (
        [
            ", ".join(map(str, s)) if isinstance(s, list | tuple | np.ndarray) else s
            for s in frame["services"]
        ]
        if "services" in frame
        else [""] * len(frame)
    )
    props = {"name": frame["name"], "code": frame["code"], "services": services}
    style = {
        "radius": 7,
        "fill": True,
        "color": "#ffd700",
        "weight": 2.5,
        "fillColor": "#d00000",
        "fillOpacity": 1,
        "pane": PEOPLE_PANE,
    }
    folium.GeoJson(
        geo.feature_collection(geoms, props),
        name=esc(ctx.t("stations")),
        marker=folium.CircleMarker(),
        style_function=lambda _f: style,
        tooltip=_tooltip(ctx, list(props), ["name", "code", "services"]),
    ).add_to(ctx.m)
    ctx.legend.append(
        {
            "kind": "dot",
            "color": "#d00000",
            "edge": "#ffd700",
            "size": 12,
            "label": ctx.t("station"),
        }
    )


def _walking_ring(ctx: _Ctx, frame: gpd.GeoDataFrame, radius: int, color: str) -> None:
    """The area within ``radius`` of any station, as one outline (not one circle per station)."""
    area = geo.walking_area(frame, radius)
    style = {
        "color": color,
        "weight": 1.5,
        "opacity": 0.8,
        "dashArray": "6 4",
        "fill": False,
        "interactive": False,
    }
    title = ctx.t("ring_m", m=radius)
    folium.GeoJson(
        geo.feature_collection(ctx.geoms(area, f"rings.{radius}")),
        name=esc(title),
        style_function=lambda _f: style,
        show=radius == ctx.opts.ring_shown_m,
    ).add_to(ctx.m)
    ctx.legend.append({"kind": "line", "color": color, "dash": "dashed", "label": title})


def _blindspots(ctx: _Ctx, kind: str, frame: gpd.GeoDataFrame, color: str) -> None:
    if "rank" in frame:
        frame = frame.sort_values("rank", kind="stable")
    grouped = _is_points(frame) and len(frame) > ctx.opts.blindspots_grouped_above
    if grouped:
        frame = group_by_building(frame)
    frame = frame.head(ctx.opts.blindspots_max)
    geoms = ctx.geoms(frame, f"blindspots.{kind}", simplify=True)
    # Polygons draw as outlined areas; lines and points as warning dots at their centres.
    polygonal = shapely.get_type_id(geoms) >= 3
    geoms = np.where(polygonal, geoms, shapely.point_on_surface(geoms))
    title = f"{ctx.t('blindspots')}·{kind_label(kind, ctx.opts.lang)}"
    if grouped:
        props = {
            "building_code": frame["building_code"],
            "count": frame["count"],
            "rank": frame["rank"],
            "reason": frame["reason"],
        }
        keys = ["building_code", "blindspots_here", "top_rank", "reason"]
        radius = np.minimum(2.5 + 0.6 * np.sqrt(frame["count"].to_numpy(float)), 7)
        styles = [_spot_style(color, r) for r in radius]
        title = f"{title}{ctx.aside(ctx.t('per_building'))}"
    else:
        names = frame["name"] if "name" in frame else frame.get("code", [""] * len(frame))
        masked_names = ctx.opts.masked and kind not in PLACE_KINDS
        props = {
            "rank": frame["rank"] if "rank" in frame else range(1, len(frame) + 1),
            "reason": frame["reason"] if "reason" in frame else [""] * len(frame),
            "name": [mask_name(n) if masked_names else n for n in names],
        }
        keys = ["rank", "reason", "name"]
        styles = [_area_style(color) if p else _spot_style(color, 3.0) for p in polygonal.tolist()]
    folium.GeoJson(
        geo.feature_collection(geoms, props),
        name=esc(title),
        marker=folium.CircleMarker(),
        style_function=geo.style_by_id(styles),
        tooltip=_tooltip(ctx, list(props), keys),
        show=kind not in ctx.opts.blindspots_hidden,
    ).add_to(ctx.m)
    ctx.legend.append({"kind": "square", "color": color, "edge": color, "size": 10, "label": title})


def _spot_style(color: str, radius: float) -> dict[str, Any]:
    return {
        "radius": float(round(radius, 1)),
        "fill": True,
        "color": "#ffffff",
        "weight": 0.8,
        "fillColor": color,
        "fillOpacity": 0.85,
    }


def _area_style(color: str) -> dict[str, Any]:
    return {
        "color": color,
        "weight": 1.5,
        "fillColor": color,
        "fillOpacity": 0.15,
    }


def _is_points(frame: gpd.GeoDataFrame) -> bool:
    return bool(len(frame)) and bool((shapely.get_type_id(frame.geometry.to_numpy()) == 0).all())


def group_by_building(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Point blind spots as one point per building (or per 50 m cell when no building is known).

    Returns
    -------
    geopandas.GeoDataFrame
        ``building_code``, ``count``, ``rank`` (the most urgent in the building), ``reason`` (of
        that one) and the mean position, most urgent building first.
    """
    points = frame.to_crs(4326)
    x, y = points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
    i, j = np.floor(x / CELL_DEG).astype(int), np.floor(y / CELL_DEG).astype(int)
    cell = pd.Series([f"~{a},{b}" for a, b in zip(i, j, strict=True)], index=frame.index)
    codes = frame.get("building_code", pd.Series(None, index=frame.index, dtype=object))
    table = pd.DataFrame(
        {
            "key": codes.astype(object).where(codes.notna(), cell),
            "x": x,
            "y": y,
            "rank": frame["rank"] if "rank" in frame else np.arange(1, len(frame) + 1),
            "reason": frame.get("reason", ""),
        }
    ).sort_values("rank", kind="stable")
    g = table.groupby("key", sort=False)
    out = pd.DataFrame(
        {
            "count": g.size(),
            "rank": g["rank"].first(),
            "reason": g["reason"].first(),
            "x": g["x"].mean(),
            "y": g["y"].mean(),
        }
    ).sort_values("rank", kind="stable")
    out["building_code"] = [k if not str(k).startswith("~") else "–" for k in out.index]
    return gpd.GeoDataFrame(
        out[["building_code", "count", "rank", "reason"]].reset_index(drop=True),
        geometry=shapely.points(out["x"].to_numpy(), out["y"].to_numpy()),
        crs=4326,
    )


def _merged_lines(geoms: np.ndarray, keys: Any) -> np.ndarray:
    """One MultiLineString per key (member or cadre): a tenth of the features, same drawing."""
    _, index = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
    order = np.argsort(index, kind="stable")
    return shapely.multilinestrings(geoms[order], indices=index[order])


def _tooltip(ctx: _Ctx, fields: list[str], keys: list[str]) -> folium.GeoJsonTooltip:
    return folium.GeoJsonTooltip(fields=fields, aliases=[esc(ctx.t(k)) for k in keys], sticky=True)


PEOPLE_PANE = "gsPeople"


def _focus(ctx: _Ctx, lat: float, lon: float, text: str) -> None:
    """Open on one record, zoomed in, ringed and labelled (a search result)."""
    point = gpd.GeoDataFrame(geometry=shapely.points([lon], [lat]), crs=4326)
    ((y, x),) = geo.latlon_rows(ctx.geoms(point, "focus"))
    folium.CircleMarker(
        [y, x], radius=16, color="#b30000", weight=4, fill=False, pane=PEOPLE_PANE
    ).add_child(
        folium.Tooltip(esc(text), permanent=True, direction="top", class_name="gs-focus-label")
    ).add_to(ctx.m)
    d = 0.0012
    ctx.m.fit_bounds([[y - d, x - d], [y + d, x + d]], max_zoom=18)


def _fit(m: folium.Map, data: MapData, ctx: _Ctx) -> None:
    for frame in (data.streets, data.communities, data.grids, data.buildings, data.households):
        if frame is not None and len(frame):
            corners = gpd.GeoDataFrame(
                geometry=shapely.points([frame.total_bounds[:2], frame.total_bounds[2:]]),
                crs=frame.crs,
            )
            (y0, x0), (y1, x1) = geo.latlon_rows(ctx.geoms(corners, "bounds"))
            m.fit_bounds([[y0, x0], [y1, x1]])
            return
