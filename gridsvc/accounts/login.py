"""Logging in: throttled per account and per client address, audited, same answer for anyone.

The throttle lives in the database (``login_attempts``, functions of 0008), so every gunicorn
worker and every server counts the same attempts. It runs on its own autocommit connection
(``throttle``): an attempt is counted, visibly to every other process, before its password is
hashed, and a burst of concurrent attempts is refused once the limit is reached instead of all
being hashed at once. Flask-Limiter was not used: its storages are memory, Redis, Memcached and
MongoDB, none of which a street office's server runs, and memory is per worker.

- An account (the name typed, lower case, whether or not such a user exists, so a refusal
  reveals nothing) is locked after ``login_max_failures`` failures within
  ``login_window_minutes``; the count restarts after a good login or a password reset.
- An address is refused after ``login_max_per_address`` failed or unfinished attempts within
  the window, whatever the names tried.
- A refused attempt costs no password hash and is not counted again. The moment an account
  locks (``login_locked``) or an address is throttled (``login_throttled``) is audited, as is
  every good (``login``) and failed (``login_failed``) attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gridsvc.accounts import audit
from gridsvc.accounts.passwords import MAX_LENGTH, hash_password, verify_password
from gridsvc.accounts.scope import apply_scope
from gridsvc.accounts.users import User, get_user
from gridsvc.settings import Settings


@dataclass(frozen=True)
class LoginResult:
    """The user logged in, or why not: ``refused`` is ``account`` or ``address`` (throttled,
    retry after ``retry_after`` seconds) or None (wrong name or password, or disabled)."""

    user: User | None
    refused: str | None = None
    retry_after: int = 0


def log_in(
    conn: Connection,
    throttle: Connection,
    username: str,
    password: str,
    *,
    ip: str | None,
    settings: Settings,
) -> LoginResult:
    """Check a name and password; on success ``conn``'s transaction is scoped to the user.

    ``conn`` is the request's transaction (audit entries, the user's row); ``throttle`` an
    autocommit connection for the attempt counters.
    """
    window = int(settings.login_window_minutes * 60)
    begun = throttle.execute(
        text("SELECT * FROM gridsvc_login_begin(:n, :ip, :w, :ma, :mi)"),
        {
            "n": username,
            "ip": ip,
            "w": window,
            "ma": settings.login_max_failures,
            "mi": settings.login_max_per_address,
        },
    ).one()
    if begun.refused:
        return LoginResult(None, begun.refused, begun.retry_after)
    row = conn.execute(text("SELECT * FROM gridsvc_login_user(:n)"), {"n": username}).first()
    too_long = len(password) > MAX_LENGTH  # refused unhashed (the form caps it as well)
    stored = row.password_hash if row else None
    ok, rehash = (False, False) if too_long else verify_password(stored, password)
    ok = ok and row is not None and row.active
    counts = throttle.execute(
        text("SELECT * FROM gridsvc_login_end(:a, :ok, :w)"),
        {"a": begun.attempt_id, "ok": ok, "w": window},
    ).one()
    place = {"street_id": row.street_id, "community_id": row.community_id} if row else {}
    if not ok or row is None:
        audit.record(conn, "login_failed", username=username, ip=ip, **place)
        _note_limits(conn, username, ip, counts, settings, place)
        return LoginResult(None)
    return LoginResult(_logged_in(conn, row.id, password if rehash else None, ip=ip))


def _note_limits(
    conn: Connection,
    username: str,
    ip: str | None,
    counts: Any,
    settings: Settings,
    place: dict[str, Any],
) -> None:
    """Audit the failure that locks an account or throttles an address (once each)."""
    if counts.account_failures == settings.login_max_failures:
        audit.record(
            conn,
            "login_locked",
            username=username,
            ip=ip,
            details={"failures": counts.account_failures, "minutes": settings.login_window_minutes},
            **place,
        )
    if counts.address_failures == settings.login_max_per_address:
        audit.record(
            conn,
            "login_throttled",
            username=username,
            ip=ip,
            details={"failures": counts.address_failures, "minutes": settings.login_window_minutes},
        )


def _logged_in(conn: Connection, user_id: int, rehash: str | None, *, ip: str | None) -> User:
    """Scope the transaction to the user, note the login (and replace an old hash)."""
    # Its own row is visible to it (app.user); its scope's codes once the scope is set.
    conn.execute(text("SELECT set_config('app.user', :i, true)"), {"i": str(user_id)})
    bare = get_user(conn, user_id)
    assert bare is not None
    apply_scope(conn, bare)
    user = get_user(conn, user_id)
    assert user is not None
    conn.execute(text("UPDATE users SET last_login_at = now() WHERE id = :i"), {"i": user.id})
    if rehash is not None:
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE id = :i"),
            {"h": hash_password(rehash), "i": user.id},
        )
    audit.record(conn, "login", user=user, ip=ip)
    return user
