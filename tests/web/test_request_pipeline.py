"""The request pipeline: a remembered caller is confirmed against the database on every request,
and pooled connections the server dropped are replaced without an error."""

from __future__ import annotations

import secrets

from sqlalchemy import text
from webhelpers import COMMUNITY_A, PASSWORD, STREET_A, STREET_B, owner_engine

from gridsvc.accounts.tokens import issue_token, revoke_tokens
from gridsvc.accounts.users import create_user

_LONG_AGO = "UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE user_id = :i"


def _new_token(web, **scope: str) -> tuple[int, str]:
    engine = owner_engine(web)
    with engine.begin() as conn:
        user = create_user(conn, f"pipe_{secrets.token_hex(3)}", PASSWORD, role="viewer", **scope)
        token = issue_token(conn, user.id, "tests")
    engine.dispose()
    return user.id, token


def _owner(web, sql: str, **params: object) -> None:
    engine = owner_engine(web)
    with engine.begin() as conn:
        conn.execute(text(sql), params)
    engine.dispose()


def test_a_remembered_caller_is_confirmed_on_every_request(client, web):
    user_id, token = _new_token(web, street_code=STREET_A)
    h = {"Authorization": f"Bearer {token}"}
    geojson = f"/api/coverage.geojson?community={COMMUNITY_A}"
    for _ in range(2):  # the second request takes the remembered path
        me = client.get("/api/me", headers=h).get_json()
        assert me["scope"] == {"level": "street", "code": STREET_A}
        assert client.get(geojson, headers=h).status_code == 200

    _owner(
        web,
        "UPDATE users SET street_id = (SELECT id FROM streets WHERE code = :s) WHERE id = :i",
        s=STREET_B,
        i=user_id,
    )
    assert client.get("/api/me", headers=h).get_json()["scope"]["code"] == STREET_B
    assert client.get(geojson, headers=h).status_code == 404  # the new scope, at once

    _owner(web, "UPDATE users SET role = 'planner' WHERE id = :i", i=user_id)
    assert client.get("/api/me", headers=h).get_json()["role"] == "planner"

    _owner(web, "UPDATE users SET active = false WHERE id = :i", i=user_id)
    assert client.get("/api/me", headers=h).status_code == 401
    _owner(web, "UPDATE users SET active = true WHERE id = :i", i=user_id)
    assert client.get("/api/me", headers=h).status_code == 200

    engine = owner_engine(web)
    with engine.begin() as conn:
        revoke_tokens(conn, user_id)
    engine.dispose()
    revoked = client.get("/api/me", headers=h)
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["message"]


def test_token_use_is_noted_at_most_once_a_minute(client, web):
    user_id, token = _new_token(web, street_code=STREET_A)
    h = {"Authorization": f"Bearer {token}"}
    sql = "SELECT last_used_at FROM api_tokens WHERE user_id = :i"
    engine = owner_engine(web)
    assert client.get("/api/me", headers=h).status_code == 200
    with engine.connect() as conn:
        first = conn.scalar(text(sql), {"i": user_id})
    assert first is not None
    assert client.get("/api/me", headers=h).status_code == 200
    with engine.connect() as conn:
        assert conn.scalar(text(sql), {"i": user_id}) == first  # no write a request
        conn.execute(text(_LONG_AGO), {"i": user_id})
        conn.commit()
    assert client.get("/api/me", headers=h).status_code == 200
    with engine.connect() as conn:
        assert conn.scalar(text(sql), {"i": user_id}) > first
    engine.dispose()


def test_connections_the_server_dropped_are_replaced(app, client, web):
    h = {"Authorization": f"Bearer {web.tokens['viewer_a']}"}
    assert client.get("/api/me", headers=h).status_code == 200
    pool = app.extensions["gridsvc.engine"].pool
    assert pool.checkedin() >= 1  # a pooled connection, about to be killed under the pool
    _owner(
        web,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE usename = 'gridsvc_app' AND datname = current_database()",
    )
    assert client.get("/api/me", headers=h).status_code == 200
    page = client.get(f"/api/coverage.geojson?community={COMMUNITY_A}", headers=h)
    assert page.status_code == 200
