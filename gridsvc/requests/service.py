"""Residents' requests: create, dispatch along the pairing, act (If-Match), list, escalate.

Services take the connection (scoped by the caller's transaction) and write their own audit
entries; every transition is one row of ``request_events``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from gridsvc.accounts import audit
from gridsvc.accounts.users import User
from gridsvc.contacts.times import local_iso, now_utc, parse_time
from gridsvc.errors import Conflict, Forbidden, InputRejected, NotFound, Reject
from gridsvc.requests import dispatch as dsp
from gridsvc.requests.states import HELD, OPEN, STATES, step
from gridsvc.settings import Settings

CATEGORIES = {
    "mediation": "矛盾调解",
    "sanitation": "环境卫生",
    "elderly_care": "养老助残",
    "policy": "政策咨询",
    "repair": "维修",
    "other": "其他",
}
CHANNELS = {
    "visit": "上门",
    "phone": "电话",
    "grid_worker": "网格员",
    "wechat_group": "微信群",
    "other": "其他",
}
STATE_LABELS = {
    "waiting": "待派单",
    "dispatched": "已派单",
    "accepted": "已接单",
    "in_progress": "办理中",
    "done": "已办结",
    "visited": "已回访",
    "returned": "退回",
    "escalated": "升级",
}
CREATORS = ("member", "cadre", "planner", "admin")
VULNERABLE = "(h.elderly_alone OR h.disabled OR h.low_income OR h.children)"


def _key(
    value: Any,
    table: dict[str, str],
    field: str,
    source: str = "request",
    record: int | None = None,
) -> str:
    raw = str(value or "").strip()
    if raw in table:
        return raw
    for key, label in table.items():
        if raw == label:
            return key
    if raw == "其它" and "other" in table:
        return "other"
    expected = ", ".join(f"{k} ({v})" for k, v in table.items())
    reason = f"unknown {field}: expected one of {expected}"
    raise InputRejected(
        f"{source} {field} {raw!r}: {reason}", [Reject(source, record, field, reason, raw)]
    )


def category_key(value: Any, record: int | None = None) -> str:
    """The category key of ``repair`` or ``维修`` (InputRejected otherwise)."""
    return _key(value, CATEGORIES, "category", record=record)


def channel_key(value: Any, record: int | None = None) -> str:
    """The channel key of ``phone`` or ``电话`` (InputRejected otherwise)."""
    return _key(value or "other", CHANNELS, "channel", record=record)


def limits(settings: Settings, category: str) -> tuple[int, int]:
    """(accept days, finish days) of a category: GRIDSVC_REQUEST_LIMITS, else the defaults."""
    for part in (settings.request_limits or "").split(","):
        name, _, value = part.strip().partition(":")
        if name.strip() == category and "/" in value:
            accept, finish = value.split("/", 1)
            return int(accept), int(finish)
    return settings.request_accept_days, settings.request_finish_days


def _event(
    conn: Connection,
    request_id: int,
    community_id: int,
    user: User | None,
    actor: str,
    from_state: str | None,
    to_state: str,
    *,
    member_id: int | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> None:
    conn.execute(
        text(
            "INSERT INTO request_events (request_id, community_id, at, user_id, actor, from_state, "
            "to_state, member_id, note) VALUES (:r, :c, "
            "coalesce(CAST(:at AS timestamptz), clock_timestamp()), "
            ":u, :a, :f, :t, :m, :n)"
        ),
        {
            "r": request_id,
            "c": community_id,
            "at": at,
            "u": user.id if user else None,
            "a": actor,
            "f": from_state,
            "t": to_state,
            "m": member_id,
            "n": note,
        },
    )


def add_request(
    conn: Connection,
    user: User | None,
    *,
    settings: Settings,
    household: str,
    category: str,
    text_: str,
    channel: str | None = None,
    at: str | datetime | None = None,
    actor: str | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    """Create a request of a household and dispatch it at once; the request as shown.

    Raises
    ------
    Forbidden
        A viewer; a member naming a household that is not theirs.
    NotFound
        Unknown household.
    InputRejected
        Unknown category or channel, empty or long text, a time in the future.
    """
    if user is not None and user.role not in CREATORS:
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not create requests")
    cat = category_key(category)
    chan = channel_key(channel)
    body = (text_ or "").strip()
    if not 1 <= len(body) <= 2000:
        reason = "give 1 to 2000 characters"
        raise InputRejected(f"request text: {reason}", [Reject("request", None, "text", reason)])
    created = _when(at, settings.timezone)
    row = conn.execute(
        text(
            f"SELECT h.id, h.community_id, {VULNERABLE} AS vulnerable FROM households h "
            "WHERE h.code = :c"
        ),
        {"c": household},
    ).first()
    if row is None:
        if user is not None and user.is_person:
            raise Forbidden(f"household {household!r}: not one of your households")
        raise NotFound(f"household {household!r}: no such household code in your scope")
    _, finish_days = limits(settings, cat)
    request_id = conn.scalar(
        text(
            "INSERT INTO requests (community_id, household_id, category, text, channel, "
            "vulnerable, "
            "due_at, created_by, created_at) VALUES (:c, :h, :cat, :t, :ch, :v, :due, :u, :at) "
            "RETURNING id"
        ),
        {
            "c": row.community_id,
            "h": row.id,
            "cat": cat,
            "t": body,
            "ch": chan,
            "v": bool(row.vulnerable),
            "due": created + timedelta(days=finish_days),
            "u": user.id if user else None,
            "at": created,
        },
    )
    who = actor or (user.username if user else "cli")
    _event(conn, request_id, row.community_id, user, who, None, "waiting", at=created)
    dispatch_requests(conn, user, settings=settings, ids=[request_id], actor=who)
    out = get_request(conn, request_id, settings=settings)
    audit.record(
        conn,
        "request_add",
        user=user,
        username=who,
        target=str(request_id),
        community_id=row.community_id,
        after={k: out[k] for k in ("id", "household", "category", "status", "member", "reason")},
        ip=ip,
    )
    return out


def _when(at: str | datetime | None, zone: str) -> datetime:
    if at is None or at == "":
        return now_utc()
    try:
        when = parse_time(at, zone)
    except ValueError:
        reason = "not a time: expected ISO 8601 like 2026-12-01T09:30 (Beijing time)"
        raise InputRejected(
            f"request at {at!r}: {reason}", [Reject("request", None, "at", reason, str(at))]
        ) from None
    if when > now_utc() + timedelta(minutes=5):
        raise InputRejected(
            f"request at {at!r}: in the future",
            [Reject("request", None, "at", "in the future", str(at))],
        )
    return when


_POOL_SQL = "SELECT * FROM gridsvc_request_pool(:cs)"
"""Members of the communities with position and load (a SECURITY DEFINER function: a member who
declines reads only themselves, yet the order goes on to the nearest member with room)."""
_WAITING_SQL = """
SELECT r.id, r.community_id, r.state, r.level, r.declined_by, r.category,
       coalesce(ST_X(h.geom), ST_X(ST_Centroid(b.geom)), ST_X(ST_Centroid(g.geom))) AS lon,
       coalesce(ST_Y(h.geom), ST_Y(ST_Centroid(b.geom)), ST_Y(ST_Centroid(g.geom))) AS lat,
       coalesce(h.building_id, r.building_id, -1) AS building,
       coalesce(h.grid_id, r.grid_id, -1) AS grid,
       r.vulnerable, p.member_id AS paired, mp.cadre_id AS pair_cadre
