"""Load ranges of members and cadres: their own, else their community's, else their street's."""

from __future__ import annotations

import pandas as pd

from gridsvc.settings import LoadRange

#: The range columns of each level: households per member, members per cadre.
_COLUMNS = {"households": "household", "members": "member"}


def range_sql(level: str, *, person: str, community: str, street: str) -> str:
    """SQL select items ``min_load, max_load``: a person's range, resolved up the hierarchy.

    ``coalesce(person.min_load, community.<x>_min, street.<x>_min)`` (and the same for the
    maximum), where ``<x>`` is ``household`` for members and ``member`` for cadres. A NULL left
    means the settings' range: fill it with :func:`fill_ranges`.

    Parameters
    ----------
    level
        ``"households"`` (a member's households) or ``"members"`` (a cadre's members).
    person, community, street
        The SQL aliases of the member or cadre table and of its community and street (a cadre
        of a street has no community: join communities with a LEFT JOIN).
    """
    x = _COLUMNS[level]
    return ", ".join(
        f"coalesce({person}.{end}_load, {community}.{x}_{end}, {street}.{x}_{end}) AS {end}_load"
        for end in ("min", "max")
    )


def fill_ranges(frame: pd.DataFrame, default: LoadRange) -> pd.DataFrame:
    """``min_load``/``max_load`` as integers, the settings' range where nothing was set."""
    if frame.empty:
        return frame
    return frame.assign(
        min_load=frame["min_load"].fillna(default.min).astype(int),
        max_load=frame["max_load"].fillna(default.max).astype(int),
    )
