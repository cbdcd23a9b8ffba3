"""Audit retention (at least 180 days, `gridsvc audit prune`) and `gridsvc audit export` (CSV)."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gridsvc.accounts.audit import safe_cell
from gridsvc.cli import cli
from gridsvc.db import make_engine


def run(url, *args, **env):
    return CliRunner().invoke(
        cli, list(args), env={"GRIDSVC_DATABASE_URL": url, **env}, catch_exceptions=False
    )


@pytest.fixture
def engine(scratch_url):
    eng = make_engine(scratch_url)
    yield eng
    eng.dispose()


def add_entry(engine, *, at_sql: str, target: str, username: str = "tester") -> int:
    with engine.begin() as conn:
        return conn.scalar(
            text(
                f"INSERT INTO audit_log (at, username, action, target, details) "
                f"VALUES ({at_sql}, :u, 'test', :t, CAST(:d AS jsonb)) RETURNING id"
            ),
            {"u": username, "t": target, "d": '{"note": "=1+1"}'},
        )


def targets(engine, marker: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT target FROM audit_log WHERE target LIKE :m"), {"m": f"%{marker}%"}
        )
        return {row.target for row in rows}


def test_safe_cell_neutralises_formulas():
    for hostile in ('=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(hostile) == "'" + hostile
    assert safe_cell("张三") == "张三" and safe_cell(None) == "" and safe_cell(12) == "12"


def test_export_days_in_beijing_time_with_formulas_neutralised(scratch_url, engine, tmp_path):
    m = uuid.uuid4().hex[:8]
    add_entry(engine, at_sql="'2021-03-01 00:05+08'", target=f"{m}-first")
    add_entry(engine, at_sql="'2021-03-01 23:30+08'", target=f"=cmd|' /C calc'!A0 {m}",
              username="=HYPERLINK(\"http://evil\")")  # fmt: skip
    add_entry(engine, at_sql="'2021-03-02 00:10+08'", target=f"{m}-next-day")  # 16:10 UTC on 1st
    add_entry(engine, at_sql="'2021-02-28 23:59+08'", target=f"{m}-day-before")
    out = tmp_path / "audit.csv"
    result = run(scratch_url, "audit", "export", "--from", "2021-03-01", "--to", "2021-03-01",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese right
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    mine = [row for row in rows if m in row["target"]]
    assert [row["at"] for row in mine] == ["2021-03-01 00:05:00+08:00", "2021-03-01 23:30:00+08:00"]
    hostile = mine[1]
    assert hostile["username"] == '\'=HYPERLINK("http://evil")'
    assert hostile["target"].startswith("'=cmd|")
    assert hostile["details"] == '{"note": "=1+1"}'  # starts with {: left as it is
    assert not any(value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())
    with engine.connect() as conn:
        logged = conn.execute(
            text("SELECT details FROM audit_log WHERE action = 'audit_export' ORDER BY id DESC")
        ).first()
    assert logged.details == {"from": "2021-03-01", "to": "2021-03-01", "rows": len(rows)}
    stdout = run(scratch_url, "audit", "export", "--from", "2021-02-28", "--to", "2021-03-02")
    assert stdout.exit_code == 0
    assert sum(m in line for line in stdout.stdout.splitlines()) == 4


def test_export_refuses_a_reversed_range_and_writes_nothing(scratch_url, tmp_path):
    out = tmp_path / "none.csv"
    result = run(scratch_url, "audit", "export", "--from", "2021-03-02", "--to", "2021-03-01",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 3
    assert "--from 2021-03-02 is after --to 2021-03-01" in result.output
    assert not out.exists() and not list(tmp_path.iterdir())
    bad = run(scratch_url, "audit", "export", "--from", "2021-02-30", "--to", "2021-03-01")
    assert bad.exit_code == 2 and "--from" in bad.output


def test_prune_keeps_the_retention_and_never_less_than_180_days(scratch_url, engine):
    m = uuid.uuid4().hex[:8]
    add_entry(engine, at_sql="now() - interval '400 days'", target=f"{m}-400")
    add_entry(engine, at_sql="now() - interval '200 days'", target=f"{m}-200")
    add_entry(engine, at_sql="now() - interval '10 days'", target=f"{m}-10")
    too_short = run(scratch_url, "audit", "prune", GRIDSVC_AUDIT_RETENTION_DAYS="179")
    assert too_short.exit_code == 2 and "at least 180 days" in too_short.output
    assert targets(engine, m) == {f"{m}-400", f"{m}-200", f"{m}-10"}
    default = run(scratch_url, "audit", "prune")  # 365 days
    assert default.exit_code == 0 and "365 days" in default.output
    assert targets(engine, m) == {f"{m}-200", f"{m}-10"}
    floor = run(scratch_url, "audit", "prune", GRIDSVC_AUDIT_RETENTION_DAYS="180")
    assert floor.exit_code == 0
    assert targets(engine, m) == {f"{m}-10"}
    with engine.connect() as conn:
        pruned = conn.execute(
            text("SELECT details FROM audit_log WHERE action = 'audit_prune' ORDER BY id")
        ).all()
    assert [row.details["deleted"] >= 1 for row in pruned[-2:]] == [True, True]


def test_database_refuses_deleting_young_entries_even_with_a_cutoff(engine):
    m = uuid.uuid4().hex[:8]
    young = add_entry(engine, at_sql="now() - interval '10 days'", target=f"{m}-young")
    attempts = (
        "DELETE FROM audit_log WHERE id = :i",
        "SELECT set_config('gridsvc.audit_prune_before', now()::text, true); "
        "DELETE FROM audit_log WHERE id = :i",
        "UPDATE audit_log SET target = 'changed' WHERE id = :i",
    )
    for statement in attempts:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            for part in statement.split("; "):
                conn.execute(text(part), {"i": young})
    assert targets(engine, m) == {f"{m}-young"}
