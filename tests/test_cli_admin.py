"""The CLI's admin commands against a scratch database: db init, demo, exit codes."""

from click.testing import CliRunner
from sqlalchemy import text

from gridsvc.accounts.users import find_user, password_matches
from gridsvc.cli import cli
from gridsvc.db import make_engine


def run(url, *args, **env):
    return CliRunner().invoke(
        cli, list(args), env={"GRIDSVC_DATABASE_URL": url, **env}, catch_exceptions=False
    )


def test_db_init_is_idempotent(scratch_url):
    first = run(scratch_url, "db", "init")
    again = run(scratch_url, "db", "init")
    assert first.exit_code == 0 and again.exit_code == 0
    assert "migrated" in again.output


def test_demo_loads_a_street_and_makes_random_demo_passwords(scratch_url, tmp_path):
    kept = tmp_path / "demo-users"
    result = run(scratch_url, "demo", "--seed", "5", "--users", "--users-file", str(kept))
    assert result.exit_code == 0, result.output
    assert "households" in result.output and "18,620" in result.output
    assert kept.stat().st_mode & 0o777 == 0o600
    passwords = dict(
        line.split("\t") for line in kept.read_text().splitlines() if not line.startswith("#")
    )
    assert set(passwords) == {"demo", "viewer"} and passwords["demo"] != passwords["viewer"]
    assert all(len(p) >= 20 and f": {p}" in result.output for p in passwords.values())
    assert "gridsvc-demo" not in result.output  # no fixed default password any more
    engine = make_engine(scratch_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM communities")).scalar() == 5
        assert all(password_matches(conn, name, p) for name, p in passwords.items())
        viewer = find_user(conn, "viewer")
        assert (viewer.role, viewer.street_code) == ("viewer", "530102001")
    again = run(scratch_url, "demo", "--seed", "5", "--users", "--users-file", str(kept))
    assert "exists, unchanged" in again.output and "password of" not in again.output
    assert kept.read_text().count("\t") == 2  # the passwords still work, the file is unchanged
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE username = 'viewer'"))
    chosen = run(
        scratch_url, "demo", "--seed", "5", "--users", "--users-file", str(kept),
        GRIDSVC_DEMO_VIEWER_PASSWORD="chosen-by-me-1",
    )  # fmt: skip
    assert chosen.exit_code == 0 and "chosen-by-me-1" not in chosen.output + kept.read_text()
    with engine.connect() as conn:
        assert password_matches(conn, "viewer", "chosen-by-me-1")
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
