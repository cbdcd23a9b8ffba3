"""Members and cadres as users, the contact log, its import and the overdue list.

A database of its own (a small demo street, paired), members and cadres bound to users; row-
level security checked with raw SQL under the app role, the API through the test client.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gridsvc.accounts.scope import app_database_url, apply_scope
from gridsvc.accounts.tokens import issue_token
from gridsvc.accounts.users import create_user, find_user
from gridsvc.db import drop_database, init_database, make_engine
from gridsvc.errors import InputRejected
from gridsvc.settings import Settings

PASSWORD = "correct horse battery"
BJ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class World:
    url: str
    settings: Settings
    engine: Engine
    tokens: dict[str, str]
    mine: list[str]  # households of member m1
    theirs: list[str]  # households of member m2 (same community)
    m1: str
    m2: str
    cadre: str
    cadre_members: list[str]
    community: str


@pytest.fixture(scope="module")
def world(settings: Settings) -> Iterator[World]:
    from geodata.demo import load_demo
    from gridsvc.pairing.service import run_pairing

    url = make_url(settings.database_url)
    db_url = url.set(database=f"{url.database}_contacts").render_as_string(hide_password=False)
    drop_database(db_url)
    init_database(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        load_demo(conn, seed=4, households=1500)
        street = conn.scalar(text("SELECT min(code) FROM streets"))
        run_pairing(conn, settings=settings, street_code=street, time_limit=2)
        rows = conn.execute(
            text(
                "SELECT m.code, co.code AS community, array_agg(h.code ORDER BY h.code) AS hh "
                "FROM current_household_pairs p JOIN members m ON m.id = p.member_id "
                "JOIN households h ON h.id = p.household_id "
                "JOIN communities co ON co.id = m.community_id "
                "GROUP BY m.code, co.code ORDER BY co.code, m.code"
            )
        ).fetchall()
        community = rows[0].community
        m1, m2 = [r for r in rows if r.community == community][:2]
        cadre = conn.execute(
            text(
                "SELECT c.code, array_agg(m.code ORDER BY m.code) AS members "
                "FROM current_member_pairs p JOIN cadres c ON c.id = p.cadre_id "
                "JOIN members m ON m.id = p.member_id WHERE m.code <> :m1 "
                "GROUP BY c.code ORDER BY c.code LIMIT 1"
            ),
            {"m1": m1.code},
        ).first()
        tokens = {}
        for name, role, kw in (
            ("m1", "member", {"member_code": m1.code}),
            ("m2", "member", {"member_code": m2.code}),
            ("cadre", "cadre", {"cadre_code": cadre.code}),
            ("planner", "planner", {"community_code": community}),
            ("viewer", "viewer", {"community_code": community}),
        ):
            user = create_user(conn, name, PASSWORD, role=role, **kw)
            tokens[name] = issue_token(conn, user.id, "tests")
    yield World(
        db_url,
        settings.with_(database_url=db_url),
        engine,
        tokens,
        list(m1.hh),
        list(m2.hh),
        m1.code,
        m2.code,
        cadre.code,
        list(cadre.members),
        community,
    )
    engine.dispose()
    drop_database(db_url)


@pytest.fixture(scope="module")
def app_engine(world: World) -> Iterator[Engine]:
    engine = make_engine(app_database_url(world.settings))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def client(world: World):
    from gridsvc.web import create_app

    app = create_app(
        {"TESTING": True, "GRIDSVC_SETTINGS": world.settings, "GRIDSVC_NO_QUEUE": True}
    )
    yield app.test_client()
    app.extensions["gridsvc.engine"].dispose()


def auth(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}"}


def as_user(world: World, app_engine: Engine, who: str):
    """A connection as the app role in ``who``'s scope (raw SQL; rolled back)."""
    with world.engine.connect() as owner:
        user = find_user(owner, who)
    conn = app_engine.connect()
    conn.begin()
    apply_scope(conn, user)
    return conn


# --- row-level security ---------------------------------------------------------------------


