"""What members and cadres see on their phones: their households by due date, a household's
card and history, the phone number on request (audited), a cadre's members with overdue counts.

Row-level security already limits every read to the person's own households and people; these
functions only shape the rows (masked names and phones, Beijing time, due dates).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from gridsvc.accounts import audit
from gridsvc.accounts.users import User
from gridsvc.contacts import times
from gridsvc.contacts.cadence import DUE_SOON_DAYS, contact_status, member_figures
from gridsvc.contacts.log import list_contacts
from gridsvc.contacts.times import local_text
from gridsvc.errors import Forbidden, NotFound
from gridsvc.settings import Settings
from maps.safe import mask_name, mask_phone

FLAGS = ("elderly_alone", "disabled", "low_income", "children")

_HOUSEHOLDS = """
SELECT h.id AS household_id, h.code, h.name, h.phone, h.size, h.elderly_alone, h.disabled,
       h.low_income, h.children, b.code AS building_code, b.name AS building_name,
       g.name AS grid_name, m.code AS member_code, m.name AS member_name
FROM households h
LEFT JOIN buildings b ON b.id = h.building_id
LEFT JOIN grids g ON g.id = h.grid_id
LEFT JOIN current_household_pairs p ON p.household_id = h.id
LEFT JOIN members m ON m.id = p.member_id
"""


def _community_ids(conn: Connection) -> list[int]:
    return conn.execute(text("SELECT id FROM communities")).scalars().all()


_PERSON_ROWS = """
SELECT h.id AS household_id, h.code, h.name, h.elderly_alone, h.disabled, h.low_income,
       h.children, b.code AS building_code, b.name AS building_name, m.code AS member_code,
       cl.last_at, (h.elderly_alone OR h.disabled OR h.low_income OR h.children) AS vulnerable,
       CASE WHEN h.elderly_alone OR h.disabled OR h.low_income OR h.children
            THEN coalesce(co.contact_days_vulnerable, s.contact_days_vulnerable, :dv)
            ELSE coalesce(co.contact_days, s.contact_days, :d) END AS cadence_days
FROM current_household_pairs p
JOIN households h ON h.id = p.household_id
JOIN members m ON m.id = p.member_id
JOIN communities co ON co.id = h.community_id
JOIN streets s ON s.id = co.street_id
LEFT JOIN buildings b ON b.id = h.building_id
LEFT JOIN contact_last cl ON cl.household_id = h.id
WHERE (CAST(:member AS integer) IS NULL OR p.member_id = :member)
"""


DAY = timedelta(days=1)


@dataclass(frozen=True)
class HouseholdList:
    """A person's households as shown at ``as_of``, and until when they are shown so.

    ``valid_until`` is the first instant at which a row may read differently with the same
    data (a status turns due soon or overdue, a day count grows); None when only a change of
    the data can change them (no household was ever contacted).
    """

    rows: tuple[dict[str, Any], ...]
    late: int
    as_of: datetime
    valid_until: datetime | None


def _status(last: datetime | None, cadence: int, now: datetime) -> tuple[str, datetime | None]:
    """(status, due) of one household now (the rules of :func:`cadence.classify`)."""
    if last is None:
        return "never", None
    due = last + timedelta(days=cadence)
    if now > due:
        return "overdue", due
    return ("due_soon" if now > due - timedelta(days=DUE_SOON_DAYS) else "ok"), due


def _next_change(last: datetime | None, due: datetime | None, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which a household's status or day count may change.

    A status holds while ``now`` is not past the next threshold (``due - DUE_SOON_DAYS``, then
    ``due``); the whole days since the last contact grow at ``last`` plus a whole day.
    """
    if last is None or due is None:
        return None
    days = (now - last) // DAY
    changes = [last + (days + 1) * DAY]
    changes += [t for t in (due - timedelta(days=DUE_SOON_DAYS), due) if t >= now]
    return min(changes)


def my_households(conn: Connection, user: User, *, settings: Settings) -> HouseholdList:
    """The person's households, due first: never contacted, then by due date (overdue first).

    One statement (row-level security limits it to the person's households) and plain Python:
    the page a member opens many times a day.
    """
    member = user.member_id if user.role == "member" else None
    rows = conn.execute(
        text(_PERSON_ROWS),
        {"member": member, "d": settings.contact_days, "dv": settings.contact_days_vulnerable},
    ).mappings()
    now = times.now_utc()
    out = []
    until: datetime | None = None
    for r in rows:
        status, due = _status(r["last_at"], int(r["cadence_days"]), now)
        days = None if r["last_at"] is None else max(int((now - r["last_at"]).days), 0)
        change = _next_change(r["last_at"], due, now)
        if change is not None and (until is None or change < until):
            until = change
        out.append(
            {
                "code": r["code"],
                "name": mask_name(r["name"]),
                "building": r["building_name"] or r["building_code"] or "",
                "vulnerable": bool(r["vulnerable"]),
                "flags": [f for f in FLAGS if r[f]],
                "status": status,
                "last_contact": local_text(r["last_at"], settings.timezone),
                "due": local_text(due, settings.timezone)[:10],
                "days_since": days,
                "cadence_days": int(r["cadence_days"]),
                "member": r["member_code"],
                "_key": (r["last_at"] is not None, due or now, r["code"]),
            }
        )
    out.sort(key=lambda row: row.pop("_key"))
    late = sum(1 for r in out if r["status"] in ("overdue", "never"))
    return HouseholdList(tuple(out), late, now, until)


