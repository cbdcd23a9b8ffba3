"""Client tests of every API endpoint: status codes, payload shapes, JSON errors, scopes."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text
from webhelpers import COMMUNITY_A, COMMUNITY_B, STREET_A, STREET_B, bearer, count, owner_engine

from gridsvc.accounts.scope import app_database_url
from gridsvc.db import make_engine


@pytest.fixture(scope="module")
def codes(web):
    """A household, member, building and grid code of street A."""
    engine = owner_engine(web)
    with engine.connect() as conn:
        one = {
            kind: conn.scalar(
                text(
                    f"SELECT t.code FROM {table} t JOIN communities c ON c.id = t.community_id "
                    "WHERE c.code = :c ORDER BY t.code LIMIT 1"
                ),
                {"c": COMMUNITY_A},
            )
            for kind, table in (
                ("household", "households"),
                ("member", "members"),
                ("building", "buildings"),
                ("grid", "grids"),
            )
        }
    engine.dispose()
    return one


def a_urls(codes):
    """GET endpoints that show street A's data, with the keys their payload must have."""
    return [
        (f"/api/coverage?street={STREET_A}", ["scope", "summary", "communities", "grids"]),
        (f"/api/coverage?community={COMMUNITY_A}", ["summary"]),
        (f"/api/coverage.geojson?community={COMMUNITY_A}", ["type", "features"]),
        (f"/api/blindspots?community={COMMUNITY_A}&limit=5", ["counts", "blindspots"]),
        (f"/api/roster?community={COMMUNITY_A}", ["households", "members", "totals", "masked"]),
        (f"/api/roster?community={COMMUNITY_A}&grid={codes['grid']}", ["households"]),
        (f"/api/roster.xlsx?community={COMMUNITY_A}", None),
        (f"/api/roster.csv?community={COMMUNITY_A}", None),
        (f"/api/records/household/{codes['household']}", ["code", "name", "members"]),
        (f"/api/records/member/{codes['member']}", ["code", "households", "cadres"]),
        (f"/api/records/building/{codes['building']}", ["code", "households"]),
        (f"/api/report?community={COMMUNITY_A}", None),
    ]


def test_every_read_endpoint_answers_its_own_scope(client, web, codes):
    for url, keys in a_urls(codes):
        response = client.get(url, headers=bearer(web, "viewer_a"))
        assert response.status_code == 200, (url, response.data[:300])
        if keys:
            body = response.get_json(force=True)
            assert set(keys) <= set(body), url
    me = client.get("/api/me", headers=bearer(web, "viewer_a")).get_json()
    assert me["scope"] == {"level": "street", "code": STREET_A}
    listed = client.get("/api/communities", headers=bearer(web, "viewer_a")).get_json()
    assert {c["street_code"] for c in listed["communities"]} == {STREET_A}
    found = client.get(f"/api/search?q={codes['household'][:-1]}", headers=bearer(web, "viewer_a"))
    assert found.status_code == 200 and found.get_json()["results"]


def test_viewer_of_street_b_never_gets_street_a(client, web, codes):
    for url, _ in a_urls(codes):
        response = client.get(url, headers=bearer(web, "viewer_b"))
        assert response.status_code in (403, 404), url
        body = response.get_json()
        assert body["error"] in ("NotFound", "Forbidden") and body["message"], url
        assert COMMUNITY_A not in body["message"] or "no such" in body["message"]
    search = client.get(f"/api/search?q={codes['household']}", headers=bearer(web, "viewer_b"))
    assert search.get_json()["results"] == []
    coverage = client.get("/api/coverage", headers=bearer(web, "viewer_b")).get_json()
    assert [c["code"] for c in coverage["communities"]] == [COMMUNITY_B]
    roster = client.get("/api/roster", headers=bearer(web, "viewer_b")).get_json()
    assert roster["totals"]["household_pairs"] == 0
    # planners of street A cannot queue work for street B either
    job = client.post(
        "/api/jobs", json={"kind": "pairing", "community": COMMUNITY_B},
        headers=bearer(web, "planner_a"),
    )  # fmt: skip
    assert job.status_code == 404


