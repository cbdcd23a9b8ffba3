"""residents' requests (点单→下单→接单) and micro-wishes (微心愿), with their event history

Revision ID: 0014_requests
Revises: 0012_audit_retention
Create Date: 2026-12-07

- ``requests``: a household's (or a building's or grid's, for a public-space problem) request,
  its category, channel, state, the member (or cadre, once escalated) holding it, why it went
  there, its time limits and the resident's satisfaction. ``version`` guards concurrent edits
  (If-Match: exactly one of two simultaneous actions wins).
- ``request_events`` and ``wish_events``: append-only (a trigger refuses UPDATE and DELETE), one
  row per transition: who, when, from, to, note.
- ``wishes``: a needy household's micro-wish, claimed by one member or a unit, fulfilled.
- Row-level security, FORCE'd: the scope of the community (street and community users); a
  member reads only the requests they hold and those of their households, a cadre also those of
  their members; persons change only requests they hold. Wishes are the community's board: every
  person of the community reads them (no household code is readable to a person but their own).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_requests"
down_revision = "0012_audit_retention"
branch_labels = None
depends_on = None

APP_ROLE = "gridsvc_app"
CATEGORIES = ("mediation", "sanitation", "elderly_care", "policy", "repair", "other")
CHANNELS = ("visit", "phone", "grid_worker", "wechat_group", "other")
STATES = (
    "waiting",
    "dispatched",
    "accepted",
    "in_progress",
    "done",
    "visited",
    "returned",
    "escalated",
)
WISH_FLAGS = ("low_income", "disabled", "elderly_alone", "hardship_member", "left_behind_child")
WISH_STATES = ("open", "claimed", "done", "thanked")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


FUNCTIONS = """
CREATE OR REPLACE FUNCTION gridsvc_refuse_event_change() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN
  IF pg_trigger_depth() > 1 THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
