"""Accounts: users, tokens and the audit log scoped like the data (row-level security and the
services), disabling, revoking and passwords, login throttling, redirects, sessions.

Street A = 530102001 (admin_a), street B = 530102902 (admin_b, viewer_b); ``admin`` has no scope.
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import text
from webhelpers import (
    COMMUNITY_A,
    COMMUNITY_B,
    PASSWORD,
    STREET_A,
    STREET_B,
    bearer,
    count,
    csrf_token,
    login_form,
    owner_engine,
)

from gridsvc.accounts.passwords import password_problems, verify_password
from gridsvc.accounts.scope import app_database_url
from gridsvc.db import make_engine

B_USERS = {"viewer_b", "admin_b"}
GOOD = "Kunming-grid 2026 spring"


def _id(web, table: str, column: str, value: str) -> int:
    return count(web, f"SELECT id FROM {table} WHERE {column} = '{value}'")


def _as(conn, web, username: str) -> None:
    """Scope the app role's transaction as the web app does for ``username``."""
    from gridsvc.accounts.scope import apply_scope
    from gridsvc.accounts.users import find_user

    owner = owner_engine(web)
    with owner.connect() as oc:
        user = find_user(oc, username)
    owner.dispose()
    apply_scope(conn, user)


# --- the database: raw SQL under the app role ----------------------------------------------


def test_app_role_sees_no_user_without_a_scope(web):
    engine = make_engine(app_database_url(web.settings))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM users")) == 0
        assert conn.scalar(text("SELECT count(*) FROM api_tokens")) == 0
        assert conn.scalar(text("SELECT count(*) FROM audit_log")) == 0
        with pytest.raises(Exception, match="permission denied"):
            conn.execute(text("SELECT count(*) FROM login_attempts"))
    engine.dispose()


def test_street_admin_under_rls_sees_and_writes_only_its_street(web):
    admin_id = _id(web, "users", "username", "admin")
    engine = make_engine(app_database_url(web.settings))
    with engine.connect() as conn:
        _as(conn, web, "admin_a")
        names = set(conn.execute(text("SELECT username FROM users")).scalars())
        assert {"admin_a", "viewer_a", "planner_a", "viewer_ca"} <= names
        assert not names & (B_USERS | {"admin"})
        owners = conn.execute(
            text("SELECT DISTINCT u.username FROM api_tokens t JOIN users u ON u.id = t.user_id")
        ).scalars()
        assert not set(owners) & (B_USERS | {"admin"})
        streets = conn.execute(text("SELECT DISTINCT street_id FROM audit_log")).scalars()
        assert _id(web, "streets", "code", STREET_B) not in set(streets)
        # minting a token for the unscoped admin, creating an unscoped admin, moving a user out
        for sql in (
            f"INSERT INTO api_tokens (user_id, name, token_hash, prefix) "
            f"VALUES ({admin_id}, 'x', 'probe-hash', 'gst_x')",
            "INSERT INTO users (username, password_hash, role) VALUES ('evil_all', 'x', 'admin')",
            "INSERT INTO users (username, password_hash, role, street_id) VALUES "
            f"('evil_b', 'x', 'admin', {_id(web, 'streets', 'code', STREET_B)})",
            "UPDATE users SET street_id = NULL WHERE username = 'viewer_a'",
        ):
            with pytest.raises(Exception, match="row-level security"), conn.begin_nested():
                conn.execute(text(sql))
        changed = conn.execute(text("UPDATE users SET lang = 'en' WHERE username = 'admin'"))
        assert changed.rowcount == 0  # invisible: nothing to update
        conn.rollback()
    engine.dispose()


def test_community_admin_sees_only_its_community(web):
    engine = make_engine(app_database_url(web.settings))
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT set_config('app.community', :c, true), set_config('app.admin', 'on', true)"
            ),
            {"c": str(_id(web, "communities", "code", COMMUNITY_A))},
        )
        names = set(conn.execute(text("SELECT username FROM users")).scalars())
        assert "viewer_ca" in names and not names & {"viewer_a", "admin_a", "admin", *B_USERS}
        conn.rollback()
    engine.dispose()


