"""Search households, members and buildings by code; details of one record (masked)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from gridsvc.errors import InputRejected, NotFound, Reject
from gridsvc.portal._sql import pairs_exist
from maps.safe import mask_name, mask_phone

KINDS = ("household", "member", "building")
_TABLES = {"household": "households", "member": "members", "building": "buildings"}


def search_codes(
    conn: Connection, query: str, *, limit: int = 20, by_name: bool = False
) -> list[dict[str, Any]]:
    """Households, members and buildings matching ``query``, best matches first.

    A record matches when any part of its code contains ``query`` (``H00010`` finds
    ``530102001001H00010``); a building also by its name or number (``44号楼``, ``44``); with
    ``by_name`` (planners) people also by their name. People's names come back masked.

    Raises
    ------
    InputRejected
        When the query is empty or longer than 64 characters.
    """
    q = query.strip()
    if not q or len(q) > 64:
        raise InputRejected(
            "search: give 1 to 64 characters of a code or a name",
            [Reject("query", None, "q", "1 to 64 characters", query[:80])],
        )
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    params = {"p": like, "q": q, "n": f"{q}号楼", "l": limit}
    rows: list[dict[str, Any]] = []
    for kind in KINDS:
        table = _TABLES[kind]
        point = "ST_PointOnSurface(t.geom)" if kind == "building" else "t.geom"
        names = (
            "OR t.name ILIKE :p OR t.name = :n"
            if kind == "building"
            else ("OR t.name ILIKE :p" if by_name else "")
        )
        found = conn.execute(
            text(
                f"SELECT t.code, t.name, c.code AS community_code, "
                f"round(ST_X({point})::numeric, 6) AS lon, round(ST_Y({point})::numeric, 6) AS lat "
                f"FROM {table} t LEFT JOIN communities c ON c.id = t.community_id "
                f"WHERE t.code ILIKE :p {names} "
                "ORDER BY (t.code = :q OR t.name = :q OR t.name = :n) DESC, "
                "(t.code ILIKE :q || '%') DESC, length(t.code), t.code LIMIT :l"
            ),
            params,
        )
        for r in found:
            name = r.name if kind == "building" else mask_name(r.name)
            rows.append(
                {
                    "kind": kind,
                    "code": r.code,
                    "name": name,
                    "community_code": r.community_code,
                    "lon": float(r.lon),
                    "lat": float(r.lat),
                }
            )
    exact = [r for r in rows if q in (r["code"], r["name"]) or r["name"] == f"{q}号楼"]
    return (exact + [r for r in rows if r not in exact])[:limit]


def record_details(
    conn: Connection, kind: str, code: str, *, unmasked: bool = False
) -> dict[str, Any]:
    """One household, member or building with its pairs; names and phones masked by default.

    Raises
    ------
    InputRejected
        Unknown kind.
    NotFound
        No such code in the caller's scope.
    """
    if kind not in KINDS:
        raise InputRejected(
            f"details: unknown kind {kind!r}",
            [Reject("path", None, "kind", f"expected one of {', '.join(KINDS)}", kind)],
        )
    loader = {"household": _household, "member": _member, "building": _building}[kind]
    found = loader(conn, code, unmasked)
    if found is None:
        raise NotFound(f"{kind} {code!r}: no such {kind} in your scope")
    return found


def _people(name: Any, phone: Any, unmasked: bool) -> dict[str, Any]:
    if unmasked:
        return {"name": name, "phone": phone}
    return {"name": mask_name(name), "phone": mask_phone(phone) if phone else None}


_PLACE = (
    "LEFT JOIN grids g ON g.id = t.grid_id LEFT JOIN buildings b ON b.id = t.building_id "
    "LEFT JOIN communities c ON c.id = t.community_id "
)


def _household(conn: Connection, code: str, unmasked: bool) -> dict[str, Any] | None:
    r = conn.execute(
        text(
            "SELECT t.id, t.code, t.name, t.phone, t.size, g.code AS grid_code, "
            "b.code AS building_code, c.code AS community_code, "
            "ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat FROM households t "
            + _PLACE
            + "WHERE t.code = :c"
        ),
        {"c": code},
    ).first()
    if r is None:
        return None
    members = []
    if pairs_exist(conn):
        members = [
            {"code": m.code, "name": mask_name(m.name), "distance_m": round(m.distance_m, 1)}
            for m in conn.execute(
                text(
                    "SELECT m.code, m.name, p.distance_m FROM current_household_pairs p "
                    "JOIN members m ON m.id = p.member_id WHERE p.household_id = :h"
                ),
                {"h": r.id},
            )
        ]
    return {
        "kind": "household",
        "code": r.code,
        **_people(r.name, r.phone, unmasked),
        "size": r.size,
        "grid_code": r.grid_code,
        "building_code": r.building_code,
        "community_code": r.community_code,
        "lon": round(r.lon, 6),
        "lat": round(r.lat, 6),
        "members": members,
    }


def _member(conn: Connection, code: str, unmasked: bool) -> dict[str, Any] | None:
    r = conn.execute(
        text(
            "SELECT t.id, t.code, t.name, t.phone, t.kind, t.eligible, t.available, "
            "g.code AS grid_code, b.code AS building_code, c.code AS community_code, "
            "ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat FROM members t "
            + _PLACE
            + "WHERE t.code = :c"
        ),
        {"c": code},
    ).first()
    if r is None:
        return None
    households: list[dict[str, Any]] = []
    cadres: list[dict[str, Any]] = []
    if pairs_exist(conn):
        households = [
            {"code": h.code, "distance_m": round(h.distance_m, 1)}
            for h in conn.execute(
                text(
                    "SELECT h.code, p.distance_m FROM current_household_pairs p "
                    "JOIN households h ON h.id = p.household_id WHERE p.member_id = :m "
                    "ORDER BY p.distance_m"
                ),
                {"m": r.id},
            )
        ]
        cadres = [
            {"code": k.code, "name": mask_name(k.name)}
            for k in conn.execute(
                text(
                    "SELECT k.code, k.name FROM current_member_pairs p "
                    "JOIN cadres k ON k.id = p.cadre_id WHERE p.member_id = :m"
                ),
                {"m": r.id},
            )
        ]
    return {
        "kind": "member",
        "code": r.code,
        **_people(r.name, r.phone, unmasked),
        "member_kind": r.kind,
        "eligible": r.eligible,
        "available": r.available,
        "grid_code": r.grid_code,
        "building_code": r.building_code,
        "community_code": r.community_code,
        "lon": round(r.lon, 6),
        "lat": round(r.lat, 6),
        "households": households,
        "cadres": cadres,
    }


def _building(conn: Connection, code: str, unmasked: bool) -> dict[str, Any] | None:
    r = conn.execute(
        text(
            "SELECT t.id, t.code, t.name, t.kind, t.floors, t.party_org, g.code AS grid_code, "
            "c.code AS community_code, ST_X(ST_PointOnSurface(t.geom)) AS lon, "
            "ST_Y(ST_PointOnSurface(t.geom)) AS lat, "
            "(SELECT count(*) FROM households h WHERE h.building_id = t.id) AS households, "
            "(SELECT count(*) FROM members m WHERE m.building_id = t.id) AS members "
            "FROM buildings t LEFT JOIN grids g ON g.id = t.grid_id "
            "LEFT JOIN communities c ON c.id = t.community_id WHERE t.code = :c"
        ),
        {"c": code},
    ).first()
    if r is None:
        return None
    return {
        "kind": "building",
        "code": r.code,
        "name": r.name,
        "building_kind": r.kind,
        "floors": r.floors,
        "party_org": r.party_org,
        "grid_code": r.grid_code,
        "community_code": r.community_code,
        "lon": round(r.lon, 6),
        "lat": round(r.lat, 6),
        "households": r.households,
        "members": r.members,
    }
