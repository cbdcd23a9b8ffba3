"""``gridsvc requests import``: the request history communities keep in Excel, all or nothing.

Columns household_code, category, text, channel, created_at, optional status and member_code
(closed history). CSV (UTF-8 or GBK) or XLSX; Chinese column names accepted. Every reject names
its row (the spreadsheet's, header = 1), field, reason and value; nothing is written unless no
row is rejected. Imported waiting requests are then dispatched along the pairing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from geodata.readers import normalise_name, read_xlsx_rows
from gridsvc.accounts import audit
from gridsvc.contacts.imports import _read_csv
from gridsvc.contacts.times import now_utc, parse_times
from gridsvc.errors import InputRejected, Reject
from gridsvc.requests.service import (
    CATEGORIES,
    CHANNELS,
    STATE_LABELS,
    VULNERABLE,
    dispatch_requests,
    limits,
)
from gridsvc.settings import Settings

REQUIRED = ("household_code", "category", "text", "channel", "created_at")
OPTIONAL = ("status", "member_code")
ALIASES = {
    "户编码": "household_code",
    "户号": "household_code",
    "类别": "category",
    "诉求类别": "category",
    "内容": "text",
    "诉求内容": "text",
    "渠道": "channel",
    "来源渠道": "channel",
    "登记时间": "created_at",
    "状态": "status",
    "党员编码": "member_code",
}
#: States a member must be named for (someone held it).
HELD_HISTORY = ("dispatched", "accepted", "in_progress", "done", "visited")


def _lookup(table: dict[str, str], value: Any) -> str | None:
    raw = "" if value is None or pd.isna(value) else str(value).strip()
    if raw in table:
        return raw
    if raw == "其它":
        raw = "其他"
    return next((k for k, v in table.items() if v == raw), None)


def read_frame(path: Path, encoding: str | None) -> pd.DataFrame:
    """The sheet as strings with the contract's column names (aliases mapped)."""
    source = path.name
    if path.suffix.lower() == ".xlsx":
        header, rows, _ = read_xlsx_rows(path)
        frame = pd.DataFrame(rows, columns=header, dtype=object).astype("string")
    elif path.suffix.lower() in (".csv", ".txt"):
        frame = _read_csv(path, encoding)
    else:
        reason = f"unknown extension {path.suffix!r}: expected .csv or .xlsx"
        raise InputRejected(f"{source}: {reason}", [Reject(source, None, None, reason)])
    frame.columns = [ALIASES.get(str(c).strip(), normalise_name(c)) for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        reason = f"missing column(s) {', '.join(missing)}"
        raise InputRejected(f"{source}: {reason}", [Reject(source, None, missing[0], reason)])
    for column in OPTIONAL:
        if column not in frame.columns:
            frame[column] = pd.NA
    frame = frame[list(REQUIRED + OPTIONAL)].copy()
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    return frame


def import_requests(
    conn: Connection,
    path: Path,
    *,
    settings: Settings,
    encoding: str | None = None,
    username: str = "cli",
) -> dict[str, int]:
    """Import the rows of ``path`` (all or nothing), then dispatch the waiting ones."""
    path = Path(path)
    source = path.name
    frame = read_frame(path, encoding)
    rejects: list[Reject] = []
    at = parse_times(frame["created_at"], settings.timezone)
    codes = sorted(set(frame["household_code"].dropna().astype(str).str.strip()))
    households = {
        r.code: r
        for r in conn.execute(
            text(
                f"SELECT h.code, h.id, h.community_id, {VULNERABLE} AS vulnerable "
                "FROM households h WHERE h.code = ANY(:c)"
            ),
            {"c": codes},
        )
    }
    member_codes = sorted(set(frame["member_code"].dropna().astype(str).str.strip()) - {""})
    members = {
        r.code: r
        for r in conn.execute(
            text("SELECT code, id, community_id FROM members WHERE code = ANY(:c)"),
            {"c": member_codes},
        )
    }
    rows: list[dict[str, Any]] = []
    now = now_utc()
    for i, rec in frame.iterrows():
        bad = len(rejects)

        def reject(field: str, reason: str, value: Any, i: int = int(i)) -> None:
            shown = None if value is None or pd.isna(value) else str(value)
            rejects.append(Reject(source, i, field, reason, shown))

        code = "" if pd.isna(rec.household_code) else str(rec.household_code).strip()
        house = households.get(code)
        if house is None:
            reject("household_code", "no such household code in your scope", code)
        category = _lookup(CATEGORIES, rec.category)
        if category is None:
            reject("category", "expected one of " + ", ".join(CATEGORIES.values()), rec.category)
        channel = _lookup(CHANNELS, rec.channel if not pd.isna(rec.channel) else "其他")
        if channel is None:
            reject("channel", "expected one of " + ", ".join(CHANNELS.values()), rec.channel)
        body = "" if pd.isna(rec.text) else str(rec.text).strip()
        if not 1 <= len(body) <= 2000:
            reject("text", "give 1 to 2000 characters", body[:40])
        when = at[i]
        if pd.isna(when):
            reject(
                "created_at", "not a time: expected 2026-12-01 09:30 (Beijing time)", rec.created_at
            )
        elif when > now + timedelta(minutes=5):
            reject("created_at", "in the future", rec.created_at)
        status = "waiting"
        if not pd.isna(rec.status) and str(rec.status).strip():
            status = _lookup(STATE_LABELS, rec.status)
            if status is None:
                reject("status", "expected one of " + ", ".join(STATE_LABELS.values()), rec.status)
        member = None
        if not pd.isna(rec.member_code) and str(rec.member_code).strip():
            member = members.get(str(rec.member_code).strip())
            if member is None:
                reject("member_code", "no such member code in your scope", rec.member_code)
            elif house is not None and member.community_id != house.community_id:
                reject("member_code", "member of another community", rec.member_code)
        elif status in HELD_HISTORY:
            reject("member_code", f"required for status {STATE_LABELS[status]}", None)
        if len(rejects) > bad:
            continue
        _, finish = limits(settings, category)
        created = when.to_pydatetime()
        rows.append(
            {
                "c": house.community_id,
                "h": house.id,
                "cat": category,
                "t": body,
                "ch": channel,
                "st": status,
                "m": member.id if member is not None and status in HELD_HISTORY else None,
                "v": bool(house.vulnerable),
                "due": created + timedelta(days=finish),
                "at": created,
                "closed": created if status in ("done", "visited") else None,
            }
        )
    if rejects:
        bad_rows = len({r.record for r in rejects})
        raise InputRejected(
            f"{source}: {bad_rows:,d} of {len(frame):,d} rows rejected; nothing imported", rejects
        )
    ids = []
    for row in rows:
        request_id = conn.scalar(
            text(
                "INSERT INTO requests (community_id, household_id, category, text, channel, state, "
                "member_id, vulnerable, due_at, created_at, closed_at, source) VALUES (:c, :h, "
                ":cat, :t, :ch, :st, :m, :v, :due, :at, :closed, 'import') RETURNING id"
            ),
            row,
        )
        conn.execute(
            text(
                "INSERT INTO request_events (request_id, community_id, at, actor, from_state, "
                "to_state, member_id, note) VALUES (:r, :c, :at, :a, NULL, :st, :m, :n)"
            ),
            {
                "r": request_id,
                "c": row["c"],
                "at": row["at"],
                "a": username,
                "st": row["st"],
                "m": row["m"],
                "n": f"导入：{source}",
            },
        )
        if row["st"] == "waiting":
            ids.append(int(request_id))
    counts = {"dispatched": 0, "to_cadre": 0, "left_waiting": 0}
    if ids:
        counts = dispatch_requests(conn, None, settings=settings, ids=ids, actor=username)
    result = {
        "inserted": len(rows),
        **{k: counts[k] for k in ("dispatched", "to_cadre", "left_waiting")},
    }
    audit.record(conn, "request_import", username=username, target=source, details=result)
    return result