def test_non_admin_sees_itself_only_and_cannot_raise_its_role(web):
    engine = make_engine(app_database_url(web.settings))
    with engine.connect() as conn:
        _as(conn, web, "viewer_a")
        assert list(conn.execute(text("SELECT username FROM users")).scalars()) == ["viewer_a"]
        assert conn.scalar(text("SELECT count(*) FROM audit_log")) == 0
        with pytest.raises(Exception, match="only an admin"):
            conn.execute(text("UPDATE users SET role = 'admin' WHERE username = 'viewer_a'"))
        conn.rollback()
    engine.dispose()


# --- the API and pages ------------------------------------------------------------------------


def test_street_admin_cannot_reach_other_scopes_through_the_api(client, web):
    for name in ("admin_a", "admin_b", "admin"):  # audit entries of each scope
        login_form(type(client)(client.application), name)
    h = bearer(web, "admin_a")
    for name in ("admin", "admin_b", "viewer_b"):
        minted = client.post(f"/api/users/{name}/tokens", json={"name": "x"}, headers=h)
        assert minted.status_code == 404, minted.data
        for method, path, body in (
            ("patch", f"/api/users/{name}", {"active": False}),
            ("post", f"/api/users/{name}/password", {}),
            ("get", f"/api/users/{name}/tokens", None),
        ):
            answer = getattr(client, method)(path, json=body, headers=h)
            assert answer.status_code == 404, (path, answer.data)
    for body in (
        {"username": "evil_all", "password": GOOD, "role": "admin"},
        {"username": "evil_b", "password": GOOD, "role": "admin", "street": STREET_B},
        {"username": "evil_cb", "password": GOOD, "role": "viewer", "community": COMMUNITY_B},
    ):
        made = client.post("/api/users", json=body, headers=h)
        assert made.status_code == 403, made.data
        assert body["username"] in made.get_json()["message"]
    assert count(web, "SELECT count(*) FROM users WHERE username LIKE 'evil%'") == 0
    names = {u["username"] for u in client.get("/api/users", headers=h).get_json()["users"]}
    assert "viewer_a" in names and not names & (B_USERS | {"admin"})
    entries = client.get("/api/audit?limit=5000", headers=h).get_json()["entries"]
    assert entries and not {e["username"] for e in entries} & (B_USERS | {"admin"})
    street_b = _id(web, "streets", "code", STREET_B)
    assert all(e["street_id"] != street_b for e in entries)


def test_audit_and_users_pages_are_scoped(client, web):
    login_form(client, "viewer_b")  # an entry of street B (its login)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(True))})
    login_form(client, "admin_a")
    page = client.get("/audit").get_data(as_text=True)
    assert "admin_a" in page and "viewer_b" not in page and "admin_b" not in page
    users = client.get("/users").get_data(as_text=True)
    assert "viewer_a" in users and "viewer_b" not in users and ">admin<" not in users
    assert client.get("/users/viewer_b").status_code == 404
    assert client.get("/users/admin").status_code == 404
    owner_view = count(web, "SELECT count(*) FROM audit_log WHERE username = 'viewer_b'")
    assert owner_view > 0  # the entry exists; street A's admin just does not see it


def _name_of(web, table: str, code: str) -> str:
    engine = owner_engine(web)
    with engine.connect() as conn:
        name = conn.scalar(text(f"SELECT name FROM {table} WHERE code = :c"), {"c": code})
    engine.dispose()
    return name


