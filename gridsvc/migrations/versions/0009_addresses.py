"""addresses: buildings gain compound and number; households and members gain unit, room, an ID
hash and a moved-out date; members gain gender, birth date and branch

Revision ID: 0009_addresses
Revises: 0008_accounts_security
Create Date: 2026-12-07

Rosters name a household by address ("翠湖小区3号楼2单元501室"), so a building carries the
compound (小区/院落) it stands in and its number there; both are filled from names such as
"3号楼" or "翠湖小区3栋" for the buildings already loaded. ``id_hash`` is a keyed hash of a
身份证号 (never the number), used only to find the same person across imports. ``moved_out_at``
is set by ``gridsvc import ... --retire-missing`` for households and members missing from a new
roster. The tables already have forced row-level security; no policy changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_addresses"
down_revision = "0008_accounts_security"
branch_labels = None
depends_on = None

PEOPLE = ("households", "members")


def upgrade() -> None:
    op.add_column("buildings", sa.Column("compound", sa.Text(), nullable=True))
    op.add_column("buildings", sa.Column("number", sa.Text(), nullable=True))
    for table in PEOPLE:
        op.add_column(table, sa.Column("unit", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("room", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("id_hash", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("moved_out_at", sa.DateTime(timezone=True), nullable=True))
        op.create_index(f"ix_{table}_id_hash", table, ["id_hash"])
        op.create_index(f"ix_{table}_building_unit_room", table, ["building_id", "unit", "room"])
    op.add_column("members", sa.Column("gender", sa.Text(), nullable=True))
    op.add_column("members", sa.Column("birth_date", sa.Date(), nullable=True))
    op.add_column("members", sa.Column("branch", sa.Text(), nullable=True))
    op.execute(
        "ALTER TABLE members ADD CONSTRAINT ck_members_gender "
        "CHECK (gender IS NULL OR gender IN ('male', 'female'))"
    )
    _fill_building_parts()


def _fill_building_parts() -> None:
    """Compound and number of the buildings already loaded, read from their names."""
    from geodata.addresses import building_parts

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, name FROM buildings WHERE name IS NOT NULL")).all()
    values = []
    for building_id, name in rows:
        compound, number = building_parts(name)
        if number is not None:
            values.append({"i": building_id, "c": compound, "n": number})
    if values:
        conn.execute(
            sa.text("UPDATE buildings SET compound = :c, number = :n WHERE id = :i"), values
        )


def downgrade() -> None:
    op.execute("ALTER TABLE members DROP CONSTRAINT ck_members_gender")
    for column in ("branch", "birth_date", "gender"):
        op.drop_column("members", column)
    for table in PEOPLE:
        op.drop_index(f"ix_{table}_building_unit_room", table_name=table)
        op.drop_index(f"ix_{table}_id_hash", table_name=table)
        for column in ("moved_out_at", "id_hash", "room", "unit"):
            op.drop_column(table, column)
    op.drop_column("buildings", "number")
    op.drop_column("buildings", "compound")