FROM requests r
LEFT JOIN households h ON h.id = r.household_id
LEFT JOIN buildings b ON b.id = r.building_id
LEFT JOIN grids g ON g.id = r.grid_id
LEFT JOIN current_household_pairs p ON p.household_id = r.household_id
LEFT JOIN current_member_pairs mp ON mp.member_id = p.member_id
WHERE r.state IN ('waiting', 'returned') AND r.member_id IS NULL AND r.cadre_id IS NULL
"""


def dispatch_requests(
    conn: Connection,
    user: User | None,
    *,
    settings: Settings,
    ids: list[int] | None = None,
    street_code: str | None = None,
    community_code: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Dispatch waiting (and returned) requests as one min-cost flow over members' spare
    capacity: vulnerable households first, the paired member preferred, then the nearest member
    with room; left over, the paired member's cadre. Each request records why. Audited.

    ``ids``: only these requests (a new one is dispatched alone, by the same machinery)."""
    if user is not None and not (user.can_plan or user.is_person):
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not dispatch requests")
    _check_scope(conn, street_code, community_code)
    where, params = "", {}
    if ids is not None:
        where, params = " AND r.id = ANY(:ids)", {"ids": list(ids)}
    elif community_code:
        where, params = (
            " AND r.community_id = (SELECT id FROM communities WHERE code = :cc)",
            {"cc": community_code},
        )
    elif street_code:
        where = (
            " AND r.community_id IN (SELECT c.id FROM communities c "
            "JOIN streets s ON s.id = c.street_id WHERE s.code = :sc)"
        )
        params = {"sc": street_code}
    reqs = conn.execute(text(_WAITING_SQL + where + " ORDER BY r.id"), params).all()
    if not reqs:
        return {"dispatched": 0, "to_cadre": 0, "left_waiting": 0, "cost_m": 0}
    communities = sorted({r.community_id for r in reqs})
    mems = conn.execute(text(_POOL_SQL), {"cs": communities}).all()
    cap = settings.member_open_requests_max
    pool, waiting, _ = _arrays(reqs, mems, cap)
    node, srv = dsp.candidate_arcs(waiting, pool)
    result = dsp.solve_dispatch(
        waiting,
        pool,
        node,
        srv,
        building_penalty=settings.building_penalty_m,
        grid_penalty=settings.grid_penalty_m,
    )
    counts = {"dispatched": 0, "to_cadre": 0, "left_waiting": 0, "cost_m": 0}
    on_duty = {m.id: bool(m.on_duty) for m in mems}
    full = {m.id: int(m.open_n) >= cap for m in mems}
    who = actor or (user.username if user else "cli")
    now = now_utc()
    moves: list[tuple] = []
    left: list[tuple[int, str]] = []
    for i, r in enumerate(reqs):
        s = int(result.srv[i])
        pair_state = None
        if r.paired is not None:
            if r.paired in (r.declined_by or []):
                pair_state = "declined"
            elif not on_duty.get(r.paired, False):
                pair_state = "unavailable"
            elif full.get(r.paired, False):
                pair_state = "full"
        member_id = int(pool.ids[s]) if s >= 0 else None
        paired = member_id is not None and member_id == r.paired
        cadre_id = None
        if member_id is None and r.pair_cadre is not None:
            cadre_id = int(r.pair_cadre)
        why = dsp.reason(
            paired=paired,
            had_pair=r.paired is not None,
            pair_state=pair_state,
            cap=cap,
            dist=None if s < 0 else float(result.dist[i]),
            same_building=s >= 0
            and pool.building[s] >= 0
            and pool.building[s] == waiting.building[i],
            cadre=cadre_id is not None,
        )
        if member_id is None and cadre_id is None:
            left.append((r.id, why))
            counts["left_waiting"] += 1
            continue
        ev = step(r.state, "dispatch", level=r.level)
        accept_days, _ = limits(settings, r.category)
        moves.append(
            (r.id, r.community_id, r.state, ev.to_state, member_id, cadre_id, why, accept_days)
        )
        counts["to_cadre" if cadre_id else "dispatched"] += 1
        if s >= 0:
            counts["cost_m"] += round(float(result.dist[i]))
    _write_dispatch(conn, moves, left, user, who, now)
    if ids is None:
        audit.record(
            conn,
            "request_dispatch",
            user=user,
            username=who,
            target=community_code or street_code,
            details=counts | {"requests": len(reqs)},
        )
    return counts