@pytest.mark.parametrize(
    ("who", "table", "code"),
    [("viewer_a", "streets", STREET_A), ("viewer_ca", "communities", COMMUNITY_A)],
)
def test_nav_names_the_scope_and_keeps_its_code_as_a_title(app, web, who, table, code):
    from bs4 import BeautifulSoup

    name = _name_of(web, table, code)
    client = app.test_client()
    login_form(client, who)
    for lang in ("zh", "en"):
        soup = BeautifulSoup(client.get(f"/?lang={lang}").get_data(as_text=True), "html.parser")
        scope = soup.select_one("nav #my-account #my-scope")
        assert scope.get_text() == name and scope["title"] == code
        assert code not in soup.select_one("nav #my-account").get_text()
    soup = BeautifulSoup(client.get("/").get_data(as_text=True), "html.parser")  # cached user
    assert soup.select_one("#my-scope").get_text() == name


def test_nav_shows_no_scope_name_for_the_unscoped_admin(client, web):
    login_form(client, "admin")
    page = client.get("/?lang=en").get_data(as_text=True)
    assert 'id="my-scope"' not in page and "Admin · All</a>" in page


def test_scope_name_is_escaped_in_the_nav(web):
    from gridsvc.web import create_app

    engine = owner_engine(web)
    update = "UPDATE communities SET name = :n WHERE code = :c"
    with engine.begin() as conn:
        old = conn.scalar(text("SELECT name FROM communities WHERE code = :c"), {"c": COMMUNITY_A})
        conn.execute(text(update), {"n": "<b>翠湖</b>社区", "c": COMMUNITY_A})
    app = create_app({"TESTING": True, "GRIDSVC_SETTINGS": web.settings, "GRIDSVC_NO_QUEUE": True})
    try:
        client = app.test_client()
        login_form(client, "viewer_ca")
        page = client.get("/").get_data(as_text=True)
        assert "&lt;b&gt;翠湖&lt;/b&gt;社区" in page and "<b>翠湖" not in page
    finally:
        app.extensions["gridsvc.engine"].dispose()
        with engine.begin() as conn:
            conn.execute(text(update), {"n": old, "c": COMMUNITY_A})
        engine.dispose()


def test_token_table_turns_into_cards_on_a_phone(client, web):
    from bs4 import BeautifulSoup

    login_form(client, "admin_a")
    html = client.get("/users/viewer_a?lang=en").get_data(as_text=True)
    table = BeautifulSoup(html, "html.parser").select_one("table#tokens")
    assert "cards" in table["class"] and not table.find_parent(class_="scroll")
    heads = [th.get_text(strip=True) for th in table.select("thead th")]
    rows = table.select("tbody tr")
    assert rows and heads[:2] == ["#", "Name"]
    for row in rows:  # every cell but the revoke button's names its column
        labels = [td.get("data-label") for td in row.select("td")]
        assert labels[:-1] == heads[:-1] and not labels[-1]
    scope = BeautifulSoup(html, "html.parser").select_one("table#user").get_text(" ")
    assert _name_of(web, "streets", STREET_A) in scope and STREET_A in scope


def test_users_list_names_scopes_and_turns_into_cards(client, web):
    from bs4 import BeautifulSoup

    login_form(client, "admin_a")
    html = client.get("/users?lang=en").get_data(as_text=True)
    table = BeautifulSoup(html, "html.parser").select_one("table#users")
    assert "cards" in table["class"]
    rows = {r.select_one("a.who").get_text(): r for r in table.select("tbody tr")}
    scope = rows["viewer_ca"].select("td")[2]
    assert scope["data-label"] == "Scope"
    assert scope.get_text(" ", strip=True) == (
        f"{_name_of(web, 'communities', COMMUNITY_A)} {COMMUNITY_A}"
    )