def test_row_level_security_blocks_raw_queries_under_the_app_role(web):
    engine = make_engine(app_database_url(web.settings))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM households")) == 0  # no scope: nothing
        street_b = count(web, f"SELECT id FROM streets WHERE code = '{STREET_B}'")
        conn.execute(text("SELECT set_config('app.street', :s, true)"), {"s": str(street_b)})
        visible = conn.scalar(text("SELECT count(*) FROM households"))
        codes = set(conn.execute(text("SELECT code FROM communities")).scalars())
        assert visible == 20 and codes == {COMMUNITY_B}
        assert conn.scalar(text("SELECT count(*) FROM streets")) == 1
        with pytest.raises(Exception, match="row-level security"):
            conn.execute(
                text(
                    "UPDATE households SET community_id = "
                    f"(SELECT id FROM communities WHERE code = '{COMMUNITY_B}') "
                    "WHERE code = 'H-ZZ-1' RETURNING id"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO grids (code, name, community_id, geom) VALUES "
                    "('530102001001999', 'x', 1, "
                    "ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))', 4326))"
                )
            )
        conn.rollback()
        conn.execute(text("SELECT set_config('app.street', :s, true)"), {"s": str(street_b)})
        # a transaction later the scope is gone ('' → NULL): nothing again
        conn.commit()
        assert conn.scalar(text("SELECT count(*) FROM households")) == 0
        role = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
        assert tuple(role) == (False, False)
        owner = conn.scalar(text("SELECT tableowner FROM pg_tables WHERE tablename = 'households'"))
        assert owner != conn.scalar(text("SELECT current_user"))
    engine.dispose()
    assert count(web, "SELECT count(*) FROM households") > 2000  # the owner sees every row


def test_jobs_are_scoped_by_row_level_security(web):
    """A job can hold an uploaded file of households: raw SQL under the app role with street
    B's scope neither sees nor writes street A's jobs."""
    owner = owner_engine(web)
    with owner.begin() as conn:
        street_a = conn.scalar(text("SELECT id FROM streets WHERE code = :c"), {"c": STREET_A})
        street_b = conn.scalar(text("SELECT id FROM streets WHERE code = :c"), {"c": STREET_B})
        job = conn.scalar(
            text(
                "INSERT INTO jobs (kind, street_id, payload) VALUES ('import', :s, 'x') "
                "RETURNING id"
            ),
            {"s": street_a},
        )
    engine = make_engine(app_database_url(web.settings))
    try:
        with engine.connect() as conn:
            seen = text("SELECT count(*) FROM jobs WHERE id = :i")
            conn.execute(text("SELECT set_config('app.street', :s, true)"), {"s": str(street_b)})
            assert conn.scalar(seen, {"i": job}) == 0
            with pytest.raises(Exception, match="row-level security"):
                conn.execute(
                    text("INSERT INTO jobs (kind, street_id) VALUES ('import', :s)"),
                    {"s": street_a},
                )
            conn.rollback()
            conn.execute(text("SELECT set_config('app.street', :s, true)"), {"s": str(street_a)})
            assert conn.scalar(seen, {"i": job}) == 1
            conn.rollback()
    finally:
        engine.dispose()
        with owner.begin() as conn:
            conn.execute(text("DELETE FROM jobs WHERE id = :i"), {"i": job})
        owner.dispose()


def test_errors_are_json_and_name_the_problem(client, web):
    h = bearer(web, "viewer_a")
    bad = client.get("/api/coverage.geojson?community=12ab", headers=h)
    assert bad.status_code == 422
    assert "community" in bad.get_json()["message"]
    missing = client.get("/api/coverage.geojson", headers=h)
    assert missing.status_code == 422 and "community" in missing.get_json()["message"]
    nope = client.get("/api/records/household/NOPE-1", headers=h)
    assert nope.status_code == 404 and "NOPE-1" in nope.get_json()["message"]
    kind = client.get("/api/records/bridge/X", headers=h)
    assert kind.status_code == 422 and "bridge" in kind.get_json()["message"]
    assert client.get("/api/coverage").status_code == 401
    assert client.get("/api/coverage").get_json()["error"] == "Unauthorized"
    assert client.get("/api/me", headers={"Authorization": "Bearer gst_x"}).status_code == 401
    assert client.get("/api/audit", headers=h).status_code == 403
    assert client.get("/api/users", headers=h).status_code == 403
    assert client.get("/api/nothing", headers=h).get_json()["error"] == "NotFound"
    both = client.get(f"/api/coverage?street={STREET_A}&community={COMMUNITY_A}", headers=h)
    assert both.status_code == 422 and "street" in both.get_json()["message"]


