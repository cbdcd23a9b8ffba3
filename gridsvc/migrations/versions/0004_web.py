"""web service: users, API tokens, append-only audit log, jobs, the app role and row-level security

Revision ID: 0004_web
Revises: 0001
Create Date: 2026-11-25

The application connects as ``gridsvc_app`` (LOGIN, neither owner nor superuser, no BYPASSRLS).
Every data table gets ``FORCE ROW LEVEL SECURITY`` and a policy for that role that shows only the
rows of the scope set per transaction (``SET LOCAL app.street`` / ``app.community`` / ``app.all``);
the role running the migrations (the owner: CLI, migrations, worker) gets an explicit
``maintenance`` policy. Without any scope set the app role sees nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_web"
down_revision = "0001"
branch_labels = None
depends_on = ("0003_siting",)

APP_ROLE = "gridsvc_app"

#: Tables keyed by ``community_id`` (rows without a community are visible only in ``app.all``).
COMMUNITY_TABLES = ("grids", "buildings", "households", "members", "stations", "site_runs")

IN_SCOPE = "community_id IN (SELECT id FROM communities)"
POLICIES: dict[str, str] = {
    "communities": "gridsvc_scope_all() OR street_id = gridsvc_scope_street() "
    "OR id = gridsvc_scope_community()",
    "streets": "gridsvc_scope_all() OR id IN (SELECT street_id FROM communities)",
    **{
        t: f"{IN_SCOPE} OR (community_id IS NULL AND gridsvc_scope_all())" for t in COMMUNITY_TABLES
    },
    "cadres": f"{IN_SCOPE} OR (community_id IS NULL AND street_id IN (SELECT id FROM streets))",
    "site_suggestions": "run_id IN (SELECT id FROM site_runs)",
}

FUNCTIONS = """
CREATE OR REPLACE FUNCTION gridsvc_scope_all() RETURNS boolean LANGUAGE sql STABLE
AS $$ SELECT coalesce(current_setting('app.all', true), '') = 'on' $$;
CREATE OR REPLACE FUNCTION gridsvc_scope_street() RETURNS integer LANGUAGE sql STABLE
AS $$ SELECT nullif(current_setting('app.street', true), '')::integer $$;
CREATE OR REPLACE FUNCTION gridsvc_scope_community() RETURNS integer LANGUAGE sql STABLE
AS $$ SELECT nullif(current_setting('app.community', true), '')::integer $$;
CREATE OR REPLACE FUNCTION gridsvc_bump_data_version() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN UPDATE data_version SET version = version + 1; RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION gridsvc_refuse_change() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""

ROLE = f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
  END IF;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.Text(), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("street_id", sa.Integer(), sa.ForeignKey("streets.id", ondelete="CASCADE")),
        sa.Column(
            "community_id", sa.Integer(), sa.ForeignKey("communities.id", ondelete="CASCADE")
        ),
        sa.Column("lang", sa.Text(), nullable=False, server_default="zh"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default="true"),
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()")),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("role IN ('viewer', 'planner', 'admin')", name="ck_users_role"),
        sa.CheckConstraint("lang IN ('zh', 'en')", name="ck_users_lang"),
        sa.CheckConstraint("street_id IS NULL OR community_id IS NULL", name="ck_users_one_scope"),
        sa.CheckConstraint(
            "role = 'admin' OR street_id IS NOT NULL OR community_id IS NOT NULL",
            name="ck_users_scoped",
        ),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False, unique=True),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()")),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("user_id", sa.Integer()),
        sa.Column("username", sa.Text()),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text()),
        sa.Column("community_id", sa.Integer()),
        sa.Column("street_id", sa.Integer()),
        sa.Column("reason", sa.Text()),
        sa.Column("before", postgresql.JSONB()),
        sa.Column("after", postgresql.JSONB()),
        sa.Column("details", postgresql.JSONB()),
        sa.Column("ip", sa.Text()),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="queued"),
        sa.Column("progress", sa.Float(), nullable=False, server_default="0"),
        sa.Column("message", sa.Text()),
        sa.Column("params", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("payload", sa.LargeBinary()),
        sa.Column("result", postgresql.JSONB()),
        sa.Column("error", sa.Text()),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("street_id", sa.Integer()),
        sa.Column("community_id", sa.Integer()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()")),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="ck_jobs_status"
        ),
    )
    # One transactional counter bumped by every statement that changes data: the web app keys
    # its response cache on it (readers see the version their snapshot saw, never a newer one).
    op.create_table("data_version", sa.Column("version", sa.BigInteger(), nullable=False))
    op.execute("INSERT INTO data_version VALUES (0)")
    _procrastinate_schema()
    op.execute(FUNCTIONS)
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION gridsvc_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridsvc_refuse_change()"
    )
    for table in (*POLICIES, "import_log"):
        op.execute(
            f"CREATE TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gridsvc_bump_data_version()"
        )
    op.execute(ROLE)
    _grants()
    for table, qual in POLICIES.items():
        _scope(table, qual)


def _procrastinate_schema() -> None:
    """The job queue's tables and functions (procrastinate's own schema, applied once)."""
    exists = op.get_bind().scalar(sa.text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL"))
    if not exists:
        from procrastinate.schema import SchemaManager

        # The raw driver: the schema text holds ``%`` signs that are not placeholders.
        op.get_bind().connection.driver_connection.execute(SchemaManager.get_schema())


def _grants() -> None:
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"REVOKE ALL ON alembic_version FROM {APP_ROLE}")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE}, PUBLIC")
    op.execute(f"REVOKE DELETE ON users FROM {APP_ROLE}")
    # Tables later migrations create get the same grants (row-level security is per table).
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
    )


def _scope(table: str, qual: str) -> None:
    """Force row-level security on ``table``: the app role sees its scope, the owner all."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY app_scope ON {table} TO {APP_ROLE} USING ({qual}) WITH CHECK ({qual})"
    )
    op.execute(
        f"DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON {table} TO %I "
        f"USING (true) WITH CHECK (true)', current_user); END $$"
    )


def downgrade() -> None:
    for table in POLICIES:
        op.execute(f"DROP POLICY IF EXISTS app_scope ON {table}")
        op.execute(f"DROP POLICY IF EXISTS maintenance ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE}"
    )
    for table in (*POLICIES, "import_log"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_data_version ON {table}")
    op.drop_table("data_version")
    op.drop_table("jobs")
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_refuse_change()")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_bump_data_version()")