def _write_dispatch(
    conn: Connection,
    moves: list[tuple],
    left: list[tuple[int, str]],
    user: User | None,
    who: str,
    now: datetime,
) -> None:
    """Every dispatch as one UPDATE and one INSERT of events (arrays, not a row per statement)."""
    if left:
        conn.execute(
            text(
                "UPDATE requests r SET reason = u.reason FROM unnest(CAST(:ids AS bigint[]), "
                "CAST(:reasons AS text[])) AS u(id, reason) WHERE r.id = u.id"
            ),
            {"ids": [x[0] for x in left], "reasons": [x[1] for x in left]},
        )
    if not moves:
        return
    cols = list(zip(*moves, strict=True))
    params = {
        "ids": list(cols[0]),
        "cs": list(cols[1]),
        "froms": list(cols[2]),
        "tos": list(cols[3]),
        "ms": list(cols[4]),
        "cds": list(cols[5]),
        "whys": list(cols[6]),
        "dues": [now + timedelta(days=d) for d in cols[7]],
        "now": now,
        "u": user.id if user else None,
        "a": who,
    }
    conn.execute(
        text(
            "INSERT INTO request_events (request_id, community_id, at, user_id, actor, "
            "from_state, to_state, member_id, note) SELECT u.id, u.c, clock_timestamp(), "
            "CAST(:u AS integer), :a, u.f, u.t, u.m, u.n FROM unnest(CAST(:ids AS bigint[]), "
            "CAST(:cs AS integer[]), CAST(:froms AS text[]), CAST(:tos AS text[]), "
            "CAST(:ms AS integer[]), CAST(:whys AS text[])) AS u(id, c, f, t, m, n) "
            "ORDER BY u.id"
        ),
        params,
    )
    conn.execute(
        text(
            "UPDATE requests r SET state = u.t, member_id = u.m, cadre_id = u.cd, reason = u.n, "
            "dispatched_at = :now, accept_due_at = u.due, version = r.version + 1 "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:tos AS text[]), CAST(:ms AS integer[]), "
            "CAST(:cds AS integer[]), CAST(:whys AS text[]), CAST(:dues AS timestamptz[])) "
            "AS u(id, t, m, cd, n, due) WHERE r.id = u.id"
        ),
        params,
    )