def test_geojson_is_cached_by_data_version_with_etag(client, web):
    h = bearer(web, "viewer_a")
    first = client.get(f"/api/coverage.geojson?community={COMMUNITY_A}", headers=h)
    etag = first.headers["ETag"]
    again = client.get(
        f"/api/coverage.geojson?community={COMMUNITY_A}", headers={**h, "If-None-Match": etag}
    )
    assert again.status_code == 304
    features = first.get_json(force=True)["features"]
    assert {f["properties"]["layer"] for f in features} == {"grid", "building"}
    engine = owner_engine(web)
    with engine.begin() as conn:
        conn.execute(text("UPDATE buildings SET name = name WHERE code = 'B-ZZ-1'"))
    engine.dispose()
    changed = client.get(
        f"/api/coverage.geojson?community={COMMUNITY_A}", headers={**h, "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_unmasked_data_is_for_planners_and_audited(client, web, codes):
    url = f"/api/records/household/{codes['household']}?unmasked=true"
    assert client.get(url, headers=bearer(web, "viewer_a")).status_code == 403
    before = count(web, "SELECT count(*) FROM audit_log WHERE action = 'view_unmasked'")
    assert client.get(url, headers=bearer(web, "planner_a")).status_code == 200
    after = count(web, "SELECT count(*) FROM audit_log WHERE action = 'view_unmasked'")
    assert after == before + 1
    masked = client.get(
        f"/api/records/household/{codes['household']}", headers=bearer(web, "viewer_a")
    )
    assert "*" in masked.get_json()["name"]
    export = client.get(
        f"/api/roster.csv?community={COMMUNITY_A}&unmasked=true", headers=bearer(web, "planner_a")
    )
    assert export.status_code == 200
    assert count(web, "SELECT count(*) FROM audit_log WHERE action = 'export_unmasked'") >= 1


def test_admin_endpoints(client, web):
    h = bearer(web, "admin")
    users = client.get("/api/users", headers=h).get_json()["users"]
    assert {"viewer_a", "admin"} <= {u["username"] for u in users}
    made = client.post(
        "/api/users",
        json={"username": "new_viewer", "password": "long enough pw", "role": "viewer",
              "community": COMMUNITY_A},
        headers=h,
    )  # fmt: skip
    assert made.status_code == 201 and made.get_json()["scope"]["code"] == COMMUNITY_A
    again = client.post(
        "/api/users",
        json={"username": "new_viewer", "password": "long enough pw", "role": "viewer",
              "community": COMMUNITY_A},
        headers=h,
    )  # fmt: skip
    assert again.status_code == 409 and "new_viewer" in again.get_json()["message"]
    unscoped = client.post(
        "/api/users", json={"username": "x1", "password": "long enough pw", "role": "viewer"},
        headers=h,
    )  # fmt: skip
    assert unscoped.status_code == 422 and "street" in unscoped.get_json()["message"]
    token = client.post("/api/users/new_viewer/tokens", json={"name": "t"}, headers=h)
    assert token.status_code == 201
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token.get_json()['token']}"})
    assert me.get_json()["username"] == "new_viewer"
    log = client.get("/api/audit?limit=5", headers=h).get_json()["entries"]
    assert log and {"at", "username", "action"} <= set(log[0])


def test_audit_log_is_append_only(web):
    engine = make_engine(app_database_url(web.settings))
    with engine.connect() as conn, pytest.raises(Exception, match="permission denied"):
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()
    owner = owner_engine(web)
    with owner.connect() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("UPDATE audit_log SET action = 'x'"))
    owner.dispose()


