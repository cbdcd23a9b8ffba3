"""The coverage GeoJSON of a community: grids and buildings with household and pair counts."""

from __future__ import annotations

from sqlalchemy import Connection, text

from gridsvc.errors import NotFound
from gridsvc.portal._sql import pairs_exist

_KEY = "SELECT c.id, (SELECT version FROM data_version) FROM communities c WHERE c.code = %s"
_PAIRED = "(SELECT DISTINCT household_id FROM current_household_pairs WHERE community_id = :c)"
_NONE = "(SELECT NULL::integer AS household_id WHERE false)"

_SQL = """
WITH paired AS {paired},
hh AS (
  SELECT h.grid_id, h.building_id, count(*) AS households, count(p.household_id) AS paired
  FROM households h LEFT JOIN paired p ON p.household_id = h.id
  WHERE h.community_id = :c GROUP BY GROUPING SETS ((h.grid_id), (h.building_id))
),
f AS (
  SELECT json_build_object('type', 'Feature',
    'geometry', ST_AsGeoJSON(g.geom, 6)::json,
    'properties', json_build_object('layer', 'grid', 'code', g.code, 'name', g.name,
      'households', coalesce(hh.households, 0), 'paired', coalesce(hh.paired, 0),
      'paired_share', round(hh.paired::numeric / nullif(hh.households, 0), 4))) AS feature
  FROM grids g LEFT JOIN hh ON hh.grid_id = g.id AND hh.building_id IS NULL
  WHERE g.community_id = :c
  UNION ALL
  SELECT json_build_object('type', 'Feature',
    'geometry', ST_AsGeoJSON(b.geom, 6)::json,
    'properties', json_build_object('layer', 'building', 'code', b.code, 'name', b.name,
      'kind', b.kind, 'households', coalesce(hh.households, 0),
      'paired', coalesce(hh.paired, 0),
      'paired_share', round(hh.paired::numeric / nullif(hh.households, 0), 4)))
  FROM buildings b LEFT JOIN hh ON hh.building_id = b.id AND hh.grid_id IS NULL
  WHERE b.community_id = :c
)
SELECT json_build_object('type', 'FeatureCollection',
  'features', coalesce(json_agg(feature), '[]'::json))::text FROM f
"""


def coverage_geojson(conn: Connection, community_id: int) -> bytes:
    """A FeatureCollection (UTF-8 bytes) of the community's grids and buildings.

    Each feature's properties: ``layer`` (grid/building), ``code``, ``name``, ``households``,
    ``paired`` and ``paired_share`` (None when empty); coordinates rounded to 6 decimals. Built
    by PostGIS in one query; no personal data.
    """
    sql = _SQL.format(paired=_PAIRED if pairs_exist(conn) else _NONE)
    return conn.scalar(text(sql), {"c": community_id}).encode()


def coverage_key(conn: Connection, code: str) -> tuple[int, int]:
    """The community's id and the data version, in one round trip: what the GeoJSON is cached by.

    The lookup runs under row-level security, so it is also the scope check. It runs on every
    GeoJSON request, so straight on the driver (a third of SQLAlchemy's statement overhead).

    Raises
    ------
    NotFound
        When no community with ``code`` is in the caller's scope (same message either way).
    """
    row = conn.connection.driver_connection.execute(_KEY, (code,)).fetchone()
    if row is None:
        raise NotFound(f"community {code!r}: no such community in your scope")
    return int(row[0]), int(row[1] or 0)
