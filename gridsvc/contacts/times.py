"""Times of contacts: parsed in the configured zone when they carry no offset, shown in it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)
#: A contact may lie this far in the future (clocks of phones and servers differ a little).
CLOCK_SKEW = timedelta(minutes=5)


def parse_time(value: str | datetime, zone: str) -> datetime:
    """An aware datetime: ``value`` as given, or in ``zone`` when it has no offset.

    Accepts ISO 8601 (``2026-12-01T09:30``, ``2026-12-01 09:30:00+08:00``) and the slashes of
    spreadsheets (``2026/12/01 09:30``). Raises ``ValueError`` otherwise.
    """
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip().replace("/", "-")
        if not text:
            raise ValueError("empty time")
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed


def parse_times(values: pd.Series, zone: str) -> pd.Series:
    """Vectorised :func:`parse_time`: UTC timestamps, NaT where a value does not parse."""
    text = values.fillna("").astype(str).str.strip().str.replace("/", "-", regex=False)
    has_offset = text.str.contains(_OFFSET)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    naive = text[~has_offset & (text != "")]
    if len(naive):
        parsed = pd.to_datetime(naive, format="ISO8601", errors="coerce")
        local = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        out.loc[naive.index] = local.dt.tz_convert("UTC")
    aware = text[has_offset]
    if len(aware):
        out.loc[aware.index] = pd.to_datetime(aware, format="ISO8601", errors="coerce", utc=True)
    return out


def local_iso(value: datetime | None, zone: str) -> str | None:
    """``value`` in ``zone`` as ISO 8601 with its offset (``2026-12-01T09:30:00+08:00``)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    return value.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")


def local_text(value: datetime | None, zone: str) -> str:
    """``value`` in ``zone`` for people: ``2026-12-01 09:30`` (empty for None)."""
    if value is None or value is pd.NaT:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def now_utc() -> datetime:
    """The current time (aware, UTC)."""
    return datetime.now(ZoneInfo("UTC"))
