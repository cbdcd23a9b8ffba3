"""``gridsvc contacts import``: the contact sheets communities keep, all or nothing.

Read (CSV or XLSX, UTF-8 or GBK), check every row with vectorised pandas (time, channel, note),
COPY the rows into a temporary table, check codes and pairs in SQL, and only when no row is
rejected insert them, skipping the same household, member and minute already counted (in the
file or in the database). Every reject names its row (the spreadsheet's row number, header = 1),
field, reason and value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from geodata.readers import decode, normalise_name, read_xlsx_rows
from gridsvc.accounts import audit
from gridsvc.contacts.log import CHANNEL_ALIASES, CHANNELS, EFFECTIVE, MAX_NOTE
from gridsvc.contacts.times import CLOCK_SKEW, now_utc, parse_times
from gridsvc.errors import InputRejected, Reject
from gridsvc.settings import Settings

COLUMNS = ("household_code", "member_code", "contacted_at", "channel", "note")
REQUIRED = COLUMNS[:4]
#: Column names of Chinese sheets.
ALIASES = {
    "户编码": "household_code",
    "户号": "household_code",
    "党员编码": "member_code",
    "党员编号": "member_code",
    "联系时间": "contacted_at",
    "联系方式": "channel",
    "备注": "note",
    "联系内容": "note",
}
MAX_REJECTS = 10_000


@dataclass(frozen=True)
class ContactImport:
    """What an import did."""

    source: str
    rows: int
    inserted: int
    skipped_duplicates: int
    seconds: float


def read_sheet(path: Path, *, encoding: str | None = None, max_mb: float = 1024) -> pd.DataFrame:
    """The sheet as strings, columns named as :data:`COLUMNS` (aliases mapped)."""
    path = Path(path)
    size_mb = path.stat().st_size / 1e6
    if size_mb > max_mb:
        _refuse(path.name, f"{size_mb:.0f} MB is over GRIDSVC_MAX_IMPORT_MB ({max_mb:g})")
    if path.suffix.lower() == ".xlsx":
        header, rows, _ = read_xlsx_rows(path)
        frame = pd.DataFrame(rows, columns=header, dtype=object).astype("string")
    elif path.suffix.lower() in (".csv", ".txt"):
        frame = _read_csv(path, encoding)
    else:
        _refuse(path.name, f"unknown extension {path.suffix!r}: expected .csv or .xlsx")
    frame.columns = [ALIASES.get(str(c).strip(), normalise_name(c)) for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        _refuse(path.name, f"missing column(s) {', '.join(missing)}", missing[0])
    if "note" not in frame.columns:
        frame["note"] = pd.NA
    frame = frame[list(COLUMNS)].copy()
    frame.index = pd.RangeIndex(2, len(frame) + 2)  # spreadsheet rows: the header is row 1
    return frame


def _read_csv(path: Path, encoding: str | None) -> pd.DataFrame:
    import io

    try:
        content, _ = decode(path.read_bytes(), encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        _refuse(path.name, f"cannot decode the text ({exc}); give --encoding")
    first = content.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    try:
        return pd.read_csv(
            io.StringIO(content),
            sep=delimiter,
            dtype="string",
            keep_default_na=False,
            na_values=[],
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        _refuse(path.name, f"malformed CSV: {exc}")


def _refuse(source: str, reason: str, field: str | None = None):
    raise InputRejected(f"{source}: {reason}", [Reject(source, None, field, reason)])


def check_rows(
    frame: pd.DataFrame, *, source: str, zone: str, max_age_days: int, now=None
) -> tuple[pd.DataFrame, list[Reject]]:
    """Parse and check time, channel and note (pure); the clean frame and the rejects."""
    now = now or now_utc()
    rejects: list[Reject] = []

    def reject(mask: pd.Series, field: str, reason: str, values: pd.Series) -> None:
        for row, value in values[mask].items():
            rejects.append(
                Reject(source, int(row), field, reason, None if pd.isna(value) else str(value))
            )

    for column in ("household_code", "member_code"):
        frame[column] = frame[column].fillna("").astype(str).str.strip()
        reject(frame[column] == "", column, "empty", frame[column])
    at = parse_times(frame["contacted_at"], zone)
    reject(
        at.isna(), "contacted_at", "not a time: expected 2026-12-01 09:30", frame["contacted_at"]
    )
    reject(at > now + CLOCK_SKEW, "contacted_at", "in the future", frame["contacted_at"])
    oldest = now - pd.Timedelta(days=max_age_days)
    reason = f"older than {max_age_days} days (GRIDSVC_CONTACT_MAX_AGE_DAYS)"
    reject(at < oldest, "contacted_at", reason, frame["contacted_at"])
    raw = frame["channel"].fillna("").astype(str).str.strip()
    channel = raw.map(lambda v: CHANNEL_ALIASES.get(v, v.lower()))
    bad = ~channel.isin(CHANNELS)
    reject(bad, "channel", f"unknown channel: expected one of {', '.join(CHANNELS)}", raw)
    note = frame["note"].astype("string").str.strip()
    note = note.mask(note == "", pd.NA)
    reject(
        note.str.len().fillna(0) > MAX_NOTE,
        "note",
        f"longer than {MAX_NOTE} characters",
        note.str.slice(0, 40),
    )
    reject(
        note.str.contains("\x00", regex=False).fillna(False),
        "note",
        "contains a NUL byte",
        note.str.slice(0, 40),
    )
    clean = pd.DataFrame(
        {
            "row": frame.index,
            "household_code": frame["household_code"],
            "member_code": frame["member_code"],
            "contacted_at": at,
            "channel": channel,
            "note": note,
        }
    )
    return clean, rejects


_STAGE = (
    "CREATE TEMPORARY TABLE contact_stage (row integer, household_code text, member_code text, "
    "contacted_at timestamptz, channel text, note text) ON COMMIT DROP"
)
_CODE_REJECTS = """
SELECT s.row, 'household_code' AS field, 'unknown household code' AS reason,
       s.household_code AS value