def test_member_reads_only_own_households_and_cadre(world, app_engine):
    conn = as_user(world, app_engine, "m1")
    try:
        seen = conn.execute(text("SELECT code FROM households ORDER BY code")).scalars().all()
        assert seen == sorted(world.mine)
        assert (
            conn.scalar(
                text("SELECT count(*) FROM households WHERE code = :c"), {"c": world.theirs[0]}
            )
            == 0
        )
        assert conn.execute(text("SELECT code FROM members")).scalars().all() == [world.m1]
        assert conn.scalar(text("SELECT count(*) FROM cadres")) <= 1
        assert conn.scalar(text("SELECT count(*) FROM household_pairs")) == len(world.mine)
        assert conn.scalar(text("SELECT count(*) FROM proposals")) == 0
        assert conn.scalar(text("SELECT count(*) FROM jobs")) == 0
        with pytest.raises(Exception, match=r"row-level security|permission"):
            conn.execute(
                text(
                    "INSERT INTO members (code, kind, geom) VALUES ('X', 'resident', "
                    "ST_SetSRID(ST_MakePoint(102.7, 25.0), 4326))"
                )
            )
    finally:
        conn.close()


@pytest.mark.parametrize("who", ["m1", "cadre"])
def test_person_reads_the_buildings_of_their_households_and_members(world, app_engine, who):
    members = [world.m1] if who == "m1" else world.cadre_members
    with world.engine.connect() as owner:
        expected = set(
            owner.scalars(
                text(
                    "SELECT b.code FROM buildings b WHERE b.id IN (SELECT h.building_id "
                    "FROM current_household_pairs p JOIN households h ON h.id = p.household_id "
                    "JOIN members m ON m.id = p.member_id WHERE m.code = ANY(:m)) "
                    "OR b.id IN (SELECT building_id FROM members WHERE code = ANY(:m))"
                ),
                {"m": members},
            )
        )
    conn = as_user(world, app_engine, who)
    try:
        assert set(conn.scalars(text("SELECT code FROM buildings"))) == expected != set()
    finally:
        conn.close()


def test_member_update_of_own_household_changes_nothing(world, app_engine):
    conn = as_user(world, app_engine, "m1")
    try:
        changed = conn.execute(
            text("UPDATE households SET size = 9 WHERE code = :c"), {"c": world.mine[0]}
        ).rowcount
        assert changed == 0
    finally:
        conn.close()


def test_cadre_reads_members_and_their_households(world, app_engine):
    conn = as_user(world, app_engine, "cadre")
    try:
        members = conn.execute(text("SELECT code FROM members ORDER BY code")).scalars().all()
        assert members == sorted(world.cadre_members) or set(world.cadre_members) <= set(members)
        households = conn.scalar(text("SELECT count(*) FROM households"))
        with world.engine.connect() as owner:
            expected = owner.scalar(
                text(
                    "SELECT count(*) FROM current_household_pairs p JOIN members m "
                    "ON m.id = p.member_id WHERE m.code = ANY(:m)"
                ),
                {"m": members},
            )
        assert households == expected > 0
        assert conn.execute(text("SELECT code FROM cadres")).scalars().all() == [world.cadre]
    finally:
        conn.close()


def test_contacts_of_another_members_household_are_invisible(world, app_engine, client):
    response = client.post(
        "/api/contacts",
        json={"household": world.theirs[0], "channel": "phone"},
        headers=auth(world, "m2"),
    )
    assert response.status_code == 201, response.get_json()
    conn = as_user(world, app_engine, "m1")
    try:
        hidden = conn.scalar(
            text(
                "SELECT count(*) FROM contacts c JOIN households h ON h.id = c.household_id "
                "WHERE h.code = :c"
            ),
            {"c": world.theirs[0]},
        )
        everything = conn.scalar(
            text(
                "SELECT count(*) FROM contacts "
                "WHERE household_id NOT IN (SELECT id FROM households)"
            )
        )
        assert hidden == 0 and everything == 0
    finally:
        conn.close()


# --- the API ----------------------------------------------------------------------------------


