"""The append-only audit log: logins, pairing changes, views and exports of personal data."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from geodata.sheets import neutralise
from gridsvc.accounts.users import User
from gridsvc.errors import InputRejected, Reject
from gridsvc.settings import AUDIT_RETENTION_FLOOR_DAYS

#: Audit dates and times are read and written in Beijing time.
BEIJING = ZoneInfo("Asia/Shanghai")
#: Columns of ``gridsvc audit export``.
EXPORT_COLUMNS = (
    "id", "at", "username", "action", "target", "street_code", "community_code",
    "reason", "before", "after", "details", "ip",
)  # fmt: skip
#: A spreadsheet reads a cell starting with one of these as a formula (or DDE).


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


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants from 00:00 of ``start`` to 24:00 of ``end``, Beijing time.

    Raises
    ------
    InputRejected
        When ``start`` is after ``end``.
    """
    if start > end:
        reject = Reject("audit export", None, "--from", f"is after --to {end}", str(start))
        raise InputRejected(f"--from {start} is after --to {end}", [reject])
    return (
        datetime.combine(start, time(), BEIJING),
        datetime.combine(end + timedelta(days=1), time(), BEIJING),
    )


def export_rows(conn: Connection, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """Entries with ``start <= at < end``, oldest first, as the export's columns."""
    rows = conn.execute(
        text(
            "SELECT a.id, a.at, a.username, a.action, a.target, s.code AS street_code, "
            "c.code AS community_code, a.reason, a.before, a.after, a.details, a.ip "
            "FROM audit_log a LEFT JOIN streets s ON s.id = a.street_id "
            "LEFT JOIN communities c ON c.id = a.community_id "
            "WHERE a.at >= :start AND a.at < :end ORDER BY a.at, a.id"
        ).execution_options(yield_per=2000),
        {"start": start, "end": end},
    )
    for row in rows:
        entry = dict(row._mapping)
        entry["at"] = entry["at"].astimezone(BEIJING).isoformat(sep=" ", timespec="seconds")
        for key in ("before", "after", "details"):
            if entry[key] is not None:
                entry[key] = json.dumps(entry[key], ensure_ascii=False, sort_keys=True)
        yield entry


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text (:func:`geodata.sheets.neutralise`)."""
    return "" if value is None else neutralise(str(value))


def export_csv(
    conn: Connection, out: TextIO, *, start: date, end: date, username: str = "cli"
) -> int:
    """Write the entries of the days ``start``..``end`` (Beijing time) as CSV; the row count.

    Every cell goes through :func:`safe_cell`. The export itself is audited
    (``audit_export``, with the range and the count).
    """
    lower, upper = day_bounds(start, end)
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for entry in export_rows(conn, lower, upper):
        writer.writerow([safe_cell(entry[column]) for column in EXPORT_COLUMNS])
        count += 1
    details = {"from": start.isoformat(), "to": end.isoformat(), "rows": count}
    record(conn, "audit_export", username=username, details=details)
    return count


def prune(conn: Connection, *, retention_days: int, username: str = "cli") -> tuple[int, datetime]:
    """Delete the entries older than ``retention_days`` (at least 180); count and cutoff.

    The deletion is itself audited (``audit_prune``). The database refuses the DELETE of any
    entry younger than 180 days whatever is asked (trigger of migration ``0012_audit_retention``).
    """
    if retention_days < AUDIT_RETENTION_FLOOR_DAYS:
        reject = Reject(
            "audit prune", None, "retention_days", "below the floor of 180", str(retention_days)
        )
        raise InputRejected(
            f"the audit log keeps at least {AUDIT_RETENTION_FLOOR_DAYS} days, not {retention_days}",
            [reject],
        )
    cutoff = conn.scalar(text("SELECT now() - make_interval(days => :d)"), {"d": retention_days})
    conn.execute(
        text("SELECT set_config('gridsvc.audit_prune_before', :c, true)"),
        {"c": cutoff.isoformat()},
    )
    deleted = conn.execute(text("DELETE FROM audit_log WHERE at < :c"), {"c": cutoff}).rowcount
    conn.execute(text("SELECT set_config('gridsvc.audit_prune_before', '', true)"))
    details = {"before": cutoff.astimezone(BEIJING).isoformat(), "deleted": deleted}
    record(conn, "audit_prune", username=username, details=details)
    return deleted, cutoff
