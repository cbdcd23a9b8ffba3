"""The contact log: append-only rows, corrections that supersede, reads with filters and paging.

Services take the connection (scoped by the caller's transaction) and write their own audit
entries. Nothing here deletes or updates a contact: a correction is a new row naming the one it
replaces (``supersedes``), by its author, within 24 hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from gridsvc.accounts import audit
from gridsvc.accounts.users import User
from gridsvc.contacts.times import CLOCK_SKEW, local_iso, now_utc, parse_time
from gridsvc.errors import Conflict, Forbidden, InputRejected, NotFound, Reject
from gridsvc.settings import Settings

CHANNELS = ("visit", "phone", "wechat", "other")
#: Channel names as communities write them in their sheets.
CHANNEL_ALIASES = {
    "走访": "visit",
    "上门": "visit",
    "入户": "visit",
    "电话": "phone",
    "微信": "wechat",
    "其他": "other",
    "其它": "other",
}
MAX_NOTE = 2000
CORRECTION_WINDOW = timedelta(hours=24)
#: Rows not replaced by a correction (a hashed subplan: corrections are few).
EFFECTIVE = "c.id NOT IN (SELECT supersedes FROM contacts WHERE supersedes IS NOT NULL)"
#: Roles that may log a contact (viewers only read).
LOGGERS = ("member", "cadre", "planner", "admin")

_SELECT = (
    "SELECT c.id, h.code AS household, m.code AS member, cd.code AS cadre, c.contacted_at, "
    "c.channel, c.note, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, u.username AS created_by, "
    "c.created_at, c.supersedes, c.source, co.code AS community "
    "FROM contacts c JOIN households h ON h.id = c.household_id "
    "JOIN communities co ON co.id = c.community_id "
    "LEFT JOIN members m ON m.id = c.member_id LEFT JOIN cadres cd ON cd.id = c.cadre_id "
    "LEFT JOIN users u ON u.id = c.created_by "
)


def normalise_channel(value: Any) -> str | None:
    """The channel key of ``value`` (``visit``, ``电话``...), or None when unknown."""
    key = str(value or "").strip()
    key = CHANNEL_ALIASES.get(key, key.lower())
    return key if key in CHANNELS else None


def contact_problems(
    *,
    at: datetime,
    channel: str | None,
    raw_channel: Any,
    note: str | None,
    now: datetime,
    max_age_days: int,
    source: str = "contact",
    record: int | None = None,
) -> list[Reject]:
    """What is wrong with one contact's time, channel and note (pure)."""
    problems = []
    if at > now + CLOCK_SKEW:
        problems.append(Reject(source, record, "contacted_at", "in the future", at.isoformat()))
    if at < now - timedelta(days=max_age_days):
        reason = f"older than {max_age_days} days (GRIDSVC_CONTACT_MAX_AGE_DAYS)"
        problems.append(Reject(source, record, "contacted_at", reason, at.isoformat()))
    if channel is None:
        reason = f"unknown channel: expected one of {', '.join(CHANNELS)}"
        problems.append(Reject(source, record, "channel", reason, str(raw_channel)))
    if note is not None and len(note) > MAX_NOTE:
        problems.append(Reject(source, record, "note", f"longer than {MAX_NOTE} characters"))
    return problems