def test_member_logs_own_household_and_is_refused_another(world, client):
    ok = client.post(
        "/api/contacts",
        json={"household": world.mine[0], "channel": "visit", "note": "送米面油"},
        headers=auth(world, "m1"),
    )
    assert ok.status_code == 201, ok.get_json()
    body = ok.get_json()
    assert body["member"] == world.m1 and body["contacted_at"].endswith("+08:00")
    refused = client.post(
        "/api/contacts",
        json={"household": world.theirs[1], "channel": "visit"},
        headers=auth(world, "m1"),
    )
    assert refused.status_code == 403
    assert world.theirs[1] in refused.get_json()["message"]
    listed = client.get(f"/api/contacts?household={world.theirs[0]}", headers=auth(world, "m1"))
    assert listed.status_code == 200 and listed.get_json()["total"] == 0


def test_same_minute_is_not_counted_twice(world, client):
    at = (datetime.now(BJ) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    first = client.post(
        "/api/contacts",
        json={"household": world.mine[1], "channel": "phone", "at": at},
        headers=auth(world, "m1"),
    )
    again = client.post(
        "/api/contacts",
        json={"household": world.mine[1], "channel": "phone", "at": at + ":30"},
        headers=auth(world, "m1"),
    )
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"at": "2099-01-01T08:00"}, "contacted_at"),
        ({"at": "2001-01-01T08:00"}, "contacted_at"),
        ({"channel": "carrier pigeon"}, "channel"),
        ({"at": "yesterday"}, "at"),
        ({"lon": 200.0, "lat": 25.0}, "lon"),
        ({"lon": 102.7}, "lat"),
    ],
)
def test_bad_contacts_are_refused_and_write_nothing(world, client, change, field):
    before = _count(world, "SELECT count(*) FROM contacts")
    body = {"household": world.mine[2], "channel": "visit"} | change
    response = client.post("/api/contacts", json=body, headers=auth(world, "m1"))
    assert response.status_code == 422, response.get_json()
    details = response.get_json()["details"]
    assert any(d["field"] == field for d in details), details
    assert _count(world, "SELECT count(*) FROM contacts") == before


def test_unknown_household_and_viewer(world, client):
    unknown = client.post(
        "/api/contacts",
        json={"household": "NOPE-1", "channel": "visit"},
        headers=auth(world, "planner"),
    )
    assert unknown.status_code == 404 and "NOPE-1" in unknown.get_json()["message"]
    viewer = client.post(
        "/api/contacts",
        json={"household": world.mine[0], "channel": "visit"},
        headers=auth(world, "viewer"),
    )
    assert viewer.status_code == 403


def test_correction_supersedes_by_author_only_and_is_audited(world, client):
    made = client.post(
        "/api/contacts",
        json={"household": world.mine[3], "channel": "phone", "note": "typo"},
        headers=auth(world, "m1"),
    ).get_json()
    by_other = client.post(
        "/api/contacts",
        json={"household": world.mine[3], "channel": "visit", "corrects": made["id"]},
        headers=auth(world, "planner"),
    )
    assert by_other.status_code == 403
    fixed = client.post(
        "/api/contacts",
        json={
            "household": world.mine[3],
            "channel": "visit",
            "note": "fixed",
            "corrects": made["id"],
        },
        headers=auth(world, "m1"),
    )
    assert fixed.status_code == 201 and fixed.get_json()["supersedes"] == made["id"]
    listed = client.get(f"/api/contacts?household={world.mine[3]}", headers=auth(world, "m1"))
    assert [c["note"] for c in listed.get_json()["contacts"]] == ["fixed"]
    assert _count(world, f"SELECT count(*) FROM contacts WHERE id = {made['id']}") == 1
    assert _count(world, "SELECT count(*) FROM audit_log WHERE action = 'contact_correct'") >= 1
    with world.engine.connect() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("DELETE FROM contacts WHERE id = :i"), {"i": made["id"]})


def test_contact_api_is_in_openapi(client):
    spec = client.get("/api/openapi.json").get_json()
    assert {"get", "post"} <= set(spec["paths"]["/api/contacts"])


# --- overdue --------------------------------------------------------------------------------


