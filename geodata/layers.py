"""The importable layers: their fields, types, parents and geometry, in one table.

Importers validate against these specs, the loader writes by them, exporters read by them and the
README documents them. A field's ``kind`` is one of ``text``, ``int``, ``bool``, ``enum``,
``list`` (comma- or semicolon-separated text), ``code`` (text of a fixed digit pattern), ``date``
(ISO date) or ``hash`` (a keyed hash made on import, :mod:`geodata.rosters`).
"""

from __future__ import annotations

from dataclasses import dataclass

from geodata.schema import BUILDING_KINDS, CADRE_LEVELS, MEMBER_KINDS, ROAD_KINDS


@dataclass(frozen=True)
class Field:
    """One attribute column of a layer."""

    name: str
    kind: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    sensitive: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Parent:
    """A reference to another layer by code; the column name ends in ``_code``."""

    field: str
    layer: str
    column: str
    required: bool = False
    derivable: bool = True


@dataclass(frozen=True)
class Layer:
    """A layer: table, code pattern, fields, parents and geometry."""

    name: str
    table: str
    geometry: str
    code_pattern: str | None
    fields: tuple[Field, ...]
    parents: tuple[Parent, ...] = ()
    geometry_required: bool = True
    doc: str = ""
    #: Rules for updating stored records (a partial import): nothing required, not even a place.
    partial: bool = False

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every attribute column, parents included, ``code`` first."""
        return ("code", *(f.name for f in self.fields), *(p.field for p in self.parents))


_LOADS = (
    Field("household_min", "int", doc="households per member, minimum (overrides default)"),
    Field("household_max", "int", doc="households per member, maximum"),
    Field("member_min", "int", doc="members per cadre, minimum"),
    Field("member_max", "int", doc="members per cadre, maximum"),
)
_PERSON = (
    Field("name", sensitive=True, doc="name (masked in exports)"),
    Field("phone", sensitive=True, doc="phone (masked in exports)"),
)
#: Where in its building a household or member lives, and the keyed hash of a 身份证号.
_DWELLING = (
    Field("unit", doc="unit (单元), e.g. 2; from the address when not given"),
    Field("room", doc="room (门牌/室), e.g. 501; from the address when not given"),
    Field(
        "id_hash",
        "hash",
        sensitive=True,
        doc="keyed hash of a 身份证号 column (the number itself is never stored)",
    ),
)
_OWN_LOAD = (
    Field("min_load", "int", doc="own minimum load (overrides street/community)"),
    Field("max_load", "int", doc="own maximum load"),
)

LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "streets",
            "streets",
            "MultiPolygon",
            r"^\d{9}$",
            (Field("name", required=True, doc="street name"), *_LOADS),
            geometry_required=False,
            doc="街道: 9-digit code (GB/T 2260 district 6 + 3); boundary optional",
        ),
        Layer(
            "communities",
            "communities",
            "MultiPolygon",
            r"^\d{12}$",
            (Field("name", required=True, doc="community name"), *_LOADS),
            (Parent("street_code", "streets", "street_id", required=True, derivable=False),),
            geometry_required=False,
            doc="社区: 12-digit code (street 9 + 3); boundary optional",
        ),
        Layer(
            "grids",
            "grids",
            "MultiPolygon",
            r"^\d{15}$",
            (Field("name", required=True, doc="grid name"),),
            (
                Parent(
                    "community_code", "communities", "community_id", required=True, derivable=False
                ),
            ),
            doc="网格: 15-digit code (community 12 + sequence 3, DB11/T 2157-2023)",
        ),
        Layer(
            "buildings",
            "buildings",
            "MultiPolygon",
            None,
            (
                Field("name", doc="building name"),
                Field("kind", "enum", choices=BUILDING_KINDS, doc="default residential"),
                Field("floors", "int", doc="floors above ground, 1-200"),
                Field("party_org", doc="party organisation covering it (commercial buildings)"),
                Field("available_site", "bool", doc="may host a new Red Station"),
                Field("compound", doc="compound (小区/院落); from the name when absent"),
                Field("number", doc="number in its compound (3, A); from a name like 3号楼"),
            ),
            (
                Parent("community_code", "communities", "community_id"),
                Parent("grid_code", "grids", "grid_id"),
            ),
            doc="楼栋: footprint polygon; community and grid derived by location when absent",
        ),
        Layer(
            "households",
            "households",
            "Point",
            None,
            (
                *_PERSON,
                Field("size", "int", doc="people in the household, default 1"),
                Field("elderly_alone", "bool", sensitive=True, doc="elderly living alone"),
                Field("disabled", "bool", sensitive=True, doc="disabled member"),
                Field("low_income", "bool", sensitive=True, doc="low income"),
                Field("children", "bool", sensitive=True, doc="children in the household"),
                *_DWELLING,
            ),
            (
                Parent("building_code", "buildings", "building_id"),
                Parent("grid_code", "grids", "grid_id"),
                Parent("community_code", "communities", "community_id"),
            ),
            geometry_required=False,
            doc="户: point, building_code, or an address (point = building's inner point)",
        ),
        Layer(
            "members",
            "members",
            "Point",
            None,
            (
                *_PERSON,
                Field("kind", "enum", choices=MEMBER_KINDS, doc="default resident"),
                Field("eligible", "bool", doc="can serve (age, health, willingness); default true"),
                Field("available", "bool", doc="planner's switch; default true"),
                *_OWN_LOAD,
                Field("gender", "enum", choices=("male", "female"), doc="性别: 男/女"),
                Field("birth_date", "date", sensitive=True, doc="出生日期 (age is never shown)"),
                Field("branch", doc="所在支部: the party branch"),
                *_DWELLING,
            ),
            (
                Parent("building_code", "buildings", "building_id"),
                Parent("grid_code", "grids", "grid_id"),
                Parent("community_code", "communities", "community_id"),
            ),
            geometry_required=False,
            doc="党员: home point, building_code, or an address",
        ),
        Layer(
            "cadres",
            "cadres",
            "Point",
            None,
            (*_PERSON, Field("level", "enum", required=True, choices=CADRE_LEVELS), *_OWN_LOAD),
            (
                Parent("street_code", "streets", "street_id", required=True, derivable=False),
                Parent("community_code", "communities", "community_id", derivable=False),
            ),
            doc="干部: office point; level street (no community_code) or community",
        ),
        Layer(
            "stations",
            "stations",
            "Point",
            None,
            (
                Field("name", doc="station name"),
                Field("services", "list", doc="services, separated by , or ;"),
            ),
            (Parent("community_code", "communities", "community_id"),),
            doc="红色驿站: service point",
        ),
        Layer(
            "roads",
            "roads",
            "MultiLineString",
            None,
            (
                Field("name", doc="road name"),
                Field(
                    "kind",
                    "enum",
                    choices=ROAD_KINDS,
                    doc="快速路/主干路/次干路/支路/小区道路/步行道; empty: walkable road; "
                    "an expressway is not walked",
                ),
            ),
            (Parent("street_code", "streets", "street_id"),),
            doc="道路: centre line (LineString too); Red Station reach is walked along roads",
        ),
    )
}

#: Load order: parents before children.
LOAD_ORDER = tuple(LAYERS)


def get_layer(name: str) -> Layer:
    """The layer called ``name``; ``KeyError`` lists the known layers."""
    try:
        return LAYERS[name]
    except KeyError:
        raise KeyError(f"unknown layer {name!r}; expected one of {', '.join(LAYERS)}") from None


def markdown() -> str:
    """The fields of every layer as Markdown tables (the README's "Data formats" section)."""
    lines = []
    for layer in LAYERS.values():
        geometry = layer.geometry + ("" if layer.geometry_required else " (optional)")
        lines += [f"### `{layer.name}` — {layer.doc}", "", f"Geometry: {geometry}.", ""]
        lines += ["| field | type | required | notes |", "| --- | --- | --- | --- |"]
        code = f"pattern `{layer.code_pattern}`" if layer.code_pattern else "unique in the layer"
        lines.append(f"| `code` | code | yes | {code} |")
        for f in layer.fields:
            kind = f"{f.kind}: {', '.join(f.choices)}" if f.choices else f.kind
            notes = f.doc + (" (sensitive)" if f.sensitive and f.kind == "bool" else "")
            lines.append(f"| `{f.name}` | {kind} | {'yes' if f.required else ''} | {notes} |")
        for p in layer.parents:
            how = "" if not p.derivable else "derived by location when empty"
            lines.append(
                f"| `{p.field}` | code of {p.layer} | {'yes' if p.required else ''} | {how} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m geodata.layers --markdown")
    print(markdown())
