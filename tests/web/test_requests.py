"""Residents' requests and micro-wishes against PostGIS: dispatch along the pairing, If-Match,
row-level security of members, the import, the API and the CLI.

A database of its own (a small demo street, paired); members bound to users.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gridsvc.accounts.scope import app_database_url, apply_scope
from gridsvc.accounts.tokens import issue_token
from gridsvc.accounts.users import create_user, find_user
from gridsvc.db import drop_database, init_database, make_engine
from gridsvc.settings import Settings

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class World:
    url: str
    settings: Settings
    engine: Engine
    tokens: dict[str, str]
    mine: list[str]
    theirs: list[str]
    m1: str
    m2: str
    community: str
    street: str


@pytest.fixture(scope="module")
def world(settings: Settings) -> Iterator[World]:
    from geodata.demo import load_demo
    from gridsvc.pairing.service import run_pairing

    url = make_url(settings.database_url)
    db_url = url.set(database=f"{url.database}_requests").render_as_string(hide_password=False)
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
                "GROUP BY m.code, co.code HAVING count(*) >= 4 ORDER BY co.code, m.code"
            )
        ).fetchall()
        community = rows[0].community
        m1, m2 = [r for r in rows if r.community == community][:2]
        tokens = {}
        for name, role, kw in (
            ("m1", "member", {"member_code": m1.code}),
            ("m2", "member", {"member_code": m2.code}),
            ("planner", "planner", {"community_code": community}),
            ("viewer", "viewer", {"community_code": community}),
            ("cadre", "cadre", {"cadre_code": _cadre_of(conn, m1.code)}),
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
        community,
        street,
    )
    engine.dispose()
    drop_database(db_url)


def _cadre_of(conn, member: str) -> str:
    return conn.scalar(
        text(
            "SELECT c.code FROM current_member_pairs p JOIN cadres c ON c.id = p.cadre_id "
            "JOIN members m ON m.id = p.member_id WHERE m.code = :m"
        ),
        {"m": member},
    )


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


def auth(world: World, who: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}", **extra}


def cli(world: World, *args: str):
    from gridsvc.cli import cli as root

    return CliRunner().invoke(
        root, list(args), env={"GRIDSVC_DATABASE_URL": world.url}, catch_exceptions=False
    )


def _clear(world: World) -> None:
    with world.engine.begin() as conn:
        conn.execute(text("ALTER TABLE request_events DISABLE TRIGGER request_events_append_only"))
        conn.execute(text("DELETE FROM requests"))
        conn.execute(text("ALTER TABLE request_events ENABLE TRIGGER request_events_append_only"))


def test_paired_member_then_nearest_with_room_then_reason(world, client):
    _clear(world)
    got = []
    for i in range(4):
        r = client.post(
            "/api/requests",
            json={
                "household": world.mine[0],
                "category": "维修",
                "text": f"水管 {i}",
                "channel": "电话",
            },
            headers=auth(world, "planner"),
        )
        assert r.status_code == 201, r.get_json()
        got.append(r.get_json())
    assert [g["member"] for g in got[:3]] == [world.m1] * 3
    assert all(g["reason"] == "结对党员" for g in got[:3])
    assert got[3]["member"] != world.m1 and got[3]["status"] == "dispatched"
    assert (
        got[3]["reason"].startswith("结对党员已有3件在办，就近有余力党员 ")
        and "米" in got[3]["reason"]
    )
    assert [e["to_state"] for e in got[3]["events"]] == ["waiting", "dispatched"]


def test_if_match_two_at_once_exactly_one_wins(world, client):
    _clear(world)
    r = client.post(
        "/api/requests",
        json={"household": world.mine[1], "category": "other", "text": "咨询"},
        headers=auth(world, "planner"),
    ).get_json()
    version = r["version"]
    path = f"/api/requests/{r['id']}/actions"
    first = client.post(
        path, json={"action": "accept"}, headers=auth(world, "m1", **{"If-Match": f'"{version}"'})
    )
    second = client.post(
        path,
        json={"action": "decline", "note": "忙"},
        headers=auth(world, "m1", **{"If-Match": f'"{version}"'}),
    )
    assert first.status_code == 200 and first.get_json()["status"] == "accepted"
    assert second.status_code == 409
    assert (
        client.post(path, json={"action": "accept"}, headers=auth(world, "m1")).status_code == 428
    )
    # someone else's order: refused
    other = client.post(
        path,
        json={"action": "start"},
        headers=auth(world, "m2", **{"If-Match": f'"{version + 1}"'}),
    )
    assert other.status_code in (403, 404)


def test_decline_goes_to_another_member_with_reason(world, client):
    _clear(world)
    r = client.post(
        "/api/requests",
        json={"household": world.mine[2], "category": "环境卫生", "text": "垃圾"},
        headers=auth(world, "planner"),
    ).get_json()
    out = client.post(
        f"/api/requests/{r['id']}/actions",
        json={"action": "decline", "note": "出差"},
        headers=auth(world, "planner", **{"If-Match": f'"{r["version"]}"'}),
    )
    body = out.get_json()
    assert out.status_code == 200, body
    assert body["status"] == "dispatched" and body["member"] != world.m1
    assert body["reason"].startswith("结对党员已退回")
    assert [e["to_state"] for e in body["events"]] == [
        "waiting",
        "dispatched",
        "returned",
        "dispatched",
    ]


def test_member_reads_only_own_orders_and_households_rls(world, client, app_engine):
    _clear(world)
    client.post(
        "/api/requests",
        json={"household": world.mine[0], "category": "维修", "text": "a"},
        headers=auth(world, "planner"),
    )
    client.post(
        "/api/requests",
        json={"household": world.theirs[0], "category": "维修", "text": "b"},
        headers=auth(world, "planner"),
    )
    with world.engine.connect() as owner:
        user = find_user(owner, "m1")
        total = owner.scalar(text("SELECT count(*) FROM requests"))
    conn = app_engine.connect()
    conn.begin()
    apply_scope(conn, user)
    try:
        seen = (
            conn.execute(
                text("SELECT h.code FROM requests r JOIN households h ON h.id = r.household_id")
            )
            .scalars()
            .all()
        )
        assert total == 2 and seen == [world.mine[0]]
        assert conn.scalar(text("SELECT count(*) FROM request_events")) == 2
        with pytest.raises(Exception, match=r"permission|append-only"):
            conn.execute(text("DELETE FROM request_events"))
    finally:
        conn.close()
    listed = client.get("/api/requests", headers=auth(world, "m2")).get_json()
    assert [r["household"] for r in listed["requests"]] == [world.theirs[0]]
    assert (
        client.post(
            "/api/requests",
            json={"household": world.mine[0], "category": "维修", "text": "x"},
            headers=auth(world, "viewer"),
        ).status_code
        == 403
    )


def test_events_are_append_only_even_for_the_owner(world):
    with world.engine.begin() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("UPDATE request_events SET note = 'x'"))


def test_bad_input_is_named_and_nothing_persists(world, client):
    _clear(world)
    r = client.post(
        "/api/requests",
        json={"household": world.mine[0], "category": "fly", "text": "x"},
        headers=auth(world, "planner"),
    )
    assert r.status_code == 422 and "category" in json.dumps(r.get_json(), ensure_ascii=False)
    r = client.post(
        "/api/requests",
        json={"household": "NOPE", "category": "维修", "text": "x"},
        headers=auth(world, "planner"),
    )
    assert r.status_code == 404
    with world.engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM requests")) == 0


def test_batch_dispatch_cli_respects_cap_and_vulnerable_first(world, tmp_path):
    _clear(world)
    with world.engine.begin() as conn:
        hh = conn.execute(
            text(
                "SELECT h.id, h.community_id FROM households h JOIN communities c ON c.id = "
                "h.community_id WHERE c.code = :c ORDER BY h.id LIMIT 400"
            ),
            {"c": world.community},
        ).all()
        for h in hh:
            conn.execute(
                text(
                    "INSERT INTO requests (community_id, household_id, category, text, channel, "
                    "due_at) VALUES (:c, :h, 'repair', 't', 'phone', now() + interval '7 days')"
                ),
                {"c": h.community_id, "h": h.id},
            )
    out = cli(world, "requests", "dispatch", "--community", world.community)
    assert out.exit_code == 0, out.output
    with world.engine.connect() as conn:
        worst = conn.scalar(
            text(
                "SELECT max(n) FROM (SELECT count(*) n FROM requests WHERE member_id IS NOT "
                "NULL GROUP BY member_id) x"
            )
        )
        assert worst <= world.settings.member_open_requests_max
        waiting_vuln = conn.scalar(
            text("SELECT count(*) FROM requests WHERE state = 'waiting' AND vulnerable")
        )
        served_plain = conn.scalar(
            text("SELECT count(*) FROM requests WHERE member_id IS NOT NULL AND NOT vulnerable")
        )
        assert not (waiting_vuln and served_plain)
        assert (
            conn.scalar(
                text(
                    "SELECT count(*) FROM requests r WHERE state = 'dispatched' AND NOT EXISTS "
                    "(SELECT 1 FROM request_events e WHERE e.request_id = r.id AND e.to_state = "
                    "'dispatched')"
                )
            )
            == 0
        )
    listed = json.loads(
        cli(
            world,
            "requests",
            "list",
            "--community",
            world.community,
            "--format",
            "json",
            "--limit",
            "5",
        ).output
    )
    assert set(listed[0]) == {
        "id",
        "household",
        "category",
        "status",
        "member",
        "reason",
        "created_at",
        "due_at",
    }


def test_import_all_or_nothing_then_dispatch(world, tmp_path):
    _clear(world)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        (
            "household_code,category,text,channel,created_at,status,member_code\n"
            f"{world.mine[0]},维修,灯坏了,电话,2026-11-01 09:00,,\n"
            "NOPE,飞行,x,传真,2026-11-01,,\n"
        ).encode("gbk")
    )
    out = cli(world, "requests", "import", str(bad))
    assert out.exit_code == 3 and "record 3" in out.output and "category" in out.output
    good = tmp_path / "good.csv"
    good.write_bytes(
        (
            "household_code,category,text,channel,created_at,status,member_code\n"
            f"{world.mine[0]},维修,灯坏了,电话,2026-11-01 09:00,,\n"
            f"{world.mine[1]},环境卫生,垃圾,微信群,2026-10-01 09:00,已办结,{world.m1}\n"
        ).encode("gbk")
    )
    out = cli(world, "requests", "import", str(good))
    assert out.exit_code == 0 and "2 imported, 1 dispatched" in out.output, out.output


def test_wishes_claim_cap_units_and_done(world, client):
    wish_ids = []
    with world.engine.begin() as conn:
        codes = (
            conn.execute(
                text(
                    "SELECT h.code FROM households h JOIN communities c ON c.id = "
                    "h.community_id WHERE c.code = :c AND h.low_income ORDER BY h.code LIMIT 4"
                ),
                {"c": world.community},
            )
            .scalars()
            .all()
        )
    assert len(codes) >= 3
    for code in codes[:3]:
        r = client.post(
            "/api/wishes",
            json={
                "household": code,
                "flag": "低保",
                "text": "一台电风扇",
                "value_yuan": "120",
                "wanted_by": (date.today() + timedelta(days=30)).isoformat(),
            },
            headers=auth(world, "planner"),
        )
        assert r.status_code == 201, r.get_json()
        assert "household" not in r.get_json()
        wish_ids.append(r.get_json())
    for w in wish_ids[:2]:
        r = client.post(
            f"/api/wishes/{w['id']}/actions",
            json={"action": "claim"},
            headers=auth(world, "m1", **{"If-Match": f'"{w["version"]}"'}),
        )
        assert r.status_code == 200 and r.get_json()["member"] == world.m1
    third = wish_ids[2]
    r = client.post(
        f"/api/wishes/{third['id']}/actions",
        json={"action": "claim"},
        headers=auth(world, "m1", **{"If-Match": f'"{third["version"]}"'}),
    )
    assert r.status_code == 409 and "GRIDSVC_MEMBER_OPEN_WISHES_MAX" in r.get_data(as_text=True)
    r = client.post(
        f"/api/wishes/{third['id']}/actions",
        json={"action": "claim", "unit": "某某公司"},
        headers=auth(world, "planner", **{"If-Match": f'"{third["version"]}"'}),
    )
    assert r.status_code == 409 and "GRIDSVC_WISH_OPEN_DAYS" in r.get_data(as_text=True)
    w = client.get(f"/api/wishes/{wish_ids[0]['id']}", headers=auth(world, "m1")).get_json()
    r = client.post(
        f"/api/wishes/{w['id']}/actions",
        json={"action": "done", "note": "已送达"},
        headers=auth(world, "m1", **{"If-Match": f'"{w["version"]}"'}),
    )
    assert r.status_code == 200 and r.get_json()["status"] == "done"


def test_openapi_lists_requests_and_wishes(client, world):
    spec = client.get("/api/openapi.json").get_json()
    for path in (
        "/api/requests",
        "/api/requests/{request_id}/actions",
        "/api/wishes",
        "/api/wishes/{wish_id}/actions",
    ):
        assert path in spec["paths"], path


# --- pages -----------------------------------------------------------------------------------

PAYLOAD = "<script>alert(1)</script>张${x}`三"


def test_echo_wall_never_shows_a_name_phone_or_household_code(world, client):
    _clear(world)
    code = world.mine[3]
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE households SET name = :n, phone = '13912345678' WHERE code = :c"),
            {"n": PAYLOAD, "c": code},
        )
    made = client.post(
        "/api/requests",
        json={"household": code, "category": "维修", "text": PAYLOAD},
        headers=auth(world, "planner"),
    ).get_json()
    r = client.post(
        f"/api/requests/{made['id']}/actions",
        json={"action": "accept"},
        headers=auth(world, "m1", **{"If-Match": f'"{made["version"]}"'}),
    ).get_json()
    assert "version" in r, (made["member"], made["reason"], world.m1, r)
    r = client.post(
        f"/api/requests/{made['id']}/actions",
        json={"action": "finish", "note": "已修好"},
        headers=auth(world, "m1", **{"If-Match": f'"{r["version"]}"'}),
    ).get_json()
    client.post(
        f"/api/requests/{made['id']}/actions",
        json={"action": "visit", "satisfaction": 5, "note": "满意"},
        headers=auth(world, "planner", **{"If-Match": f'"{r["version"]}"'}),
    )
    for query in ("", "?download=1", "?lang=en"):
        page = client.get(f"/echo/{world.community}{query}", headers=auth(world, "planner"))
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        for secret in (code, "13912345678", "张", "alert(1)", world.m1, PAYLOAD[:8]):
            assert secret not in body, secret
        assert (
            "★★★★★" in body
            and "<script" not in body
            and "http" not in body.replace("http-equiv", "")
        )
    assert client.get("/echo/530102902001", headers=auth(world, "planner")).status_code == 404


def test_planner_page_lists_and_escapes(world, client):
    page = client.get("/requests", headers=auth(world, "planner"))
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<script>alert(1)" not in body and "&lt;script&gt;" in body


def test_planner_page_reads_on_a_phone_as_cards_with_its_form_behind_a_toggle(world, client):
    from bs4 import BeautifulSoup

    page = client.get("/requests?lang=en&overdue=1", headers=auth(world, "planner"))
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    table = soup.select_one("table#requests")
    assert "cards" in table["class"] and not table.find_parent(class_="scroll")
    heads = [th.get_text(strip=True) for th in table.select("thead th")]
    for row in table.select("tbody tr"):
        assert [td.get("data-label") for td in row.select("td")] == heads
    assert soup.select_one(".controls .ctl-body form#new-request") is not None
    assert soup.select_one(".controls label.ctl-toggle").get_text(strip=True) == "☰ New request"
    assert soup.select_one(".filters [aria-current]")["href"] == "?overdue=1"
    nxt = soup.select_one("p.pager a[rel=next]")
    assert nxt is None or "overdue=1" in nxt["href"]  # the next page keeps the filter


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


def _login(page, live_url: str, who: str) -> None:
    page.goto(f"{live_url}/login")
    page.fill("input[name=username]", who)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.browser
def test_member_accepts_and_declines_on_the_phone_and_claims_a_wish(
    world, live_url, chromium, client, tmp_path
):
    shots = tmp_path  # screenshots to look at after a failing run
    _clear(world)
    ids = [
        client.post(
            "/api/requests",
            json={"household": world.mine[i], "category": c, "text": f"{c} 请帮忙"},
            headers=auth(world, "planner"),
        ).get_json()["id"]
        for i, c in ((0, "维修"), (1, "养老助残"), (2, "政策咨询"))
    ]
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: r.url.startswith(live_url) or outside.append(r.url))
        _login(page, live_url, "m1")
        page.goto(f"{live_url}/my/orders?lang=zh")
        assert page.locator("div.order").count() == 3
        page.screenshot(path=f"{shots}/my_orders_zh_390.png", full_page=True)
        page.locator(f"div.order[data-id='{ids[0]}'] button.accept").click()
        page.wait_for_load_state()
        assert page.locator("#flash").inner_text() == "操作成功"
        card = page.locator(f"div.order[data-id='{ids[1]}']")
        card.locator("input[name=note]").first.fill("本周出差")
        card.locator("button.decline").click()
        page.wait_for_load_state()
        assert page.locator(f"div.order[data-id='{ids[1]}']").count() == 0  # gone to someone else
        page.goto(f"{live_url}/my/orders?lang=en")
        page.screenshot(path=f"{shots}/my_orders_en_390.png", full_page=True)
        assert "paired member" in page.content()
        page.goto(f"{live_url}/my/wishes?lang=zh")
        page.screenshot(path=f"{shots}/my_wishes_zh_390.png", full_page=True)
        page.goto(f"{live_url}/my/wishes?lang=en")
        page.screenshot(path=f"{shots}/my_wishes_en_390.png", full_page=True)
        page.goto(f"{live_url}/echo/{world.community}?lang=zh")
        page.screenshot(path=f"{shots}/echo_zh_390.png", full_page=True)
        assert not outside
    finally:
        context.close()
    body = client.get(f"/api/requests/{ids[1]}", headers=auth(world, "planner")).get_json()
    assert body["member"] not in (None, world.m1), body
    assert [e["to_state"] for e in body["events"]][-2:] == [
        "returned",
        "dispatched",
    ]
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        _login(page, live_url, "planner")
        for lang in ("zh", "en"):
            page.goto(f"{live_url}/requests?lang={lang}")
            page.screenshot(path=f"{shots}/requests_{lang}_1440.png", full_page=True)
            page.goto(f"{live_url}/echo/{world.community}?lang={lang}")
            page.screenshot(path=f"{shots}/echo_{lang}_1440.png", full_page=True)
        assert "rst_" not in page.content() and "cat_" not in page.content()
    finally:
        context.close()


def test_overdue_request_is_a_blind_spot_and_escalates(world, client):
    from gridsvc.coverage.blindspots import find_blindspots
    from gridsvc.requests.service import escalate_overdue

    _clear(world)
    at = (date.today() - timedelta(days=10)).isoformat() + "T09:00"
    made = client.post(
        "/api/requests",
        json={"household": world.mine[0], "category": "维修", "text": "旧", "at": at},
        headers=auth(world, "planner"),
    ).get_json()
    with world.engine.begin() as conn:
        spots = find_blindspots(
            conn, community_code=world.community, kinds=["overdue_request"], settings=world.settings
        )
        row = spots["overdue_request"].iloc[0]
        assert row["code"] == str(made["id"]) and "超期" in row["reason"]
        assert escalate_overdue(conn, settings=world.settings) == 1
        state, level = conn.execute(
            text("SELECT state, level FROM requests WHERE id = :i"), {"i": made["id"]}
        ).one()
    assert (state, level) == ("escalated", 1)


def test_demo_gives_every_state_with_its_history(world):
    from gridsvc.requests.demo import load_demo_requests
    from gridsvc.requests.states import STATES

    _clear(world)
    with world.engine.begin() as conn:
        counts = load_demo_requests(conn, settings=world.settings)
        assert set(counts) == set(STATES), counts
        assert load_demo_requests(conn, settings=world.settings) == {}  # idempotent
        orphans = conn.scalar(
            text(
                "SELECT count(*) FROM requests r WHERE r.state <> (SELECT e.to_state FROM "
                "request_events e WHERE e.request_id = r.id ORDER BY e.id DESC LIMIT 1)"
            )
        )
        assert orphans == 0  # every request's last event is its state
        wish_states = set(conn.execute(text("SELECT DISTINCT state FROM wishes")).scalars())
        assert wish_states == {"open", "claimed", "done", "thanked"}


def test_digest_gains_requests_by_category_and_grid(world):
    from gridsvc.contacts.report import render_digest

    with world.engine.connect() as conn:
        html = render_digest(
            conn,
            street_code=world.street,
            start=date.today() - timedelta(days=90),
            end=date.today(),
            settings=world.settings,
        )
        names = (
            conn.execute(text("SELECT name FROM households WHERE name IS NOT NULL LIMIT 50"))
            .scalars()
            .all()
        )
    assert "群众诉求办理情况" in html and "平均满意度" in html and "<td>维修</td>" in html
    assert not any(n and n in html for n in names)


def test_map_frame_draws_requests_by_status_and_heat_offline(world, client):
    from gridsvc.requests.demo import load_demo_requests

    with world.engine.begin() as conn:
        load_demo_requests(conn, settings=world.settings)  # no-op when the demo ran
        if not conn.scalar(text("SELECT count(*) FROM requests")):
            pytest.fail("no requests to draw")
    page = client.get(
        f"/map/frame?community={world.community}&lang=zh", headers=auth(world, "planner")
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for name in ("群众诉求（按状态）", "近90天诉求热力图（维修）"):  # the layer control's JSON
        assert json.dumps(name) in html, name
    assert "heatLayer" in html and "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_cadre_sees_members_open_and_overdue_orders(world, client):
    _clear(world)
    at = (date.today() - timedelta(days=9)).isoformat() + "T09:00"
    late = client.post(
        "/api/requests",
        json={"household": world.mine[0], "category": "维修", "text": "旧单", "at": at},
        headers=auth(world, "planner"),
    ).get_json()
    other = client.post(
        "/api/requests",
        json={"household": world.theirs[0], "category": "维修", "text": "别人的"},
        headers=auth(world, "planner"),
    ).get_json()
    page = client.get("/my/orders?lang=zh", headers=auth(world, "cadre"))
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-id="{late["id"]}"' in body and "已超期" in body
    with world.engine.connect() as conn:
        same_cadre = _cadre_of(conn, world.m2) == _cadre_of(conn, world.m1)
    assert (f'data-id="{other["id"]}"' in body) == same_cadre
    listed = client.get("/api/requests?overdue=true", headers=auth(world, "cadre")).get_json()
    assert [r["id"] for r in listed["requests"]] == [late["id"]]