def test_street_admin_manages_users_of_its_street(client, web):
    h = bearer(web, "admin_a")
    made = client.post(
        "/api/users",
        json={"username": "clerk_a", "password": GOOD, "role": "viewer", "community": COMMUNITY_A},
        headers=h,
    )
    assert made.status_code == 201, made.data
    token = client.post("/api/users/clerk_a/tokens", json={"name": "t"}, headers=h).get_json()
    clerk = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/api/me", headers=clerk).status_code == 200
    listed = client.get("/api/users/clerk_a/tokens", headers=h).get_json()["tokens"]
    assert listed[0]["prefix"] == token["token"][:10] and "token" not in listed[0]
    browser = type(client)(client.application)
    login_with(browser, "clerk_a", GOOD)
    assert browser.get("/").status_code == 200
    # disabled: its session and its token stop at once
    off = client.patch("/api/users/clerk_a", json={"active": False}, headers=h)
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert client.get("/api/me", headers=clerk).status_code == 401
    assert browser.get("/").status_code == 302
    assert client.patch("/api/users/clerk_a", json={"active": True}, headers=h).status_code == 200
    assert client.get("/api/me", headers=clerk).status_code == 200
    # revoked: that token stops at once
    gone = client.delete(f"/api/users/clerk_a/tokens/{listed[0]['id']}", headers=h)
    assert gone.status_code == 204
    assert client.get("/api/me", headers=clerk).status_code == 401
    # reset: a random password, returned once; the old one no longer logs in
    reset = client.post("/api/users/clerk_a/password", json={}, headers=h).get_json()
    assert reset["sessions_ended"] and len(reset["password"]) >= 16
    login_with(browser, "clerk_a", reset["password"])
    actions = audit_actions(web, "clerk_a")
    assert {
        "user_add",
        "token_issue",
        "user_disable",
        "user_enable",
        "token_revoke",
        "password_reset",
    } <= actions
    weak = client.post("/api/users/clerk_a/password", json={"password": "password12"}, headers=h)
    assert weak.status_code == 422 and weak.get_json()["details"][0]["field"] == "password"


def test_planner_cannot_manage_users(client, web):
    h = bearer(web, "planner_a")
    assert client.get("/api/users", headers=h).status_code == 403
    assert client.post("/api/users/viewer_a/tokens", json={"name": "x"}, headers=h).status_code in (
        403,
        404,
    )
    assert client.get("/api/audit", headers=h).status_code == 403


def test_change_own_password_ends_other_sessions(app, web):
    owner = owner_engine(web)
    from gridsvc.accounts.manage import add_user

    with owner.begin() as conn:
        add_user(conn, None, "pw_changer", GOOD, role="viewer", street_code=STREET_A)
    owner.dispose()
    first, second = app.test_client(), app.test_client()
    login_with(first, "pw_changer", GOOD)
    login_with(second, "pw_changer", GOOD)
    token = csrf_token(first.get("/account").get_data(as_text=True))
    wrong = first.post(
        "/api/me/password",
        json={"current_password": "not it at all", "new_password": GOOD + "!"},
        headers={"X-CSRFToken": token},
    )
    assert wrong.status_code == 403
    same_name = first.post(
        "/api/me/password",
        json={"current_password": GOOD, "new_password": "pw_changer-2026"},
        headers={"X-CSRFToken": token},
    )
    assert same_name.status_code == 422 and "user name" in same_name.get_json()["message"]
    done = first.post(
        "/api/me/password",
        json={"current_password": GOOD, "new_password": "Dianchi lake walk 9"},
        headers={"X-CSRFToken": token},
    )
    assert done.status_code == 200, done.data
    assert first.get("/api/me").status_code == 200  # this session goes on
    assert second.get("/api/me").status_code == 401  # the other one ended
    assert "password_change" in audit_actions(web, "pw_changer")


# --- passwords ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaa",
        "1234567890",
        "password12",
        "zhangwei_a",
        "          ",
        "short1!",
        "Password2026",
    ],
)
def test_password_policy_refuses(password):
    assert password_problems(password, username="zhangwei_a", min_length=10)


def test_password_policy_accepts_a_good_one():
    assert password_problems(GOOD, username="zhangwei_a", min_length=10) == []
    assert password_problems(PASSWORD, username="viewer_a", min_length=10) == []


