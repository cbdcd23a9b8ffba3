"""Screenshot an HTML report in headless Debian chromium with every network request refused.

Run: ``.venv/bin/python scripts/screenshot.py REPORT.html OUT.png [--zoom Z] [--wait MS]``.
Prints the map's zoom and the visible overlay layers, and fails on any console error or any
request beyond ``file:``/``data:`` URLs. ``docs/map.png`` is made this way (see README, Maps and
reports).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOCAL = ("file:", "data:", "about:", "blob:")

STATE = """() => {
    const map = Object.keys(window).filter(k => k.startsWith('map_')).map(k => window[k])
        .find(m => m && m.getZoom);
    const shown = [...document.querySelectorAll('.leaflet-control-layers-overlays label')]
        .filter(l => l.querySelector('input').checked).map(l => l.textContent.trim());
    return {zoom: map.getZoom(), shown};
}"""


def main(argv: list[str] | None = None) -> int:
    """Open the report offline, screenshot it, print its zoom and visible layers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--zoom", type=int, help="Zoom the map to this level before the shot.")
    parser.add_argument("--wait", type=int, default=800, help="Milliseconds to let it draw.")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(
            offline=True, viewport={"width": args.width, "height": args.height}
        )

        def refuse(route: object) -> None:
            if route.request.url.startswith(LOCAL):
                route.continue_()
            else:
                problems.append(f"request: {route.request.url}")
                route.abort()

        context.route("**/*", refuse)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.goto(args.html.resolve().as_uri(), wait_until="load")
        if args.zoom is not None:
            page.evaluate(
                "z => Object.keys(window).filter(k => k.startsWith('map_'))"
                ".map(k => window[k]).find(m => m && m.getZoom).setZoom(z)",
                args.zoom,
            )
        page.wait_for_timeout(args.wait)
        state = page.evaluate(STATE)
        page.screenshot(path=str(args.png))
        browser.close()
    print(f"{args.png}: zoom {state['zoom']}, visible layers: {', '.join(state['shown'])}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
