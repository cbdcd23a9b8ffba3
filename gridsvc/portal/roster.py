"""The pairing roster (结对名单): members with their households, cadres with their members."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection

from geodata.sheets import write_csv, write_xlsx
from gridsvc.accounts import audit
from gridsvc.accounts.users import User
from gridsvc.errors import NotFound
from gridsvc.portal._sql import frame, pairs_exist
from maps.safe import protect

_HOUSEHOLDS = """
SELECT m.code AS member_code, m.name AS member_name, m.phone AS member_phone,
       mg.code AS member_grid_code, h.code AS household_code, h.name AS household_name,
       h.phone AS household_phone, hg.code AS grid_code, b.code AS building_code,
       round(p.distance_m::numeric, 1) AS distance_m, p.same_building, p.same_grid
FROM current_household_pairs p
JOIN members m ON m.id = p.member_id
JOIN households h ON h.id = p.household_id
LEFT JOIN grids hg ON hg.id = h.grid_id
LEFT JOIN grids mg ON mg.id = m.grid_id
LEFT JOIN buildings b ON b.id = h.building_id
WHERE p.community_id = ANY(:ids) AND (CAST(:g AS text) IS NULL OR hg.code = :g)
ORDER BY m.code, p.distance_m
"""

_MEMBERS = """
SELECT k.code AS cadre_code, k.name AS cadre_name, k.phone AS cadre_phone, k.level AS cadre_level,
       m.code AS member_code, m.name AS member_name, m.phone AS member_phone,
       g.code AS grid_code, round(p.distance_m::numeric, 1) AS distance_m
FROM current_member_pairs p
JOIN cadres k ON k.id = p.cadre_id
JOIN members m ON m.id = p.member_id
LEFT JOIN grids g ON g.id = m.grid_id
WHERE p.community_id = ANY(:ids) AND (CAST(:g AS text) IS NULL OR g.code = :g)
ORDER BY k.code, p.distance_m
"""

HOUSEHOLD_COLUMNS = [
    "member_code",
    "member_name",
    "member_phone",
    "member_grid_code",
    "household_code",
    "household_name",
    "household_phone",
    "grid_code",
    "building_code",
    "distance_m",
    "same_building",
    "same_grid",
]
MEMBER_COLUMNS = [
    "cadre_code",
    "cadre_name",
    "cadre_phone",
    "cadre_level",
    "member_code",
    "member_name",
    "member_phone",
    "grid_code",
    "distance_m",
]


@dataclass(frozen=True)
class Roster:
    """Pairs of a scope as two tables; ``masked`` tells whether names and phones are masked."""

    households: pd.DataFrame
    members: pd.DataFrame
    masked: bool

    def to_dict(self, *, limit: int | None = None, offset: int = 0) -> dict[str, object]:
        """JSON-ready rows (``limit`` rows of each table from ``offset``) and totals."""
        end = None if limit is None else offset + limit
        return {
            "masked": self.masked,
            "totals": {"household_pairs": len(self.households), "member_pairs": len(self.members)},
            "offset": offset,
            "limit": limit,
            "households": _records(self.households.iloc[offset:end]),
            "members": _records(self.members.iloc[offset:end]),
        }

    def labelled(self, column: Callable[[str], str], yes: str, no: str) -> Roster:
        """A copy for people to read: columns named by ``column(key)``, booleans as yes/no."""

        def relabel(table: pd.DataFrame) -> pd.DataFrame:
            out = table.copy()
            for name in out.columns:
                values = out[name].dropna()
                if len(values) and (values.dtype == bool or set(values.unique()) <= {True, False}):
                    out[name] = out[name].map({True: yes, False: no})
            return out.rename(columns={c: column(c) for c in out.columns})

        return Roster(relabel(self.households), relabel(self.members), self.masked)


def _records(table: pd.DataFrame) -> list[dict[str, object]]:
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def load_roster(
    conn: Connection,
    community_ids: list[int],
    *,
    grid_code: str | None = None,
    masked: bool = True,
    audit_as: tuple[User, str, str, str | None] | None = None,
) -> Roster:
    """The roster of the given communities, optionally one grid's; masked unless asked.

    An unmasked roster is written to the audit log here: ``audit_as`` is ``(user, action,
    target, ip)`` (``view_unmasked`` or ``export_unmasked``); unmasked without it is refused.

    Raises
    ------
    NotFound
        When ``grid_code`` names no grid of these communities.
    """
    if grid_code is not None:
        found = frame(
            conn,
            "SELECT 1 FROM grids WHERE code = :g AND community_id = ANY(:ids)",
            {"g": grid_code, "ids": community_ids},
        )
        if found.empty:
            raise NotFound(f"grid {grid_code!r}: no such grid in this scope")
    if pairs_exist(conn):
        params = {"ids": community_ids, "g": grid_code}
        households = frame(conn, _HOUSEHOLDS, params)
        members = frame(conn, _MEMBERS, params)
    else:
        households = pd.DataFrame(columns=HOUSEHOLD_COLUMNS)
        members = pd.DataFrame(columns=MEMBER_COLUMNS)
    if not masked:
        if audit_as is None:
            raise ValueError("an unmasked roster needs audit_as (who, action, target, ip)")
        user, action, target, ip = audit_as
        audit.record(conn, action, user=user, target=target, ip=ip)
    households = protect(households, masked=masked, people=True)
    members = protect(members, masked=masked, people=True)
    return Roster(households, members, masked)


def roster_xlsx(roster: Roster, *, sheet_names: tuple[str, str]) -> bytes:
    """Both tables as one workbook (two sheets); no cell is a formula."""
    return write_xlsx({sheet_names[0]: roster.households, sheet_names[1]: roster.members})


def roster_csv(roster: Roster, *, table: str = "households") -> bytes:
    """One table as CSV, UTF-8 with BOM so spreadsheet programs show Chinese; formula-like
    cells neutralised."""
    chosen = roster.households if table == "households" else roster.members
    return write_csv(chosen)
