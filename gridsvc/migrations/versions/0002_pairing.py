"""pairing: runs, pairs, unpaired and reserve explanations, plans, proposals, pins and forbids

Revision ID: 0002_pairing
Revises: 0001
Create Date: 2026-11-25

Every run is kept with its pairs. ``plans`` holds ONE versioned row per community pointing at the
runs of its current plan; the views ``current_household_pairs`` and ``current_member_pairs``
(``security_invoker``) are the contract other modules read. Tables get the app role's
row-level security like the base data (scope through communities), hence the dependency on
``0004_web`` (its scope functions and role).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_pairing"
down_revision = "0001"
branch_labels = None
depends_on = ("0004_web",)

APP_ROLE = "gridsvc_app"
LEVELS = "level IN ('households', 'members')"


def _fk(column: str, target: str, table: str, *, nullable: bool = True, ondelete: str = "CASCADE"):
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}"),
        nullable=nullable,
        index=True,
    )


def upgrade() -> None:
    op.create_table(
        "pairing_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        _fk("street_id", "streets", "pairing_runs"),
        _fk("community_id", "communities", "pairing_runs"),
        sa.Column("kind", sa.Text(), nullable=False, server_default="pair"),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("settings", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("case", sa.Text(), nullable=False),
        sa.Column("n_clients", sa.Integer(), nullable=False),
        sa.Column("n_paired", sa.Integer(), nullable=False),
        sa.Column("coverage_bound", sa.Integer(), nullable=False),
        sa.Column("n_active", sa.Integer(), nullable=False),
        sa.Column("n_reserve", sa.Integer(), nullable=False),
        sa.Column("cost_m", sa.Float(), nullable=False),
        sa.Column("lower_bound_m", sa.Float()),
        sa.Column("gap", sa.Float()),
        sa.Column("timings", postgresql.JSONB(), nullable=False),
        sa.CheckConstraint(LEVELS, name="ck_pairing_runs_level"),
        sa.CheckConstraint("kind IN ('pair', 'rebalance')", name="ck_pairing_runs_kind"),
    )
    op.create_table(
        "household_pairs",
        _fk("run_id", "pairing_runs", "household_pairs", nullable=False),
        _fk("household_id", "households", "household_pairs", nullable=False),
        _fk("member_id", "members", "household_pairs", nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("same_building", sa.Boolean(), nullable=False),
        sa.Column("same_grid", sa.Boolean(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default="false"),
        sa.PrimaryKeyConstraint("run_id", "household_id", name="pk_household_pairs"),
    )
    op.create_table(
        "member_pairs",
        _fk("run_id", "pairing_runs", "member_pairs", nullable=False),
        _fk("member_id", "members", "member_pairs", nullable=False),
        _fk("cadre_id", "cadres", "member_pairs", nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default="false"),
        sa.PrimaryKeyConstraint("run_id", "member_id", name="pk_member_pairs"),
    )
    op.create_table(
        "pairing_unpaired",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("run_id", "pairing_runs", "pairing_unpaired", nullable=False),
        _fk("household_id", "households", "pairing_unpaired"),
        _fk("member_id", "members", "pairing_unpaired"),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("nearest_m", sa.Float()),
        sa.CheckConstraint(
            "(household_id IS NULL) <> (member_id IS NULL)", name="ck_pairing_unpaired_one"
        ),
    )
    op.create_table(
        "pairing_reserve",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("run_id", "pairing_runs", "pairing_reserve", nullable=False),
        _fk("member_id", "members", "pairing_reserve"),
        _fk("cadre_id", "cadres", "pairing_reserve"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "(member_id IS NULL) <> (cadre_id IS NULL)", name="ck_pairing_reserve_one"
        ),
    )
    op.create_table(
        "plans",
        sa.Column(
            "community_id",
            sa.Integer(),
            sa.ForeignKey(
                "communities.id", ondelete="CASCADE", name="fk_plans_community_id_communities"
            ),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        _fk("household_run_id", "pairing_runs", "plans", ondelete="SET NULL"),
        _fk("member_run_id", "pairing_runs", "plans", ondelete="SET NULL"),
        sa.Column("updated_by", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("community_id", "communities", "proposals", nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        _fk("run_id", "pairing_runs", "proposals", nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="open"),
        sa.Column("summary", postgresql.JSONB(), nullable=False),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("decided_by", sa.Text()),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text()),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'rejected', 'stale')", name="ck_proposals_status"
        ),
    )
    op.create_table(
        "pair_controls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        _fk("household_id", "households", "pair_controls"),
        _fk("member_id", "members", "pair_controls", nullable=False),
        _fk("cadre_id", "cadres", "pair_controls"),
        sa.Column("created_by", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('pin', 'forbid')", name="ck_pair_controls_kind"),
        sa.CheckConstraint(
            "(household_id IS NULL) <> (cadre_id IS NULL)", name="ck_pair_controls_one_level"
        ),
    )
    op.execute(
        """
        CREATE VIEW current_household_pairs WITH (security_invoker = true) AS
        SELECT p.community_id, hp.household_id, hp.member_id, hp.distance_m,
               hp.same_building, hp.same_grid
        FROM plans p
        JOIN household_pairs hp ON hp.run_id = p.household_run_id
        JOIN households h ON h.id = hp.household_id AND h.community_id = p.community_id
        """
    )
    op.execute(
        """
        CREATE VIEW current_member_pairs WITH (security_invoker = true) AS
        SELECT p.community_id, mp.member_id, mp.cadre_id, mp.distance_m
        FROM plans p
        JOIN member_pairs mp ON mp.run_id = p.member_run_id
        JOIN members m ON m.id = mp.member_id AND m.community_id = p.community_id
        """
    )
    in_runs = "run_id IN (SELECT id FROM pairing_runs)"
    for table, qual in {
        "pairing_runs": "community_id IN (SELECT id FROM communities) "
        "OR (community_id IS NULL AND street_id IN (SELECT id FROM streets))",
        "household_pairs": in_runs,
        "member_pairs": in_runs,
        "pairing_unpaired": in_runs,
        "pairing_reserve": in_runs,
        "plans": "community_id IN (SELECT id FROM communities)",
        "proposals": "community_id IN (SELECT id FROM communities)",
        "pair_controls": "member_id IN (SELECT id FROM members)",
    }.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY app_scope ON {table} TO {APP_ROLE} USING ({qual}) WITH CHECK ({qual})"
        )
        op.execute(
            f"DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON {table} TO %I "
            f"USING (true) WITH CHECK (true)', current_user); END $$"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON current_household_pairs, current_member_pairs TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS current_member_pairs")
    op.execute("DROP VIEW IF EXISTS current_household_pairs")
    for table in (
        "pair_controls",
        "proposals",
        "plans",
        "pairing_reserve",
        "pairing_unpaired",
        "member_pairs",
        "household_pairs",
        "pairing_runs",
    ):
        op.drop_table(table)
