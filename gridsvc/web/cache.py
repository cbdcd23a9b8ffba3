"""Results kept per data version: the heavy pages (coverage, blind spots, map pages) and a
person's own pages (a member's households).

A result depends on the data (``data_version``, bumped by every change of a data table, plan or
proposal), on what the caller may see (the scope row-level security applies) and on the
language, so those are part of every key; anything else about the caller is not (:func:`scoped`).
A person's page also depends on who they are (their own households) and on the clock (a status
turns overdue with time): :func:`personal` keys on the user too and drops an entry at the
instant its builder says it may change. Entries are evicted least recently used first. Keep no
HTML that holds a per-request value (a CSP nonce, a CSRF token, a flashed message).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from threading import Lock
from typing import Any, TypeVar

from flask import current_app, g

from gridsvc.contacts import times
from gridsvc.portal._sql import data_version
from gridsvc.web import db

T = TypeVar("T")
ENTRIES = 48
#: Entries of persons' pages per app (about 10 KB for a member's 24 households), and the longest
#: any is kept.
PERSONAL_ENTRIES = 1024
PERSONAL_MAX_AGE = timedelta(minutes=5)
_STORE: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()
_LOCK = Lock()


def scoped(kind: str, *parts: Hashable, build: Callable[[], T]) -> T:
    """``build()`` once per data version, caller's scope, language and ``parts``."""
    user = g.get("user")
    scope = (user.street_id, user.community_id) if user else (None, None)
    key = (kind, data_version(db.conn()), scope, db.settings().lang, *parts)
    with _LOCK:
        if key in _STORE:
            _STORE.move_to_end(key)
            return _STORE[key]
    value = build()
    with _LOCK:
        _STORE[key] = value
        while len(_STORE) > ENTRIES:
            _STORE.popitem(last=False)
    return value


def personal(kind: str, *parts: Hashable, build: Callable[[], tuple[T, datetime | None]]) -> T:
    """``build()`` once per data version, user, scope, language and ``parts``, while it holds.

    ``build`` returns the value and the first instant it may read differently with the same
    data (None: only the data can change it); the entry is used strictly before that instant
    and for at most :data:`PERSONAL_MAX_AGE`. The store belongs to the app (one database).
    """
    user = g.get("user")
    who = (user.id, user.role, user.member_id, user.cadre_id) if user else None
    scope = (user.street_id, user.community_id) if user else (None, None)
    key = (kind, data_version(db.conn()), who, scope, db.settings().lang, *parts)
    store: OrderedDict[tuple[Hashable, ...], tuple[Any, datetime]]
    store = current_app.extensions.setdefault("gridsvc.personal_cache", OrderedDict())
    now = times.now_utc()
    with _LOCK:
        hit = store.get(key)
        if hit is not None and now < hit[1]:
            store.move_to_end(key)
            return hit[0]
    value, until = build()
    bound = now + PERSONAL_MAX_AGE
    with _LOCK:
        store[key] = (value, bound if until is None else min(until, bound))
        while len(store) > PERSONAL_ENTRIES:
            store.popitem(last=False)
    return value


def clear() -> None:
    """Forget every entry of :func:`scoped` (tests)."""
    with _LOCK:
        _STORE.clear()
