"""The web service over the real pairing service: plans, proposals, row-level security, races."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, text
from webhelpers import (
    COMMUNITY_A,
    COMMUNITY_B,
    STREET_A,
    bearer,
    csrf_token,
    login_form,
    owner_engine,
)

from gridsvc.accounts.scope import app_database_url, apply_scope
from gridsvc.accounts.users import find_user
from gridsvc.db import make_engine
from gridsvc.errors import Conflict, NotFound
from gridsvc.pairing import service


def owner_scalar(web, sql: str, **params: object) -> object:
    """One value read as the database owner."""
    engine = owner_engine(web)
    with engine.connect() as conn:
        value = conn.scalar(text(sql), params)
    engine.dispose()
    return value


@pytest.fixture(scope="module")
def planned(web) -> int:
    """Community A has a household plan (made by the pairing service as the owner)."""
    cid = int(owner_scalar(web, "SELECT id FROM communities WHERE code = :c", c=COMMUNITY_A))
    engine = owner_engine(web)
    with engine.begin() as conn:
        if service.plan_version(conn, cid) == 0:
            service.run_pairing(
                conn, settings=web.settings, community_code=COMMUNITY_A, level="households"
            )
    engine.dispose()
    return cid


def version_of(web, cid: int) -> int:
    """The plan version of a community, read as the owner."""
    return int(owner_scalar(web, "SELECT version FROM plans WHERE community_id = :c", c=cid))


def propose(client, web, who: str = "planner_a") -> dict:
    """A fresh proposal for community A through the API."""
    made = client.post("/api/proposals", json={"community": COMMUNITY_A}, headers=bearer(web, who))
    assert made.status_code == 201, made.data[:500]
    return made.get_json()


def test_plan_and_proposal_endpoints(client, web, planned):
    version = version_of(web, planned)
    plan = client.get(f"/api/plans/{COMMUNITY_A}", headers=bearer(web, "viewer_a"))
    assert plan.status_code == 200 and plan.get_json()["version"] == version
    assert plan.headers["ETag"] == f'"{version}"'
    made = client.post(
        "/api/proposals", json={"community": COMMUNITY_A}, headers=bearer(web, "planner_a")
    )
    assert made.status_code == 201, made.data[:500]
    body = made.get_json()
    assert made.headers["ETag"] == f'"{version}"' and body["base_version"] == version
    assert made.headers["Location"] == f"/api/proposals/{body['id']}"
    assert set(body["counts"]) == {"kept", "moved", "new", "dropped"} and body["summary"]
    assert body["counts"]["kept"] > 0  # nothing changed since the plan: most pairs stay
    shown = client.get(f"/api/proposals/{body['id']}", headers=bearer(web, "viewer_a")).get_json()
    assert shown["status"] == "open" and not shown["stale"] and shown["counts"] == body["counts"]
    viewer = client.post(
        "/api/proposals", json={"community": COMMUNITY_A}, headers=bearer(web, "viewer_a")
    )
    assert viewer.status_code == 403


def test_accept_needs_the_reviewed_version(client, web, planned):
    body = propose(client, web)
    url = f"/api/proposals/{body['id']}/accept"
    h = bearer(web, "planner_a")
    missing = client.post(url, json={}, headers=h)
    assert missing.status_code == 428 and "If-Match" in missing.get_json()["message"]
    garbage = client.post(url, json={}, headers={**h, "If-Match": '"v3", "x"'})
    assert garbage.status_code == 422 and "If-Match" in garbage.get_json()["message"]
    for bad in ('""', "*", 'W/"x"'):
        refused = client.post(url, json={}, headers={**h, "If-Match": bad})
        assert refused.status_code == 422, bad
    wrong = client.post(url, json={}, headers={**h, "If-Match": f'"{body["base_version"] + 7}"'})
    assert wrong.status_code == 409 and "version" in wrong.get_json()["message"]
    etag = client.get(f"/api/coverage.geojson?community={COMMUNITY_A}", headers=h).headers["ETag"]
    done = client.post(
        url, json={"reason": "tidy up"}, headers={**h, "If-Match": f'"{body["base_version"]}"'}
    )
    assert done.status_code == 200, done.data[:500]
    decision = done.get_json()
    assert decision["version"] == body["base_version"] + 1 == version_of(web, planned)
    assert done.headers["ETag"] == f'"{decision["version"]}"'
    assert decision["after"]["run_id"] == body["run_id"]
    again = client.post(url, json={}, headers={**h, "If-Match": f'"{decision["version"]}"'})
    assert again.status_code == 409 and "accepted" in again.get_json()["message"]
    # the accepted plan bumped the data version: the cached coverage GeoJSON is rebuilt
    fresh = client.get(
        f"/api/coverage.geojson?community={COMMUNITY_A}", headers={**h, "If-None-Match": etag}
    )
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    entry = owner_scalar(
        web,
        "SELECT reason FROM audit_log WHERE action = 'proposal_accept' AND target = :t",
        t=f"proposal {body['id']}",
    )
    assert entry == "tidy up"


def test_reject_and_stale_proposals(client, web, planned):
    h = bearer(web, "planner_a")
    first, again = propose(client, web), propose(client, web)
    assert again["id"] == first["id"]  # one open proposal per community and plan version
    rejected = client.post(f"/api/proposals/{first['id']}/reject", json={"reason": "no"}, headers=h)
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    second = propose(client, web)
    assert second["id"] != first["id"]
    accepted = client.post(
        f"/api/proposals/{second['id']}/accept",
        json={},
        headers={**h, "If-Match": f'"{second["base_version"]}"'},
    )
    assert accepted.status_code == 200
    third = propose(client, web)
    assert third["base_version"] == second["base_version"] + 1
    stale = client.post(
        f"/api/proposals/{first['id']}/accept",
        json={},
        headers={**h, "If-Match": f'"{third["base_version"]}"'},
    )
    assert stale.status_code == 409 and "rejected" in stale.get_json()["message"]


def test_viewer_of_street_b_never_sees_or_decides_street_a_proposals(client, web, planned):
    body = propose(client, web)
    for who in ("viewer_b", "admin_b"):
        h = bearer(web, who)
        assert client.get(f"/api/plans/{COMMUNITY_A}", headers=h).status_code == 404
        assert client.get(f"/api/proposals/{body['id']}", headers=h).status_code == 404
        made = client.post("/api/proposals", json={"community": COMMUNITY_A}, headers=h)
        assert made.status_code in (403, 404)
    decide = client.post(
        f"/api/proposals/{body['id']}/accept",
        json={},
        headers={**bearer(web, "admin_b"), "If-Match": f'"{body["base_version"]}"'},
    )
    assert decide.status_code == 404 and "no proposal" in decide.get_json()["message"]
    status = owner_scalar(web, "SELECT status FROM proposals WHERE id = :i", i=body["id"])
    assert status == "open"


# --- row-level security of the pairing tables, under the app role ------------------------------

PAIRING_TABLES = {
    "pairing_runs": "community_id = :a OR street_id = (SELECT street_id FROM communities "
    "WHERE id = :a)",
    "household_pairs": "run_id IN (SELECT id FROM pairing_runs WHERE community_id = :a)",
    "pairing_unpaired": "run_id IN (SELECT id FROM pairing_runs WHERE community_id = :a)",
    "pairing_reserve": "run_id IN (SELECT id FROM pairing_runs WHERE community_id = :a)",
    "plans": "community_id = :a",
    "proposals": "community_id = :a",
}


def _as_app(web, user_name: str) -> tuple[Callable[[], Connection], Callable[[], None]]:
    """Connections as the app role with the scope (and planner flag) of a test user."""
    engine = make_engine(app_database_url(web.settings))
    owner = owner_engine(web)
    with owner.connect() as conn:
        user = find_user(conn, user_name)
    owner.dispose()

    def connect() -> Connection:
        conn = engine.connect()
        conn.begin()
        apply_scope(conn, user)
        return conn

    return connect, engine.dispose


def test_rls_street_b_cannot_read_or_change_street_a_pairing(web, planned, client):
    body = propose(client, web)
    run_id = owner_scalar(
        web, "SELECT household_run_id FROM plans WHERE community_id = :a", a=planned
    )
    for table, where in PAIRING_TABLES.items():  # street A's rows exist, seen by the owner
        if table == "pairing_unpaired":  # surplus: every household is paired
            continue
        assert owner_scalar(web, f"SELECT count(*) FROM {table} WHERE {where}", a=planned) > 0
    for who in ("viewer_b", "admin_b"):  # a viewer, and a user allowed to plan, of street B
        connect, dispose = _as_app(web, who)
        with connect() as conn:
            for table, where in PAIRING_TABLES.items():
                seen = conn.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE {where}"), {"a": planned}
                )
                assert seen == 0, (who, table)
            views = conn.scalar(
                text("SELECT count(*) FROM current_household_pairs WHERE community_id = :a"),
                {"a": planned},
            )
            assert views == 0
            changed = conn.execute(
                text("UPDATE proposals SET status = 'rejected' WHERE id = :i"), {"i": body["id"]}
            ).rowcount
            gone = conn.execute(
                text("DELETE FROM household_pairs WHERE run_id = :r"), {"r": run_id}
            ).rowcount
            assert changed == 0 and gone == 0
            with pytest.raises(NotFound):
                service.accept_proposal(conn, body["id"], expected_version=body["base_version"])
            with pytest.raises(Exception, match="row-level security"):
                conn.execute(
                    text("UPDATE plans SET version = 99 WHERE community_id = :a"), {"a": planned}
                )  # invisible: 0 rows, so the insert below is the test
                conn.execute(
                    text("INSERT INTO plans (community_id, version) VALUES (:a, 99)"),
                    {"a": planned},
                )
            conn.rollback()
        dispose()
    # a viewer of street A reads A's pairs but may not change them (no planner flag)
    connect, dispose = _as_app(web, "viewer_a")
    with connect() as conn:
        pairs = conn.scalar(
            text("SELECT count(*) FROM current_household_pairs WHERE community_id = :a"),
            {"a": planned},
        )
        assert pairs > 0
        changed = conn.execute(
            text("UPDATE proposals SET status = 'rejected' WHERE id = :i"), {"i": body["id"]}
        ).rowcount
        assert changed == 0
        with pytest.raises(Exception, match="row-level security"):
            conn.execute(
                text(
                    "INSERT INTO household_pairs (run_id, household_id, member_id, distance_m, "
                    "same_building, same_grid) SELECT run_id, household_id, member_id, 0, true, "
                    "true FROM household_pairs WHERE run_id = :r LIMIT 1"
                ),
                {"r": body["run_id"]},
            )
        conn.rollback()
    dispose()
    assert owner_scalar(web, "SELECT status FROM proposals WHERE id = :i", i=body["id"]) == "open"
    assert version_of(web, planned) == body["base_version"]


_SECOND_COMMUNITY = """
INSERT INTO communities (code, name, street_id)
  SELECT '530102001099', '第二社区', id FROM streets WHERE code = :s;
