"""roads: a road layer for walking distance; the distance metric of stored siting runs

Revision ID: 0006_roads
Revises: 0005_web_pairing
Create Date: 2026-11-27

``roads`` holds road and footpath centre lines (MultiLineString, EPSG:4326, GiST index) with an
optional street. Like the other base layers it has forced row-level security (the app role sees
the roads of the streets it may see; roads without a street only with ``app.all``) and bumps
``data_version`` on every change (cached coverage depends on it). ``site_runs.distance_metric``
records whether a run measured reach along roads (``network``) or straight (``straight``).
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0006_roads"
down_revision = "0005_web_pairing"
branch_labels = None
depends_on = None

APP_ROLE = "gridsvc_app"
KINDS = ("expressway", "arterial", "secondary", "branch", "lane", "footway")
SCOPE = "street_id IN (SELECT id FROM streets) OR (street_id IS NULL AND gridsvc_scope_all())"


def upgrade() -> None:
    op.create_table(
        "roads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTILINESTRING", srid=4326, spatial_index=False
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IS NULL OR kind IN ({})".format(", ".join(f"'{k}'" for k in KINDS)),
            name=op.f("ck_roads_kind"),
        ),
        sa.CheckConstraint("code <> ''", name=op.f("ck_roads_code_not_empty")),
        sa.ForeignKeyConstraint(
            ["street_id"],
            ["streets.id"],
            name=op.f("fk_roads_street_id_streets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roads")),
        sa.UniqueConstraint("code", name=op.f("uq_roads_code")),
    )
    op.create_index(op.f("ix_roads_street_id"), "roads", ["street_id"], unique=False)
    op.create_index("idx_roads_geom", "roads", ["geom"], postgresql_using="gist")
    op.execute(
        "CREATE TRIGGER roads_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON roads FOR EACH STATEMENT EXECUTE FUNCTION gridsvc_bump_data_version()"
    )
    op.execute("ALTER TABLE roads ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE roads FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY app_scope ON roads TO {APP_ROLE} USING ({SCOPE}) WITH CHECK ({SCOPE})"
    )
    op.execute(
        "DO $$ BEGIN EXECUTE format('CREATE POLICY maintenance ON roads TO %I "
        "USING (true) WITH CHECK (true)', current_user); END $$"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON roads TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE roads_id_seq TO {APP_ROLE}")
    op.add_column(
        "site_runs",
        sa.Column("distance_metric", sa.Text(), nullable=False, server_default="straight"),
    )
    op.create_check_constraint(
        "ck_site_runs_distance_metric",
        "site_runs",
        "distance_metric IN ('straight', 'network')",
    )


def downgrade() -> None:
    op.drop_constraint("ck_site_runs_distance_metric", "site_runs", type_="check")
    op.drop_column("site_runs", "distance_metric")
    op.execute("DROP TRIGGER IF EXISTS roads_data_version ON roads")
    op.drop_index("idx_roads_geom", table_name="roads")
    op.drop_index(op.f("ix_roads_street_id"), table_name="roads")
    op.drop_table("roads")
