"""API tokens for scripts: random, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, text

PREFIX = "gst_"


def _digest(token: str) -> str:
    # Tokens carry 256 random bits: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: Connection, user_id: int, name: str) -> str:
    """Create a token for the user and return it (the only time it is visible)."""
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        text("INSERT INTO api_tokens (user_id, name, token_hash, prefix) VALUES (:u, :n, :h, :p)"),
        {"u": user_id, "n": name, "h": _digest(token), "p": token[:10]},
    )
    return token


def user_id_for_token(conn: Connection, token: str) -> int | None:
    """The user of a valid, unrevoked token, or None; notes its use at most once a minute.

    Reads only, most of the time: a write (and its WAL flush at commit) on every API call would
    cost more than the call itself.
    """
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        text(
            "SELECT id, user_id, last_used_at IS NULL OR last_used_at < now() - interval '1 minute'"
            " AS stale FROM api_tokens WHERE token_hash = :h AND revoked_at IS NULL"
        ),
        {"h": _digest(token)},
    ).first()
    if row is None:
        return None
    if row.stale:
        conn.execute(
            text("UPDATE api_tokens SET last_used_at = now() WHERE id = :i"), {"i": row.id}
        )
    return int(row.user_id)


def revoke_tokens(conn: Connection, user_id: int) -> int:
    """Revoke every token of the user; return how many."""
    result = conn.execute(
        text("UPDATE api_tokens SET revoked_at = now() WHERE user_id = :u AND revoked_at IS NULL"),
        {"u": user_id},
    )
    return result.rowcount
