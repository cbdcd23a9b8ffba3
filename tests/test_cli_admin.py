"""The CLI's admin commands against a scratch database: db init, demo, exit codes."""

from click.testing import CliRunner
from sqlalchemy import text

from gridsvc.cli import cli
from gridsvc.db import make_engine


def run(url, *args):
    return CliRunner().invoke(
        cli, list(args), env={"GRIDSVC_DATABASE_URL": url}, catch_exceptions=False
    )


def test_db_init_is_idempotent(scratch_url):
    first = run(scratch_url, "db", "init")
    again = run(scratch_url, "db", "init")
    assert first.exit_code == 0 and again.exit_code == 0
    assert "migrated" in again.output


def test_demo_loads_a_street(scratch_url):
    result = run(scratch_url, "demo", "--seed", "5")
    assert result.exit_code == 0, result.output
    assert "households" in result.output and "18,620" in result.output
    engine = make_engine(scratch_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM communities")).scalar() == 5
    engine.dispose()


def test_malformed_setting_is_a_usage_error(scratch_url):
    result = CliRunner().invoke(
        cli,
        ["db", "init"],
        env={"GRIDSVC_DATABASE_URL": scratch_url, "GRIDSVC_HOUSEHOLD_LOAD": "9-1"},
    )
    assert result.exit_code == 2
    assert "GRIDSVC_HOUSEHOLD_LOAD" in result.output


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
