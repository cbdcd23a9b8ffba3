"""procrastinate's schema managed by Alembic; city pairing as one unit of work per community

Revision ID: 0011_procrastinate_schema
Revises: 0010_contacts
Create Date: 2026-12-07

The job queue's schema was applied once, by 0004, from whatever procrastinate was installed
then (``SchemaManager.get_schema()``): a database made with procrastinate 3.0 never got the
worker heartbeats (03.01), batch defer (03.02), the priority-aware fetch (03.03) or the retry
procedure (03.04) that the pinned release (``procrastinate>=3.10,<3.11``, schema 03.04.00) calls,
so a later upgrade met a database it could not use. This revision applies procrastinate's own
migration files, in order, for each step the database lacks (each step is detected by an object
it creates), and records the schema version in a comment on ``procrastinate_jobs``. When the pin
moves to a release with new migration files, a new revision applies those files the same way.

It also makes one community one unit of work: ``jobs.parent_id`` ties the per-community and
per-street jobs of a city run to it, ``pairing_runs.job_id`` records the city run (job) a run
belongs to, and ``pairing_runs.inputs_digest`` fingerprints the data and settings a run solved
(a repeat run skips communities whose inputs are unchanged since their current plan).
"""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import op

revision = "0011_procrastinate_schema"
down_revision = "0010_contacts"
branch_labels = None
depends_on = None

#: The schema version of the pinned procrastinate minor release.
SCHEMA_VERSION = "03.04.00"
#: procrastinate migration files after 3.0 (its oldest schema 0004 may have applied), each with
#: the SQL test that is true once it was applied.
STEPS = (
    (
        ("03.01.00_01_pre_add_heartbeat.sql", "03.01.00_50_post_add_heartbeat.sql"),
        "to_regclass('procrastinate_workers') IS NOT NULL",
    ),
    (
        ("03.02.00_01_pre_batch_defer_jobs.sql", "03.02.00_50_post_batch_defer_jobs.sql"),
        "to_regtype('procrastinate_job_to_defer_v1') IS NOT NULL",
    ),
    (
        (
            "03.03.00_01_pre_priority_lock_fetch_job.sql",
            "03.04.00_01_pre_add_retry_failed_job_procedure.sql",
            "03.04.00_50_post_add_retry_failed_job_procedure.sql",
        ),
        "EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'procrastinate_retry_job_v2')",
    ),
)


def _migration_sql(name: str) -> str:
    return (
        resources.files("procrastinate.sql.migrations").joinpath(name).read_text(encoding="utf-8")
    )


def _queue_schema() -> None:
    bind = op.get_bind()
    if not bind.scalar(sa.text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")):
        return  # 0004 applies the whole schema of the pinned release
    raw = bind.connection.driver_connection  # the files hold '%' signs that are not placeholders
    for files, applied in STEPS:
        if bind.scalar(sa.text(f"SELECT {applied}")):
            continue
        for name in files:
            raw.execute(_migration_sql(name))
    op.execute(
        f"COMMENT ON TABLE procrastinate_jobs IS 'procrastinate schema {SCHEMA_VERSION}, "
        "managed by gridsvc migrations (0011_procrastinate_schema)'"
    )


def upgrade() -> None:
    _queue_schema()
    op.add_column(
        "jobs",
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE")),
    )
    op.create_index("ix_jobs_parent_id", "jobs", ["parent_id"])
    op.add_column(
        "pairing_runs",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="SET NULL")),
    )
    op.add_column("pairing_runs", sa.Column("inputs_digest", sa.Text()))
    op.create_index("ix_pairing_runs_job_id", "pairing_runs", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_pairing_runs_job_id", "pairing_runs")
    op.drop_column("pairing_runs", "inputs_digest")
    op.drop_column("pairing_runs", "job_id")
    op.drop_index("ix_jobs_parent_id", "jobs")
    op.drop_column("jobs", "parent_id")
    # procrastinate's migrations have no downgrade: its schema stays at SCHEMA_VERSION.
