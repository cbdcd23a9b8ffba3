"""Loading a scope's layers and current pairs from PostGIS into frames (coverage's data edge)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import psycopg
import shapely
from sqlalchemy import Connection, text

from geodata.projection import metric_epsg, to_metres
from gridsvc.coverage.frames import Scope, ScopeData
from gridsvc.errors import InfeasibleSettings, NotFound
from gridsvc.load_ranges import fill_ranges, range_sql
from gridsvc.settings import LoadRange, Settings
from gridsvc.siting.network import RoadNetwork

#: Metres per degree of latitude (a lower bound, so envelopes err on the wide side).
_M_PER_DEG = 110_574.0


def resolve_scope(
    conn: Connection, *, street_code: str | None = None, community_code: str | None = None
) -> Scope:
    """The communities of a street or of one community (all when neither is given).

    Raises
    ------
    NotFound
        When the code names no street or community.
    ValueError
        When both codes are given.
    """
    if street_code and community_code:
        raise ValueError("give street_code or community_code, not both")
    if community_code:
        row = conn.execute(
            text("SELECT id, name, street_id FROM communities WHERE code = :c"),
            {"c": community_code},
        ).first()
        if row is None:
            raise NotFound(f"community {community_code!r}: no such community code")
        return Scope(
            "community", community_code, row.name, np.array([row.id]), np.array([row.street_id])
        )
    if street_code:
        row = conn.execute(
            text("SELECT id, name FROM streets WHERE code = :c"), {"c": street_code}
        ).first()
        if row is None:
            raise NotFound(f"street {street_code!r}: no such street code")
        ids = conn.execute(
            text("SELECT id FROM communities WHERE street_id = :s ORDER BY id"), {"s": row.id}
        ).scalars()
        return Scope("street", street_code, row.name, np.fromiter(ids, int), np.array([row.id]))
    comm = np.fromiter(conn.execute(text("SELECT id FROM communities ORDER BY id")).scalars(), int)
    streets = np.fromiter(conn.execute(text("SELECT id FROM streets ORDER BY id")).scalars(), int)
    return Scope("all", None, None, comm, streets)


def load_scope(
    conn: Connection, scope: Scope, *, settings: Settings | None = None, geometry: bool = False
) -> ScopeData:
    """Read the scope's layers; ``geometry`` adds WKB polygons of grids and buildings.

    Members and cadres carry ``min_load``/``max_load``: their load range resolved as the pairing
    resolves it (:mod:`gridsvc.load_ranges`: own, community, street, then the ranges of
    ``settings``, default :class:`~gridsvc.settings.Settings`' defaults).
    """
    settings = settings or Settings()
    p = {"ids": scope.community_ids.tolist(), "streets": scope.street_ids.tolist()}
    geom = ", encode(ST_AsBinary(geom), 'hex') AS wkb" if geometry else ""
    communities = _frame(
        conn,
        "SELECT c.id AS community_id, c.code, c.name, c.street_id, s.code AS street_code "
        "FROM communities c JOIN streets s ON s.id = c.street_id WHERE c.id = ANY(%(ids)s)",
        p,
    )
    grids = _frame(
        conn,
        f"SELECT id AS grid_id, code, community_id{geom} FROM grids "
        "WHERE community_id = ANY(%(ids)s)",
        p,
    )
    buildings = _frame(
        conn,
        "SELECT id AS building_id, code, kind, floors, party_org, community_id, grid_id, "
        "ST_Area(geom::geography) AS area_m2, "
        f"ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat{geom} "
        "FROM buildings WHERE community_id = ANY(%(ids)s)",
        p,
    )
    households = _frame(
        conn,
        "SELECT id AS household_id, code, community_id, grid_id, building_id, elderly_alone, "
        "disabled, children, ST_X(geom) AS lon, ST_Y(geom) AS lat "
        "FROM households WHERE community_id = ANY(%(ids)s) AND moved_out_at IS NULL",
        p,
    )
    members = _frame(
        conn,
        "SELECT m.id AS member_id, m.code, m.kind, m.eligible, "
        "(m.available AND m.moved_out_at IS NULL) AS available, m.community_id, "
        "m.grid_id, m.building_id, ST_X(m.geom) AS lon, ST_Y(m.geom) AS lat, "
        f"{range_sql('households', person='m', community='c', street='s')} "
        "FROM members m JOIN communities c ON c.id = m.community_id "
        "JOIN streets s ON s.id = c.street_id WHERE m.community_id = ANY(%(ids)s)",
        p,
    )
    cadres = _frame(
        conn,
        "SELECT d.id AS cadre_id, d.code, d.level, d.street_id, d.community_id, "
        "ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat, "
        f"{range_sql('members', person='d', community='c', street='s')} "
        "FROM cadres d JOIN streets s ON s.id = d.street_id "
        "LEFT JOIN communities c ON c.id = d.community_id "
        "WHERE d.community_id = ANY(%(ids)s) "
        "OR (d.community_id IS NULL AND d.street_id = ANY(%(streets)s))",
        p,
    )
    members = _with_ranges(members, settings.household_load)
    cadres = _with_ranges(cadres, settings.member_load)
    households, members = _explained(conn, p, households, members)
    stations = _frame(
        conn, "SELECT id AS station_id, code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations", p
    )
    available = _pairs_exist(conn)
    if available:
        hh_pairs = _frame(
            conn,
            "SELECT household_id, member_id, distance_m, same_building, same_grid "
            "FROM current_household_pairs WHERE community_id = ANY(%(ids)s)",
            p,
        )
        m_pairs = _frame(
            conn,
            "SELECT member_id, cadre_id, distance_m FROM current_member_pairs "
            "WHERE community_id = ANY(%(ids)s)",
            p,
        )
    else:
        cols = ["household_id", "member_id", "distance_m", "same_building", "same_grid"]
        hh_pairs = pd.DataFrame({c: [] for c in cols})
        m_pairs = pd.DataFrame({"member_id": [], "cadre_id": [], "distance_m": []})
    epsg = _epsg(households, buildings)
    network = load_network(
        conn,
        pd.concat([households[["lon", "lat"]], buildings[["lon", "lat"]]]),
        margin_m=max(settings.life_circles_m, default=0),
        epsg=epsg,
        settings=settings,
        where=_where(scope),
    )
    return ScopeData(
        scope,
        epsg,
        communities,
        grids,
        _xy(buildings, epsg),
        _xy(households, epsg),
        _xy(members, epsg),
        _xy(cadres, epsg),
        _xy(stations, epsg),
        hh_pairs,
        m_pairs,
        available,
        network,
        _contacts(conn, scope, settings) if available else None,
        _overdue_requests(conn, scope),
    )


def _contacts(conn: Connection, scope: Scope, settings: Settings) -> pd.DataFrame | None:
    """The paired households' contact state now (None before the contact log exists)."""
    if not conn.scalar(text("SELECT to_regclass('contacts') IS NOT NULL")):
        return None
    from gridsvc.contacts.cadence import contact_status

    return contact_status(conn, scope.community_ids.tolist(), settings=settings)


def _overdue_requests(conn: Connection, scope: Scope) -> pd.DataFrame | None:
    """Open requests past their time limit (accept or finish), None before the request table."""
    if not conn.scalar(text("SELECT to_regclass('requests') IS NOT NULL")):
        return None
    rows = conn.execute(
        text(
            "SELECT r.id, r.community_id, h.code AS household, r.category, r.state, "
            "m.code AS member, r.vulnerable, "
            "floor(extract(epoch FROM now() - CASE WHEN r.state = 'dispatched' "
            "AND r.accept_due_at < r.due_at THEN r.accept_due_at ELSE r.due_at END) / 86400)::int "
            "AS days_over, "
            "coalesce(ST_X(h.geom), ST_X(ST_Centroid(b.geom)), ST_X(ST_Centroid(g.geom))) AS lon, "
            "coalesce(ST_Y(h.geom), ST_Y(ST_Centroid(b.geom)), ST_Y(ST_Centroid(g.geom))) AS lat "
            "FROM requests r LEFT JOIN households h ON h.id = r.household_id "
            "LEFT JOIN buildings b ON b.id = r.building_id LEFT JOIN grids g ON g.id = r.grid_id "
            "LEFT JOIN members m ON m.id = r.member_id "
            "WHERE r.community_id = ANY(:ids) AND r.state IN ('waiting', 'dispatched', "
            "'accepted', 'in_progress', 'returned', 'escalated') AND (r.due_at < now() OR "
            "(r.state = 'dispatched' AND r.accept_due_at < now()))"
        ),
        {"ids": scope.community_ids.tolist()},
    ).all()
    cols = [
        "id",
        "community_id",
        "household",
        "category",
        "state",
        "member",
        "vulnerable",
        "days_over",
        "lon",
        "lat",
    ]
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def load_network(
    conn: Connection,
    points: pd.DataFrame,
    *,
    margin_m: float,
    epsg: int,
    settings: Settings,
    where: str,
) -> RoadNetwork | None:
    """The walking network of the roads within ``margin_m`` + the snap distance of ``points``
    (``lon``/``lat``), in metres of ``epsg``; None when straight-line distance is to be used.

    ``GRIDSVC_REACH_METRIC``: ``straight`` loads nothing; ``auto`` gives None where no road is
    loaded; ``network`` raises there. Expressways are not walked.

    Raises
    ------
    InfeasibleSettings
        ``GRIDSVC_REACH_METRIC=network`` and no walkable road near ``where`` (named in the
        message).
    """
    if settings.reach_metric == "straight" or len(points) == 0:
        return None
    lon, lat = points["lon"].to_numpy(float), points["lat"].to_numpy(float)
    pad = (margin_m + settings.road_snap_m) * 1.05 / _M_PER_DEG
    widen = pad / max(np.cos(np.radians(np.nanmax(np.abs(lat)))), 0.1)
    box: dict[str, object] = {
        "x0": float(np.nanmin(lon) - widen),
        "y0": float(np.nanmin(lat) - pad),
        "x1": float(np.nanmax(lon) + widen),
        "y1": float(np.nanmax(lat) + pad),
    }
    rows = _frame(
        conn,
        "SELECT encode(ST_AsBinary(geom), 'hex') AS wkb FROM roads "
        "WHERE kind IS DISTINCT FROM 'expressway' "
        "AND geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)",
        box,
    )
    if len(rows) == 0:
        if settings.reach_metric == "network":
            raise InfeasibleSettings(
                f"GRIDSVC_REACH_METRIC=network: no walkable road is loaded near {where}; "
                "import a roads layer (gridsvc import roads FILE) or use auto/straight"
            )
        return None
    lines = shapely.from_wkb(rows["wkb"].to_numpy(dtype=object))
    return RoadNetwork.from_lines(_project(lines, epsg))


def _project(geoms: np.ndarray, epsg: int) -> np.ndarray:
    """WGS84 geometries to metres of ``epsg`` (all coordinates in one transform)."""

    def metres(coords: np.ndarray) -> np.ndarray:
        x, y, _ = to_metres(coords[:, 0], coords[:, 1], epsg=epsg)
        return np.column_stack([x, y])

    return shapely.transform(geoms, metres)


def _where(scope: Scope) -> str:
    return "every street" if scope.level == "all" else f"{scope.level} {scope.code}"


def _explained(
    conn: Connection, p: dict[str, object], households: pd.DataFrame, members: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the current plan's own explanations (``pairing_unpaired`` / ``pairing_reserve``):
    ``households.pairing_reason`` (why unpaired), ``members.pairing_reason`` (why without a
    cadre) and ``members.reserve_reason`` (why not serving households); None where none."""
    explained = conn.scalar(text("SELECT to_regclass('pairing_unpaired') IS NOT NULL"))
    why_hh = why_m = reserve = pd.DataFrame({"id": [], "reason": []})
    if explained:
        why_hh = _frame(
            conn,
            "SELECT u.household_id AS id, u.reason FROM plans p "
            "JOIN pairing_unpaired u ON u.run_id = p.household_run_id "
            "WHERE p.community_id = ANY(%(ids)s) AND u.household_id IS NOT NULL",
            p,
        )
        why_m = _frame(
            conn,
            "SELECT DISTINCT u.member_id AS id, u.reason FROM plans p "
            "JOIN pairing_unpaired u ON u.run_id = p.member_run_id "
            "JOIN members m ON m.id = u.member_id AND m.community_id = p.community_id "
            "WHERE p.community_id = ANY(%(ids)s)",
            p,
        )
        reserve = _frame(
            conn,
            "SELECT r.member_id AS id, r.reason FROM plans p "
            "JOIN pairing_reserve r ON r.run_id = p.household_run_id "
            "WHERE p.community_id = ANY(%(ids)s) AND r.member_id IS NOT NULL",
            p,
        )

    def lookup(ids: pd.Series, why: pd.DataFrame) -> pd.Series:
        found = ids.map(why.drop_duplicates("id").set_index("id")["reason"])
        return found.astype(object).where(found.notna(), None)

    households = households.assign(pairing_reason=lookup(households["household_id"], why_hh))
    members = members.assign(
        pairing_reason=lookup(members["member_id"], why_m),
        reserve_reason=lookup(members["member_id"], reserve),
    )
    return households, members


def _with_ranges(frame: pd.DataFrame, default: LoadRange) -> pd.DataFrame:
    """Resolved ranges (integers) even on an empty frame."""
    if frame.empty:
        return frame.assign(min_load=pd.Series(dtype=int), max_load=pd.Series(dtype=int))
    return fill_ranges(frame, default)


def _epsg(*frames: pd.DataFrame) -> int:
    """The UTM zone of the first non-empty frame's points (the demo's zone when all are empty)."""
    for frame in frames:
        if len(frame):
            return metric_epsg(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
    return 32648


def _pairs_exist(conn: Connection) -> bool:
    names = ("current_household_pairs", "current_member_pairs")
    found = [conn.scalar(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": n}) for n in names]
    return all(found)


def _frame(conn: Connection, sql: str, params: dict[str, object]) -> pd.DataFrame:
    """Run ``sql`` (psycopg ``%(name)s`` parameters) through COPY … CSV: fast for 10⁶ rows."""
    raw = conn.connection.driver_connection
    query = psycopg.ClientCursor(raw).mogrify(sql, params)
    buf = io.BytesIO()
    with raw.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)") as cp:
        for chunk in cp:
            buf.write(chunk)
    buf.seek(0)
    header = buf.readline().decode().strip().split(",")
    buf.seek(0)
    dtype = {c: "string" if c in _TEXT else "float64" for c in header if c in _TEXT | _FLOAT}
    frame = pd.read_csv(buf, dtype=dtype, true_values=["t"], false_values=["f"])
    for c in _TEXT & set(frame.columns):
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


_TEXT = {"code", "name", "street_code", "kind", "party_org", "level", "wkb", "reason"}
_FLOAT = {"lon", "lat", "x", "y", "distance_m", "area_m2", "floors"}


def _xy(frame: pd.DataFrame, epsg: int) -> pd.DataFrame:
    """Add ``x``/``y`` metres from ``lon``/``lat`` (NaN stays NaN)."""
    if len(frame) == 0:
        return frame.assign(x=pd.Series(dtype=float), y=pd.Series(dtype=float))
    x, y, _ = to_metres(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float), epsg=epsg)
    return frame.assign(x=x, y=y)