def log_contact(
    conn: Connection,
    user: User,
    *,
    household: str,
    channel: str,
    settings: Settings,
    note: str | None = None,
    at: str | datetime | None = None,
    lon: float | None = None,
    lat: float | None = None,
    member: str | None = None,
    corrects: int | None = None,
    ip: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Log one contact (or a correction of ``corrects``); the row and whether it is new.

    A member logs only their own households, a cadre their members' (row-level security hides
    the others), planners and admins any household of their scope, naming the ``member`` who
    made the contact when it was not themselves. The same household, person and minute is the
    same contact: the existing row comes back (not new). Audited.

    Raises
    ------
    Forbidden
        A viewer; a member or cadre naming a household that is not theirs.
    NotFound
        Unknown household or member code.
    InputRejected
        A time in the future or older than GRIDSVC_CONTACT_MAX_AGE_DAYS, an unknown channel, a
        note too long, half a location or one outside China.
    """
    if user.role not in LOGGERS:
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not log contacts")
    now = now_utc()
    when = _when(at, settings.timezone)
    key = normalise_channel(channel)
    clean_note = (note or "").strip() or None
    problems = contact_problems(
        at=when,
        channel=key,
        raw_channel=channel,
        note=clean_note,
        now=now,
        max_age_days=settings.contact_max_age_days,
    )
    problems += _location_problems(lon, lat)
    if problems:
        raise InputRejected(f"contact of household {household!r}: {problems[0]}", problems)
    target = _household(conn, user, household)
    member_id, cadre_id = _author(conn, user, target, member)
    if corrects is not None:
        _check_correction(conn, user, corrects, target["id"])
    else:
        existing = _same_minute(conn, target["id"], member_id, cadre_id, when)
        if existing is not None:
            return get_contact(conn, existing, settings=settings), False
    contact_id = conn.scalar(
        text(
            "INSERT INTO contacts (household_id, member_id, cadre_id, community_id, contacted_at, "
            "channel, note, geom, created_by, source, supersedes) VALUES (:h, :m, :cd, :co, :at, "
            ":ch, :n, CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL "
            "ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END, :u, 'app', :s) RETURNING id"
        ),
        {
            "h": target["id"],
            "m": member_id,
            "cd": cadre_id,
            "co": target["community_id"],
            "at": when,
            "ch": key,
            "n": clean_note,
            "lon": lon,
            "lat": lat,
            "u": user.id,
            "s": corrects,
        },
    )
    row = get_contact(conn, contact_id, settings=settings)
    audit.record(
        conn,
        "contact_correct" if corrects is not None else "contact_add",
        user=user,
        target=household,
        community_id=target["community_id"],
        after={k: v for k, v in row.items() if k != "note"} | {"note_chars": len(clean_note or "")},
        ip=ip,
    )
    return row, True


def _when(at: str | datetime | None, zone: str) -> datetime:
    if at is None or at == "":
        return now_utc()
    try:
        return parse_time(at, zone)
    except ValueError:
        reason = "not a time: expected ISO 8601 like 2026-12-01T09:30 (Beijing time)"
        raise InputRejected(
            f"contact: contacted_at {at!r}: {reason}",
            [Reject("contact", None, "at", reason, str(at))],
        ) from None


def _location_problems(lon: float | None, lat: float | None) -> list[Reject]:
    if lon is None and lat is None:
        return []
    if lon is None or lat is None:
        return [Reject("contact", None, "lon" if lon is None else "lat", "give lon and lat")]
    if not (73 <= lon <= 136 and 3 <= lat <= 54):
        value = f"{lon}, {lat}"
        return [Reject("contact", None, "lon", "outside China (lon 73-136, lat 3-54)", value)]
    return []


def _household(conn: Connection, user: User, code: str) -> dict[str, Any]:
    row = conn.execute(
        text(
            "SELECT h.id, h.community_id, p.member_id FROM households h "
            "LEFT JOIN current_household_pairs p ON p.household_id = h.id WHERE h.code = :c"
        ),
        {"c": code},
    ).first()
    if row is None:
        if user.is_person:
            raise Forbidden(f"household {code!r}: not one of your households")
        raise NotFound(f"household {code!r}: no such household code in your scope")
    if user.role == "member" and row.member_id != user.member_id:
        raise Forbidden(f"household {code!r}: not one of your households")
    return dict(row._mapping)


def _author(
    conn: Connection, user: User, target: dict[str, Any], member: str | None
) -> tuple[int | None, int | None]:
    """(member_id, cadre_id) of who made the contact."""
    if user.role == "member":
        return user.member_id, None
    if member:
        found = conn.scalar(text("SELECT id FROM members WHERE code = :c"), {"c": member})
        if found is None:
            raise NotFound(f"member {member!r}: no such member code in your scope")
        return int(found), None
    if user.role == "cadre":
        return None, user.cadre_id
    return None, None


def _same_minute(
    conn: Connection, household_id: int, member_id: int | None, cadre_id: int | None, at: datetime
) -> int | None:
    found = conn.scalar(
        text(
            "SELECT c.id FROM contacts c WHERE c.household_id = :h "
            "AND c.member_id IS NOT DISTINCT FROM CAST(:m AS integer) "
            "AND c.cadre_id IS NOT DISTINCT FROM CAST(:cd AS integer) "
            "AND c.contacted_at >= date_trunc('minute', CAST(:at AS timestamptz)) "
            "AND c.contacted_at < date_trunc('minute', CAST(:at AS timestamptz)) "
            "+ interval '1 minute' AND " + EFFECTIVE + " ORDER BY c.id LIMIT 1"
        ),
        {"h": household_id, "m": member_id, "cd": cadre_id, "at": at},
    )
    return int(found) if found is not None else None


def _check_correction(conn: Connection, user: User, contact_id: int, household_id: int) -> None:
    row = conn.execute(
        text(
            "SELECT c.created_by, c.created_at, c.household_id, "
            "EXISTS (SELECT 1 FROM contacts n WHERE n.supersedes = c.id) AS corrected "
            "FROM contacts c WHERE c.id = :i"
        ),
        {"i": contact_id},
    ).first()
    if row is None:
        raise NotFound(f"contact {contact_id}: no such contact in your scope")
    if row.created_by != user.id:
        raise Forbidden(f"contact {contact_id}: only its author may correct it")
    if now_utc() - row.created_at > CORRECTION_WINDOW:
        raise Forbidden(f"contact {contact_id}: the 24 hours to correct it are over")
    if row.corrected:
        raise Conflict(f"contact {contact_id}: already corrected; correct the correction")
    if row.household_id != household_id:
        raise InputRejected(
            f"contact {contact_id}: a correction keeps the household",
            [Reject("contact", None, "household", "differs from the corrected contact")],
        )


def get_contact(conn: Connection, contact_id: int, *, settings: Settings) -> dict[str, Any]:
    """One contact as the API shows it (times in the configured zone)."""
    row = conn.execute(text(_SELECT + "WHERE c.id = :i"), {"i": contact_id}).first()
    if row is None:
        raise NotFound(f"contact {contact_id}: no such contact in your scope")
    return _public(row, settings.timezone)


def _public(row: Any, zone: str) -> dict[str, Any]:
    out = dict(row._mapping)
    out["contacted_at"] = local_iso(row.contacted_at, zone)
    out["created_at"] = local_iso(row.created_at, zone)
    return out


def correct_contact(
    conn: Connection, user: User, contact_id: int, *, settings: Settings, **fields: Any
) -> dict[str, Any]:
    """A correction of ``contact_id`` by its author within 24 hours (a new row; audited)."""
    old = get_contact(conn, contact_id, settings=settings)
    values = {
        "household": old["household"],
        "channel": old["channel"],
        "note": old["note"],
        "at": old["contacted_at"],
        "lon": old["lon"],
        "lat": old["lat"],
    }
    values.update({k: v for k, v in fields.items() if v is not None})
    row, _ = log_contact(conn, user, settings=settings, corrects=contact_id, **values)
    return row


def list_contacts(
    conn: Connection,
    *,
    settings: Settings,
    household: str | None = None,
    member: str | None = None,
    community: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    include_superseded: bool = False,
) -> dict[str, Any]:
    """Contacts of the caller's scope, newest first, with filters; one page and the total."""
    zone = settings.timezone
    where = ["(CAST(:hh AS text) IS NULL OR h.code = :hh)"]
    where.append("(CAST(:mm AS text) IS NULL OR m.code = :mm)")
    where.append("(CAST(:co AS text) IS NULL OR co.code = :co)")
    where.append("(CAST(:since AS timestamptz) IS NULL OR c.contacted_at >= :since)")
    where.append("(CAST(:until AS timestamptz) IS NULL OR c.contacted_at <= :until)")
    if not include_superseded:
        where.append(EFFECTIVE)
    params = {
        "hh": household,
        "mm": member,
        "co": community,
        "since": _bound(since, zone, "since"),
        "until": _bound(until, zone, "until"),
    }
    sql = " WHERE " + " AND ".join(where)
    total = conn.scalar(
        text(
            "SELECT count(*) FROM contacts c JOIN households h ON h.id = c.household_id "
            "JOIN communities co ON co.id = c.community_id "
            "LEFT JOIN members m ON m.id = c.member_id" + sql
        ),
        params,
    )
    rows = conn.execute(
        text(_SELECT + sql + " ORDER BY c.contacted_at DESC, c.id DESC LIMIT :l OFFSET :o"),
        params | {"l": limit, "o": offset},
    )
    return {
        "total": int(total or 0),
        "limit": limit,
        "offset": offset,
        "contacts": [_public(r, zone) for r in rows],
    }


