"""The pages and maps work under the Content-Security-Policy: headless Chromium loads each main
page (and the map frames) with the policy on and fails on any CSP violation or any request that
leaves 127.0.0.1. Also screenshots of the blind-spot page's radius error (zh/en, two sizes)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from webhelpers import COMMUNITY_A, PASSWORD, owner_engine

from gridsvc.pairing import service

SHOTS = Path(__file__).resolve().parents[2].parent / "h10b-shots"
#: Every violation, in any frame, is also written to the console where the test reads it.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP-VIOLATION ${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}`
    + `:${e.lineNumber}`);
});
"""


@pytest.fixture(scope="module")
def live(web):
    """The app on a loopback port (waitress), with a household plan and a proposal of A."""
    from waitress.server import create_server

    from gridsvc.web import create_app

    engine = owner_engine(web)
    with engine.begin() as conn:
        cid = conn.scalar(text("SELECT id FROM communities WHERE code = :c"), {"c": COMMUNITY_A})
        if service.plan_version(conn, cid) == 0:
            service.run_pairing(
                conn, settings=web.settings, community_code=COMMUNITY_A, level="households"
            )
        proposal = service.propose_rebalance(
            conn, community_code=COMMUNITY_A, settings=web.settings, created_by="csp-test"
        ).id
        household = conn.scalar(
            text(
                "SELECT h.code FROM households h WHERE h.community_id = :c ORDER BY h.code LIMIT 1"
            ),
            {"c": cid},
        )
    engine.dispose()
    settings = web.settings.with_(secret_key="c" * 32, cookie_secure=False)
    app = create_app({"GRIDSVC_SETTINGS": settings, "GRIDSVC_NO_QUEUE": True})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    yield {
        "url": f"http://127.0.0.1:{server.effective_port}",
        "proposal": proposal,
        "household": household,
    }
    server.close()
    app.extensions["gridsvc.engine"].dispose()


def _watched_page(chromium, live, **options):
    context = chromium.new_context(**options)
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    problems: list[str] = []
    outside: list[str] = []
    page.on(
        "console",
        lambda m: (
            ("Content Security Policy" in m.text or "CSP-VIOLATION" in m.text)
            and problems.append(m.text)
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    local = (live["url"], "data:", "blob:", "about:")
    page.on("request", lambda r: r.url.startswith(local) or outside.append(r.url))
    return context, page, problems, outside


def _log_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


@pytest.mark.browser
@pytest.mark.slow
def test_pages_and_maps_work_under_the_csp(live, chromium):
    url = live["url"]
    context, page, problems, outside = _watched_page(chromium, live)
    try:
        page.goto(f"{url}/login")
        _log_in(page, url, "admin")
        assert page.locator("#fig-households").inner_text() != "–"
        for path in (
            f"/roster?community={COMMUNITY_A}",
            f"/blindspots?community={COMMUNITY_A}",
            f"/records/household/{live['household']}",
            "/upload",
            "/audit",
            f"/rebalance?community={COMMUNITY_A}&proposal={live['proposal']}",
        ):
            response = page.goto(url + path)
            assert response.status == 200, path
            assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
        diff = page.frame_locator("#diff-map")
        diff.locator(".leaflet-control-layers-overlays input").first.wait_for(timeout=30_000)
        page.goto(f"{url}/map?community={COMMUNITY_A}")
        frame = page.frame_locator("#map-frame")
        boxes = frame.locator(".leaflet-control-layers-overlays input[type=checkbox]")
        boxes.first.wait_for(timeout=30_000)
        before = boxes.first.is_checked()
        boxes.first.click()  # the map's own scripts run: the layer toggles
        assert boxes.first.is_checked() != before
        assert frame.locator(".leaflet-overlay-pane path, .leaflet-overlay-pane canvas").count()
        # the auto-submitting community select (a nonce'd listener, no inline handler)
        page.goto(f"{url}/roster")
        options = page.locator("select[name=community] option").all()
        if len(options) > 1:
            with page.expect_navigation():
                page.select_option("select[name=community]", options[-1].get_attribute("value"))
            assert "community=" in page.url
        page.wait_for_timeout(500)
    finally:
        context.close()
    assert problems == []
    assert outside == []


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("size", [(390, 844), (1440, 900)])
def test_radius_error_page_screens(live, chromium, lang, size):
    url = live["url"]
    viewport = {"width": size[0], "height": size[1]}
    context, page, problems, outside = _watched_page(chromium, live, viewport=viewport)
    try:
        _log_in(page, url, "planner_a")
        page.goto(f"{url}/blindspots?community={COMMUNITY_A}&lang={lang}")
        page.evaluate(
            "document.querySelector('select[name=radius_m]').innerHTML ="
            " '<option selected>abc</option>'"
        )
        with page.expect_navigation():
            page.click("form[method=post] button[type=submit]")
        title = page.locator("#error-title").inner_text()
        assert title and "422" not in title  # a sentence in the page's language, not a code
        detail = page.locator("main").inner_text()
        assert "radius_m" in detail and "abc" in detail  # the field and the value named
        assert "uncovered_commercial" not in page.locator("main").inner_text()
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(
            path=str(SHOTS / f"blindspots-radius-{lang}-{size[0]}.png"), full_page=False
        )
    finally:
        context.close()
    assert problems == [] and outside == []
