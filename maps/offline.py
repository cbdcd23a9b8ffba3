"""Inline every script, style and image of a rendered folium page so it opens with no network.

The assets come from the npm packages of ``maps/assets/package-lock.json``: in a checkout,
``make assets`` runs ``npm ci`` in ``maps/assets``; gridsvc's wheel carries the files this module
uses (copied in at build time by ``setup.py``), so an installed gridsvc reads them from its own
package. Nothing is fetched at run time and nothing is copied into the repository.
Each CDN ``<script src>`` / ``<link href>`` folium writes is mapped to a file of those packages
and replaced by its content; ``url(...)`` references inside styles become ``data:`` URIs. Any
external reference this module does not know raises :class:`MissingAsset`: a report never
silently depends on a CDN.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from functools import cache
from pathlib import Path

ASSETS_DIR = Path(__file__).with_name("assets")
NODE_MODULES = ASSETS_DIR / "node_modules"

#: folium's CDN file names (the last part of each URL) → file of our npm packages.
#: Versions differ from folium's pins (leaflet 1.9.3 → 1.9.4, markercluster 1.1.0 → 1.5.3): the
#: APIs folium calls are the same.
KNOWN_ASSETS: dict[str, str] = {
    "leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet.markercluster.js": "leaflet.markercluster/dist/leaflet.markercluster.js",
    "MarkerCluster.css": "leaflet.markercluster/dist/MarkerCluster.css",
    "MarkerCluster.Default.css": "leaflet.markercluster/dist/MarkerCluster.Default.css",
    "leaflet_heat.min.js": "leaflet.heat/dist/leaflet-heat.js",
}

#: folium's default links that our maps never use (jQuery, Bootstrap, awesome-markers, Font
#: Awesome, glyphicons): :func:`prune_default_links` drops them from a map before rendering.
UNUSED_DEFAULTS = frozenset(
    {
        "jquery",
        "bootstrap",
        "awesome_markers",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    }
)

_SCRIPT = re.compile(r"<script\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"'][^>]*>\s*</script>", re.I)
_LINK = re.compile(r"<link\b[^>]*?\bhref\s*=\s*[\"']([^\"']+)[\"'][^>]*/?>", re.I)
_CSS_URL = re.compile(r"url\(\s*([\"']?)([^\"')]+)\1\s*\)")
_EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I
)


class MissingAsset(RuntimeError):
    """An asset a page needs is not installed, or a page links one this module does not know."""


def prune_default_links(obj: object) -> None:
    """Drop folium's default jQuery/Bootstrap/awesome-markers links from a map (in place).

    Parameters
    ----------
    obj
        A ``folium.Map`` (or any folium element with ``default_js``/``default_css``).
    """
    for attr in ("default_js", "default_css"):
        links = getattr(obj, attr)
        setattr(obj, attr, [(n, u) for n, u in links if n not in UNUSED_DEFAULTS])


def asset_path(url: str) -> Path:
    """The installed file standing for a CDN ``url``.

    Raises
    ------
    MissingAsset
        When the URL is unknown or its package is not installed (run ``make assets``).
    """
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if name not in KNOWN_ASSETS:
        raise MissingAsset(f"no offline copy known for {url!r}: add its npm package to maps/assets")
    path = NODE_MODULES / KNOWN_ASSETS[name]
    if not path.is_file():
        raise MissingAsset(
            f"{path} is missing (for {url!r}): run `make assets` in a checkout, "
            "or reinstall gridsvc from its wheel"
        )
    return path


@cache
def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def data_uri(path: Path) -> str:
    """A ``data:`` URI holding the file at ``path``."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


@cache
def inline_css(path: Path) -> str:
    """The stylesheet at ``path`` with every relative ``url(...)`` turned into a data URI."""

    def replace(match: re.Match[str]) -> str:
        ref = match.group(2)
        if ref.startswith(("data:", "#")):
            return match.group(0)
        if "//" in ref:
            raise MissingAsset(f"{path.name} references external {ref!r}")
        target = (path.parent / ref).resolve()
        if not target.is_file():
            raise MissingAsset(f"{target} (referenced by {path.name}) is missing")
        return f'url("{data_uri(target)}")'

    return _CSS_URL.sub(replace, _text(path))


def _safe_script(text: str) -> str:
    # A library file never legitimately closes the script element it is inlined in.
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.I)


def inline_assets(html: str) -> str:
    """Rewrite a rendered page so every linked script and style is inlined.

    Parameters
    ----------
    html
        A page (or a head fragment) rendered by folium/branca.

    Returns
    -------
    str
        The same page with ``<script src>`` and stylesheet ``<link>`` elements replaced by
        ``<script>``/``<style>`` elements holding the files' contents.

    Raises
    ------
    MissingAsset
        When any referenced asset is unknown or not installed, or an external reference remains.
    """

    def script(match: re.Match[str]) -> str:
        return f"<script>{_safe_script(_text(asset_path(match.group(1))))}</script>"

    def link(match: re.Match[str]) -> str:
        tag = match.group(0)
        if not re.search(r"rel\s*=\s*[\"']?stylesheet", tag, re.I):
            raise MissingAsset(f"unexpected <link> in a map page: {tag[:200]}")
        return f"<style>{inline_css(asset_path(match.group(1)))}</style>"

    out = _LINK.sub(link, _SCRIPT.sub(script, html))
    leftover = _EXTERNAL.search(out)
    if leftover:
        start = max(0, leftover.start() - 80)
        raise MissingAsset(f"external reference left in page: {out[start : leftover.end() + 80]}")
    return out
