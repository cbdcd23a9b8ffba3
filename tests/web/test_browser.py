"""Browser tests in headless Debian chromium: log in, map, layer toggle, rebalance, report;
a large upload followed on its job page to the finished import report."""

from __future__ import annotations

import threading

import pytest
from webhelpers import COMMUNITY_A, PASSWORD, STREET_A, households_csv


@pytest.fixture(scope="module")
def live_url(web):
    """The app served by waitress on a free loopback port (plain HTTP: no Secure cookie);
    uploads over 40 KiB go to the job queue."""
    from waitress.server import create_server

    from gridsvc.web import create_app

    settings = web.settings.with_(
        secret_key="t" * 32, cookie_secure=False, import_inline_max_mb=0.04
    )
    app = create_app({"GRIDSVC_SETTINGS": settings})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    app.extensions["gridsvc.engine"].dispose()


def log_in(page, live_url: str, username: str) -> None:
    """Log in through the form; the home page is shown."""
    page.goto(f"{live_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")


@pytest.mark.browser
@pytest.mark.slow
def test_login_map_layer_toggle_rebalance_and_report(live_url, web, chromium, tmp_path):
    from gridsvc.jobs import execute_job

    context = chromium.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: r.url.startswith(live_url) or outside.append(r.url))
        log_in(page, live_url, "admin")
        assert page.locator("#fig-households").inner_text() != "–"
        page.goto(f"{live_url}/map?community={COMMUNITY_A}")
        frame = page.frame_locator("#map-frame")
        boxes = frame.locator(".leaflet-control-layers-overlays input[type=checkbox]")
        boxes.first.wait_for(timeout=30_000)
        before = boxes.first.is_checked()
        boxes.first.click()
        assert boxes.first.is_checked() != before
        # the planner's rebalance: run a proposal, see its diff drawn, accept it
        page.click("nav >> text=结对调整")
        page.select_option("#propose-form select[name=community]", COMMUNITY_A)
        page.click("#propose")
        if "/jobs/" in page.url or page.locator("#job-status").count():  # a rebalance job
            assert page.locator("#job-status").inner_text() in ("排队中", "运行中")
            execute_job(web.settings, int(page.url.rsplit("/", 1)[1]))  # the page is polling
        page.wait_for_selector("#diff-counts", timeout=60_000)  # then shows the proposal
        base = int(page.locator("#plan-version").inner_text())
        diff = page.frame_locator("#diff-map")
        layers = diff.locator(".leaflet-control-layers-overlays")
        layers.locator("input[type=checkbox]").first.wait_for(timeout=30_000)
        drawn = layers.inner_text()
        assert "保持的结对" in drawn or "新增结对" in drawn  # kept pairs, or all new (first plan)
        assert diff.locator(".leaflet-overlay-pane canvas, .leaflet-overlay-pane path").count()
        page.fill("#decide-form input[name=reason]", "浏览器测试")
        page.click("#accept")
        page.wait_for_selector("#message")
        assert f"方案已接受，版本 {base + 1}" in page.locator("#message").inner_text()
        assert page.locator("#proposal-status").inner_text() == "已接受"
        page.goto(f"{live_url}/map?community={COMMUNITY_A}")
        with page.expect_download() as download:
            page.click("#report-link")
        saved = tmp_path / "report.html"
        download.value.save_as(saved)
        assert saved.stat().st_size > 10_000 and "<html" in saved.read_text()[:2000].lower()
        assert not [u for u in outside if not u.startswith(("data:", "blob:", "about:"))]
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_large_upload_shows_job_progress_then_the_rejects_report(live_url, web, chromium, tmp_path):
    from gridsvc.jobs import execute_job

    upload = tmp_path / "住户.csv"
    upload.write_bytes(households_csv("H-BRW-", bad=(4, 800)))  # rejected: nothing is loaded
    context = chromium.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        log_in(page, live_url, "admin")
        page.click("nav >> text=数据导入")
        page.select_option("#upload-form select[name=layer]", "households")
        page.set_input_files("#upload-form input[name=file]", str(upload))
        page.fill("#upload-form input[name=crs]", "EPSG:4326")
        page.click("#upload-form button[type=submit]")
        page.wait_for_url(f"{live_url}/jobs/*")
        assert page.locator("#job-status").inner_text() == "排队中"
        execute_job(web.settings, int(page.url.rsplit("/", 1)[1]))  # the page is polling
        # a large file is checked by a job too, and nothing is imported before a confirmation
        page.wait_for_selector("#import-preview", timeout=30_000)  # reloaded when finished
        assert page.locator("#job-status").get_attribute("data-status") == "done"
        assert page.locator("#job-status").inner_text() == "已完成"
        assert "被拒记录 2" in page.locator("#preview-counts").inner_text()
        assert page.locator("#cannot-commit").is_visible()
        assert page.locator("#confirm-form").count() == 0
        cells = page.locator("#rejects tr td:first-child").all_inner_texts()
        assert cells == ["4", "800"]
        with page.expect_download() as download:
            page.click("#rejects-csv")
        saved = tmp_path / "rejects.csv"
        download.value.save_as(saved)
        lines = saved.read_text(encoding="utf-8-sig").splitlines()
        assert len(lines) == 3 and lines[1].startswith("住户.csv,4,building_code,")
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_city_pairing_job_page_shows_each_community(live_url, web, chromium):
    """A street's pairing job lists its communities and the street level, with status, cost
    and gap, in both languages and at phone and desktop sizes (screenshots into the folder
    SHOTS_DIR names, when set)."""
    import os
    from pathlib import Path

    from gridsvc.jobs import execute_job

    shots = Path(os.environ.get("SHOTS_DIR", "/nonexistent"))
    context = chromium.new_context()
    try:
        page = context.new_page()
        log_in(page, live_url, "planner_a")
        made = page.request.post(
            f"{live_url}/api/jobs",
            data={"kind": "pairing", "street": STREET_A},
            headers={"Authorization": f"Bearer {web.tokens['planner_a']}"},
        )
        assert made.status == 202, made.text()
        job_id = made.json()["id"]
        execute_job(web.settings, job_id, here=True)
        for lang, size in (("zh", (390, 844)), ("en", (1440, 900)), ("zh", (1440, 900))):
            page.set_viewport_size({"width": size[0], "height": size[1]})
            page.goto(f"{live_url}/jobs/{job_id}?lang={lang}")
            rows = page.locator("#job-units tbody tr")
            assert rows.count() >= 2
            text = page.locator("#job-units").inner_text()
            assert ("已完成" if lang == "zh" else "Done") in text
            assert ("住户→党员" if lang == "zh" else "Households → members") in text
            for internal in ("pair_community", "pair_street", "True", "None", "unit_"):
                assert internal not in text
            head = page.locator("h1").inner_text() + page.locator("#job-status").inner_text()
            assert "pairing" not in head and "done" not in head
            assert ("结对计算" if lang == "zh" else "Pairing") in head
            if shots.is_dir():
                page.screenshot(path=str(shots / f"job-units-{lang}-{size[0]}.png"), full_page=True)
    finally:
        context.close()
