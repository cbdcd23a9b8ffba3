"""Base tiles of maps (none, OpenStreetMap, Gaode, Tianditu or an intranet XYZ server)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import folium

GAODE_URL = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
TIANDITU_URL = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
_XYZ = re.compile(r"^(https?://|/)\S*$")


@dataclass(frozen=True)
class TileSpec:
    """One base-map choice: the tile layers to add and whether drawn data must be GCJ-02."""

    layers: tuple[tuple[str, str, str, str], ...]  # (url, attribution, subdomains, name)
    gcj02: bool = False


def tile_spec(tiles: str, *, tianditu_key: str = "") -> TileSpec:
    """Resolve the ``tiles`` setting.

    Parameters
    ----------
    tiles
        ``none``, ``osm``, ``gaode``, ``tianditu`` or an XYZ URL template holding ``{z}``,
        ``{x}`` and ``{y}`` (an intranet tile server).
    tianditu_key
        The ``tk`` key, required for ``tianditu``.

    Raises
    ------
    ValueError
        Naming the setting, when the value is not one of the above or a key is missing.
    """
    choice = tiles.strip()
    if choice.lower() in {"", "none"}:
        return TileSpec(())
    if choice.lower() == "osm":
        attr = "© OpenStreetMap contributors"
        return TileSpec((("https://tile.openstreetmap.org/{z}/{x}/{y}.png", attr, "", "OSM"),))
    if choice.lower() == "gaode":
        return TileSpec(((GAODE_URL, "© 高德地图 AutoNavi", "1234", "Gaode"),), gcj02=True)
    if choice.lower() == "tianditu":
        if not tianditu_key.strip():
            raise ValueError("tiles=tianditu needs the tianditu_key setting (GRIDSVC_TIANDITU_KEY)")
        key = quote(tianditu_key.strip(), safe="")
        attr = "© 天地图 Tianditu"
        return TileSpec(
            tuple(
                (TIANDITU_URL.format(layer=layer, key=key), attr, "01234567", name)
                for layer, name in (("vec", "Tianditu"), ("cva", "Tianditu labels"))
            )
        )
    if _XYZ.match(choice) and all(p in choice for p in ("{z}", "{x}", "{y}")):
        return TileSpec(((choice, "intranet tiles", "", "XYZ"),))
    raise ValueError(
        "tiles: expected none, osm, gaode, tianditu or an XYZ URL with {z}/{x}/{y}, "
        f"got {tiles!r}"
    )


def add_tiles(m: folium.Map, spec: TileSpec) -> None:
    """Add the base layers of ``spec`` to ``m`` (nothing for ``none``)."""
    for i, (url, attr, subdomains, name) in enumerate(spec.layers):
        extra = {"subdomains": subdomains} if subdomains else {}
        folium.TileLayer(
            tiles=url, attr=attr, name=name, overlay=i > 0, control=False, max_zoom=19, **extra
        ).add_to(m)