def test_overdue_contract_and_contact_leaves_the_list(world, client):
    before = client.get(
        f"/api/contacts/overdue?community={world.community}", headers=auth(world, "planner")
    )
    data = before.get_json()
    assert set(data) == {"as_of", "overdue", "members"}
    row = data["overdue"][0]
    assert set(row) == {
        "household",
        "member",
        "last_contact",
        "days_since",
        "cadence_days",
        "vulnerable",
    }
    assert set(data["members"][0]) == {"member", "households", "overdue", "contacted_share"}
    vulnerable = [r["vulnerable"] for r in data["overdue"]]
    assert vulnerable == sorted(vulnerable, reverse=True)
    late = [r["household"] for r in data["overdue"] if r["member"] == world.m1]
    target = late[0]
    client.post(
        "/api/contacts", json={"household": target, "channel": "visit"}, headers=auth(world, "m1")
    )
    after = client.get(
        f"/api/contacts/overdue?community={world.community}", headers=auth(world, "planner")
    )
    assert target not in [r["household"] for r in after.get_json()["overdue"]]
    mine = client.get("/api/contacts/overdue", headers=auth(world, "m1")).get_json()
    assert {r["household"] for r in mine["overdue"]} <= set(world.mine)


def test_cadence_override_per_community(world):
    from gridsvc.contacts import overdue

    with world.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE communities SET contact_days = 1000, contact_days_vulnerable = 1000 "
                "WHERE code = :c"
            ),
            {"c": world.community},
        )
        report = overdue(conn, settings=world.settings, community_code=world.community)
        cadences = {r["cadence_days"] for r in report.overdue_rows()}
        conn.rollback()
    assert cadences <= {1000}


# --- import and export ----------------------------------------------------------------------


def _count(world: World, sql: str) -> int:
    with world.engine.connect() as conn:
        return int(conn.scalar(text(sql)))