def _household_row(r: dict[str, Any], zone: str) -> dict[str, Any]:
    last = None if pd.isna(r["last_at"]) else r["last_at"].to_pydatetime()
    due = None if pd.isna(r["due_at"]) else r["due_at"].to_pydatetime()
    return {
        "code": r["code"],
        "name": mask_name(r["name"]),
        "building": r["building_name"] or r["building_code"] or "",
        "vulnerable": bool(r["vulnerable"]),
        "flags": [f for f in FLAGS if r.get(f)],
        "status": r["status"],
        "last_contact": local_text(last, zone),
        "due": local_text(due, zone)[:10],
        "days_since": None if pd.isna(r["days_since"]) else int(r["days_since"]),
        "cadence_days": int(r["cadence_days"]),
        "member": r["member_code"],
    }


def household_card(
    conn: Connection, user: User, code: str, *, settings: Settings
) -> dict[str, Any]:
    """One household: building, masked name and phone, cadence state, its last contacts."""
    row = conn.execute(text(_HOUSEHOLDS + "WHERE h.code = :c"), {"c": code}).mappings().first()
    if row is None:
        raise NotFound(f"household {code!r}: not one of your households")
    state = contact_status(conn, _community_ids(conn), settings=settings)
    mine = state[state["household_id"] == row["household_id"]]
    card = {
        "code": row["code"],
        "name": mask_name(row["name"]),
        "phone": mask_phone(row["phone"]) if row["phone"] else "",
        "has_phone": bool(row["phone"]),
        "size": row["size"],
        "building": row["building_name"] or row["building_code"] or "",
        "building_code": row["building_code"] or "",
        "grid": row["grid_name"] or "",
        "member": row["member_code"],
        "member_name": mask_name(row["member_name"]),
        "flags": [f for f in FLAGS if row[f]],
        "may_reveal": can_reveal(user, row["member_code"], conn),
    }
    if not mine.empty:
        card.update(_household_row({**mine.iloc[0].to_dict(), **dict(row)}, settings.timezone))
        card["name"] = mask_name(row["name"])
    history = list_contacts(conn, settings=settings, household=code, limit=20)
    card["history"] = [_history_row(c) for c in history["contacts"]]
    return card


def _history_row(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": c["id"],
        "at": (c["contacted_at"] or "")[:16].replace("T", " "),
        "channel": c["channel"],
        "note": c["note"] or "",
        "by": c["member"] or c["cadre"] or c["created_by"] or "",
        "created_by": c["created_by"],
    }


def can_reveal(user: User, member_code: str | None, conn: Connection) -> bool:
    """The paired member, and planners and admins of the scope, may see the phone in clear."""
    if user.can_plan:
        return True
    if user.role != "member" or member_code is None:
        return False
    own = conn.scalar(text("SELECT code FROM members WHERE id = :i"), {"i": user.member_id})
    return own == member_code


def reveal_phone(conn: Connection, user: User, code: str, *, ip: str | None = None) -> str:
    """The household's phone in clear, for its paired member (or a planner); audited."""
    row = conn.execute(text(_HOUSEHOLDS + "WHERE h.code = :c"), {"c": code}).mappings().first()
    if row is None:
        raise NotFound(f"household {code!r}: not one of your households")
    if not can_reveal(user, row["member_code"], conn):
        raise Forbidden(f"household {code!r}: only its paired member may see the phone number")
    audit.record(conn, "household_phone_reveal", user=user, target=code, ip=ip)
    return row["phone"] or ""


def my_history(
    conn: Connection, user: User, *, settings: Settings, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    """The person's own contacts (a member's by their code; a cadre's in their scope)."""
    member = None
    if user.role == "member":
        member = conn.scalar(text("SELECT code FROM members WHERE id = :i"), {"i": user.member_id})
    page = list_contacts(conn, settings=settings, member=member, limit=limit, offset=offset)
    return {
        **page,
        "contacts": [_history_row(c) | {"household": c["household"]} for c in page["contacts"]],
    }


def cadre_members(conn: Connection, user: User, *, settings: Settings) -> list[dict[str, Any]]:
    """A cadre's members (masked names) with households, overdue count and contacted share."""
    if user.role != "cadre":
        raise Forbidden(f"user {user.username!r} (role {user.role}) is not a cadre")
    status = contact_status(conn, _community_ids(conn), settings=settings)
    figures = member_figures(status).set_index("member") if not status.empty else None
    rows = conn.execute(
        text(
            "SELECT m.code, m.name FROM current_member_pairs p "
            "JOIN members m ON m.id = p.member_id WHERE p.cadre_id = :c ORDER BY m.code"
        ),
        {"c": user.cadre_id},
    ).all()
    out = []
    for code, name in rows:
        have = figures is not None and code in figures.index
        out.append(
            {
                "code": code,
                "name": mask_name(name),
                "households": int(figures.loc[code, "households"]) if have else 0,
                "overdue": int(figures.loc[code, "overdue"]) if have else 0,
                "contacted_share": float(figures.loc[code, "contacted_share"]) if have else None,
            }
        )
    return sorted(out, key=lambda m: (-m["overdue"], m["code"]))


def today_text(settings: Settings) -> str:
    """Now in Beijing time, for the form's default."""
    return local_text(times.now_utc(), settings.timezone)
