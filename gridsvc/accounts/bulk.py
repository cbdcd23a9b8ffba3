"""``gridsvc user import``: many users from a sheet (members and cadres of a community), all or
nothing, every reject named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Connection

from geodata.readers import decode, normalise_name, read_xlsx_rows
from gridsvc.accounts import audit
from gridsvc.accounts.users import create_user, generate_password
from gridsvc.errors import GridsvcError, InputRejected, Reject

COLUMNS = ("username", "role", "member_code", "cadre_code", "password", "street_code")
ALIASES = {
    "用户名": "username",
    "角色": "role",
    "党员编码": "member_code",
    "干部编码": "cadre_code",
}
ROLE_ALIASES = {"党员": "member", "干部": "cadre", "查看": "viewer", "规划": "planner"}


def read_users(path: Path, encoding: str | None = None) -> pd.DataFrame:
    """The sheet's rows as strings, row numbers as in the spreadsheet (header = 1)."""
    import csv
    import io

    if path.suffix.lower() == ".xlsx":
        header, rows, _ = read_xlsx_rows(path)
    else:
        content, _ = decode(path.read_bytes(), encoding)
        table = list(csv.reader(io.StringIO(content, newline="")))
        if not table:
            raise InputRejected(
                f"{path.name}: empty", [Reject(path.name, None, None, "empty file")]
            )
        header, rows = table[0], table[1:]
    names = [ALIASES.get(str(h).strip(), normalise_name(h)) for h in header]
    frame = pd.DataFrame([list(r) + [None] * (len(names) - len(r)) for r in rows], columns=names)
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    if "username" not in frame.columns or "role" not in frame.columns:
        reason = "needs the columns username and role"
        raise InputRejected(f"{path.name}: {reason}", [Reject(path.name, None, None, reason)])
    return frame


def _cell(row: pd.Series, name: str) -> str | None:
    value = row.get(name)
    if value is None or pd.isna(value):
        return None
    return str(value).strip() or None


def import_users(
    conn: Connection, path: Path, *, encoding: str | None = None, username: str = "cli"
) -> tuple[dict[str, str], int]:
    """Create every user of the sheet in the caller's transaction; random passwords by name.

    Raises
    ------
    InputRejected
        With every rejected row; the caller's transaction is then rolled back (nothing made).
    """
    frame = read_users(Path(path), encoding)
    made: dict[str, str] = {}
    rejects: list[Reject] = []
    for number, row in frame.iterrows():
        name = _cell(row, "username") or ""
        role = _cell(row, "role") or ""
        role = ROLE_ALIASES.get(role, role.lower())
        given = _cell(row, "password")
        secret = given or generate_password()
        savepoint = conn.begin_nested()
        try:
            user = create_user(
                conn,
                name,
                secret,
                role=role,
                member_code=_cell(row, "member_code"),
                cadre_code=_cell(row, "cadre_code"),
                street_code=_cell(row, "street_code"),
                community_code=_cell(row, "community_code"),
            )
        except GridsvcError as exc:
            savepoint.rollback()
            found = getattr(exc, "rejects", None) or [Reject("user", None, None, exc.message)]
            rejects += [
                Reject(Path(path).name, int(number), r.field, r.reason, r.value or name)
                for r in found
            ]
            continue
        savepoint.commit()
        audit.record(conn, "user_add", username=username, target=name, after=user.to_dict())
        if not given:
            made[name] = secret
    if rejects:
        raise InputRejected(
            f"{Path(path).name}: {len({r.record for r in rejects})} rows rejected; no user made",
            rejects,
        )
    return made, len(frame)