def test_upload_reports_rejects_and_limits(client, web):
    h = bearer(web, "admin_b")
    bad = (
        b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
        b'{"code": ""}, "geometry": {"type": "Point", "coordinates": [500, 25]}}]}'
    )
    response = client.post(
        "/api/imports", data={"layer": "stations", "file": (io.BytesIO(bad), "s.geojson")},
        headers=h, content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 422, response.data[:500]
    body = response.get_json()
    assert body["details"] and body["details"][0]["reason"]
    good = (
        b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
        b'{"code": "S-ZZ-1", "name": "\\u9a7f\\u7ad9", "community_code": "530102902001"}, '
        b'"geometry": {"type": "Point", "coordinates": [102.6015, 25.0015]}}]}'
    )
    response = client.post(
        "/api/imports", data={"layer": "stations", "file": (io.BytesIO(good), "s.geojson")},
        headers=h, content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 200, response.data[:800]
    assert response.get_json()["inserted"] == 1
    viewer = client.post(
        "/api/imports", data={"layer": "stations", "file": (io.BytesIO(good), "s.geojson")},
        headers=bearer(web, "viewer_b"), content_type="multipart/form-data",
    )  # fmt: skip
    assert viewer.status_code == 403


def test_upload_size_is_limited(client, web):
    limit = client.application.config["MAX_CONTENT_LENGTH"]
    boundary = "gridsvc-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="layer"\r\n\r\nstations\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + b"x" * (limit + 1)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    # An in-memory body: werkzeug's own multipart encoder spools large bodies to a temporary
    # file that it never closes when the app refuses the request.
    huge = client.post(
        "/api/imports", data=body, headers=bearer(web, "admin_b"),
        content_type=f"multipart/form-data; boundary={boundary}",
    )  # fmt: skip
    assert huge.status_code == 413 and "MB" in huge.get_json()["message"]


def test_jobs_are_queued_and_report_their_status(client, web):
    from gridsvc.jobs import execute_job

    response = client.post(
        "/api/jobs", json={"kind": "pairing", "community": COMMUNITY_A},
        headers=bearer(web, "planner_a"),
    )  # fmt: skip
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    status = client.get(f"/api/jobs/{job_id}", headers=bearer(web, "planner_a")).get_json()
    assert status["status"] == "queued"
    execute_job(web.settings, job_id, here=True)  # its per-community jobs too, no worker
    status = client.get(f"/api/jobs/{job_id}", headers=bearer(web, "planner_a")).get_json()
    assert status["status"] == "done", status
    assert status["progress"] == 1 and status["result"]["runs"][0]["scope"] == COMMUNITY_A
    assert status["result"]["versions"][COMMUNITY_A] >= 1
    other = client.get(f"/api/jobs/{job_id}", headers=bearer(web, "viewer_b"))
    assert other.status_code == 404
    viewer = client.post(
        "/api/jobs", json={"kind": "pairing", "community": COMMUNITY_A},
        headers=bearer(web, "viewer_a"),
    )  # fmt: skip
    assert viewer.status_code == 403


def test_station_suggestions_for_planners(client, web):
    body = {"community": COMMUNITY_A, "radius_m": 300, "k": 2}
    assert (
        client.post(
            "/api/stations/suggestions", json=body, headers=bearer(web, "viewer_a")
        ).status_code
        == 403
    )
    done = client.post("/api/stations/suggestions", json=body, headers=bearer(web, "planner_a"))
    assert done.status_code == 200, done.data[:300]
    assert "sites" in done.get_json()
    other = client.post("/api/stations/suggestions", json=body, headers=bearer(web, "admin_b"))
    assert other.status_code == 404


@pytest.mark.parametrize("metric", ["straight", "network"])
def test_station_suggestions_follow_the_reach_metric_setting(web, metric):
    """The app's own GRIDSVC_REACH_METRIC reaches the siting (the demo has roads)."""
    from dataclasses import replace

    from gridsvc.web import create_app

    app = create_app(
        {
            "TESTING": True,
            "GRIDSVC_SETTINGS": replace(web.settings, reach_metric=metric),
            "GRIDSVC_NO_QUEUE": True,
        }
    )
    body = {"community": COMMUNITY_A, "radius_m": 300, "k": 1}
    done = app.test_client().post(
        "/api/stations/suggestions", json=body, headers=bearer(web, "planner_a")
    )
    app.extensions["gridsvc.engine"].dispose()
    assert done.status_code == 200, done.data[:300]
    assert done.get_json()["distance_metric"] == metric


def test_passwords_are_hashed_with_argon2id(web):
    engine = owner_engine(web)
    with engine.connect() as conn:
        hashes = conn.execute(text("SELECT password_hash FROM users")).scalars().all()
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    engine.dispose()
    assert all(h.startswith("$argon2id$v=19$m=32768,t=2,p=1$") for h in hashes)
    assert all(len(h) == 64 and not h.startswith("gst_") for h in stored)


def test_a_community_planners_pairing_job_runs_its_units_in_its_scope(client, web):
    """A community-scoped planner's job: its community's unit and its street's member level
    run as that planner (row-level security), and the job lists both units."""
    from gridsvc.jobs import execute_job

    response = client.post(
        "/api/jobs", json={"kind": "pairing", "community": COMMUNITY_A},
        headers=bearer(web, "planner_a2"),
    )  # fmt: skip
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    execute_job(web.settings, job_id, here=True)
    status = client.get(f"/api/jobs/{job_id}", headers=bearer(web, "planner_a2")).get_json()
    assert status["status"] == "done", status
    kinds = sorted((c["kind"], c["status"]) for c in status["children"])
    assert kinds == [("pair_community", "done"), ("pair_street", "done")]
    assert status["result"]["versions"][COMMUNITY_A] >= 1
    assert client.get(f"/api/jobs/{job_id}", headers=bearer(web, "viewer_b")).status_code == 404
