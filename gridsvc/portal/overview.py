"""Maps at every scale: communities and grids shaded by coverage for a street or the whole
district (aggregated in PostGIS under the caller's row-level security), households only in a
small box when zoomed in."""

from __future__ import annotations

from sqlalchemy import Connection, text

from gridsvc.errors import InputRejected, NotFound, Reject
from gridsvc.portal._sql import pairs_exist

#: Largest box of households served at once (degrees; about 1.5 km × 1.5 km).
BOX_MAX_DEG = 0.015
#: Most household points in one answer.
POINTS_MAX = 5_000

#: The current plan's pairs joined straight to the households being counted (the view
#: ``current_household_pairs`` would scan households a second time under row-level security).
_PAIRED = (
    "LEFT JOIN (plans pl JOIN household_pairs hp ON hp.run_id = pl.household_run_id) "
    "ON hp.household_id = h.id AND pl.community_id = h.community_id"
)
_NONE = "LEFT JOIN (SELECT NULL::integer AS household_id WHERE false) hp ON false"
_POINT_PAIRED = "(SELECT household_id FROM current_household_pairs)"
_POINT_NONE = "(SELECT NULL::integer AS household_id WHERE false)"

_AREAS = """
WITH scope AS (
  SELECT c.id FROM communities c WHERE CAST(:s AS bigint) IS NULL OR c.street_id = :s
),
cells AS (
  SELECT h.community_id, h.grid_id, count(*) AS households, count(hp.household_id) AS paired
  FROM households h {paired}
  WHERE h.community_id IN (SELECT id FROM scope)
  GROUP BY h.community_id, h.grid_id
),
counts AS (
  SELECT community_id, NULL::integer AS grid_id, sum(households) AS households,
         sum(paired) AS paired FROM cells GROUP BY community_id
  UNION ALL
  SELECT NULL, grid_id, sum(households), sum(paired) FROM cells
  WHERE grid_id IS NOT NULL GROUP BY grid_id
),
f AS (
  SELECT json_build_object('type', 'Feature',
    'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(c.geom, :tol), 6)::json,
    'properties', json_build_object('layer', 'community', 'code', c.code, 'name', c.name,
      'households', coalesce(n.households, 0), 'paired', coalesce(n.paired, 0),
      'paired_share', round(n.paired::numeric / nullif(n.households, 0), 4))) AS feature
  FROM communities c LEFT JOIN counts n ON n.community_id = c.id AND n.grid_id IS NULL
  WHERE c.id IN (SELECT id FROM scope) AND c.geom IS NOT NULL
  UNION ALL
  SELECT json_build_object('type', 'Feature',
    'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, :tol), 6)::json,
    'properties', json_build_object('layer', 'grid', 'code', g.code, 'name', g.name,
      'households', coalesce(n.households, 0), 'paired', coalesce(n.paired, 0),
      'paired_share', round(n.paired::numeric / nullif(n.households, 0), 4)))
  FROM grids g LEFT JOIN counts n ON n.grid_id = g.id AND n.community_id IS NULL
  WHERE g.community_id IN (SELECT id FROM scope)
)
SELECT json_build_object('type', 'FeatureCollection',
  'features', coalesce(json_agg(feature), '[]'::json))::text FROM f
"""

_POINTS = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
  json_build_object('type', 'Feature',
    'geometry', json_build_object('type', 'Point',
      'coordinates', json_build_array(round(ST_X(h.geom)::numeric, 6),
                                      round(ST_Y(h.geom)::numeric, 6))),
    'properties', json_build_object('code', h.code, 'paired', p.household_id IS NOT NULL))
), '[]'::json), 'truncated', count(*) >= :n)::text
FROM (SELECT id, code, geom FROM households
      WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) ORDER BY id LIMIT :n) h
LEFT JOIN {paired} p ON p.household_id = h.id
"""


def street_id(conn: Connection, code: str | None) -> int | None:
    """The id of a street the caller sees (None for the caller's whole scope).

    Raises
    ------
    NotFound
        When no street with ``code`` is in the caller's scope.
    """
    if not code:
        return None
    found = conn.scalar(text("SELECT id FROM streets WHERE code = :c"), {"c": code})
    if found is None:
        raise NotFound(f"street {code!r}: no such street in your scope")
    return int(found)


def overview_geojson(conn: Connection, *, street: int | None, tolerance_deg: float) -> bytes:
    """Communities and grids of a street (or of everything the caller sees) with their
    household and pair counts and ``paired_share``, geometry simplified to ``tolerance_deg``.

    One query in PostGIS; row-level security limits it to the caller's scope; no personal data.
    """
    sql = _AREAS.format(paired=_PAIRED if pairs_exist(conn) else _NONE)
    return conn.scalar(text(sql), {"s": street, "tol": tolerance_deg}).encode()


def households_geojson(conn: Connection, box: tuple[float, float, float, float]) -> bytes:
    """Household points (``code``, ``paired``) in a small box, at most :data:`POINTS_MAX`.

    Raises
    ------
    InputRejected
        When the box is malformed or larger than :data:`BOX_MAX_DEG` on a side (zoom in).
    """
    x0, y0, x1, y1 = box
    if not (x0 < x1 and y0 < y1) or x1 - x0 > BOX_MAX_DEG or y1 - y0 > BOX_MAX_DEG:
        reason = f"west<east, south<north, at most {BOX_MAX_DEG} degrees a side (zoom in)"
        raise InputRejected(
            f"bbox {box!r}: {reason}",
            [Reject("query", None, "bbox", reason, ",".join(map(str, box)))],
        )
    sql = _POINTS.format(paired=_POINT_PAIRED if pairs_exist(conn) else _POINT_NONE)
    params = {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "n": POINTS_MAX}
    return conn.scalar(text(sql), params).encode()
