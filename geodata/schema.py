"""The PostGIS schema of the base data: streets, communities, grids, buildings, households, people,
Red Stations and roads.

Geometries are EPSG:4326 (WGS84) with GiST indexes; polygons are stored as MultiPolygons. Codes
follow GB/T 2260 and DB11/T 2157-2023: street 9 digits, community 12, grid 15 (each the parent's
code plus three digits). Buildings, households, members, cadres, stations and roads carry free codes
that are unique per layer; re-importing updates by code. Roads are stored as MultiLineStrings.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SRID = 4326

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BUILDING_KINDS = ("residential", "commercial", "mixed", "public")
MEMBER_KINDS = ("resident", "in_service", "mobile", "retired")
CADRE_LEVELS = ("street", "community")
#: Road classes (CJJ 37-2012 快速路/主干路/次干路/支路, then lanes and footpaths); an expressway is
#: left out of the walking network.
ROAD_KINDS = ("expressway", "arterial", "secondary", "branch", "lane", "footway")


class Base(DeclarativeBase):
    """Declarative base of every gridsvc table."""

    metadata = MetaData(naming_convention=NAMING)


def _multipolygon(nullable: bool = False) -> Mapped:
    return mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=nullable)


def _point(nullable: bool = False) -> Mapped:
    return mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=nullable)


def _fk(target: str, *, nullable: bool = True, ondelete: str = "SET NULL") -> Mapped[int | None]:
    return mapped_column(ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class _LoadRange:
    """Optional per-record load range; the most specific range set wins."""

    min_load: Mapped[int | None] = mapped_column(Integer)
    max_load: Mapped[int | None] = mapped_column(Integer)


class _ScopeLoads:
    """Optional per-street or per-community household and member load ranges."""

    household_min: Mapped[int | None] = mapped_column(Integer)
    household_max: Mapped[int | None] = mapped_column(Integer)
    member_min: Mapped[int | None] = mapped_column(Integer)
    member_max: Mapped[int | None] = mapped_column(Integer)


class Street(_ScopeLoads, Base):
    """A street (街道): 9-digit code (district 6 + 3)."""

    __tablename__ = "streets"
    __table_args__ = (
        CheckConstraint(r"code ~ '^[0-9]{9}$'", name="code_format"),
        CheckConstraint("household_min <= household_max", name="household_range"),
        CheckConstraint("member_min <= member_max", name="member_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(Text)
    geom = _multipolygon(nullable=True)


class Community(_ScopeLoads, Base):
    """A community (社区/居委会): 12-digit code (street 9 + 3)."""

    __tablename__ = "communities"
    __table_args__ = (
        CheckConstraint(r"code ~ '^[0-9]{12}$'", name="code_format"),
        CheckConstraint("household_min <= household_max", name="household_range"),
        CheckConstraint("member_min <= member_max", name="member_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(Text)
    street_id: Mapped[int] = _fk("streets.id", nullable=False, ondelete="CASCADE")
    geom = _multipolygon(nullable=True)


class Grid(Base):
    """A grid (网格): 15-digit code (community 12 + sequence 3), a closed polygon."""

    __tablename__ = "grids"
    __table_args__ = (CheckConstraint(r"code ~ '^[0-9]{15}$'", name="code_format"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(15), unique=True)
    name: Mapped[str] = mapped_column(Text)
    community_id: Mapped[int] = _fk("communities.id", nullable=False, ondelete="CASCADE")
    geom = _multipolygon()


class Building(Base):
    """A building (楼栋) footprint."""

    __tablename__ = "buildings"
    __table_args__ = (
        CheckConstraint(_in("kind", BUILDING_KINDS), name="kind"),
        CheckConstraint("floors IS NULL OR floors BETWEEN 1 AND 200", name="floors"),
        CheckConstraint("code <> ''", name="code_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, default="residential")
    floors: Mapped[int | None] = mapped_column(Integer)
    party_org: Mapped[str | None] = mapped_column(Text)
    available_site: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    compound: Mapped[str | None] = mapped_column(Text)
    number: Mapped[str | None] = mapped_column(Text)
    community_id: Mapped[int | None] = _fk("communities.id")
    grid_id: Mapped[int | None] = _fk("grids.id")
    geom = _multipolygon()


class Household(Base):
    """A household (户): a point, derived from its building when only the building is given."""

    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint("size >= 1", name="size"),
        CheckConstraint("code <> ''", name="code_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    elderly_alone: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    low_income: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    children: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    unit: Mapped[str | None] = mapped_column(Text)
    room: Mapped[str | None] = mapped_column(Text)
    id_hash: Mapped[str | None] = mapped_column(Text, index=True)
    moved_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    building_id: Mapped[int | None] = _fk("buildings.id")
    grid_id: Mapped[int | None] = _fk("grids.id")
    community_id: Mapped[int | None] = _fk("communities.id")
    geom = _point()


class Member(_LoadRange, Base):
    """A party member (党员): home point or building; eligibility is data, not a guess."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(_in("kind", MEMBER_KINDS), name="kind"),
        CheckConstraint("gender IS NULL OR gender IN ('male', 'female')", name="gender"),
        CheckConstraint("min_load >= 0 AND min_load <= max_load", name="load_range"),
        CheckConstraint("code <> ''", name="code_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, default="resident")
    eligible: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    available: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    gender: Mapped[str | None] = mapped_column(Text)
    birth_date: Mapped[date | None] = mapped_column(Date)
    branch: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    room: Mapped[str | None] = mapped_column(Text)
    id_hash: Mapped[str | None] = mapped_column(Text, index=True)
    moved_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    building_id: Mapped[int | None] = _fk("buildings.id")
    grid_id: Mapped[int | None] = _fk("grids.id")
    community_id: Mapped[int | None] = _fk("communities.id")
    geom = _point()


class Cadre(_LoadRange, Base):
    """A street or community cadre (干部) with an office point."""

    __tablename__ = "cadres"
    __table_args__ = (
        CheckConstraint(_in("level", CADRE_LEVELS), name="level"),
        CheckConstraint(
            "(level = 'street') = (community_id IS NULL)", name="community_matches_level"
        ),
        CheckConstraint("min_load >= 0 AND min_load <= max_load", name="load_range"),
        CheckConstraint("code <> ''", name="code_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text)
    street_id: Mapped[int] = _fk("streets.id", nullable=False, ondelete="CASCADE")
    community_id: Mapped[int | None] = _fk("communities.id", ondelete="CASCADE")
    geom = _point()


class Station(Base):
    """A Red Station (红色驿站) service point."""

    __tablename__ = "stations"
    __table_args__ = (CheckConstraint("code <> ''", name="code_not_empty"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    services: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    community_id: Mapped[int | None] = _fk("communities.id")
    geom = _point()


class Road(Base):
    """A road or footpath centre line (道路), for walking distance to Red Stations."""

    __tablename__ = "roads"
    __table_args__ = (
        CheckConstraint(f"kind IS NULL OR {_in('kind', ROAD_KINDS)}", name="kind"),
        CheckConstraint("code <> ''", name="code_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    street_id: Mapped[int | None] = _fk("streets.id")
    geom = mapped_column(Geometry("MULTILINESTRING", srid=SRID, spatial_index=True), nullable=False)


class ImportLog(Base):
    """One row per import run: what was loaded, from where, by whom, with what outcome."""

    __tablename__ = "import_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    layer: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    repaired: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
