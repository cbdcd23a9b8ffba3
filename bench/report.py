"""Bench: the offline HTML report of 50,000 households: build time, size, headless load time.

Targets (issue 5): generated in <= 10 s, <= 8 MB, shown by headless Chromium with the network
off (tiles off) in <= 3 s. Baseline in the same run: folium's naive way, every household as
its own GeoJSON feature with a tooltip, CDN links left in (not even offline).
Run: ``.venv/bin/python bench/report.py [--households N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import folium

from maps.coverage_map import MapOptions
from maps.report import ReportData, render_report
from maps.sample import sample_map_data

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def build(households: int) -> tuple[ReportData, float]:
    """The report's input (a demo district with a naive pairing) and seconds to make it."""
    t0 = time.perf_counter()
    data, extras = sample_map_data(households=households)
    report = ReportData(
        title="示例街道",
        scope="530102001",
        map=data,
        communities=extras["communities"].drop(columns="geometry"),
        grids=extras["grids"].drop(columns="geometry"),
        loads=extras["loads"],
        distances=extras["distances"],
        blindspots=dict(data.blindspots),
        generated_by="bench",
        plan_version=1,
    )
    return report, time.perf_counter() - t0


def naive(report: ReportData) -> tuple[str, float]:
    """Baseline: one GeoJSON feature with a tooltip per household, CDN links as folium writes."""
    t0 = time.perf_counter()
    m = folium.Map(tiles=None)
    hh = report.map.households[["code", "geometry"]]
    folium.GeoJson(hh, tooltip=folium.GeoJsonTooltip(["code"])).add_to(m)
    html = m.get_root().render()
    return html, time.perf_counter() - t0


def load_seconds(path: Path, repeats: int) -> list[float]:
    """Seconds from navigation to a drawn map, in an offline context refusing every request."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(repeats):
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
            context.route(
                "**/*",
                lambda r: (
                    r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
                ),
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function(
                "() => document.querySelectorAll('.leaflet-overlay-pane canvas, "
                ".leaflet-marker-pane .marker-cluster').length > 0"
            )
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            times.append(time.perf_counter() - t0)
            if errors:
                raise RuntimeError(f"page errors: {errors[:3]}")
            context.close()
        browser.close()
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    report, prep = build(args.households)
    n = len(report.map.households)
    gen, sizes = [], []
    out = Path(tempfile.mkdtemp(prefix="gridsvc-bench-")) / "report.html"
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        html = render_report(report, MapOptions())
        gen.append(time.perf_counter() - t0)
        sizes.append(len(html.encode("utf-8")))
    out.write_text(html, encoding="utf-8")
    base_times = []
    for _ in range(args.repeats):
        base_html, seconds = naive(report)
        base_times.append(seconds)
    loads = load_seconds(out, args.repeats)
    med = statistics.median
    print(f"households: {n:,} (input prepared in {prep:.1f} s, not counted)")
    print(f"report generated: median {med(gen):.2f} s over {len(gen)} runs (target <= 10 s)")
    print(f"report size: {sizes[-1] / 1e6:.2f} MB (target <= 8 MB), every asset inlined")
    print(f"offline Chromium, map drawn: median {med(loads):.2f} s (target <= 3 s)")
    print(
        f"baseline, folium one feature per household with CDN links: median "
        f"{med(base_times):.2f} s, {len(base_html.encode('utf-8')) / 1e6:.2f} MB "
        "(households layer alone, no other layer, not offline)"
    )
    ok = med(gen) <= 10 and sizes[-1] <= 8e6 and med(loads) <= 3
    print("within targets" if ok else "OUTSIDE TARGETS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