def _bound(value: str | datetime | None, zone: str, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value, zone)
    except ValueError:
        raise InputRejected(
            f"{name} {value!r}: not a date or time",
            [Reject("query", None, name, "expected ISO 8601 like 2026-12-01", str(value))],
        ) from None


#: Contacts that count for a pair's churn (a rebalance keeps pairs that work), at most this many.
CHURN_CONTACTS_MAX = 10
CHURN_DAYS = 90


def pair_contacts(conn: Connection, community_id: int, *, days: int = CHURN_DAYS) -> pd.Series:
    """Contacts of the last ``days`` days between each household of a community and its current
    member (household id -> count; households without any are absent)."""
    rows = conn.execute(
        text(
            "SELECT p.household_id, count(*) AS n FROM current_household_pairs p "
            "JOIN contacts c ON c.household_id = p.household_id AND c.member_id = p.member_id "
            "WHERE p.community_id = :c AND c.contacted_at > now() - make_interval(days => :d) "
            f"AND {EFFECTIVE} GROUP BY p.household_id"
        ),
        {"c": community_id, "d": days},
    ).all()
    return pd.Series({r.household_id: int(r.n) for r in rows}, dtype="int64")


def churn_reason(contacts: int) -> str:
    """``kept: 6 contacts in 90 days`` (the proposal's reason for a pair that stays)."""
    return f"kept: {contacts} contacts in {CHURN_DAYS} days"
