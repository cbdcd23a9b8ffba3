"""Micro-wishes (微心愿) of needy households: published to the community's members, after
GRIDSVC_WISH_OPEN_DAYS also to the street's units; claimed by one member (at most
GRIDSVC_MEMBER_OPEN_WISHES_MAX open) or a unit; fulfilled with a note; the household's feedback.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, text

from gridsvc.accounts import audit
from gridsvc.accounts.users import User
from gridsvc.contacts.times import local_iso, now_utc
from gridsvc.errors import Conflict, Forbidden, InputRejected, NotFound, Reject
from gridsvc.requests.states import wish_step
from gridsvc.settings import Settings

FLAGS = {
    "low_income": "低保",
    "disabled": "残疾",
    "elderly_alone": "独居老人",
    "hardship_member": "困难党员",
    "left_behind_child": "留守儿童",
}
STATE_LABELS = {"open": "待认领", "claimed": "已认领", "done": "已实现", "thanked": "已反馈"}
#: Household columns that show a flag is true (a hardship member has no column: stated by staff).
FLAG_COLUMN = {
    "low_income": "low_income",
    "disabled": "disabled",
    "elderly_alone": "elderly_alone",
    "left_behind_child": "children",
}


def _bad(field: str, reason: str, value: Any = None) -> InputRejected:
    return InputRejected(
        f"wish {field}: {reason}",
        [Reject("wish", None, field, reason, None if value is None else str(value))],
    )


def add_wish(
    conn: Connection,
    user: User | None,
    *,
    settings: Settings,
    household: str,
    flag: str,
    text_: str,
    value_yuan: Any,
    wanted_by: str | date,
    actor: str | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    """Publish a micro-wish of a needy household (planners and admins; audited)."""
    if user is not None and not user.can_plan:
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not publish wishes")
    key = next((k for k, v in FLAGS.items() if flag in (k, v)), None)
    if key is None:
        raise _bad(
            "flag", "expected one of " + ", ".join(f"{k} ({v})" for k, v in FLAGS.items()), flag
        )
    body = (text_ or "").strip()
    if not 1 <= len(body) <= 500:
        raise _bad("text", "give 1 to 500 characters")
    try:
        value = Decimal(str(value_yuan))
    except InvalidOperation:
        raise _bad("value_yuan", "not a number", value_yuan) from None
    if not (0 <= value <= 100000):
        raise _bad("value_yuan", "from 0 to 100000 yuan", value_yuan)
    try:
        wanted = wanted_by if isinstance(wanted_by, date) else date.fromisoformat(str(wanted_by))
    except ValueError:
        raise _bad("wanted_by", "not a date like 2026-12-31", wanted_by) from None
    row = conn.execute(
        text(
            "SELECT id, community_id, low_income, disabled, elderly_alone, children "
            "FROM households WHERE code = :c"
        ),
        {"c": household},
    ).first()
    if row is None:
        raise NotFound(f"household {household!r}: no such household code in your scope")
    column = FLAG_COLUMN.get(key)
    if column is not None and not getattr(row, column):
        raise _bad("flag", f"household {household} is not flagged {FLAGS[key]} ({key})", key)
    wish_id = conn.scalar(
        text(
            "INSERT INTO wishes (community_id, household_id, flag, text, value_yuan, wanted_by, "
            "created_by) VALUES (:c, :h, :f, :t, :v, :w, :u) RETURNING id"
        ),
        {
            "c": row.community_id,
            "h": row.id,
            "f": key,
            "t": body,
            "v": value,
            "w": wanted,
            "u": user.id if user else None,
        },
    )
    who = actor or (user.username if user else "cli")
    _event(conn, wish_id, row.community_id, user, who, None, "open", None)
    audit.record(
        conn,
        "wish_add",
        user=user,
        username=who,
        target=str(wish_id),
        community_id=row.community_id,
        ip=ip,
    )
    return get_wish(conn, wish_id, settings=settings)


def _event(
    conn: Connection,
    wish_id: int,
    community_id: int,
    user: User | None,
    actor: str,
    src: str | None,
    dst: str,
    note: str | None,
    member_id: int | None = None,
) -> None:
    conn.execute(
        text(
            "INSERT INTO wish_events (wish_id, community_id, user_id, actor, from_state, to_state, "
            "member_id, note) VALUES (:w, :c, :u, :a, :f, :t, :m, :n)"
        ),
        {
            "w": wish_id,
            "c": community_id,
            "u": user.id if user else None,
            "a": actor,
            "f": src,
            "t": dst,
            "m": member_id,
            "n": note,
        },
    )


_SELECT = """
SELECT w.id, co.code AS community, w.flag, w.text, w.value_yuan, w.wanted_by, w.state AS status,
       m.code AS member, w.unit_name AS unit, w.created_at, w.claimed_at, w.closed_at, w.note,
       w.feedback, w.version