def _check_scope(conn: Connection, street_code: str | None, community_code: str | None) -> None:
    """NotFound unless the named community or street is in the caller's scope."""
    for table, code in (("communities", community_code), ("streets", street_code)):
        if (
            code
            and conn.scalar(text(f"SELECT count(*) FROM {table} WHERE code = :c"), {"c": code}) == 0
        ):
            raise NotFound(
                f"{table[:-1] if table == 'streets' else 'community'} {code!r}: not in your scope"
            )


def _arrays(
    reqs: list[Any], mems: list[Any], cap: int
) -> tuple[dsp.Pool, dsp.Waiting, dict[int, int]]:
    index = {m.id: i for i, m in enumerate(mems)}
    lon = np.array(
        [m.lon for m in mems] + [r.lon if r.lon is not None else np.nan for r in reqs], float
    )
    lat = np.array(
        [m.lat for m in mems] + [r.lat if r.lat is not None else np.nan for r in reqs], float
    )
    x, y = dsp.project(lon, lat)
    x, y = np.nan_to_num(x, nan=0.0), np.nan_to_num(y, nan=0.0)
    k = len(mems)
    room = np.array([max(cap - int(m.open_n), 0) if m.on_duty else 0 for m in mems], dtype=np.int64)
    pool = dsp.Pool(
        ids=np.array([m.id for m in mems], dtype=np.int64),
        x=x[:k],
        y=y[:k],
        building=np.array([m.building for m in mems], dtype=np.int64),
        grid=np.array([m.grid for m in mems], dtype=np.int64),
        community=np.array([m.community_id for m in mems], dtype=np.int64),
        room=room,
    )
    waiting = dsp.Waiting(
        ids=np.array([r.id for r in reqs], dtype=np.int64),
        x=x[k:],
        y=y[k:],
        building=np.array([r.building for r in reqs], dtype=np.int64),
        grid=np.array([r.grid for r in reqs], dtype=np.int64),
        community=np.array([r.community_id for r in reqs], dtype=np.int64),
        paired=np.array(
            [index.get(r.paired, -1) if r.paired is not None else -1 for r in reqs], dtype=np.int64
        ),
        vulnerable=np.array([bool(r.vulnerable) for r in reqs], dtype=bool),
        declined=[frozenset(index[d] for d in (r.declined_by or []) if d in index) for r in reqs],
    )
    return pool, waiting, index