def _sheet(tmp_path, rows, name="contacts.csv", encoding="gbk"):
    path = tmp_path / name
    lines = ["household_code,member_code,contacted_at,channel,note"] + [",".join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_import_all_or_nothing_names_every_reject(world, tmp_path):
    from gridsvc.contacts.imports import import_contacts

    day = (datetime.now(BJ) - timedelta(days=3)).strftime("%Y/%m/%d")
    rows = [
        (world.mine[4], world.m1, f"{day} 09:30", "走访", "了解近况"),
        ("NOPE-1", world.m1, f"{day} 10:00", "visit", ""),
        (world.mine[4], world.m2, f"{day} 10:00", "visit", ""),
        (world.mine[5], world.m1, "2099-01-01 08:00", "visit", ""),
        (world.mine[5], world.m1, f"{day} 11:00", "飞鸽", ""),
    ]
    before = _count(world, "SELECT count(*) FROM contacts")
    with world.engine.begin() as conn, pytest.raises(InputRejected) as caught:
        import_contacts(conn, _sheet(tmp_path, rows), settings=world.settings)
    found = {(r.record, r.field) for r in caught.value.rejects}
    assert {(3, "household_code"), (4, "member_code"), (5, "contacted_at"), (6, "channel")} <= found
    assert (2, "household_code") not in found
    assert _count(world, "SELECT count(*) FROM contacts") == before


def test_import_counts_household_member_minute_once(world, tmp_path):
    from gridsvc.contacts.imports import import_contacts

    day = (datetime.now(BJ) - timedelta(days=4)).strftime("%Y-%m-%d")
    rows = [
        (world.mine[6], world.m1, f"{day} 09:30", "电话", "备注"),
        (world.mine[6], world.m1, f"{day} 09:30:40", "phone", "dup in file"),
        (world.mine[7], world.m1, f"{day} 10:00", "wechat", "=HYPERLINK(1)"),
    ]
    path = _sheet(tmp_path, rows)
    with world.engine.begin() as conn:
        first = import_contacts(conn, path, settings=world.settings)
    with world.engine.begin() as conn:
        again = import_contacts(conn, path, settings=world.settings)
    assert (first.inserted, first.skipped_duplicates) == (2, 1)
    assert (again.inserted, again.skipped_duplicates) == (0, 3)
    stored = _count(
        world,
        "SELECT extract(hour FROM c.contacted_at AT TIME ZONE 'Asia/Shanghai') FROM contacts c "
        f"JOIN households h ON h.id = c.household_id WHERE h.code = '{world.mine[6]}' "
        "AND c.source = 'import'",
    )
    assert stored == 9  # Beijing time kept


def test_cli_import_export_roundtrip(world, tmp_path):
    from gridsvc.cli import cli

    env = {"GRIDSVC_DATABASE_URL": world.url}
    out = tmp_path / "contacts.csv"
    result = CliRunner().invoke(
        cli, ["export", "contacts", str(out), "--community", world.community], env=env
    )
    assert result.exit_code == 0, result.output
    text_out = out.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK(1)" in text_out and "household_code,member_code" in text_out
    again = CliRunner().invoke(cli, ["contacts", "import", str(out)], env=env)
    assert again.exit_code == 0, again.output
    assert " 0 inserted" in again.output
    bad = CliRunner().invoke(
        cli, ["contacts", "overdue", "--community", world.community, "--format", "json"], env=env
    )
    assert bad.exit_code == 0 and json.loads(bad.output)["as_of"].endswith("+08:00")


def test_user_import_binds_members_and_writes_passwords_once(world, tmp_path):
    from gridsvc.cli import cli

    other = world.cadre_members[-1]
    sheet = tmp_path / "users.csv"
    sheet.write_bytes(
        f"用户名,角色,党员编码,干部编码\nzhang,党员,{other},\nbad,member,NOPE,\n".encode("gbk")
    )
    env = {"GRIDSVC_DATABASE_URL": world.url}
    secrets_file = tmp_path / "pw.txt"
    refused = CliRunner().invoke(
        cli, ["user", "import", str(sheet), "--passwords-file", str(secrets_file)], env=env
    )
    assert refused.exit_code == 3 and "NOPE" in refused.output
    assert _count(world, "SELECT count(*) FROM users WHERE username = 'zhang'") == 0
    sheet.write_bytes(f"用户名,角色,党员编码,干部编码\nzhang,党员,{other},\n".encode("gbk"))
    made = CliRunner().invoke(
        cli, ["user", "import", str(sheet), "--passwords-file", str(secrets_file)], env=env
    )
    assert made.exit_code == 0, made.output
    assert oct(os.stat(secrets_file).st_mode & 0o777) == "0o600"
    assert (
        "zhang\t" in secrets_file.read_text()
        and "zhang" not in made.output.split("written")[0].split("created")[1]
    )
    with world.engine.connect() as conn:
        user = find_user(conn, "zhang")
    assert user.role == "member" and user.member_id is not None and user.community_code


def test_coverage_counts_contacted_and_blind_spots_rank_overdue(world, client):
    from gridsvc.coverage import compute_coverage, find_blindspots

    client.post(
        "/api/contacts",
        json={"household": world.mine[8], "channel": "visit"},
        headers=auth(world, "m1"),
    )
    with world.engine.connect() as conn:
        report = compute_coverage(conn, community_code=world.community, settings=world.settings)
        spots = find_blindspots(
            conn, community_code=world.community, kinds=["overdue_contact"], settings=world.settings
        )
    summary = report.summary
    assert 0 < summary["contacted"] < summary["paired"]
    assert summary["contacted_share"] == pytest.approx(summary["contacted"] / summary["paired"])
    late = spots["overdue_contact"]
    assert len(late) == summary["paired"] - summary["contacted"]
    assert world.mine[8] not in set(late["code"])
    flags = late["vulnerable"].tolist()
    assert flags == sorted(flags, reverse=True)


# --- the phone pages in a browser -----------------------------------------------------------


@pytest.fixture(scope="module")
def live_url(world: World):
    import threading

    from waitress.server import create_server

    from gridsvc.web import create_app

    settings = world.settings.with_(secret_key="t" * 32, cookie_secure=False)
    app = create_app({"GRIDSVC_SETTINGS": settings, "GRIDSVC_NO_QUEUE": True})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    app.extensions["gridsvc.engine"].dispose()


@pytest.mark.browser
def test_member_on_a_phone_logs_a_contact_and_the_household_leaves_the_overdue_list(
    world, live_url, chromium, client
):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: r.url.startswith(live_url) or outside.append(r.url))
        page.goto(f"{live_url}/login")
        page.fill("input[name=username]", "m1")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_url}/my/")
        shown = page.locator("a.household").evaluate_all("els => els.map(e => e.dataset.code)")
        assert sorted(shown) == sorted(world.mine)  # only their own households
        late = [
            c
            for c, s in zip(
                shown,
                page.locator("a.household").evaluate_all("els => els.map(e => e.dataset.status)"),
                strict=True,
            )
            if s in ("overdue", "never")
        ]
        target = late[0]
        assert page.locator("#late-count").inner_text() == str(len(late))
        page.click(f"a.household[data-code='{target}']")  # tap 1
        page.click("#channel-visit")  # tap 2
        page.wait_for_url(f"{live_url}/my/")
        assert target in page.locator("#flash").inner_text()
        status = page.locator(f"a.household[data-code='{target}']").get_attribute("data-status")
        assert status in ("ok", "due_soon")  # due again within its cadence, not overdue
        assert page.locator("#late-count").inner_text() == str(len(late) - 1)
        overdue = client.get("/api/contacts/overdue", headers=auth(world, "m1")).get_json()
        assert target not in {r["household"] for r in overdue["overdue"]}
        # another member's household: refused on the page as through the API
        other = page.goto(f"{live_url}/my/households/{world.theirs[0]}")
        assert other.status in (403, 404)
        assert not outside
    finally:
        context.close()