FROM wishes w JOIN communities co ON co.id = w.community_id
LEFT JOIN members m ON m.id = w.member_id
"""


def _public(row: Any, settings: Settings) -> dict[str, Any]:
    out = dict(row._mapping)
    out["value_yuan"] = float(out["value_yuan"])
    out["wanted_by"] = out["wanted_by"].isoformat()
    for key in ("created_at", "claimed_at", "closed_at"):
        out[key] = local_iso(out[key], settings.timezone)
    out["open_to_units"] = row.status == "open" and row.created_at < now_utc() - timedelta(
        days=settings.wish_open_days
    )
    return out


def get_wish(conn: Connection, wish_id: int, *, settings: Settings) -> dict[str, Any]:
    """One wish (never the household's code: the board is shown to every member)."""
    row = conn.execute(text(_SELECT + " WHERE w.id = :i"), {"i": wish_id}).first()
    if row is None:
        raise NotFound(f"wish {wish_id}: no such wish in your scope")
    return _public(row, settings)


def list_wishes(
    conn: Connection,
    *,
    settings: Settings,
    community_code: str | None = None,
    street_code: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Wishes of the caller's scope (the board), open ones first, then newest."""
    from gridsvc.requests.service import _check_scope

    _check_scope(conn, street_code, community_code)
    where, params = ["TRUE"], {"l": limit, "o": offset}
    if community_code:
        where.append("co.code = :cc")
        params["cc"] = community_code
    elif street_code:
        where.append("co.street_id = (SELECT id FROM streets WHERE code = :sc)")
        params["sc"] = street_code
    if status:
        key = next((k for k, v in STATE_LABELS.items() if status in (k, v)), None)
        if key is None:
            raise _bad("status", "expected one of " + ", ".join(STATE_LABELS), status)
        where.append("w.state = :st")
        params["st"] = key
    sql = " WHERE " + " AND ".join(where)
    total = conn.scalar(
        text("SELECT count(*) FROM wishes w JOIN communities co ON co.id = w.community_id" + sql),
        params,
    )
    rows = conn.execute(
        text(
            _SELECT
            + sql
            + " ORDER BY (w.state = 'open') DESC, w.created_at DESC, w.id DESC LIMIT :l OFFSET :o"
        ),
        params,
    )
    return {
        "total": int(total or 0),
        "limit": limit,
        "offset": offset,
        "wishes": [_public(r, settings) for r in rows],
    }


def act_wish(
    conn: Connection,
    user: User | None,
    wish_id: int,
    action: str,
    *,
    settings: Settings,
    version: int | None = None,
    note: str | None = None,
    member: str | None = None,
    unit: str | None = None,
    actor: str | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    """Claim (by a member, or a unit after GRIDSVC_WISH_OPEN_DAYS), release, done, feedback.

    Raises
    ------
    Conflict
        Stale version, an action not allowed from the wish's state, a member with
        GRIDSVC_MEMBER_OPEN_WISHES_MAX open wishes, a unit claiming before the wish is open to
        units.
    """
    if user is not None and not (user.can_plan or user.role == "member"):
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not act on wishes")
    row = conn.execute(
        text(
            "SELECT id, community_id, state, version, member_id, unit_name, created_at "
            "FROM wishes WHERE id = :i FOR UPDATE"
        ),
        {"i": wish_id},
    ).first()
    if row is None:
        raise NotFound(f"wish {wish_id}: no such wish in your scope")
    if version is not None and version != row.version:
        raise Conflict(f"wish {wish_id}: version {version} is stale (now {row.version}); reload")
    ev = wish_step(row.state, action, note)
    member_id = row.member_id
    unit_name = row.unit_name
    if action == "claim":
        member_id, unit_name = _claimant(conn, user, row, settings, member, unit)
    elif user is not None and user.role == "member" and row.member_id != user.member_id:
        raise Forbidden(f"wish {wish_id}: not claimed by you")
    if action == "release":
        member_id, unit_name = None, None
    sets = "state = :to, version = version + 1, member_id = :m, unit_name = :un"
    if action == "claim":
        sets += ", claimed_at = now()"
    if action == "done":
        sets += ", closed_at = now(), note = :n"
    if action == "feedback":
        sets += ", feedback = :n"
    who = actor or (user.username if user else "cli")
    _event(
        conn,
        wish_id,
        row.community_id,
        user,
        who,
        row.state,
        ev.to_state,
        ev.note or unit_name,
        member_id,
    )
    done = conn.execute(
        text(f"UPDATE wishes SET {sets} WHERE id = :i AND version = :v"),
        {
            "to": ev.to_state,
            "m": member_id,
            "un": unit_name,
            "n": ev.note,
            "i": wish_id,
            "v": row.version,
        },
    ).rowcount
    if done != 1:
        raise Conflict(f"wish {wish_id}: changed by someone else; reload")
    audit.record(
        conn,
        f"wish_{action}",
        user=user,
        username=who,
        target=str(wish_id),
        community_id=row.community_id,
        after={"state": ev.to_state},
        ip=ip,
    )
    return get_wish(conn, wish_id, settings=settings)


def _claimant(
    conn: Connection,
    user: User | None,
    row: Any,
    settings: Settings,
    member: str | None,
    unit: str | None,
) -> tuple[int | None, str | None]:
    if unit:
        if user is not None and user.role == "member":
            raise Forbidden("a member claims for themselves, not for a unit")
        name = unit.strip()
        if not 1 <= len(name) <= 100:
            raise _bad("unit", "give the unit's name (1 to 100 characters)", unit)
        if row.created_at > now_utc() - timedelta(days=settings.wish_open_days):
            raise Conflict(
                f"wish {row.id}: open to units only after {settings.wish_open_days} days "
                "unclaimed (GRIDSVC_WISH_OPEN_DAYS)"
            )
        return None, name
    if user is not None and user.role == "member":
        member_id = user.member_id
    elif member:
        member_id = conn.scalar(text("SELECT id FROM members WHERE code = :c"), {"c": member})
        if member_id is None:
            raise NotFound(f"member {member!r}: no such member code in your scope")
    else:
        raise _bad("member", "name the member (or the unit) who claims the wish")
    held = conn.scalar(
        text("SELECT count(*) FROM wishes WHERE member_id = :m AND state = 'claimed'"),
        {"m": member_id},
    )
    if int(held or 0) >= settings.member_open_wishes_max:
        raise Conflict(
            f"member already holds {held} open wishes "
            f"(GRIDSVC_MEMBER_OPEN_WISHES_MAX = {settings.member_open_wishes_max})"
        )
    return int(member_id), None