INSERT INTO members (code, name, kind, community_id, geom)
  SELECT 'M-A2-1', '赵六', 'resident', id, ST_SetSRID(ST_MakePoint(102.70, 25.04), 4326)
  FROM communities WHERE code = '530102001099';
"""


def test_member_pairs_of_a_street_show_only_the_readers_community(web):
    """A community-scoped reader sees the member→cadre pairs of its own members only."""
    engine = owner_engine(web)
    try:
        with engine.begin() as conn:
            for statement in _SECOND_COMMUNITY.split(";\n"):
                if statement.strip():
                    conn.execute(text(statement), {"s": STREET_A})
            service.run_pairing(conn, settings=web.settings, street_code=STREET_A, level="members")
            other = conn.scalar(
                text(
                    "SELECT count(*) FROM current_member_pairs p JOIN members m "
                    "ON m.id = p.member_id WHERE m.code = 'M-A2-1'"
                )
            )
        assert other == 1  # the street's run pairs the other community's member too
        connect, dispose = _as_app(web, "viewer_ca")
        with connect() as conn:
            leaked = conn.scalar(
                text(
                    "SELECT count(*) FROM member_pairs WHERE member_id NOT IN "
                    "(SELECT id FROM members)"
                )
            )
            own = conn.scalar(text("SELECT count(*) FROM current_member_pairs"))
            conn.rollback()
        dispose()
        assert leaked == 0 and own > 0
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM members WHERE code = 'M-A2-1'"))
            conn.execute(text("DELETE FROM communities WHERE code = '530102001099'"))
        engine.dispose()


# --- two planners at once -----------------------------------------------------------------------


def _waiting_on_lock(engine, pid: int) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE pid = :p AND wait_event_type = 'Lock'"
                ),
                {"p": pid},
            )
        )


def _data_changed(web) -> None:
    engine = owner_engine(web)
    with engine.begin() as conn:
        conn.execute(  # a household's record changes: a rebalance now reads other inputs
            text(
                "UPDATE households SET name = name || '.' WHERE id = (SELECT min(h.id) FROM "
                "households h JOIN communities c ON c.id = h.community_id WHERE c.code = :c)"
            ),
            {"c": COMMUNITY_A},
        )
    engine.dispose()


def test_two_planners_accepting_at_once_one_wins_version_plus_one(client, web, planned):
    """Two connections accept two proposals of one community, released by a barrier.

    The first to lock the plan row waits until the other is seen blocked on that lock (so the
    two transactions really overlap), then commits; the other must then be refused.
    """
    first = propose(client, web, "planner_a")
    _data_changed(web)  # else the second planner is handed the first planner's open proposal
    second = propose(client, web, "planner_a2")
    assert second["id"] != first["id"]
    base = first["base_version"]
    assert second["base_version"] == base == version_of(web, planned)
    barrier = threading.Barrier(2)
    pids: dict[int, int] = {}
    outcome: dict[int, object] = {}
    overlapped = threading.Event()
    watcher = owner_engine(web)

    def planner(index: int, user_name: str, proposal: dict) -> None:
        connect, dispose = _as_app(web, user_name)
        conn = connect()
        pids[index] = conn.connection.driver_connection.info.backend_pid
        try:
            barrier.wait(timeout=30)
            decision = service.accept_proposal(
                conn, proposal["id"], expected_version=base, decided_by=user_name
            )
            other = pids[1 - index]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _waiting_on_lock(watcher, other):
                time.sleep(0.02)
            if _waiting_on_lock(watcher, other):
                overlapped.set()
            conn.commit()
            outcome[index] = decision
        except Conflict as exc:
            conn.rollback()
            outcome[index] = exc
        finally:
            conn.close()
            dispose()

    threads = [
        threading.Thread(target=planner, args=(0, "planner_a", first)),
        threading.Thread(target=planner, args=(1, "planner_a2", second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    watcher.dispose()
    assert overlapped.is_set(), "the two accepts did not overlap"
    wins = [o for o in outcome.values() if isinstance(o, service.Decision)]
    losses = [o for o in outcome.values() if isinstance(o, Conflict)]
    assert len(wins) == 1 and len(losses) == 1, outcome
    assert "version" in losses[0].message
    winner = wins[0]
    assert winner.version == base + 1 == version_of(web, planned)
    engine = owner_engine(web)
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT id, status FROM proposals WHERE id = ANY(:ids)"),
                {"ids": [first["id"], second["id"]]},
            ).all()
        )
        run_id = conn.scalar(
            text("SELECT household_run_id FROM plans WHERE community_id = :c"), {"c": planned}
        )
    engine.dispose()
    loser_id = second["id"] if winner.proposal_id == first["id"] else first["id"]
    assert statuses == {winner.proposal_id: "accepted", loser_id: "open"}
    assert run_id == winner.after["run_id"]


def test_two_planners_over_http_the_loser_gets_409(app, web, planned):
    h1, h2 = bearer(web, "planner_a"), bearer(web, "planner_a2")
    client = app.test_client()
    first = propose(client, web, "planner_a")
    _data_changed(web)  # else the second planner is handed the first planner's open proposal
    second = propose(client, web, "planner_a2")
    assert second["id"] != first["id"]
    base = first["base_version"]
    barrier = threading.Barrier(2)
    answers: dict[str, tuple[int, dict]] = {}

    def accept(name: str, headers: dict[str, str], proposal: dict) -> None:
        own = app.test_client()
        barrier.wait(timeout=30)
        response = own.post(
            f"/api/proposals/{proposal['id']}/accept",
            json={"reason": name},
            headers={**headers, "If-Match": f'"{base}"'},
        )
        answers[name] = (response.status_code, response.get_json())

    threads = [
        threading.Thread(target=accept, args=("one", h1, first)),
        threading.Thread(target=accept, args=("two", h2, second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(code for code, _ in answers.values()) == [200, 409], answers
    loser = next(body for code, body in answers.values() if code == 409)
    assert loser["error"] == "Conflict" and "version" in loser["message"]
    assert version_of(web, planned) == base + 1
    accepts = owner_scalar(
        web,
        "SELECT count(*) FROM audit_log WHERE action = 'proposal_accept' AND target IN (:a, :b)",
        a=f"proposal {first['id']}",
        b=f"proposal {second['id']}",
    )
    assert accepts == 1


# --- the rebalance page -------------------------------------------------------------------------


@pytest.fixture
def planner_page(app) -> Iterator:
    client = app.test_client()
    login_form(client, "planner_a")
    yield client


@pytest.fixture
def member_left(web, planned) -> Iterator[str]:
    """One paired member of community A is no longer available (forces changes), for a test."""
    engine = owner_engine(web)
    with engine.begin() as conn:
        code = conn.scalar(
            text(
                "SELECT m.code FROM current_household_pairs p JOIN members m ON m.id = p.member_id "
                "WHERE p.community_id = :c ORDER BY m.code LIMIT 1"
            ),
            {"c": planned},
        )
        conn.execute(text("UPDATE members SET available = false WHERE code = :m"), {"m": code})
    yield code
    with engine.begin() as conn:
        conn.execute(text("UPDATE members SET available = true WHERE code = :m"), {"m": code})
    engine.dispose()


def test_rebalance_page_proposes_shows_the_diff_and_accepts(
    planner_page, web, planned, member_left
):
    page = planner_page.get(f"/rebalance?community={COMMUNITY_A}")
    assert page.status_code == 200
    token = csrf_token(page.get_data(as_text=True))
    made = planner_page.post(
        "/rebalance", data={"csrf_token": token, "community": COMMUNITY_A, "action": "propose"}
    )
    assert made.status_code == 303 and "proposal=" in made.headers["Location"]
    shown = planner_page.get(made.headers["Location"])
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and 'id="diff-counts"' in html and 'id="diff-map"' in html
    pid = int(made.headers["Location"].rsplit("proposal=", 1)[1])
    assert 'class="change-moved"' in html or 'class="change-dropped"' in html
    assert member_left in html  # the member who left is in the table's "before" column
    diff_map = planner_page.get(f"/rebalance/{pid}/map")
    drawn = diff_map.get_data(as_text=True)
    assert diff_map.status_code == 200 and json.dumps("结对变化")[1:-1] in drawn
    assert json.dumps("调整前的结对")[1:-1] in drawn or json.dumps("取消的结对")[1:-1] in drawn
    assert json.dumps(member_left) in drawn and "leaflet" in drawn.lower()
    version = version_of(web, planned)
    stale = planner_page.post(
        f"/rebalance?community={COMMUNITY_A}",
        data={"csrf_token": token, "action": "accept", "proposal_id": pid, "version": version + 5},
    )
    assert stale.status_code == 409 and "过期" in stale.get_data(as_text=True)
    done = planner_page.post(
        f"/rebalance?community={COMMUNITY_A}",
        data={"csrf_token": token, "action": "accept", "proposal_id": pid, "version": version},
    )
    assert done.status_code == 303  # post/redirect/get: a reload does not post again
    shown = planner_page.get(done.headers["Location"])
    assert shown.status_code == 200, shown.get_data(as_text=True)[:500]
    assert f"方案已接受，版本 {version + 1}" in shown.get_data(as_text=True)
    assert version_of(web, planned) == version + 1
    reloaded = planner_page.get(done.headers["Location"]).get_data(as_text=True)
    assert "方案已接受" not in reloaded and "已接受" in reloaded  # shown once; status stays


def test_rebalance_pages_are_for_planners_in_scope(app, web, planned, client):
    body = propose(client, web)
    viewer = app.test_client()
    login_form(viewer, "viewer_a")
    assert viewer.get("/rebalance").status_code == 403
    other = app.test_client()
    login_form(other, "admin_b")
    assert other.get(f"/rebalance/{body['id']}/map").status_code == 404
    assert other.get(f"/rebalance?proposal={body['id']}").status_code == 404
    assert other.get(f"/rebalance?community={COMMUNITY_B}").status_code == 200