_SELECT = """
SELECT r.id, h.code AS household, b.code AS building, g.code AS grid, r.category, r.state AS status,
       m.code AS member, cd.code AS cadre, r.reason, r.created_at, r.due_at, r.accept_due_at,
       r.channel, r.text, r.level, r.version, r.note, r.satisfaction, r.feedback, r.closed_at,
       co.code AS community
FROM requests r JOIN communities co ON co.id = r.community_id
LEFT JOIN households h ON h.id = r.household_id
LEFT JOIN buildings b ON b.id = coalesce(r.building_id, h.building_id)
LEFT JOIN grids g ON g.id = coalesce(r.grid_id, h.grid_id)
LEFT JOIN members m ON m.id = r.member_id LEFT JOIN cadres cd ON cd.id = r.cadre_id
"""


def _public(row: Any, zone: str) -> dict[str, Any]:
    out = dict(row._mapping)
    for key in ("created_at", "due_at", "accept_due_at", "closed_at"):
        out[key] = local_iso(out[key], zone)
    return out


def get_request(conn: Connection, request_id: int, *, settings: Settings) -> dict[str, Any]:
    """One request as the API shows it, with its events (times in the configured zone)."""
    row = conn.execute(text(_SELECT + " WHERE r.id = :i"), {"i": request_id}).first()
    if row is None:
        raise NotFound(f"request {request_id}: no such request in your scope")
    out = _public(row, settings.timezone)
    events = conn.execute(
        text(
            "SELECT e.at, e.actor, e.from_state, e.to_state, m.code AS member, e.note "
            "FROM request_events e LEFT JOIN members m ON m.id = e.member_id "
            "WHERE e.request_id = :i ORDER BY e.id"
        ),
        {"i": request_id},
    ).all()
    out["events"] = [dict(e._mapping) | {"at": local_iso(e.at, settings.timezone)} for e in events]
    return out