"""

POOL = """
CREATE OR REPLACE FUNCTION gridsvc_request_pool(p_communities integer[])
RETURNS TABLE (id integer, lon float8, lat float8, building integer, grid integer,
               community_id integer, on_duty boolean, open_n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  -- Dispatch needs every member of the community with their load, also when a member (who
  -- reads only themselves) declines an order and it goes on: positions and loads, no names.
  SELECT m.id, ST_X(m.geom), ST_Y(m.geom), coalesce(m.building_id, -1), coalesce(m.grid_id, -1),
         m.community_id, m.available AND m.eligible,
         (SELECT count(*) FROM requests r WHERE r.member_id = m.id
          AND r.state IN ('dispatched', 'accepted', 'in_progress'))
  FROM members m WHERE m.community_id = ANY (p_communities)
$$;
"""
IN_SCOPE = "community_id IN (SELECT id FROM communities)"
PERSON_HOLDS = (
    "(member_id IN (SELECT gridsvc_person_member_ids()) "
    "OR cadre_id = gridsvc_scope_cadre() OR gridsvc_scope_member() = ANY (declined_by))"
)
REQUEST_READ = (
    f"{IN_SCOPE} AND (NOT gridsvc_scope_person() OR {PERSON_HOLDS} "
    "OR household_id IN (SELECT gridsvc_person_household_ids()))"
)
REQUEST_WRITE = f"{IN_SCOPE} AND (NOT gridsvc_scope_person() OR {PERSON_HOLDS})"
REQUEST_INSERT = (
    f"{IN_SCOPE} AND (NOT gridsvc_scope_person() "
    "OR household_id IN (SELECT gridsvc_person_household_ids()))"
)


def upgrade() -> None:
    op.execute(FUNCTIONS)
    _requests()
    _events("request_events", "request_id", "requests")
    _wishes()
    _events("wish_events", "wish_id", "wishes")
    op.execute(POOL)
    op.execute("REVOKE ALL ON FUNCTION gridsvc_request_pool(integer[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION gridsvc_request_pool(integer[]) TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")


def _common(table: str) -> list[sa.Column]:
    return [
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id", ondelete="SET NULL")),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("source", sa.Text(), nullable=False, server_default="app"),
        sa.CheckConstraint("source IN ('app', 'import', 'demo')", name=f"ck_{table}_source"),
    ]


def _requests() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "community_id",
            sa.Integer(),
            sa.ForeignKey("communities.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("household_id", sa.Integer(), sa.ForeignKey("households.id", ondelete="CASCADE")),
        sa.Column("building_id", sa.Integer(), sa.ForeignKey("buildings.id", ondelete="SET NULL")),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="SET NULL")),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, server_default="waiting"),
        sa.Column("cadre_id", sa.Integer(), sa.ForeignKey("cadres.id", ondelete="SET NULL")),
        sa.Column("level", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("reason", sa.Text()),
        sa.Column("vulnerable", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("declined_by", sa.ARRAY(sa.Integer()), nullable=False, server_default="{}"),
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.Column("accept_due_at", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text()),
        sa.Column("satisfaction", sa.SmallInteger()),
        sa.Column("feedback", sa.Text()),
        *_common("requests"),
        sa.CheckConstraint(f"category IN ({_in(CATEGORIES)})", name="ck_requests_category"),
        sa.CheckConstraint(f"channel IN ({_in(CHANNELS)})", name="ck_requests_channel"),
        sa.CheckConstraint(f"state IN ({_in(STATES)})", name="ck_requests_state"),
        sa.CheckConstraint("length(text) BETWEEN 1 AND 2000", name="ck_requests_text"),
        sa.CheckConstraint("satisfaction BETWEEN 1 AND 5", name="ck_requests_satisfaction"),
        sa.CheckConstraint("level BETWEEN 0 AND 2", name="ck_requests_level"),
        sa.CheckConstraint(
            "household_id IS NOT NULL OR building_id IS NOT NULL OR grid_id IS NOT NULL",
            name="ck_requests_place",
        ),
    )
    op.create_index("ix_requests_community_created", "requests", ["community_id", "created_at"])
    op.create_index("ix_requests_member_state", "requests", ["member_id", "state"])
    # the list's page: newest first, walked backwards (a page of 100 reads ~100 index entries)
    op.create_index("ix_requests_created_id", "requests", ["created_at", "id"])
    op.create_index("ix_requests_household", "requests", ["household_id"])
    op.execute(
        "CREATE INDEX ix_requests_open ON requests (community_id, due_at) "
        "WHERE state IN ('waiting', 'dispatched', 'accepted', 'in_progress', 'returned', "
        "'escalated')"
    )
    _rls("requests", REQUEST_READ, REQUEST_INSERT, REQUEST_WRITE)
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON requests TO {APP_ROLE}")


def _wishes() -> None:
    op.create_table(
        "wishes",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "community_id",
            sa.Integer(),
            sa.ForeignKey("communities.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "household_id",
            sa.Integer(),
            sa.ForeignKey("households.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("flag", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("value_yuan", sa.Numeric(10, 2), nullable=False),
        sa.Column("wanted_by", sa.Date(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, server_default="open"),
        sa.Column("unit_name", sa.Text()),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text()),
        sa.Column("feedback", sa.Text()),
        *_common("wishes"),
        sa.CheckConstraint(f"flag IN ({_in(WISH_FLAGS)})", name="ck_wishes_flag"),
        sa.CheckConstraint(f"state IN ({_in(WISH_STATES)})", name="ck_wishes_state"),
        sa.CheckConstraint("length(text) BETWEEN 1 AND 500", name="ck_wishes_text"),
        sa.CheckConstraint("value_yuan >= 0 AND value_yuan <= 100000", name="ck_wishes_value"),
        sa.CheckConstraint(
            "NOT (member_id IS NOT NULL AND unit_name IS NOT NULL)", name="ck_wishes_one_claimant"
        ),
    )
    op.create_index("ix_wishes_community_state", "wishes", ["community_id", "state"])
    op.create_index("ix_wishes_member_state", "wishes", ["member_id", "state"])
    board = IN_SCOPE
    _rls("wishes", board, f"{IN_SCOPE} AND NOT gridsvc_scope_person()", board)
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON wishes TO {APP_ROLE}")


def _rls(table: str, read: str, insert: str, write: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY app_read ON {table} FOR SELECT TO {APP_ROLE} USING ({read})")
    op.execute(
        f"CREATE POLICY app_insert ON {table} FOR INSERT TO {APP_ROLE} WITH CHECK ({insert})"
    )
    op.execute(
        f"CREATE POLICY app_update ON {table} FOR UPDATE TO {APP_ROLE} "
        f"USING ({write}) WITH CHECK ({write})"
    )
    op.execute(
        f"DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON {table} TO %I "
        f"USING (true) WITH CHECK (true)', current_user); END $$"
    )
    op.execute(f"REVOKE DELETE, TRUNCATE ON {table} FROM {APP_ROLE}, PUBLIC")
    op.execute(
        f"CREATE TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gridsvc_bump_data_version()"
    )


def _events(table: str, key: str, parent: str) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            key, sa.BigInteger(), sa.ForeignKey(f"{parent}.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text()),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id", ondelete="SET NULL")),
        sa.Column("note", sa.Text()),
        sa.CheckConstraint("length(note) <= 2000", name=f"ck_{table}_note_length"),
    )
    op.create_index(f"ix_{table}_{key}", table, [key, "at"])
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION gridsvc_refuse_event_change()"
    )
    parent_scope = f"{key} IN (SELECT id FROM {parent})"
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY app_read ON {table} FOR SELECT TO {APP_ROLE} USING ({parent_scope})")
    op.execute(
        f"CREATE POLICY app_insert ON {table} FOR INSERT TO {APP_ROLE} WITH CHECK ({parent_scope})"
    )
    op.execute(
        f"DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON {table} TO %I "
        f"USING (true) WITH CHECK (true)', current_user); END $$"
    )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {APP_ROLE}, PUBLIC")
    op.execute(f"GRANT SELECT, INSERT ON {table} TO {APP_ROLE}")


def downgrade() -> None:
    for table in ("wish_events", "wishes", "request_events", "requests"):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS gridsvc_refuse_event_change()")
    op.execute("DROP FUNCTION IF EXISTS gridsvc_request_pool(integer[])")