FROM contact_stage s LEFT JOIN households h ON h.code = s.household_code WHERE h.id IS NULL
UNION ALL
SELECT s.row, 'member_code', 'unknown member code', s.member_code
FROM contact_stage s LEFT JOIN members m ON m.code = s.member_code WHERE m.id IS NULL
UNION ALL
SELECT s.row, 'member_code', 'the household is not this member''s (never paired with them)',
       s.member_code
FROM contact_stage s JOIN households h ON h.code = s.household_code
JOIN members m ON m.code = s.member_code
WHERE NOT EXISTS (SELECT 1 FROM household_pairs hp
                  WHERE hp.household_id = h.id AND hp.member_id = m.id)
ORDER BY 1, 2
LIMIT :limit
"""
_INSERT = f"""
WITH staged AS (
  SELECT DISTINCT ON (h.id, m.id, date_trunc('minute', s.contacted_at))
         h.id AS household_id, m.id AS member_id, h.community_id, s.contacted_at, s.channel, s.note
  FROM contact_stage s JOIN households h ON h.code = s.household_code
  JOIN members m ON m.code = s.member_code
  ORDER BY h.id, m.id, date_trunc('minute', s.contacted_at), s.row
)
INSERT INTO contacts (household_id, member_id, community_id, contacted_at, channel, note, source,
                      created_by)
SELECT st.household_id, st.member_id, st.community_id, st.contacted_at, st.channel, st.note,
       'import', CAST(:user_id AS integer)
FROM staged st
WHERE NOT EXISTS (
  SELECT 1 FROM contacts c
  WHERE c.household_id = st.household_id AND c.member_id = st.member_id
    AND c.contacted_at >= date_trunc('minute', st.contacted_at)
    AND c.contacted_at < date_trunc('minute', st.contacted_at) + interval '1 minute'
    AND {EFFECTIVE})
"""


def import_contacts(
    conn: Connection,
    path: Path,
    *,
    settings: Settings,
    encoding: str | None = None,
    username: str | None = None,
    user_id: int | None = None,
) -> ContactImport:
    """Import a contact sheet into ``contacts`` in the caller's transaction (all or nothing).

    Raises
    ------
    InputRejected
        With every rejected row (row, field, reason, value); nothing is written.
    """
    started = time.perf_counter()
    source = Path(path).name
    frame = read_sheet(Path(path), encoding=encoding, max_mb=settings.max_import_mb)
    clean, rejects = check_rows(
        frame, source=source, zone=settings.timezone, max_age_days=settings.contact_max_age_days
    )
    bad_rows = {r.record for r in rejects}
    _stage(conn, clean[~clean["row"].isin(bad_rows)])
    found = conn.execute(text(_CODE_REJECTS), {"limit": MAX_REJECTS}).fetchall()
    rejects += [Reject(source, r.row, r.field, r.reason, r.value) for r in found]
    if rejects:
        _raise(source, rejects, len(frame))
    inserted = conn.execute(text(_INSERT), {"user_id": user_id}).rowcount
    seconds = time.perf_counter() - started
    details = {"path": source, "rows": len(frame), "inserted": inserted}
    audit.record(
        conn, "contacts_import", username=username or "cli", target=source, details=details
    )
    return ContactImport(source, len(frame), inserted, len(frame) - inserted, seconds)


def _raise(source: str, rejects: list[Reject], rows: int) -> None:
    rejects = sorted(rejects, key=lambda r: (r.record or 0, r.field or ""))
    bad_rows = len({r.record for r in rejects})
    raise InputRejected(
        f"{source}: {bad_rows:,d} of {rows:,d} rows rejected; nothing imported", rejects
    )


def _stage(conn: Connection, clean: pd.DataFrame) -> None:
    """COPY the checked rows into a temporary table (binary-free text COPY, one round trip)."""
    conn.exec_driver_sql(_STAGE)
    raw = conn.connection.driver_connection
    columns = "row, household_code, member_code, contacted_at, channel, note"
    at = clean["contacted_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    records = zip(
        clean["row"].tolist(),
        clean["household_code"].tolist(),
        clean["member_code"].tolist(),
        at.tolist(),
        clean["channel"].tolist(),
        [None if pd.isna(n) else n for n in clean["note"].tolist()],
        strict=True,
    )
    with raw.cursor() as cursor, cursor.copy(f"COPY contact_stage ({columns}) FROM STDIN") as copy:
        for record in records:
            copy.write_row(record)
    conn.exec_driver_sql("ANALYZE contact_stage")
