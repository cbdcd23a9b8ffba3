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
    code, compound, number = building
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
    code, compound, number = building
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
