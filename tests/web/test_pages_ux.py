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


def test_overview_is_aggregated_under_the_callers_scope(client, web):
    from webhelpers import STREET_A, STREET_B, bearer

    mine = client.get("/api/overview.geojson", headers=bearer(web, "viewer_a"))
    assert mine.status_code == 200
    features = mine.get_json()["features"]
    layers = {f["properties"]["layer"] for f in features}
    assert layers == {"community", "grid"}
    codes = {f["properties"]["code"] for f in features}
    assert all(c.startswith(STREET_A) for c in codes)
    total = sum(
        f["properties"]["households"] for f in features if f["properties"]["layer"] == "community"
    )
    engine = owner_engine(web)
    with engine.connect() as conn:
        expected = conn.scalar(
            text(
                "SELECT count(*) FROM households h JOIN communities c ON c.id = h.community_id "
                "JOIN streets s ON s.id = c.street_id WHERE s.code = :s"
            ),
            {"s": STREET_A},
        )
    engine.dispose()
    assert total == expected
    assert "name" not in json.dumps(
        [f["properties"] for f in features if "phone" in f["properties"]]
    )
    other = client.get(f"/api/overview.geojson?street={STREET_A}", headers=bearer(web, "viewer_b"))
    assert other.status_code == 404
    district = client.get("/api/overview.geojson", headers=bearer(web, "admin")).get_json()
    streets = {f["properties"]["code"][:9] for f in district["features"]}
    assert {STREET_A, STREET_B} <= streets
    etag = mine.headers["ETag"]
    again = client.get(
        "/api/overview.geojson", headers={**bearer(web, "viewer_a"), "If-None-Match": etag}
    )
    assert again.status_code == 304


def test_households_only_for_a_small_box(client, web):
    from webhelpers import bearer

    point = _one(web, "SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM households LIMIT 1")
    d = 0.002
    box = f"{point.x - d},{point.y - d},{point.x + d},{point.y + d}"
    small = client.get(f"/api/households.geojson?bbox={box}", headers=bearer(web, "viewer_a"))
    assert small.status_code == 200 and small.get_json()["features"]
    assert set(small.get_json()["features"][0]["properties"]) == {"code", "paired"}
    huge = client.get("/api/households.geojson?bbox=100,20,104,26", headers=bearer(web, "viewer_a"))
    assert huge.status_code == 422 and "bbox" in huge.get_json()["message"]
    outside = client.get(f"/api/households.geojson?bbox={box}", headers=bearer(web, "viewer_b"))
    assert outside.get_json()["features"] == []


def test_overview_pages(app, web):
    client = app.test_client()
    login_form(client, "admin")
    page = client.get("/overview")
    assert page.status_code == 200 and "全区概览" in page.get_data(as_text=True)
    frame = client.get("/overview/frame").get_data(as_text=True)
    assert "/api/overview.geojson" in frame and "<script src" not in frame
    viewer = app.test_client()
    login_form(viewer, "viewer_a")
    assert "街道全图" in viewer.get("/overview").get_data(as_text=True)
    assert viewer.get("/overview?street=530102902").status_code == 404