def test_old_pbkdf2_hash_verifies_and_is_replaced_on_login(app, web):
    from werkzeug.security import generate_password_hash

    old = generate_password_hash(GOOD, method="pbkdf2:sha256:1000000")
    assert verify_password(old, GOOD) == (True, True)
    owner = owner_engine(web)
    from gridsvc.accounts.manage import add_user

    with owner.begin() as conn:
        add_user(conn, None, "old_hash", GOOD, role="viewer", street_code=STREET_A)
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE username = 'old_hash'"), {"h": old}
        )
    login_with(app.test_client(), "old_hash", GOOD)
    with owner.connect() as conn:
        stored = conn.scalar(text("SELECT password_hash FROM users WHERE username = 'old_hash'"))
    owner.dispose()
    assert stored.startswith("$argon2id$") and verify_password(stored, GOOD) == (True, False)


# --- login: throttling, redirects, sessions ------------------------------------------------


@pytest.fixture
def strict_app(web):
    """An app with small login limits (3 failures per account, 6 per address)."""
    from gridsvc.web import create_app

    settings = web.settings.with_(login_max_failures=3, login_max_per_address=6)
    app = create_app({"TESTING": True, "GRIDSVC_SETTINGS": settings, "GRIDSVC_NO_QUEUE": True})
    yield app
    app.extensions["gridsvc.engine"].dispose()


def _post_login(client, username: str, password: str, ip: str, query: str = ""):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login" + query,
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_account_locks_after_failures_and_says_the_same_for_unknown_names(strict_app, web):
    owner = owner_engine(web)
    from gridsvc.accounts.manage import add_user

    with owner.begin() as conn:
        add_user(conn, None, "lock_me", GOOD, role="viewer", street_code=STREET_A)
    owner.dispose()
    client = strict_app.test_client()
    answers = {}
    for name in ("lock_me", "nobody_here"):
        for i in range(3):
            failed = _post_login(client, name, "wrong password", f"10.1.{i}.{len(name)}")
            assert failed.status_code == 401
        locked = _post_login(client, name, GOOD, "10.2.0.1")  # even the right password
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
        page = locked.get_data(as_text=True).replace(name, "NAME")
        page = re.sub(r'nonce="[^"]*"', "", page)  # a fresh CSP nonce on every page
        answers[name] = re.sub(r'name="csrf_token"[^>]*>', "", page)
    assert answers["lock_me"] == answers["nobody_here"]  # nothing tells whether a user exists
    assert "登录失败次数过多" in answers["lock_me"]
    locks = count(web, "SELECT count(*) FROM audit_log WHERE action = 'login_locked' "
                       "AND username IN ('lock_me', 'nobody_here')")  # fmt: skip
    assert locks == 2
    # a reset lifts the lockout
    client.post(
        "/api/users/lock_me/password",
        json={"password": "Lifted lock 2026"},
        headers=bearer(web, "admin_a"),
    )
    assert _post_login(client, "lock_me", "Lifted lock 2026", "10.2.0.2").status_code == 302


def test_address_is_throttled_whatever_names_it_tries(strict_app, web):
    client = strict_app.test_client()
    ip = "10.9.9.9"
    statuses = [
        _post_login(client, f"guess{i}", "wrong password", ip).status_code for i in range(8)
    ]
    assert statuses[:6] == [401] * 6 and statuses[6:] == [429, 429]
    assert _post_login(client, "viewer_a", PASSWORD, ip).status_code == 429
    assert _post_login(client, "viewer_a", PASSWORD, "10.9.9.10").status_code == 302
    assert count(web, f"SELECT count(*) FROM audit_log WHERE action = 'login_throttled' "
                      f"AND ip = '{ip}'") == 1  # fmt: skip


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/%09/127.0.0.2:5999/phish", "/"),
        ("/%0a", "/"),
        ("/%5C127.0.0.2/phish", "/"),
        ("%5C%5C127.0.0.2/x", "/"),
        ("//127.0.0.2/x", "/"),
        ("http://127.0.0.2/x", "/"),
        ("/%0d%0a//127.0.0.2", "/"),
        ("/roster?street=530102001", "/roster?street=530102001"),
    ],
)
def test_login_redirects_only_to_this_site_and_is_audited(app, web, target, expected):
    client = app.test_client()
    before = count(web, "SELECT count(*) FROM audit_log WHERE action = 'login' "
                        "AND username = 'viewer_ca'")  # fmt: skip
    answer = _post_login(client, "viewer_ca", PASSWORD, "10.3.0.1", f"?next={target}")
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location == expected or location.endswith("localhost" + expected)
    after = count(web, "SELECT count(*) FROM audit_log WHERE action = 'login' "
                       "AND username = 'viewer_ca'")  # fmt: skip
    assert after == before + 1
    assert client.get("/api/me").status_code == 200


