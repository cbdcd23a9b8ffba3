"""procrastinate's schema under Alembic: a database made by the previous head with
procrastinate 3.0 (no heartbeats, no retry procedure) is brought to the pinned release's schema
by ``gridsvc db init``, and the queue then works on it (defer, fetch with a worker id, run)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridsvc.cli import cli
from gridsvc.db import alembic_config, drop_database, ensure_database, make_engine
from gridsvc.jobs import TASK, conninfo, make_queue
from gridsvc.settings import Settings


@pytest.fixture
def old_url(settings: Settings) -> Iterator[str]:
    url = make_url(settings.database_url)
    target = url.set(database=f"{url.database}_oldqueue").render_as_string(hide_password=False)
    assert "test" in target
    drop_database(target)
    yield target
    drop_database(target)


def test_db_init_brings_a_previous_head_database_with_procrastinate_3_0_up_to_date(
    old_url, data_dir
):
    ensure_database(old_url)
    with psycopg.connect(conninfo(old_url), autocommit=True) as raw:
        raw.execute((data_dir / "procrastinate-3.0.2-schema.sql").read_text())
    command.upgrade(alembic_config(old_url), "0007_jobs_rls")
    engine = make_engine(old_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT to_regclass('procrastinate_workers')")) is None

        result = CliRunner().invoke(cli, ["db", "init"], env={"GRIDSVC_DATABASE_URL": old_url})
        assert result.exit_code == 0, result.output

        with engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config(old_url)).get_current_head()
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
            assert conn.scalar(text("SELECT to_regclass('procrastinate_workers')")) is not None
            assert conn.scalar(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'procrastinate_retry_job_v2'")
            )
            assert "03.04.00" in conn.scalar(
                text("SELECT obj_description('procrastinate_jobs'::regclass)")
            )
            # the old unversioned functions 3.x dropped are gone
            assert not conn.scalar(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'procrastinate_fetch_job_v1'")
            )
        queue = make_queue(old_url, min_size=1, max_size=2)

        def work() -> None:  # a thread of its own: the browser tests may hold this one's loop
            with queue.open():
                queue.tasks[TASK].defer(job_id=-1)  # no such gridsvc job: ends at once
                queue.run_worker(wait=False, install_signal_handlers=False, listen_notify=False)

        worker = threading.Thread(target=work)
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive()
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT status, attempts FROM procrastinate_jobs WHERE task_name = :t "
                    "ORDER BY id DESC LIMIT 1"
                ),
                {"t": TASK},
            ).one()
            assert row.status == "succeeded"
            assert conn.scalar(text("SELECT count(*) FROM procrastinate_workers")) == 0
        # a second db init changes nothing
        again = CliRunner().invoke(cli, ["db", "init"], env={"GRIDSVC_DATABASE_URL": old_url})
        assert again.exit_code == 0, again.output
    finally:
        engine.dispose()
