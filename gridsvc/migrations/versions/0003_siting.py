"""Red Station siting: stored runs and their suggested sites

Revision ID: 0003_siting
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_siting"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "community_id",
            sa.Integer(),
            sa.ForeignKey(
                "communities.id", ondelete="CASCADE", name="fk_site_runs_community_id_communities"
            ),
            nullable=False,
        ),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=True),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("weights", postgresql.JSONB(), nullable=False),
        sa.Column("candidates", sa.Text(), nullable=False),
        sa.Column("n_candidates", sa.Integer(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("objective", sa.Float(), nullable=False),
        sa.Column("bound", sa.Float(), nullable=False),
        sa.Column("gap", sa.Float(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("households_covered_before", sa.Integer(), nullable=False),
        sa.Column("households_covered_after", sa.Integer(), nullable=False),
        sa.Column("weight_total", sa.Float(), nullable=False),
        sa.Column("weight_covered_before", sa.Float(), nullable=False),
        sa.Column("weight_covered_after", sa.Float(), nullable=False),
        sa.Column("timings", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("problem IN ('mclp', 'lscp')", name="ck_site_runs_problem"),
        sa.CheckConstraint("radius_m > 0", name="ck_site_runs_radius"),
    )
    op.create_index("ix_site_runs_community_id", "site_runs", ["community_id"])
    op.create_table(
        "site_suggestions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey(
                "site_runs.id", ondelete="CASCADE", name="fk_site_suggestions_run_id_site_runs"
            ),
            nullable=False,
        ),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column(
            "building_id",
            sa.Integer(),
            sa.ForeignKey(
                "buildings.id",
                ondelete="SET NULL",
                name="fk_site_suggestions_building_id_buildings",
            ),
            nullable=True,
        ),
        sa.Column("new_households", sa.Integer(), nullable=False),
        sa.Column("new_weight", sa.Float(), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(geometry_type="POINT", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.UniqueConstraint("run_id", "rank", name="uq_site_suggestions_run_id"),
    )
    op.create_index(
        "ix_site_suggestions_geom", "site_suggestions", ["geom"], postgresql_using="gist"
    )


def downgrade() -> None:
    op.drop_index("ix_site_suggestions_geom", table_name="site_suggestions")
    op.drop_table("site_suggestions")
    op.drop_index("ix_site_runs_community_id", table_name="site_runs")
    op.drop_table("site_runs")