def list_requests(
    conn: Connection,
    *,
    settings: Settings,
    street_code: str | None = None,
    community_code: str | None = None,
    status: str | None = None,
    member: str | None = None,
    overdue: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Requests of the caller's scope, newest first; one page and the total."""
    _check_scope(conn, street_code, community_code)
    if status is not None and status not in STATES:
        status = _key(status, STATE_LABELS, "status")
    where = ["TRUE"]
    params: dict[str, Any] = {"l": limit, "o": offset}
    if community_code:
        where.append("co.code = :cc")
        params["cc"] = community_code
    elif street_code:
        where.append("co.street_id = (SELECT id FROM streets WHERE code = :sc)")
        params["sc"] = street_code
    if status:
        where.append("r.state = :st")
        params["st"] = status
    if member:
        where.append("m.code = :mm")
        params["mm"] = member
    if overdue:
        where.append(
            "r.state IN ('waiting', 'dispatched', 'accepted', 'in_progress', 'returned', "
            "'escalated') "
            "AND (r.due_at < now() OR (r.state = 'dispatched' AND r.accept_due_at < now()))"
        )
    sql = " WHERE " + " AND ".join(where)
    total = conn.scalar(
        text(
            "SELECT count(*) FROM requests r JOIN communities co ON co.id = r.community_id "
            "LEFT JOIN members m ON m.id = r.member_id" + sql
        ),
        params,
    )
    # the page's ids first (an index walk, newest first), then its rows with their joins
    page = (
        "SELECT r.id FROM requests r JOIN communities co ON co.id = r.community_id "
        "LEFT JOIN members m ON m.id = r.member_id"
        + sql
        + " ORDER BY r.created_at DESC, r.id DESC LIMIT :l OFFSET :o"
    )
    rows = conn.execute(
        text(_SELECT + f" WHERE r.id IN ({page}) ORDER BY r.created_at DESC, r.id DESC"),
        params,
    )
    return {
        "total": int(total or 0),
        "limit": limit,
        "offset": offset,
        "requests": [_public(r, settings.timezone) for r in rows],
    }


def act(
    conn: Connection,
    user: User | None,
    request_id: int,
    action: str,
    *,
    settings: Settings,
    version: int | None = None,
    note: str | None = None,
    satisfaction: int | None = None,
    actor: str | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    """Do ``action`` (accept, decline, start, finish, visit, escalate, dispatch) on a request.

    ``version``: the version the caller saw (If-Match); when another action came first, 409.
    A member acts only on requests they hold; a declined request is dispatched again at once.

    Raises
    ------
    Conflict
        The version moved on, or the action is not allowed from the request's state.
    Forbidden
        A viewer; a member acting on a request held by someone else.
    """
    if user is not None and not (user.can_plan or user.is_person):
        raise Forbidden(f"user {user.username!r} (role {user.role}) may not act on requests")
    row = conn.execute(
        text(
            "SELECT id, community_id, state, level, version, member_id, cadre_id FROM requests "
            "WHERE id = :i FOR UPDATE"
        ),
        {"i": request_id},
    ).first()
    if row is None:
        raise NotFound(f"request {request_id}: no such request in your scope")
    if version is not None and version != row.version:
        raise Conflict(
            f"request {request_id}: version {version} is stale (now {row.version}); reload"
        )
    if user is not None and user.role == "member" and row.member_id != user.member_id:
        raise Forbidden(f"request {request_id}: not one of your orders")
    if (
        user is not None
        and user.role == "cadre"
        and action not in ("accept", "decline", "start", "finish")
    ):
        raise Forbidden(f"request {request_id}: a cadre accepts, starts and finishes orders")
    ev = step(row.state, action, level=row.level, note=note, satisfaction=satisfaction)
    sets = ["state = :to", "version = version + 1", "level = :lv"]
    params: dict[str, Any] = {"to": ev.to_state, "lv": ev.level, "i": request_id, "v": row.version}
    if action == "decline":
        sets += [
            "declined_by = array_append(declined_by, member_id)",
            "member_id = NULL",
            "cadre_id = NULL",
        ]
        sets.append("reason = :note")
        params["note"] = f"退回：{ev.note}"
    elif action == "finish":
        sets += ["note = :note", "closed_at = now()"]
        params["note"] = ev.note
    elif action == "visit":
        sets += ["satisfaction = :sat", "feedback = :note"]
        params |= {"sat": satisfaction, "note": ev.note}
    elif action == "escalate":
        sets += ["member_id = NULL", "cadre_id = :cd", "reason = :why"]
        cadre = None
        if ev.level == 1 and row.member_id is not None:
            cadre = conn.scalar(
                text("SELECT cadre_id FROM current_member_pairs WHERE member_id = :m"),
                {"m": row.member_id},
            )
        params["cd"] = cadre
        params["why"] = "超时升级至联系干部" if cadre else "超时升级至社区"
    who = actor or (user.username if user else "cli")
    _event(
        conn,
        request_id,
        row.community_id,
        user,
        who,
        row.state,
        ev.to_state,
        member_id=row.member_id,
        note=ev.note or params.get("why"),
    )
    done = conn.execute(
        text(f"UPDATE requests SET {', '.join(sets)} WHERE id = :i AND version = :v"), params
    ).rowcount
    if done != 1:
        raise Conflict(f"request {request_id}: changed by someone else; reload")
    audit.record(
        conn,
        f"request_{action}",
        user=user,
        username=who,
        target=str(request_id),
        community_id=row.community_id,
        before={"state": row.state},
        after={"state": ev.to_state},
        ip=ip,
    )
    if action == "decline":
        dispatch_requests(conn, None, settings=settings, ids=[request_id], actor=who)
    return get_request(conn, request_id, settings=settings)


def escalate_overdue(conn: Connection, *, settings: Settings, actor: str = "cli") -> int:
    """Escalate open requests past their time limit (accept or finish); how many."""
    rows = (
        conn.execute(
            text(
                "SELECT id FROM requests WHERE level < 2 AND ("
                "(state = 'dispatched' AND accept_due_at < now()) OR "
                "(state IN ('dispatched', 'accepted', 'in_progress', 'waiting', 'returned') "
                "AND due_at < now()))"
            )
        )
        .scalars()
        .all()
    )
    for request_id in rows:
        try:
            act(conn, None, int(request_id), "escalate", settings=settings, actor=actor)
        except Conflict:
            continue
    return len(rows)


def open_counts(conn: Connection) -> dict[str, int]:
    """Open requests per state of the caller's scope."""
    rows = conn.execute(text("SELECT state, count(*) AS n FROM requests GROUP BY state")).all()
    return {r.state: int(r.n) for r in rows if r.state in OPEN or r.state in HELD}
