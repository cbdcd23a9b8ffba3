"""The append-only audit log: logins, pairing changes, views and exports of personal data."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from gridsvc.accounts.users import User


def record(
    conn: Connection,
    action: str,
    *,
    user: User | None = None,
    username: str | None = None,
    user_id: int | None = None,
    target: str | None = None,
    community_id: int | None = None,
    street_id: int | None = None,
    reason: str | None = None,
    before: Any = None,
    after: Any = None,
    details: Any = None,
    ip: str | None = None,
) -> None:
    """Append one entry (the table refuses UPDATE and DELETE)."""
    conn.execute(
        text(
            "INSERT INTO audit_log (user_id, username, action, target, community_id, street_id, "
            "reason, before, after, details, ip) VALUES (:u, :n, :a, :t, :c, :s, :r, "
            "CAST(:b AS jsonb), CAST(:af AS jsonb), CAST(:d AS jsonb), :ip)"
        ),
        {
            "u": user.id if user else user_id,
            "n": user.username if user else username,
            "a": action,
            "t": target,
            "c": community_id,
            "s": street_id,
            "r": reason,
            "b": _json(before),
            "af": _json(after),
            "d": _json(details),
            "ip": ip,
        },
    )


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def list_entries(
    conn: Connection, *, limit: int = 200, action: str | None = None, before_id: int | None = None
) -> list[dict[str, Any]]:
    """The newest entries first (optionally one action, or older than ``before_id``)."""
    rows = conn.execute(
        text(
            "SELECT id, at, user_id, username, action, target, community_id, street_id, reason, "
            "before, after, details, ip FROM audit_log "
            "WHERE (CAST(:a AS text) IS NULL OR action = :a) "
            "AND (CAST(:b AS bigint) IS NULL OR id < :b) ORDER BY id DESC LIMIT :l"
        ),
        {"a": action, "b": before_id, "l": limit},
    )
    return [dict(r._mapping) | {"at": r.at.isoformat()} for r in rows]
