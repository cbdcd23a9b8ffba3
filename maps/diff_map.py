"""The diff map of a rebalance proposal: kept, moved, new and dropped pairs over the base map."""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import shapely

from maps import geo
from maps.controls import HtmlControl, legend_html
from maps.coverage_map import MapData, MapOptions, build_map
from maps.safe import esc

#: Change kind → (line style, Chinese label, English label), in drawing order.
KINDS: dict[str, tuple[dict[str, object], str, str]] = {
    "kept": ({"color": "#8c8c8c", "weight": 1, "opacity": 0.45}, "保持的结对", "Kept pairs"),
    "moved_from": (
        {"color": "#e08214", "weight": 2, "opacity": 0.8, "dashArray": "4 4"},
        "调整前的结对",
        "Moved: before",
    ),
    "moved": ({"color": "#2166ac", "weight": 2.5, "opacity": 0.9}, "调整后的结对", "Moved: after"),
    "new": ({"color": "#1a9850", "weight": 2.5, "opacity": 0.9}, "新增结对", "New pairs"),
    "dropped": (
        {"color": "#d73027", "weight": 2.5, "opacity": 0.9, "dashArray": "6 4"},
        "取消的结对",
        "Dropped pairs",
    ),
}
TOOLTIP = {
    "zh": ("变化", "住户", "党员", "原因"),
    "en": ("Change", "Household", "Member", "Reason"),
}


def build_diff_map(
    base: MapData, diff: gpd.GeoDataFrame, options: MapOptions | None = None
) -> folium.Map:
    """Draw a proposal's changes as lines between households and members over a base map.

    Parameters
    ----------
    base
        The community's base layers (boundaries, grids, buildings), drawn by
        :func:`maps.coverage_map.build_map`.
    diff
        One LineString a line, household → member, in EPSG:4326, with ``kind`` (a key of
        :data:`KINDS`), ``household``, ``member`` and ``reason``. Kept lines are merged per
        member and carry no tooltip; every other line has an escaped tooltip.
    options
        Language, tiles and size limits (``lines_max`` caps the kept lines drawn).

    Returns
    -------
    folium.Map
        The map with one toggleable layer per kind and a legend of the kinds drawn.

    Raises
    ------
    ValueError
        On an unknown kind, a frame without CRS or a line without geometry.
    """
    opts = options or MapOptions()
    unknown = sorted(set(diff["kind"]) - set(KINDS))
    if unknown:
        raise ValueError(f"diff, field kind: unknown {unknown!r}; expected one of {list(KINDS)}")
    m = build_map(base, opts)
    lang = 0 if opts.lang == "zh" else 1
    legend = []
    for kind, (style, *names) in KINDS.items():
        rows = diff[diff["kind"] == kind]
        if not len(rows) or (kind == "kept" and len(rows) > opts.lines_max):
            continue
        name = f"{names[lang]} ({len(rows):,})"
        group = folium.FeatureGroup(name=esc(name), show=True)
        geoms = geo.display_geometries(rows, layer=f"diff.{kind}", gcj02=_gcj02(opts))
        if kind == "kept":
            _, index = np.unique(rows["member"].astype(str).to_numpy(), return_inverse=True)
            order = np.argsort(index, kind="stable")
            data = geo.feature_collection(
                shapely.multilinestrings(geoms[order], indices=index[order])
            )
            tooltip = None
        else:
            props = {
                "kind": [names[lang]] * len(rows),
                "household": rows["household"],
                "member": rows["member"],
                "reason": rows["reason"],
            }
            data = geo.feature_collection(geoms, props)
            aliases = [esc(a) for a in TOOLTIP[opts.lang]]
            tooltip = folium.GeoJsonTooltip(fields=list(props), aliases=aliases, sticky=True)
        folium.GeoJson(
            data, style_function=lambda _f, s=style: s, tooltip=tooltip, control=False
        ).add_to(group)
        group.add_to(m)
        legend.append(
            {
                "kind": "line",
                "color": style["color"],
                "dash": "dashed" if "dashArray" in style else "solid",
                "label": name,
            }
        )
    changed = diff[diff["kind"] != "kept"]
    if len(changed):  # open on the changes, not on the whole community
        lines = geo.display_geometries(changed, layer="diff.changed", gcj02=_gcj02(opts))
        x0, y0, x1, y1 = shapely.total_bounds(lines)
        pad = 0.0005
        m.fit_bounds([[y0 - pad, x0 - pad], [y1 + pad, x1 + pad]], max_zoom=18)
    _layer_control_last(m)
    title = "结对变化" if opts.lang == "zh" else "Changes"
    HtmlControl(
        legend_html(title, legend), position="bottomleft", css_class="gs-diff-legend"
    ).add_to(m)
    return m


def _layer_control_last(m: folium.Map) -> None:
    """Render the layer control after the layers added here (its script names every layer),
    and what refers to the control after it."""
    from maps.controls import PhoneLayout

    for kind in (folium.LayerControl, PhoneLayout):
        for key, child in list(m._children.items()):
            if isinstance(child, kind):
                m._children.move_to_end(key)


def _gcj02(opts: MapOptions) -> bool:
    from maps.tiles import tile_spec

    return tile_spec(opts.tiles, tianditu_key=opts.tianditu_key).gcj02