def test_digest_and_report_section_are_offline_and_masked(world, tmp_path):
    from gridsvc.cli import cli

    with world.engine.connect() as conn:
        street = conn.scalar(text("SELECT min(code) FROM streets"))
        name = conn.scalar(
            text("SELECT name FROM households WHERE code = :c"), {"c": world.mine[0]}
        )
    today = datetime.now(BJ).date()
    out = tmp_path / "digest.html"
    env = {"GRIDSVC_DATABASE_URL": world.url}
    args = ["digest", "--street", street, "--from", str(today - timedelta(days=14))]
    result = CliRunner().invoke(cli, [*args, "--to", str(today), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "民情分析半月报" in page and "联系情况" in page and "<svg" in page
    assert "<script" not in page
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)  # nothing fetched
    assert name and name not in page  # names masked (codes only)
    backwards = CliRunner().invoke(
        cli,
        [
            *args[:3],
            "--from",
            str(today),
            "--to",
            str(today - timedelta(days=1)),
            "--out",
            str(out),
        ],
        env=env,
    )
    assert backwards.exit_code == 3 and "--to" in backwards.output
    report = tmp_path / "report.html"
    made = CliRunner().invoke(
        cli, ["report", "--community", world.community, "--out", str(report)], env=env
    )
    assert made.exit_code == 0, made.output
    assert 'id="contacts-section"' in report.read_text(encoding="utf-8")


def test_rebalance_keeps_pairs_with_recent_contacts_and_says_so(world):
    from gridsvc.pairing.service import propose_rebalance

    target = world.mine[-1]
    with world.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contacts (household_id, member_id, community_id, contacted_at, "
                "channel, source) SELECT h.id, m.id, h.community_id, "
                "now() - make_interval(days => d), 'visit', 'import' FROM households h, "
                "members m, generate_series(1, 6) AS d WHERE h.code = :h AND m.code = :m"
            ),
            {"h": target, "m": world.m1},
        )
        proposal = propose_rebalance(
            conn, community_code=world.community, settings=world.settings, time_limit=5
        )
    kept = {c["client"]: c for c in proposal.changes if c["kind"] == "kept"}
    assert kept[target]["reason"] == "kept: 6 contacts in 90 days"
    assert kept[target]["server"] == world.m1
    assert not [c for c in proposal.changes if c["kind"] == "moved" and c["client"] == target]


