"""Security headers on every response, and a guard against control characters in parameters.

Content-Security-Policy (what a page may load and run):

- scripts: ``'self'`` plus a fresh nonce per response. Pages carry the nonce on their own
  ``<script>`` elements; map pages (folium output with Leaflet inlined) get it on every
  ``<script>`` of the HTML we generated (:func:`nonce_scripts`): values drawn into a map are
  escaped, so a ``<script`` in data never reaches the markup and never gets a nonce. No
  ``'unsafe-inline'``, no ``'unsafe-eval'`` for scripts; no inline event handlers.
- styles: ``'self' 'unsafe-inline'``. folium popups, Leaflet's marker icons and the report
  tables set ``style="..."`` attributes, which nonces cannot cover; a style cannot run code.
- images: ``'self' data:`` plus the origins of the configured tile server (GRIDSVC_TILES).
- everything else: ``default-src 'self'``, ``connect-src 'self'``, ``frame-ancestors 'self'``,
  ``object-src 'none'``, ``base-uri 'self'``, ``form-action 'self'``.

Besides: ``X-Frame-Options: SAMEORIGIN``, ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin``, and ``Cache-Control: no-store`` on every response that did
not set its own (pages, exports, JSON with personal data; the coverage GeoJSON keeps its
``private, no-cache`` revalidation).
"""

from __future__ import annotations

import re
import secrets
from functools import cache
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

from gridsvc.errors import InputRejected, Reject
from maps.tiles import tile_spec

#: Characters no query or form parameter may hold (tab, LF and CR are text in a textarea).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SCRIPT_TAG = re.compile(r"<script\b(?![^>]*\bnonce=)", re.IGNORECASE)


def csp_nonce() -> str:
    """This response's script nonce (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def nonce_scripts(html: str) -> str:
    """Give every ``<script>`` element of a page we generated this response's nonce."""
    return _SCRIPT_TAG.sub(f'<script nonce="{csp_nonce()}"', html)


@cache
def tile_origins(tiles: str, tianditu_key: str) -> tuple[str, ...]:
    """The origins base-map tiles come from (``scheme://host``), subdomains expanded."""
    try:
        spec = tile_spec(tiles, tianditu_key=tianditu_key)
    except ValueError:
        return ()
    origins: list[str] = []
    for url, _attr, subdomains, _name in spec.layers:
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            continue  # a path on this server: 'self'
        hosts = [parts.netloc.replace("{s}", s) for s in subdomains] or [parts.netloc]
        origins += [f"{parts.scheme}://{h}" for h in hosts if "{" not in h]
    return tuple(dict.fromkeys(origins))


def content_security_policy(nonce: str, tiles: tuple[str, ...]) -> str:
    """The CSP header value (see the module docstring)."""
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' 'nonce-{nonce}'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": " ".join(("'self'", "data:", *tiles)),
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "frame-src": "'self'",
        "frame-ancestors": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


def _headers(response: Response) -> Response:
    settings = current_app.config["GRIDSVC_SETTINGS"]
    tiles = tile_origins(settings.tiles, settings.tianditu_key)
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(csp_nonce(), tiles)
    headers["X-Frame-Options"] = "SAMEORIGIN"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    if "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response


def _guard() -> None:
    """Refuse a request whose query or form parameters hold control characters (a NUL cannot
    reach PostgreSQL text): 400 naming the parameter, before any view runs."""
    for where, values in (("query", request.args), ("form", request.form)):
        for name, value in values.items(multi=True):
            if _CONTROL.search(name or "") or _CONTROL.search(str(value or "")):
                shown = repr(value[:40])
                raise InputRejected(
                    f"{where} parameter {name!r}: holds a control character such as NUL",
                    [Reject(where, None, name, "holds a control character", shown)],
                )


def init_app(app: Flask) -> None:
    """Guard parameters before every view; add the headers to every response."""
    app.before_request(_guard)
    app.after_request(_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
