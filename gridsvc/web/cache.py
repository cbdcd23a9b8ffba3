"""Results of the heavy pages kept per data version: coverage, blind spots, map pages.

A result depends on the data (``data_version``, bumped by every change of a data table, plan or
proposal), on what the caller may see (the scope row-level security applies) and on the
language, so those are part of every key; anything else about the caller is not. Entries are
evicted least recently used first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock
from typing import Any, TypeVar

from flask import g

from gridsvc.portal._sql import data_version
from gridsvc.web import db

T = TypeVar("T")
ENTRIES = 48
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


def clear() -> None:
    """Forget every entry (tests)."""
    with _LOCK:
        _STORE.clear()
