"""Small shared helpers of the portal services (the data edge)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text

from gridsvc.errors import NotFound


def frame(conn: Connection, sql: str, params: dict[str, object] | None = None) -> pd.DataFrame:
    """Rows of ``sql`` as a DataFrame (columns kept even when empty)."""
    result = conn.execute(text(sql), params or {})
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def pairs_exist(conn: Connection) -> bool:
    """Whether the pairing views exist yet (before any plan, everything is unpaired)."""
    names = ("current_household_pairs", "current_member_pairs")
    return all(conn.scalar(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": n}) for n in names)


def community_id(conn: Connection, code: str) -> int:
    """The id of a community the caller may see; NotFound otherwise (same message either way)."""
    found = conn.scalar(text("SELECT id FROM communities WHERE code = :c"), {"c": code})
    if found is None:
        raise NotFound(f"community {code!r}: no such community in your scope")
    return int(found)


def data_version(conn: Connection) -> int:
    """The data version counter (bumped by every change of the data tables)."""
    return int(conn.scalar(text("SELECT version FROM data_version")) or 0)