def test_admin_binds_a_member_user_through_the_api(world, client):
    with world.engine.begin() as conn:
        admin = create_user(conn, "admin_c", PASSWORD, role="admin")
        token = issue_token(conn, admin.id, "tests")
    spare = world.cadre_members[0]
    made = client.post(
        "/api/users",
        json={"username": "via_api", "password": PASSWORD, "role": "member", "member": spare},
        headers={"Authorization": f"Bearer {token}"},
    )
    if made.status_code == 409:  # the member is already bound (another test): still refused
        assert "already bound" in made.get_json()["message"]
        return
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["role"] == "member"
    again = client.post(
        "/api/users",
        json={"username": "via_api2", "password": PASSWORD, "role": "member", "member": spare},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert again.status_code == 409 and "already bound" in again.get_json()["message"]
    unbound = client.post(
        "/api/users",
        json={"username": "via_api3", "password": PASSWORD, "role": "member"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert unbound.status_code == 422 and "member" in str(unbound.get_json())


def test_phone_reveal_is_for_the_paired_member_and_audited(world, client):
    before = _count(world, "SELECT count(*) FROM audit_log WHERE action = 'household_phone_reveal'")
    with world.engine.connect() as conn:
        phone = conn.scalar(
            text("SELECT phone FROM households WHERE code = :c"), {"c": world.mine[0]}
        )
    for who, expected in (("m1", 200), ("cadre", 403), ("m2", 404)):
        response = client.post(f"/my/households/{world.mine[0]}/phone", headers=auth(world, who))
        if who == "cadre" and world.m1 not in world.cadre_members:
            expected = 404  # not even visible to a cadre who is not m1's
        assert response.status_code == expected, (who, response.status_code)
        page = response.get_data(as_text=True)
        if phone and who != "m1":
            assert phone not in page
    after = _count(world, "SELECT count(*) FROM audit_log WHERE action = 'household_phone_reveal'")
    assert after == before + 1


# --- the member's page, kept per person ---------------------------------------------------------


def _my_page(client, world: World, who: str) -> tuple[int, dict[str, str]]:
    """The late count and ``{household: status}`` of ``who``'s ``/my/``."""
    response = client.get("/my/", headers=auth(world, who))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    late = int(re.search(r'id="late-count">(\d+)<', page).group(1))
    rows = re.findall(r'data-code="([^"]+)" data-status="([^"]+)"', page)
    return late, dict(rows)


def _households_of(world: World, member: str) -> set[str]:
    with world.engine.connect() as conn:
        return set(
            conn.scalars(
                text(
                    "SELECT h.code FROM current_household_pairs p "
                    "JOIN households h ON h.id = p.household_id "
                    "JOIN members m ON m.id = p.member_id WHERE m.code = :m"
                ),
                {"m": member},
            )
        )


def test_member_page_counts_follow_a_logged_contact_and_show_no_one_elses_rows(world, client):
    late, rows = _my_page(client, world, "m1")
    assert set(rows) == _households_of(world, world.m1)
    target = next(code for code, status in rows.items() if status in ("overdue", "never"))
    logged = client.post(
        "/api/contacts", json={"household": target, "channel": "visit"}, headers=auth(world, "m1")
    )
    assert logged.status_code == 201
    late_after, rows_after = _my_page(client, world, "m1")
    assert late_after == late - 1 and rows_after[target] in ("ok", "due_soon")
    # the same scope and language, another member: their own rows, not m1's kept page
    _, theirs = _my_page(client, world, "m2")
    assert set(theirs) == _households_of(world, world.m2)
    assert not set(theirs) & set(rows)


def test_member_page_shows_no_stale_status_when_the_clock_passes_a_due_date(
    world, client, monkeypatch
):
    from gridsvc.contacts import times
    from gridsvc.contacts.cadence import DUE_SOON_DAYS

    target = sorted(_households_of(world, world.m1))[-1]
    at = datetime.now(BJ).replace(second=0, microsecond=0) - timedelta(hours=2)
    logged = client.post(
        "/api/contacts",
        json={"household": target, "channel": "phone", "at": at.strftime("%Y-%m-%dT%H:%M")},
        headers=auth(world, "m1"),
    )
    assert logged.status_code == 201
    with world.engine.connect() as conn:
        last, cadence = conn.execute(
            text(
                "SELECT l.last_at, CASE WHEN h.elderly_alone OR h.disabled OR h.low_income "
                "OR h.children THEN coalesce(co.contact_days_vulnerable, "
                "s.contact_days_vulnerable, :dv) "
                "ELSE coalesce(co.contact_days, s.contact_days, :d) END FROM households h "
                "JOIN communities co ON co.id = h.community_id "
                "JOIN streets s ON s.id = co.street_id "
                "JOIN contact_last l ON l.household_id = h.id WHERE h.code = :c"
            ),
            {
                "c": target,
                "d": world.settings.contact_days,
                "dv": world.settings.contact_days_vulnerable,
            },
        ).one()
    due = last + timedelta(days=cadence)
    soon = due - timedelta(days=DUE_SOON_DAYS)
    second = timedelta(seconds=1)
    # Each pair of requests is two seconds apart: only an entry that ends at the status change
    # (not an age bound) shows the new status; the day count grows at the same instants.
    steps = [(soon - second, "ok"), (soon + second, "due_soon"), (due - second, "due_soon")]
    steps += [(due + second, "overdue")]
    if cadence <= DUE_SOON_DAYS:
        steps = steps[2:]
    seen = []
    for when, expected in steps:
        monkeypatch.setattr(times, "now_utc", lambda when=when: when)
        late, rows = _my_page(client, world, "m1")
        seen.append((rows[target], late))
        assert rows[target] == expected, (when, seen)
    assert seen[-1][1] == seen[-2][1] + 1  # the late count with it


@pytest.mark.parametrize("hash_joins", [False, True])
def test_overdue_by_community_agrees_with_the_household_list(world, monkeypatch, hash_joins):
    from collections import Counter

    from gridsvc.cli import cli
    from gridsvc.contacts import cadence, overdue, overdue_by_community

    # the city's plan (hash joins from HASH_JOIN_COMMUNITIES communities) gives the same rows
    monkeypatch.setattr(cadence, "HASH_JOIN_COMMUNITIES", 1 if hash_joins else 10**6)
    with world.engine.begin() as conn:
        street = conn.scalar(text("SELECT min(code) FROM streets"))
        listed = overdue(conn, settings=world.settings, street_code=street)
        figures = overdue_by_community(conn, settings=world.settings, street_code=street)
        ids = conn.execute(text("SELECT id FROM communities")).scalars().all()
        status = cadence.contact_status(conn, ids, settings=world.settings)
        code_of = dict(conn.execute(text("SELECT code, community_id FROM households")).all())
        names = dict(conn.execute(text("SELECT id, code FROM communities")).all())
        paired = dict(
            conn.execute(
                text(
                    "SELECT co.code, count(*) FROM current_household_pairs p "
                    "JOIN communities co ON co.id = p.community_id GROUP BY co.code"
                )
            ).all()
        )
        assert conn.scalar(text("SELECT current_setting('enable_nestloop')")) == "on"
    late = Counter(names[code_of[r["household"]]] for r in listed.overdue)
    never = Counter(names[code_of[r["household"]]] for r in listed.overdue if not r["last_contact"])
    rows = {r["community"]: r for r in figures.to_dict()["communities"]}
    assert set(rows) == set(paired) and sum(late.values()) > 0
    assert int(status["overdue"].sum()) == len(listed.overdue)  # what coverage reads
    for code, row in rows.items():
        assert row["households"] == paired[code]
        assert row["overdue"] == late[code] and row["never"] == never[code]
        assert row["contacted_share"] == pytest.approx(1 - late[code] / paired[code], abs=1e-4)
    env = {"GRIDSVC_DATABASE_URL": world.url}
    out = CliRunner().invoke(
        cli,
        ["contacts", "overdue", "--by", "community", "--street", street, "--format", "csv"],
        env=env,
    )
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == (
        "community,name,households,overdue,never,vulnerable_overdue,contacted_share"
    )
    assert len(out.output.splitlines()) == len(rows) + 1
