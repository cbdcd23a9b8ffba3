"""The pages as their users meet them: search, roster paging, station suggestions, upload form,
rebalance as a job, map focus."""

from __future__ import annotations

import json
import re

from sqlalchemy import text
from webhelpers import COMMUNITY_A, csrf_token, login_form, owner_engine

from gridsvc.portal.search import search_codes


def _one(web, sql: str, **params):
    engine = owner_engine(web)
    with engine.connect() as conn:
        row = conn.execute(text(sql), params).first()
    engine.dispose()
    return row


def test_search_by_any_part_of_a_code_a_building_number_or_a_name(web):
    engine = owner_engine(web)
    with engine.connect() as conn:
        household = conn.scalar(text("SELECT code FROM households ORDER BY code LIMIT 1 OFFSET 9"))
        building = conn.execute(
            text("SELECT code, name FROM buildings WHERE name LIKE '%号楼' ORDER BY code LIMIT 1")
        ).first()
        member = conn.execute(text("SELECT code, name FROM members ORDER BY code LIMIT 1")).first()
        tail = household[-6:]  # "H00010": the end of the code, not its start
        assert tail in [r["code"][-6:] for r in search_codes(conn, tail)]
        number = building.name.removesuffix("号楼")
        found = search_codes(conn, number)
        assert found[0]["kind"] == "building" and found[0]["code"] == building.code
        assert search_codes(conn, building.name)[0]["code"] == building.code
        by_name = search_codes(conn, member.name, by_name=True)
        assert member.code in [r["code"] for r in by_name]
        assert all(r["name"] != member.name for r in by_name if r["kind"] == "member")  # masked
        assert member.code not in [r["code"] for r in search_codes(conn, member.name)]
    engine.dispose()


def test_a_single_hit_opens_on_the_map_zoomed_and_highlighted(app, web):
    client = app.test_client()
    login_form(client, "viewer_a")
    code = _one(web, "SELECT code FROM households ORDER BY code LIMIT 1").code
    hit = client.get(f"/map?q={code}")
    assert hit.status_code == 302 and f"focus=household:{code}" in hit.headers["Location"]
    page = client.get(hit.headers["Location"]).get_data(as_text=True)
    frame_url = re.search(r'id="map-frame"[^>]*src="([^"]+)"', page).group(1)
    frame = client.get(frame_url.replace("&amp;", "&")).get_data(as_text=True)
    assert "gs-focus-label" in frame, "no highlighted label"
    assert '"maxZoom": 18' in frame and code in frame


def test_roster_pages_show_the_total(app, web):
    client = app.test_client()
    login_form(client, "planner_a")
    first = client.get(f"/roster?community={COMMUNITY_A}").get_data(as_text=True)
    total = re.search(r"共 ([\d,]+) 条", first)
    if total is None or int(total.group(1).replace(",", "")) <= 100:
        return  # no plan in this database run yet: nothing to page
    second = client.get(f"/roster?community={COMMUNITY_A}&page=2").get_data(as_text=True)
    assert "第 101–" in second and 'rel="prev"' in second


def test_station_suggestions_choose_k_and_radius_and_show_a_map(app, web):
    client = app.test_client()
    login_form(client, "planner_a")
    page = client.get(f"/blindspots?community={COMMUNITY_A}")
    token = csrf_token(page.get_data(as_text=True))
    made = client.post(
        f"/blindspots?community={COMMUNITY_A}",
        data={"csrf_token": token, "community": COMMUNITY_A, "k": "2", "radius_m": "300"},
    )
    assert made.status_code == 303 and "sites=" in made.headers["Location"]
    shown = client.get(made.headers["Location"]).get_data(as_text=True)
    assert shown.count('data-label="排名"') >= 1 and "步行 300 米内" in shown
    run = int(made.headers["Location"].rsplit("sites=", 1)[1])
    drawn = client.get(f"/blindspots/sites/{run}/map").get_data(as_text=True)
    assert json.dumps("建议新设驿站")[1:-1] in drawn
    bad = client.post(
        f"/blindspots?community={COMMUNITY_A}",
        data={"csrf_token": token, "community": COMMUNITY_A, "k": "99", "radius_m": "300"},
    )
    assert bad.status_code == 422
    other = app.test_client()
    login_form(other, "admin_b")
    assert other.get(f"/blindspots/sites/{run}/map").status_code == 404


def test_upload_form_keeps_its_choices(app, web):
    client = app.test_client()
    login_form(client, "admin")
    token = csrf_token(client.get("/upload").get_data(as_text=True))
    from io import BytesIO

    answer = client.post(
        "/upload",
        data={
            "csrf_token": token,
            "layer": "members",
            "crs": "EPSG:4490",
            "skip_invalid": "on",
            "file": (BytesIO(b"code,name\n"), "empty.csv"),
        },
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert re.search(r'<option value="members" selected>', answer)
    assert 'value="EPSG:4490"' in answer and "checked" in answer
