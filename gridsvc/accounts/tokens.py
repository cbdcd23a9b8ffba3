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
    """The user of a valid, unrevoked token (and note its use), or None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    return conn.scalar(
        text(
            "UPDATE api_tokens SET last_used_at = now() "
            "WHERE token_hash = :h AND revoked_at IS NULL RETURNING user_id"
        ),
        {"h": _digest(token)},
    )


def revoke_tokens(conn: Connection, user_id: int) -> int:
    """Revoke every token of the user; return how many."""
    result = conn.execute(
        text("UPDATE api_tokens SET revoked_at = now() WHERE user_id = :u AND revoked_at IS NULL"),
        {"u": user_id},
    )
    return result.rowcount
