"""jobs: forced row-level security, like every table that holds scoped data

Revision ID: 0007_jobs_rls
Revises: 0006_roads
Create Date: 2026-11-25

A job row can hold an uploaded file of households (``payload``) and its rejects (``result``), so
the scope is enforced in the database as well as in the query: the app role sees and writes the
jobs of its scope (a community it may see, or a street it may see when the job has no community;
jobs without either only with ``app.all``). The app still narrows that to the job's own user or
an admin. The owner (migrations, the worker) keeps every row through a ``maintenance`` policy.
"""

from __future__ import annotations

from alembic import op

revision = "0007_jobs_rls"
down_revision = "0006_roads"
branch_labels = None
depends_on = None

APP_ROLE = "gridsvc_app"
SCOPE = (
    "gridsvc_scope_all() OR community_id IN (SELECT id FROM communities) "
    "OR (community_id IS NULL AND street_id IN (SELECT id FROM streets))"
)


def upgrade() -> None:
    op.execute("ALTER TABLE jobs ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE jobs FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY app_scope ON jobs TO {APP_ROLE} USING ({SCOPE}) WITH CHECK ({SCOPE})"
    )
    op.execute(
        "DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON jobs TO %I "
        "USING (true) WITH CHECK (true)', current_user); END $$"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS app_scope ON jobs")
    op.execute("DROP POLICY IF EXISTS maintenance ON jobs")
    op.execute("ALTER TABLE jobs NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE jobs DISABLE ROW LEVEL SECURITY")
