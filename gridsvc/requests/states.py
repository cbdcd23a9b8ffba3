"""The state machine of residents' requests and micro-wishes (pure: no database, no clock).

Requests: 待派单 ``waiting`` → 已派单 ``dispatched`` → 已接单 ``accepted`` → 办理中
``in_progress`` → 已办结 ``done`` → 已回访 ``visited``; 退回 ``returned`` (the member declines
with a reason; dispatched again) and 升级 ``escalated`` (past its time limit: level 1 the
member's cadre, level 2 the community). Every transition is one event (from, to, note).
"""

from __future__ import annotations

from dataclasses import dataclass

from gridsvc.errors import Conflict, InputRejected, Reject

STATES = (
    "waiting",
    "dispatched",
    "accepted",
    "in_progress",
    "done",
    "visited",
    "returned",
    "escalated",
)
OPEN = ("waiting", "dispatched", "accepted", "in_progress", "returned", "escalated")
#: States counting against a member's GRIDSVC_MEMBER_OPEN_REQUESTS_MAX.
HELD = ("dispatched", "accepted", "in_progress")
CLOSED = ("done", "visited")
MAX_LEVEL = 2

#: action -> (states it may start from, state it leads to)
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "dispatch": (("waiting", "returned", "escalated"), "dispatched"),
    "accept": (("dispatched",), "accepted"),
    "decline": (("dispatched", "accepted"), "returned"),
    "start": (("accepted",), "in_progress"),
    "finish": (("accepted", "in_progress", "escalated"), "done"),
    "visit": (("done",), "visited"),
    "escalate": (("dispatched", "accepted", "in_progress", "returned", "waiting"), "escalated"),
}
#: Actions that need a note (the reason of a decline, what was done).
NEEDS_NOTE = ("decline", "finish")


@dataclass(frozen=True)
class Event:
    """One transition: from, to, the note and the escalation level after it."""

    action: str
    from_state: str
    to_state: str
    note: str | None
    level: int


def step(
    state: str,
    action: str,
    *,
    level: int = 0,
    note: str | None = None,
    satisfaction: int | None = None,
) -> Event:
    """The event of doing ``action`` on a request in ``state`` (escalation ``level``).

    Raises
    ------
    Conflict
        The action is not allowed from this state (409: someone else moved it first), or an
        escalation beyond the community.
    InputRejected
        An unknown action, a decline or finish without a note, a visit without a satisfaction
        of 1 to 5.
    """
    if action not in ACTIONS:
        reason = f"unknown action: expected one of {', '.join(ACTIONS)}"
        raise InputRejected(
            f"action {action!r}: {reason}", [Reject("request", None, "action", reason, action)]
        )
    sources, target = ACTIONS[action]
    if state not in sources:
        raise Conflict(
            f"request in state {state!r}: {action} is allowed only from {', '.join(sources)}"
        )
    clean = (note or "").strip() or None
    if action in NEEDS_NOTE and clean is None:
        what = "the reason" if action == "decline" else "what was done"
        raise InputRejected(
            f"{action}: give {what} as the note",
            [Reject("request", None, "note", f"{what} is required")],
        )
    if clean is not None and len(clean) > 2000:
        raise InputRejected(
            "note: longer than 2000 characters",
            [Reject("request", None, "note", "longer than 2000 characters")],
        )
    if action == "visit" and (satisfaction is None or not 1 <= satisfaction <= 5):
        reason = "satisfaction from 1 to 5 is required"
        raise InputRejected(
            f"visit: {reason}", [Reject("request", None, "satisfaction", reason, str(satisfaction))]
        )
    new_level = level
    if action == "escalate":
        if level >= MAX_LEVEL:
            raise Conflict("request already escalated to the community")
        new_level = level + 1
    return Event(action, state, target, clean, new_level)


def allowed(state: str) -> tuple[str, ...]:
    """Actions allowed from ``state``."""
    return tuple(a for a, (sources, _) in ACTIONS.items() if state in sources)


WISH_STATES = ("open", "claimed", "done", "thanked")
WISH_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "claim": (("open",), "claimed"),
    "release": (("claimed",), "open"),
    "done": (("claimed",), "done"),
    "feedback": (("done",), "thanked"),
}


def wish_step(state: str, action: str, note: str | None = None) -> Event:
    """The event of ``action`` on a wish in ``state`` (Conflict when not allowed)."""
    if action not in WISH_ACTIONS:
        reason = f"unknown action: expected one of {', '.join(WISH_ACTIONS)}"
        raise InputRejected(
            f"action {action!r}: {reason}", [Reject("wish", None, "action", reason, action)]
        )
    sources, target = WISH_ACTIONS[action]
    if state not in sources:
        raise Conflict(
            f"wish in state {state!r}: {action} is allowed only from {', '.join(sources)}"
        )
    clean = (note or "").strip() or None
    if action in ("done", "feedback") and clean is None:
        raise InputRejected(
            f"{action}: a note is required", [Reject("wish", None, "note", "required")]
        )
    return Event(action, state, target, clean, 0)