def test_idle_session_ends(client, web):
    login_form(client, "viewer_a")
    assert client.get("/api/me").status_code == 200
    with client.session_transaction() as session:
        session["seen"] = time.time() - 31 * 60
    assert client.get("/api/me").status_code == 401
    assert client.get("/").status_code == 302


def test_unsafe_request_without_credentials_is_401_not_csrf(client):
    for path in ("/api/jobs", "/api/users", "/api/users/viewer_a/tokens", "/api/me/password"):
        answer = client.post(path, json={})
        assert answer.status_code == 401, (path, answer.status_code)
        assert "CSRF" not in answer.get_data(as_text=True)
    assert client.delete("/api/users/viewer_a/tokens/1").status_code == 401
    assert client.patch("/api/users/viewer_a", json={"active": False}).status_code == 401
    page = client.post("/rebalance", data={"community": COMMUNITY_A})  # a form after logout
    assert page.status_code == 303 and "/login?next=/rebalance" in page.headers["Location"]


# --- the command line ----------------------------------------------------------------------


def test_cli_disables_revokes_and_resets(web, client):
    from click.testing import CliRunner

    from gridsvc.cli import cli

    env = {"GRIDSVC_DATABASE_URL": web.url}
    run = CliRunner().invoke
    assert run(cli, ["user", "add", "cli_user", "--role", "viewer", "--street", STREET_A,
                     "--password", GOOD], env=env).exit_code == 0  # fmt: skip
    token = run(cli, ["user", "token", "cli_user"], env=env).output.strip()
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=h).status_code == 200
    listed = run(cli, ["user", "tokens", "cli_user"], env=env).output
    token_id = listed.split()[0]
    assert token[:10] in listed and "active" in listed
    assert run(cli, ["user", "disable", "cli_user"], env=env).exit_code == 0
    assert client.get("/api/me", headers=h).status_code == 401
    assert "(disabled)" in run(cli, ["user", "list"], env=env).output
    assert run(cli, ["user", "enable", "cli_user"], env=env).exit_code == 0
    assert client.get("/api/me", headers=h).status_code == 200
    assert run(cli, ["user", "revoke", "cli_user", token_id], env=env).exit_code == 0
    assert client.get("/api/me", headers=h).status_code == 401
    weak = run(cli, ["user", "password", "cli_user", "--password", "1234567890"], env=env)
    assert weak.exit_code == 3 and "common password" in weak.output
    reset = run(cli, ["user", "password", "cli_user", "--random"], env=env)
    assert reset.exit_code == 0 and "password: " in reset.output
    assert {"user_add", "token_issue", "user_disable", "user_enable", "token_revoke",
            "password_reset"} <= audit_actions(web, "cli_user")  # fmt: skip
    missing = run(cli, ["user", "disable", "nobody_at_all"], env=env)
    assert missing.exit_code == 4


# --- helpers -----------------------------------------------------------------------------------


def login_with(client, username: str, password: str) -> None:
    answer = _post_login(client, username, password, f"10.7.{len(username)}.{len(password)}")
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]


def audit_actions(web, target: str) -> set[str]:
    owner = owner_engine(web)
    with owner.connect() as conn:
        rows = conn.execute(
            text("SELECT action FROM audit_log WHERE target = :t"), {"t": target}
        ).scalars()
        found = set(rows)
    owner.dispose()
    return found
