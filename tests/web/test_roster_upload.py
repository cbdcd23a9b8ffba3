"""The upload page asks before it commits: a roster by address is checked (counts, the address
match report, rejects), then imported when the admin confirms; in Chromium too."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from webhelpers import count, csrf_token, login_form, owner_engine


@pytest.fixture
def building(web):
    """(code, compound, number) of a residential demo building; the test's households are
    removed afterwards (the web database is shared by the session)."""
    engine = owner_engine(web)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT code, compound, number FROM buildings WHERE compound IS NOT NULL "
                "AND kind = 'residential' ORDER BY code LIMIT 1"
            )
        ).one()
    yield tuple(row)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM households WHERE unit = '9' AND room LIKE '90%'"))
    engine.dispose()


def roster(compound: str, number: str, *, bad: bool = False) -> bytes:
    lines = ["户主姓名,联系电话,家庭人口,居住地址"]
    lines.append(f"张三,13800001111,3,{compound}{number}号楼9单元901室")
    lines.append(f"李四,13800002222,2,五华区{compound}{number}栋9-902")
    if bad:
        lines.append(f"王五,13800003333,1,{compound}999号楼9单元903")
    return ("\n".join(lines) + "\n").encode("gbk")


def upload(client, data: bytes, name: str = "住户信息表.csv", **form):
    from io import BytesIO

    token = csrf_token(client.get("/upload").get_data(as_text=True))
    return client.post(
        "/upload",
        data={
            "csrf_token": token,
            "layer": "households",
            "file": (BytesIO(data), name),
            **form,
        },
        content_type="multipart/form-data",
    )


def stored(web) -> int:
    return count(web, "SELECT count(*) FROM households WHERE unit = '9' AND room LIKE '90%'")


def test_preview_then_confirm(app, web, building):
    code, compound, number = building
    client = app.test_client()
    login_form(client, "admin")
    preview = upload(client, roster(compound, number))
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200, html[:500]
    assert 'id="import-preview"' in html and "将新增 2" in html
    assert html.count(code) >= 2 and "名称一致" in html
    assert stored(web) == 0  # nothing imported yet
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    form = {"csrf_token": csrf_token(html), "token": token, "action": "commit"}
    done = client.post("/upload", data=form)
    assert done.status_code == 200 and "导入完成" in done.get_data(as_text=True)
    assert stored(web) == 2
    assert client.post("/upload", data=form).status_code == 404  # a preview commits once


def test_a_rejected_roster_cannot_be_committed_and_names_why(app, web, building):
    _code, compound, number = building
    client = app.test_client()
    login_form(client, "admin")
    preview = upload(client, roster(compound, number, bad=True))
    html = preview.get_data(as_text=True)
    assert 'id="cannot-commit"' in html and 'id="confirm-form"' not in html
    assert f"no building 999 in {compound}" in html
    skipped = upload(client, roster(compound, number, bad=True), skip_invalid="on")
    assert 'id="confirm-form"' in skipped.get_data(as_text=True)
    assert stored(web) == 0


def test_another_user_cannot_commit_a_preview(app, web, building):
    _code, compound, number = building
    admin = app.test_client()
    login_form(admin, "admin")
    html = upload(admin, roster(compound, number)).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    other = app.test_client()
    login_form(other, "admin_b")
    page = other.get("/upload").get_data(as_text=True)
    form = {"csrf_token": csrf_token(page), "token": token, "action": "commit"}
    assert other.post("/upload", data=form).status_code == 404
    assert stored(web) == 0


def test_api_dry_run_answers_the_match_report(client, web, building):
    from io import BytesIO

    from webhelpers import bearer

    code, compound, number = building
    response = client.post(
        "/api/imports",
        data={
            "layer": "households",
            "dry_run": "true",
            "file": (BytesIO(roster(compound, number, bad=True)), "roster.csv"),
        },
        headers=bearer(web, "admin"),
        content_type="multipart/form-data",
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["dry_run"] and body["inserted"] == 0 and body["matched"] == 2
    assert [r["building_code"] for r in body["report"]] == [code, code, None]
    assert body["report"][2]["reason"] == f"no building 999 in {compound}"
    assert stored(web) == 0


@pytest.fixture(scope="module")
def live_url(web):
    """The app served by waitress on a free loopback port (plain HTTP: no Secure cookie)."""
    import threading

    from waitress.server import create_server

    from gridsvc.web import create_app

    settings = web.settings.with_(secret_key="t" * 32, cookie_secure=False)
    app = create_app({"GRIDSVC_SETTINGS": settings})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    app.extensions["gridsvc.engine"].dispose()


@pytest.mark.browser
@pytest.mark.slow
def test_in_chromium_check_then_import(live_url, web, chromium, building, tmp_path):
    from webhelpers import PASSWORD

    code, compound, number = building
    path = tmp_path / "住户信息表.csv"
    path.write_bytes(roster(compound, number))
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{live_url}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_url}/")
        page.goto(f"{live_url}/upload")
        page.select_option("#upload-form select[name=layer]", "households")
        page.set_input_files("#upload-form input[name=file]", str(path))
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("#import-preview")
        cells = page.locator("#match-report tr td:nth-child(7)").all_inner_texts()
        assert [c.split()[0] for c in cells] == [code, code]
        assert "将新增 2" in page.locator("#preview-counts").inner_text()
        assert stored(web) == 0
        page.click("#confirm-form button[type=submit]")
        page.wait_for_selector("#import-result")
        assert "导入完成" in page.locator("#import-result").inner_text()
        assert stored(web) == 2
    finally:
        context.close()


def test_a_large_roster_is_checked_by_a_job_then_imported_by_another(web, building):
    from gridsvc.jobs import execute_job
    from gridsvc.web import create_app

    _code, compound, number = building
    settings = web.settings.with_(import_inline_max_mb=0.0001)  # 100 bytes: every file queues
    app = create_app({"TESTING": True, "GRIDSVC_SETTINGS": settings, "GRIDSVC_NO_QUEUE": True})
    try:
        client = app.test_client()
        login_form(client, "admin")
        queued = upload(client, roster(compound, number))
        assert queued.status_code == 303, queued.get_data(as_text=True)[:300]
        job_id = int(queued.headers["Location"].rsplit("/", 1)[1])
        execute_job(web.settings, job_id)
        page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
        assert 'id="import-preview"' in page and "将新增 2" in page
        assert stored(web) == 0
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        form = {"csrf_token": csrf_token(page), "token": token, "action": "commit"}
        committed = client.post("/upload", data=form)
        assert committed.status_code == 303
        second = int(committed.headers["Location"].rsplit("/", 1)[1])
        assert second != job_id and stored(web) == 0
        execute_job(web.settings, second)
        assert stored(web) == 2
        assert "导入完成" in client.get(f"/jobs/{second}").get_data(as_text=True)
    finally:
        app.extensions["gridsvc.engine"].dispose()
