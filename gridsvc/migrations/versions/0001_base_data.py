"""base data

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("repaired", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_log")),
    )
    op.create_table(
        "streets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=9), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("household_min", sa.Integer(), nullable=True),
        sa.Column("household_max", sa.Integer(), nullable=True),
        sa.Column("member_min", sa.Integer(), nullable=True),
        sa.Column("member_max", sa.Integer(), nullable=True),
        sa.CheckConstraint("code ~ '^[0-9]{9}$'", name=op.f("ck_streets_code_format")),
        sa.CheckConstraint(
            "household_min <= household_max", name=op.f("ck_streets_household_range")
        ),
        sa.CheckConstraint("member_min <= member_max", name=op.f("ck_streets_member_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_streets")),
        sa.UniqueConstraint("code", name=op.f("uq_streets_code")),
    )
    op.create_table(
        "communities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("street_id", sa.Integer(), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("household_min", sa.Integer(), nullable=True),
        sa.Column("household_max", sa.Integer(), nullable=True),
        sa.Column("member_min", sa.Integer(), nullable=True),
        sa.Column("member_max", sa.Integer(), nullable=True),
        sa.CheckConstraint("code ~ '^[0-9]{12}$'", name=op.f("ck_communities_code_format")),
        sa.CheckConstraint(
            "household_min <= household_max", name=op.f("ck_communities_household_range")
        ),
        sa.CheckConstraint("member_min <= member_max", name=op.f("ck_communities_member_range")),
        sa.ForeignKeyConstraint(
            ["street_id"],
            ["streets.id"],
            name=op.f("fk_communities_street_id_streets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
        sa.UniqueConstraint("code", name=op.f("uq_communities_code")),
    )
    op.create_index(op.f("ix_communities_street_id"), "communities", ["street_id"], unique=False)
    op.create_table(
        "cadres",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("street_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("min_load", sa.Integer(), nullable=True),
        sa.Column("max_load", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(level = 'street') = (community_id IS NULL)",
            name=op.f("ck_cadres_community_matches_level"),
        ),
        sa.CheckConstraint("code <> ''", name=op.f("ck_cadres_code_not_empty")),
        sa.CheckConstraint("level IN ('street', 'community')", name=op.f("ck_cadres_level")),
        sa.CheckConstraint(
            "min_load >= 0 AND min_load <= max_load", name=op.f("ck_cadres_load_range")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_cadres_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["street_id"],
            ["streets.id"],
            name=op.f("fk_cadres_street_id_streets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cadres")),
        sa.UniqueConstraint("code", name=op.f("uq_cadres_code")),
    )
    op.create_index(op.f("ix_cadres_community_id"), "cadres", ["community_id"], unique=False)
    op.create_index(op.f("ix_cadres_street_id"), "cadres", ["street_id"], unique=False)
    op.create_table(
        "grids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f("ck_grids_code_format")),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_grids_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
        sa.UniqueConstraint("code", name=op.f("uq_grids_code")),
    )
    op.create_index(op.f("ix_grids_community_id"), "grids", ["community_id"], unique=False)
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("services", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("code <> ''", name=op.f("ck_stations_code_not_empty")),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_stations_community_id_communities"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("code", name=op.f("uq_stations_code")),
    )
    op.create_index(op.f("ix_stations_community_id"), "stations", ["community_id"], unique=False)
    op.create_table(
        "buildings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("floors", sa.Integer(), nullable=True),
        sa.Column("party_org", sa.Text(), nullable=True),
        sa.Column("available_site", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("code <> ''", name=op.f("ck_buildings_code_not_empty")),
        sa.CheckConstraint(
            "kind IN ('residential', 'commercial', 'mixed', 'public')",
            name=op.f("ck_buildings_kind"),
        ),
        sa.CheckConstraint(
            "floors IS NULL OR floors BETWEEN 1 AND 200", name=op.f("ck_buildings_floors")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_buildings_community_id_communities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_buildings_grid_id_grids"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buildings")),
        sa.UniqueConstraint("code", name=op.f("uq_buildings_code")),
    )
    op.create_index(op.f("ix_buildings_community_id"), "buildings", ["community_id"], unique=False)
    op.create_index(op.f("ix_buildings_grid_id"), "buildings", ["grid_id"], unique=False)
    op.create_table(
        "households",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("size", sa.Integer(), server_default="1", nullable=False),
        sa.Column("elderly_alone", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("low_income", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("children", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("code <> ''", name=op.f("ck_households_code_not_empty")),
        sa.CheckConstraint("size >= 1", name=op.f("ck_households_size")),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["buildings.id"],
            name=op.f("fk_households_building_id_buildings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_households_community_id_communities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_households_grid_id_grids"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
        sa.UniqueConstraint("code", name=op.f("uq_households_code")),
    )
    op.create_index(op.f("ix_households_building_id"), "households", ["building_id"], unique=False)
    op.create_index(
        op.f("ix_households_community_id"), "households", ["community_id"], unique=False
    )
    op.create_index(op.f("ix_households_grid_id"), "households", ["grid_id"], unique=False)
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("eligible", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("available", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("min_load", sa.Integer(), nullable=True),
        sa.Column("max_load", sa.Integer(), nullable=True),
        sa.CheckConstraint("code <> ''", name=op.f("ck_members_code_not_empty")),
        sa.CheckConstraint(
            "kind IN ('resident', 'in_service', 'mobile', 'retired')", name=op.f("ck_members_kind")
        ),
        sa.CheckConstraint(
            "min_load >= 0 AND min_load <= max_load", name=op.f("ck_members_load_range")
        ),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["buildings.id"],
            name=op.f("fk_members_building_id_buildings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_members_community_id_communities"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_members_grid_id_grids"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("code", name=op.f("uq_members_code")),
    )
    op.create_index(op.f("ix_members_building_id"), "members", ["building_id"], unique=False)
    op.create_index(op.f("ix_members_community_id"), "members", ["community_id"], unique=False)
    op.create_index(op.f("ix_members_grid_id"), "members", ["grid_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_members_grid_id"), table_name="members")
    op.drop_index(op.f("ix_members_community_id"), table_name="members")
    op.drop_index(op.f("ix_members_building_id"), table_name="members")
    op.drop_table("members")
    op.drop_index(op.f("ix_households_grid_id"), table_name="households")
    op.drop_index(op.f("ix_households_community_id"), table_name="households")
    op.drop_index(op.f("ix_households_building_id"), table_name="households")
    op.drop_table("households")
    op.drop_index(op.f("ix_buildings_grid_id"), table_name="buildings")
    op.drop_index(op.f("ix_buildings_community_id"), table_name="buildings")
    op.drop_table("buildings")
    op.drop_index(op.f("ix_stations_community_id"), table_name="stations")
    op.drop_table("stations")
    op.drop_index(op.f("ix_grids_community_id"), table_name="grids")
    op.drop_table("grids")
    op.drop_index(op.f("ix_cadres_street_id"), table_name="cadres")
    op.drop_index(op.f("ix_cadres_community_id"), table_name="cadres")
    op.drop_table("cadres")
    op.drop_index(op.f("ix_communities_street_id"), table_name="communities")
    op.drop_table("communities")
    op.drop_table("streets")
    op.drop_table("import_log")
