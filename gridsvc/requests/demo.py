"""Demo requests and micro-wishes: three months of history in every state (``make demo``).

Closed history (已办结, 已回访) is written with its whole event trail at past times; the last
ten days go through the services (dispatch along the pairing, accept, start, decline, escalate),
so what the pages show is what the services would have done. Idempotent: nothing is added when
demo requests exist.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import Connection, text

from gridsvc.contacts.times import now_utc
from gridsvc.requests.service import CATEGORIES, act, dispatch_requests, escalate_overdue
from gridsvc.requests.states import STATES
from gridsvc.settings import Settings

TEXTS = {
    "mediation": ["邻里噪音纠纷，请帮忙调解", "楼上漏水与邻居协商不成"],
    "sanitation": ["楼道堆放杂物", "垃圾清运不及时", "小区绿化带有积水"],
    "elderly_care": ["独居老人需要代购药品", "希望有人陪同就医", "申请助餐服务"],
    "policy": ["咨询医保报销政策", "咨询低保申请条件", "咨询孩子入学材料"],
    "repair": ["楼道灯坏了", "单元门禁损坏", "下水道堵塞"],
    "other": ["希望增设休息座椅", "反映停车难问题"],
}
WISHES = [
    "一台电风扇",
    "冬季棉被一套",
    "孩子的书包和文具",
    "一次上门理发",
    "轮椅一辆",
    "米面油一份",
]
UNITS = ["辖区供电所", "某某银行支行", "街道卫生服务中心"]
PER_HOUSEHOLD_MONTH = 0.02


def load_demo_requests(conn: Connection, *, settings: Settings, seed: int = 11) -> dict[str, int]:
    """Three months of requests and wishes for every community with a plan; counts by state."""
    if conn.scalar(text("SELECT count(*) FROM requests WHERE source = 'demo'")):
        return {}
    rng = np.random.default_rng(seed)
    now = now_utc()
    households = conn.execute(
        text(
            "SELECT h.id, h.community_id, p.member_id, h.low_income, h.disabled, "
            "h.elderly_alone, h.children, "
            "(h.elderly_alone OR h.disabled OR h.low_income OR h.children) AS vulnerable "
            "FROM households h JOIN current_household_pairs p ON p.household_id = h.id "
            "ORDER BY h.id"
        )
    ).all()
    if not households:
        return {}
    n = max(int(len(households) * PER_HOUSEHOLD_MONTH * 3), 60)
    picks = rng.choice(len(households), size=n, replace=True)
    categories = list(CATEGORIES)
    recent_ids: list[int] = []
    for k, i in enumerate(picks):
        h = households[int(i)]
        category = categories[int(rng.integers(len(categories)))]
        body = TEXTS[category][int(rng.integers(len(TEXTS[category])))]
        age_days = float(rng.uniform(0, 90))
        created = now - timedelta(days=age_days)
        recent = age_days < 10
        params = {
            "c": h.community_id,
            "h": h.id,
            "cat": category,
            "t": body,
            "ch": ["visit", "phone", "grid_worker", "wechat_group", "other"][k % 5],
            "v": bool(h.vulnerable),
            "at": created,
            "due": created + timedelta(days=settings.request_finish_days),
        }
        if recent:
            rid = conn.scalar(
                text(
                    "INSERT INTO requests (community_id, household_id, category, text, channel, "
                    "vulnerable, created_at, due_at, source) VALUES (:c, :h, :cat, :t, :ch, :v, "
                    ":at, :due, 'demo') RETURNING id"
                ),
                params,
            )
            _event(conn, rid, h.community_id, None, "waiting", created, None)
            recent_ids.append(int(rid))
            continue
        _closed(conn, rng, params, h.member_id, settings)
    dispatch_requests(conn, None, settings=settings, ids=recent_ids, actor="demo")
    _walk(conn, rng, recent_ids, settings)
    escalate_overdue(conn, settings=settings, actor="demo")
    _waiting(conn, households, now)
    _wishes(conn, rng, households, now, settings)
    rows = conn.execute(text("SELECT state, count(*) FROM requests GROUP BY state")).all()
    return {state: int(count) for state, count in rows}


def _event(conn, rid, community, member, to, at, frm, note=None) -> None:
    conn.execute(
        text(
            "INSERT INTO request_events (request_id, community_id, at, actor, from_state, "
            "to_state, member_id, note) VALUES (:r, :c, coalesce(CAST(:at AS timestamptz), "
            "clock_timestamp()), 'demo', :f, :t, :m, :n)"
        ),
        {"r": rid, "c": community, "at": at, "f": frm, "t": to, "m": member, "n": note},
    )


def _closed(conn, rng, params, member_id, settings: Settings) -> None:
    created = params["at"]
    steps = np.cumsum(rng.uniform(0.05, 1.5, size=5))  # days after creation
    visited = rng.random() < 0.7
    closed = created + timedelta(days=float(steps[3]))
    rid = conn.scalar(
        text(
            "INSERT INTO requests (community_id, household_id, category, text, channel, "
            "vulnerable, created_at, due_at, source, state, member_id, reason, dispatched_at, "
            "accept_due_at, closed_at, note, satisfaction, feedback, version) VALUES (:c, :h, "
            ":cat, :t, :ch, :v, :at, :due, 'demo', :st, :m, '结对党员', :disp, :acc, :closed, "
            "'已处理完毕', :sat, :fb, 6) RETURNING id"
        ),
        params
        | {
            "st": "visited" if visited else "done",
            "m": member_id,
            "disp": created + timedelta(days=float(steps[0])),
            "acc": created + timedelta(days=float(steps[0]) + settings.request_accept_days),
            "closed": closed,
            "sat": int(rng.choice([3, 4, 5, 5, 5])) if visited else None,
            "fb": "满意" if visited else None,
        },
    )
    trail = ["waiting", "dispatched", "accepted", "in_progress", "done"] + (
        ["visited"] if visited else []
    )
    times = [created] + [created + timedelta(days=float(d)) for d in steps]
    previous = None
    for state, at in zip(trail, times, strict=False):
        note = "结对党员" if state == "dispatched" else ("已处理完毕" if state == "done" else None)
        _event(conn, rid, params["c"], member_id if previous else None, state, at, previous, note)
        previous = state


def _walk(conn, rng, ids: list[int], settings: Settings) -> None:
    """Move the recent requests on: accepted, in progress, declined (dispatched again)."""
    returned = False
    for rid in ids:
        state = conn.scalar(text("SELECT state FROM requests WHERE id = :i"), {"i": rid})
        if state != "dispatched":
            continue
        roll = rng.random() if returned else 0.67  # at least one 退回 in every demo
        returned = True
        if roll < 0.3:
            act(conn, None, rid, "accept", settings=settings, actor="demo")
        elif roll < 0.55:
            act(conn, None, rid, "accept", settings=settings, actor="demo")
            act(conn, None, rid, "start", settings=settings, actor="demo")
        elif roll < 0.65:
            act(conn, None, rid, "decline", settings=settings, note="本周外出", actor="demo")
        elif roll < 0.7:  # declined and not yet dispatched again (退回, as the planner sees it)
            row = conn.execute(
                text("SELECT community_id, member_id FROM requests WHERE id = :i"), {"i": rid}
            ).one()
            conn.execute(
                text(
                    "UPDATE requests SET state = 'returned', reason = '退回：家中有事', "
                    "declined_by = array_append(declined_by, member_id), member_id = NULL, "
                    "version = version + 1 WHERE id = :i"
                ),
                {"i": rid},
            )
            _event(
                conn,
                rid,
                row.community_id,
                row.member_id,
                "returned",
                None,
                "dispatched",
                "家中有事",
            )


def _waiting(conn, households, now) -> None:
    """Two requests per community registered a moment ago, not yet dispatched (待派单)."""
    seen: set[int] = set()
    for h in households:
        if h.community_id in seen:
            continue
        seen.add(h.community_id)
        for body in ("楼道灯不亮", "咨询老年证办理"):
            rid = conn.scalar(
                text(
                    "INSERT INTO requests (community_id, household_id, category, text, channel, "
                    "vulnerable, created_at, due_at, source, reason) VALUES (:c, :h, 'other', :t, "
                    "'phone', :v, :at, :due, 'demo', NULL) RETURNING id"
                ),
                {
                    "c": h.community_id,
                    "h": h.id,
                    "t": body,
                    "v": bool(h.vulnerable),
                    "at": now,
                    "due": now + timedelta(days=7),
                },
            )
            _event(conn, rid, h.community_id, None, "waiting", now, None)


def _wishes(conn, rng, households, now, settings: Settings) -> None:
    """Per community: wishes open (some open to units), claimed, fulfilled and thanked."""
    by_community: dict[int, list] = {}
    for h in households:
        if h.low_income or h.disabled or h.elderly_alone or h.children:
            by_community.setdefault(h.community_id, []).append(h)
    states = ["open", "open", "open", "claimed", "claimed", "done", "thanked", "thanked"]
    for community, needy in by_community.items():
        claimed_by: dict[int, int] = {}
        for k, state in enumerate(states):
            h = needy[k % len(needy)]
            flag = next(
                f
                for f, col in (
                    ("low_income", "low_income"),
                    ("disabled", "disabled"),
                    ("elderly_alone", "elderly_alone"),
                    ("left_behind_child", "children"),
                )
                if getattr(h, col)
            )
            age = 20 if k == 0 else float(rng.uniform(1, 60))
            created = now - timedelta(days=age)
            member = h.member_id if state != "open" else None
            unit = None
            if state == "claimed" and claimed_by.get(member, 0) >= settings.member_open_wishes_max:
                member = None
            if member is None and state != "open":
                unit, member = UNITS[k % len(UNITS)], None
            if member is not None and state == "claimed":
                claimed_by[member] = claimed_by.get(member, 0) + 1
            wid = conn.scalar(
                text(
                    "INSERT INTO wishes (community_id, household_id, flag, text, value_yuan, "
                    "wanted_by, state, member_id, unit_name, claimed_at, closed_at, note, "
                    "feedback, created_at, source, version) VALUES (:c, :h, :f, :t, :v, :w, :s, "
                    ":m, :u, :ca, :cl, :n, :fb, :at, 'demo', 2) RETURNING id"
                ),
                {
                    "c": community,
                    "h": h.id,
                    "f": flag,
                    "t": WISHES[k % len(WISHES)],
                    "v": int(rng.integers(5, 60)) * 10,
                    "w": (created + timedelta(days=30)).date(),
                    "s": state,
                    "m": member,
                    "u": unit,
                    "ca": created + timedelta(days=1) if state != "open" else None,
                    "cl": created + timedelta(days=3) if state in ("done", "thanked") else None,
                    "n": "已送到家中" if state in ("done", "thanked") else None,
                    "fb": "谢谢党员同志" if state == "thanked" else None,
                    "at": created,
                },
            )
            trail = {"open": ["open"], "claimed": ["open", "claimed"]}.get(
                state, ["open", "claimed", "done"] + (["thanked"] if state == "thanked" else [])
            )
            previous = None
            for step, to in enumerate(trail):
                conn.execute(
                    text(
                        "INSERT INTO wish_events (wish_id, community_id, at, actor, from_state, "
                        "to_state, member_id, note) VALUES (:w, :c, :at, 'demo', :f, :t, :m, :n)"
                    ),
                    {
                        "w": wid,
                        "c": community,
                        "at": created + timedelta(days=step),
                        "f": previous,
                        "t": to,
                        "m": member,
                        "n": unit,
                    },
                )
                previous = to


__all__ = ["STATES", "load_demo_requests"]
