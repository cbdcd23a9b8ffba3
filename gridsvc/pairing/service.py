"""Pairing service: load a scope from PostGIS, solve, persist runs, plans and proposals.

Functions take an open SQLAlchemy ``Connection`` (or ``Session``) and never commit: the caller
owns the transaction, so a failed solve persists nothing. Household pairs are solved per
community; member pairs per street (street cadres may take members of any of its communities).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from geodata.projection import metric_epsg, to_metres
from gridsvc.accounts import audit
from gridsvc.contacts.log import CHURN_CONTACTS_MAX, churn_reason, pair_contacts
from gridsvc.errors import Conflict, InputRejected, NotFound, Reject
from gridsvc.load_ranges import fill_ranges, range_sql
from gridsvc.pairing.problem import ANY_COMMUNITY, PairingProblem
from gridsvc.pairing.rebalance import diff_pairs
from gridsvc.pairing.result import PairingResult
from gridsvc.settings import Settings

Db = Connection | Session
Progress = Callable[[float, str], None]
LEVELS = ("households", "members")


@dataclass(frozen=True)
class RunSummary:
    """One persisted run."""

    id: int
    level: str
    scope: str
    status: str
    case: str
    n_clients: int
    n_paired: int
    coverage_bound: int
    n_active: int
    n_reserve: int
    cost_m: float
    lower_bound_m: float | None
    gap: float | None
    seconds: float
    bound_reason: str | None = None  # why there is no bound (gap None); result.BOUND_*
    gap_note: str | None = None

    @property
    def gap_text(self) -> str:
        """The gap as a planner reads it: a percentage, or "–" with why there is none."""
        if self.gap is not None:
            return f"{self.gap:.2%}"
        return f"– ({self.gap_note})" if self.gap_note else "–"


@dataclass(frozen=True)
class PairingReport:
    """What :func:`run_pairing` did: the runs, the plan versions it set, what it skipped."""

    runs: list[RunSummary]
    versions: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, outcomes: list[UnitOutcome]) -> PairingReport:
        """The report of units of work (in their order)."""
        versions: dict[str, int] = {}
        for o in outcomes:
            if o.skipped is None:
                versions.update(o.versions)
        return cls(
            [o.run for o in outcomes if o.run is not None],
            versions,
            {f"{o.level} {o.scope}": o.skipped for o in outcomes if o.skipped is not None},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "runs": [asdict(r) for r in self.runs],
            "versions": self.versions,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Proposal:
    """A rebalance proposal: the diff against the plan version it was made from."""

    id: int
    community: str
    community_id: int
    base_version: int
    run_id: int
    counts: dict[str, int]
    forced: int
    changes: list[dict[str, Any]]
    status: str = "open"
    cost_m: float | None = None
    churn_m: float | None = None
    lower_bound_m: float | None = None
    gap: float | None = None

    @property
    def summary(self) -> str:
        """One line of counts, and the proposal's cost with its proven gap when known."""
        c = self.counts
        line = (
            f"kept {c['kept']}, moved {c['moved']}, new {c['new']}, dropped {c['dropped']} "
            f"(changed {c['moved'] + c['new'] + c['dropped']}, forced by data {self.forced})"
        )
        if self.cost_m is None:
            return line
        gap = "–" if self.gap is None else f"{self.gap:.2%}"
        return (
            f"{line}; cost {self.cost_m:,.0f} m + churn {self.churn_m or 0:,.0f} m, "
            f"lower bound {self.lower_bound_m or 0:,.0f} m, gap {gap}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the web pages read ``counts`` and ``changes``)."""
        body = asdict(self)
        body["summary"] = self.summary
        return body


@dataclass(frozen=True)
class Decision:
    """The outcome of accepting or rejecting a proposal."""

    proposal_id: int
    community_id: int
    status: str
    version: int
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


# --- loading -----------------------------------------------------------------------------------


def _scope(db: Db, street_code: str | None, community_code: str | None) -> pd.DataFrame:
    """Communities in scope: id, code, street_id, street_code."""
    sql = (
        "SELECT c.id, c.code, c.street_id, s.code AS street_code FROM communities c "
        "JOIN streets s ON s.id = c.street_id "
    )
    if community_code:
        rows = db.execute(text(sql + "WHERE c.code = :c"), {"c": community_code}).all()
        what = f"community {community_code!r}"
    elif street_code:
        rows = db.execute(text(sql + "WHERE s.code = :s ORDER BY c.code"), {"s": street_code}).all()
        what = f"street {street_code!r}"
    else:
        rows = db.execute(text(sql + "ORDER BY c.code")).all()
        what = "any community"
    if not rows:
        raise NotFound(f"no such {what}")
    return pd.DataFrame(rows, columns=["id", "code", "street_id", "street_code"])


def scope_communities(db: Db, street_code: str | None, community_code: str | None) -> pd.DataFrame:
    """Communities of a scope (id, code, street_id, street_code); :class:`NotFound` if none."""
    return _scope(db, street_code, community_code)


def _points(db: Db, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    result = db.execute(text(sql), params)
    # the driver's tuples: SQLAlchemy's rows (and dicts of them) cost a community's unit
    # 15-60 ms of its 0.2-0.5 s on the city
    return pd.DataFrame.from_records(result.cursor.fetchall(), columns=list(result.keys()))


def _array(values: Any) -> str:
    """A PostgreSQL array literal of numbers or booleans (``CAST(:x AS float8[])``).

    Formatted by numpy: psycopg's list dumper spent ~40 ms of a community's unit on the
    ~4,000-row arrays of its pairs. Floats keep numpy's shortest round-trip form.
    """
    arr = np.asarray(values)
    if arr.dtype == bool:
        return "{" + ",".join(np.where(arr, "t", "f")) + "}"
    return "{" + ",".join(arr.astype(str)) + "}"


def _households(db: Db, community_ids: list[int]) -> pd.DataFrame:
    return _points(
        db,
        "SELECT h.id, h.code, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, "
        "coalesce(h.building_id, -1) AS building, coalesce(h.grid_id, -1) AS grid, "
        "h.community_id AS community FROM households h "
        "WHERE h.community_id = ANY(:ids) AND h.moved_out_at IS NULL ORDER BY h.id",
        {"ids": community_ids},
    )


def _members(db: Db, community_ids: list[int], settings: Settings) -> pd.DataFrame:
    frame = _points(
        db,
        "SELECT m.id, m.code, ST_X(m.geom) AS lon, ST_Y(m.geom) AS lat, "
        "coalesce(m.building_id, -1) AS building, coalesce(m.grid_id, -1) AS grid, "
        "m.community_id AS community, "
        "(m.eligible AND m.available AND m.moved_out_at IS NULL) AS eligible, "
        f"{range_sql('households', person='m', community='c', street='s')} "
        "FROM members m JOIN communities c ON c.id = m.community_id "
        "JOIN streets s ON s.id = c.street_id WHERE m.community_id = ANY(:ids) ORDER BY m.id",
        {"ids": community_ids},
    )
    return fill_ranges(frame, settings.household_load)


def _cadres(db: Db, street_id: int, settings: Settings) -> pd.DataFrame:
    frame = _points(
        db,
        "SELECT d.id, d.code, ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat, "
        "coalesce(d.community_id, :any) AS community, true AS eligible, "
        f"{range_sql('members', person='d', community='c', street='s')} "
        "FROM cadres d JOIN streets s ON s.id = d.street_id "
        "LEFT JOIN communities c ON c.id = d.community_id WHERE d.street_id = :s ORDER BY d.id",
        {"s": street_id, "any": ANY_COMMUNITY},
    )
    return fill_ranges(frame, settings.member_load)


def _controls(db: Db, level: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if level == "households":
        sql = "SELECT kind, household_id AS client, member_id AS server FROM pair_controls "
        sql += "WHERE household_id IS NOT NULL"
    else:
        sql = "SELECT kind, member_id AS client, cadre_id AS server FROM pair_controls "
        sql += "WHERE cadre_id IS NOT NULL"
    rows = pd.DataFrame(db.execute(text(sql)).all(), columns=["kind", "client", "server"])
    return rows[rows["kind"] == "pin"], rows[rows["kind"] == "forbid"]


def _scope_controls(
    db: Db, level: str, clients: pd.DataFrame, servers: pd.DataFrame
) -> list[pd.DataFrame]:
    """Pins and forbids between the scope's clients and servers, by code."""
    client_code = dict(zip(clients["id"], clients["code"], strict=True))
    server_code = dict(zip(servers["id"], servers["code"], strict=True))
    controls = []
    for frame in _controls(db, level):
        frame = frame.assign(
            client=frame["client"].map(client_code), server=frame["server"].map(server_code)
        )
        controls.append(frame.dropna(subset=["client", "server"]))
    return controls


def inputs_digest(
    frames: list[pd.DataFrame], *, settings: Settings, time_limit: float | None = None
) -> str:
    """A fingerprint of what a run solves: its clients, servers, controls and settings.

    Two runs with equal digests solve the same problem; ``time_limit`` is left out (a longer
    search of unchanged inputs is asked for with ``force``).
    """
    h = hashlib.sha256()
    for frame in frames:
        h.update(",".join(map(str, frame.columns)).encode())
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        h.update(b"|")
    h.update(json.dumps(_settings_dict(settings), sort_keys=True).encode())
    return h.hexdigest()


def _problem(
    clients: pd.DataFrame,
    servers: pd.DataFrame,
    *,
    level: str,
    db: Db,
    settings: Settings,
    current: pd.Series | None = None,
    churn: pd.Series | None = None,
    controls: list[pd.DataFrame] | None = None,
) -> PairingProblem:
    """Project to metres and pose the problem; controls outside the scope are ignored.

    ``churn``: extra metres for moving each client (by client id) off its current server.
    """
    lon = np.concatenate([clients["lon"], servers["lon"]])
    lat = np.concatenate([clients["lat"], servers["lat"]])
    x, y, _ = to_metres(lon, lat, epsg=metric_epsg(lon, lat))
    n = len(clients)
    c = pd.DataFrame({"x": x[:n], "y": y[:n]}, index=clients["code"].to_numpy())
    s = pd.DataFrame({"x": x[n:], "y": y[n:]}, index=servers["code"].to_numpy())
    for col in ("building", "grid", "community"):
        if col in clients:
            c[col] = clients[col].to_numpy()
        if col in servers:
            s[col] = servers[col].to_numpy()
    s["min_load"] = servers["min_load"].to_numpy()
    s["max_load"] = servers["max_load"].to_numpy()
    s["eligible"] = servers["eligible"].astype(bool).to_numpy()
    if current is not None:
        server_code = dict(zip(servers["id"], servers["code"], strict=True))
        c["current"] = clients["id"].map(current).map(server_code).to_numpy()
    if churn is not None:
        c["churn"] = clients["id"].map(churn).fillna(0.0).to_numpy(float)
    if controls is None:
        controls = _scope_controls(db, level, clients, servers)
    households = level == "households"
    return PairingProblem.from_frames(
        c,
        s,
        pinned=controls[0],
        forbidden=controls[1],
        building_penalty=settings.building_penalty_m if households else 0.0,
        grid_penalty=settings.grid_penalty_m if households else 0.0,
        max_distance=settings.max_pair_distance_m if households else None,
        cross_community=settings.cross_community if households else False,
        churn_weight=settings.churn_weight_m if current is not None else 0.0,
        client_label="household" if households else "member",
        server_label="member" if households else "cadre",
    )


# --- persisting --------------------------------------------------------------------------------


def _lock(db: Db, community_ids: list[int]) -> None:
    for cid in community_ids:
        if not db.execute(text("SELECT pg_try_advisory_xact_lock(:c)"), {"c": int(cid)}).scalar():
            raise Conflict(f"a pairing run for community id {cid} is already running")


def _save_run(
    db: Db,
    result: PairingResult,
    *,
    level: str,
    scope: str,
    street_id: int,
    community_id: int | None,
    kind: str,
    settings: Settings,
    created_by: str | None,
    client_ids: np.ndarray,
    server_ids: np.ndarray,
    job_id: int | None = None,
    digest: str | None = None,
) -> RunSummary:
    """Insert the run, its pairs, unpaired clients and reserve servers (database ids)."""
    lb, gap, gap_note = _bound(result)
    params = {
        "level": level,
        "scope": scope,
        "street": street_id,
        "comm": community_id,
        "kind": kind,
        "by": created_by,
        "settings": json.dumps(_settings_dict(settings)),
        "status": result.status,
        "case": result.case,
        "n": len(client_ids),
        "paired": result.n_paired,
        "bound": result.coverage_bound,
        "active": int(result.active.sum()),
        "reserve": len(result.reserve),
        "cost": result.cost,
        "lb": lb,
        "gap": gap,
        "timings": json.dumps(dict(result.timings)),
        "job": job_id,
        "digest": digest,
    }
    run_id = int(
        db.execute(
            text(
                "INSERT INTO pairing_runs (level, scope, street_id, community_id, kind, "
                'created_by, settings, status, "case", n_clients, n_paired, coverage_bound, '
                "n_active, n_reserve, cost_m, lower_bound_m, gap, timings, job_id, inputs_digest) "
                "VALUES (:level, :scope, :street, :comm, :kind, :by, CAST(:settings AS jsonb), "
                ":status, :case, :n, :paired, :bound, :active, :reserve, :cost, :lb, :gap, "
                "CAST(:timings AS jsonb), :job, :digest) RETURNING id"
            ),
            params,
        ).scalar_one()
    )
    c_db, s_db = client_ids[result.pair_client], server_ids[result.pair_server]
    # one statement per table over arrays (unnest): a row-by-row executemany of a community's
    # pairs took 2.2 s of a 5.6 s unit on the city
    if level == "households":
        client_col, server_col = "household_id", "member_id"
        columns = "same_building, same_grid, "
        flags = {
            "sb": _array(np.asarray(result.same_building, bool)),
            "sg": _array(np.asarray(result.same_grid, bool)),
        }
        arrays = "CAST(:sb AS boolean[]), CAST(:sg AS boolean[]), "
        table = "household_pairs"
    else:
        client_col, server_col = "member_id", "cadre_id"
        columns, flags, arrays, table = "", {}, "", "member_pairs"
    if len(c_db):
        db.execute(
            text(
                f"INSERT INTO {table} (run_id, {client_col}, {server_col}, distance_m, "
                f"{columns}pinned) SELECT :r, * FROM unnest(CAST(:c AS bigint[]), "
                f"CAST(:s AS bigint[]), CAST(:d AS float8[]), {arrays}CAST(:p AS boolean[]))"
            ),
            {
                "r": run_id,
                "c": _array(np.asarray(c_db, np.int64)),
                "s": _array(np.asarray(s_db, np.int64)),
                "d": _array(np.asarray(result.pair_distance, float)),
                "p": _array(np.asarray(result.pair_pinned, bool)),
                **flags,
            },
        )
    if len(result.unpaired):
        nearest = np.asarray(result.unpaired_distance, float)
        db.execute(
            text(
                f"INSERT INTO pairing_unpaired (run_id, {client_col}, rank, reason, nearest_m) "
                "SELECT :r, c, k, why, d FROM unnest(CAST(:c AS bigint[]), CAST(:k AS int[]), "
                "CAST(:why AS text[]), CAST(:d AS float8[])) AS u(c, k, why, d)"
            ),
            {
                "r": run_id,
                "c": np.asarray(client_ids[result.unpaired], np.int64).tolist(),
                "k": list(range(1, len(result.unpaired) + 1)),
                "why": [str(w) for w in result.unpaired_reason],
                "d": [float(d) if np.isfinite(d) else None for d in nearest],
            },
        )
    if len(result.reserve):
        db.execute(
            text(
                f"INSERT INTO pairing_reserve (run_id, {server_col}, reason) SELECT :r, s, why "
                "FROM unnest(CAST(:s AS bigint[]), CAST(:why AS text[])) AS u(s, why)"
            ),
            {
                "r": run_id,
                "s": np.asarray(server_ids[result.reserve], np.int64).tolist(),
                "why": [str(w) for w in result.reserve_reason],
            },
        )
    return RunSummary(
        id=run_id,
        level=level,
        scope=scope,
        status=result.status,
        case=result.case,
        n_clients=len(client_ids),
        n_paired=result.n_paired,
        coverage_bound=result.coverage_bound,
        n_active=int(result.active.sum()),
        n_reserve=len(result.reserve),
        cost_m=round(result.cost, 1),
        lower_bound_m=None if lb is None else round(lb, 1),
        gap=gap,
        seconds=round(float(result.timings.get("total", 0.0)), 3),
        bound_reason=result.bound_reason or None,
        gap_note=gap_note,
    )


def _bound(result: PairingResult) -> tuple[float | None, float | None, str | None]:
    """Lower bound, gap and, when there is no useful gap, why (the engine's own word first)."""
    from gridsvc.pairing.result import BOUND_REASONS_EN

    note = BOUND_REASONS_EN.get(result.bound_reason) if result.bound_reason else None
    lb = float(result.lower_bound) if np.isfinite(result.lower_bound) else None
    if lb is None:
        return None, None, note or "bound unavailable"
    if lb <= 0.0 < result.cost:
        return lb, None, note or "bound is trivial (0 m): no gap to report"
    gap = float(result.gap) if np.isfinite(result.gap) else None
    return lb, gap, None if gap is not None else (note or "bound unavailable")


def _settings_dict(settings: Settings) -> dict[str, Any]:
    return {
        "household_load": str(settings.household_load),
        "member_load": str(settings.member_load),
        "building_penalty_m": settings.building_penalty_m,
        "grid_penalty_m": settings.grid_penalty_m,
        "max_pair_distance_m": settings.max_pair_distance_m,
        "cross_community": settings.cross_community,
        "churn_weight_m": settings.churn_weight_m,
    }


def _set_plan(
    db: Db,
    community_id: int,
    column: str,
    run_id: int,
    by: str | None,
    *,
    expected: int | None = None,
) -> int:
    """Point the community's plan at ``run_id`` and bump its version (same transaction).

    With ``expected``, the write happens only while the plan is still at that version (0: no
    plan yet); otherwise :class:`Conflict` (another run committed this community since).
    """
    guard = "" if expected is None else " WHERE plans.version = :v"
    version = db.execute(
        text(
            f"INSERT INTO plans (community_id, version, {column}, updated_by) "
            "VALUES (:c, 1, :r, :by) ON CONFLICT (community_id) DO UPDATE SET "
            f"{column} = excluded.{column}, version = plans.version + 1, "
            f"updated_by = excluded.updated_by, updated_at = now(){guard} RETURNING version"
        ),
        {"c": community_id, "r": run_id, "by": by, "v": expected},
    ).scalar()
    if version is None or (expected is not None and int(version) != expected + 1):
        raise Conflict(
            f"community id {community_id}: its plan is no longer at version {expected} "
            "(another run committed it): nothing written"
        )
    return int(version)


@dataclass(frozen=True)
class UnitOutcome:
    """One unit of work (a community's households, or a street's members), committed alone."""

    level: str
    scope: str
    run: RunSummary | None = None
    versions: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (a job's result)."""
        return {
            "level": self.level,
            "scope": self.scope,
            "run": None if self.run is None else asdict(self.run),
            "versions": self.versions,
            "skipped": self.skipped,
        }


def _community_row(db: Db, community_code: str) -> Any:
    return next(_scope(db, None, community_code).itertuples())


def _wait_lock(db: Db, community_ids: list[int]) -> None:
    """Wait for every community's lock (a unit of a city run queues behind another writer)."""
    for cid in sorted(community_ids):
        db.execute(text("SELECT pg_advisory_xact_lock(:c)"), {"c": int(cid)})


def _current_digest(db: Db, community_ids: list[int], column: str) -> tuple[set[Any], int]:
    rows = db.execute(
        text(
            f"SELECT r.inputs_digest, p.version FROM plans p LEFT JOIN pairing_runs r "
            f"ON r.id = p.{column} WHERE p.community_id = ANY(:ids)"
        ),
        {"ids": community_ids},
    ).all()
    digests = {r.inputs_digest for r in rows}
    if len(rows) < len(community_ids):
        digests.add(None)
    return digests, max((int(r.version) for r in rows), default=0)


def pair_community(
    db: Db,
    *,
    community_code: str,
    settings: Settings,
    created_by: str | None = None,
    time_limit: float | None = None,
    job_id: int | None = None,
    base_version: int | None = None,
    force: bool = True,
    wait: bool = False,
) -> UnitOutcome:
    """Pair one community's households with its members and make it the plan (one unit).

    ``base_version`` is the plan version the city run saw when it started: a plan committed
    since (by another worker running the same unit, or a planner) refuses the write with
    :class:`Conflict`. Without ``force`` a community whose inputs are unchanged since its
    current plan is skipped. ``wait`` queues behind a run holding the community instead of
    refusing it.
    """
    row = _community_row(db, community_code)
    (_wait_lock if wait else _lock)(db, [int(row.id)])
    if job_id is not None:
        done = db.execute(
            text(
                "SELECT id FROM pairing_runs WHERE job_id = :j AND community_id = :c "
                "AND level = 'households'"
            ),
            {"j": job_id, "c": int(row.id)},
        ).scalar()
        if done is not None:
            return UnitOutcome("households", row.code, skipped=f"already committed (run {done})")
    clients = _households(db, [row.id])
    servers = _members(db, [row.id], settings)
    if clients.empty or servers.empty:
        return UnitOutcome("households", row.code, skipped="no households or no members")
    controls = _scope_controls(db, "households", clients, servers)
    problem = _problem(
        clients, servers, level="households", db=db, settings=settings, controls=controls
    )
    digest = inputs_digest([clients, servers, *controls], settings=settings)
    digests, version = _current_digest(db, [int(row.id)], "household_run_id")
    if not force and digests == {digest}:
        return UnitOutcome(
            "households",
            row.code,
            versions={row.code: version},
            skipped=f"unchanged since plan version {version}",
        )
    result = problem.solve(time_limit=time_limit)
    run = _save_run(
        db,
        result,
        level="households",
        scope=row.code,
        street_id=row.street_id,
        community_id=row.id,
        kind="pair",
        settings=settings,
        created_by=created_by,
        client_ids=clients["id"].to_numpy(),
        server_ids=servers["id"].to_numpy(),
        job_id=job_id,
        digest=digest,
    )
    new = _set_plan(db, row.id, "household_run_id", run.id, created_by, expected=base_version)
    return UnitOutcome("households", row.code, run=run, versions={row.code: new})


def pair_street(
    db: Db,
    *,
    street_code: str,
    settings: Settings,
    created_by: str | None = None,
    time_limit: float | None = None,
    job_id: int | None = None,
    force: bool = True,
    wait: bool = False,
    locked: list[int] | None = None,
) -> UnitOutcome:
    """Pair a street's members (all its communities) with its cadres and set every plan."""
    comms = _scope(db, street_code, None)
    ids = [int(c) for c in comms["id"]]
    (_wait_lock if wait else _lock)(db, [c for c in ids if c not in (locked or [])])
    street_id = int(comms["street_id"].iloc[0])
    if job_id is not None:
        done = db.execute(
            text(
                "SELECT id FROM pairing_runs WHERE job_id = :j AND street_id = :s "
                "AND level = 'members'"
            ),
            {"j": job_id, "s": street_id},
        ).scalar()
        if done is not None:
            return UnitOutcome("members", street_code, skipped=f"already committed (run {done})")
    clients = _members(db, ids, settings)
    servers = _cadres(db, street_id, settings)
    if clients.empty or servers.empty:
        return UnitOutcome("members", street_code, skipped="no members or no cadres")
    clients = clients.assign(eligible=True)
    controls = _scope_controls(db, "members", clients, servers)
    problem = _problem(
        clients, servers, level="members", db=db, settings=settings, controls=controls
    )
    digest = inputs_digest([clients, servers, *controls], settings=settings)
    digests, version = _current_digest(db, ids, "member_run_id")
    if not force and digests == {digest}:
        return UnitOutcome(
            "members", street_code, skipped=f"unchanged since plan version {version}"
        )
    result = problem.solve(time_limit=time_limit)
    run = _save_run(
        db,
        result,
        level="members",
        scope=street_code,
        street_id=street_id,
        community_id=None,
        kind="pair",
        settings=settings,
        created_by=created_by,
        client_ids=clients["id"].to_numpy(),
        server_ids=servers["id"].to_numpy(),
        job_id=job_id,
        digest=digest,
    )
    versions = {
        c.code: _set_plan(db, c.id, "member_run_id", run.id, created_by) for c in comms.itertuples()
    }
    return UnitOutcome("members", street_code, run=run, versions=versions)


# --- public API --------------------------------------------------------------------------------


def run_pairing(
    db: Db,
    *,
    settings: Settings,
    street_code: str | None = None,
    community_code: str | None = None,
    level: str = "all",
    created_by: str | None = None,
    progress: Progress | None = None,
    time_limit: float | None = None,
    force: bool = True,
) -> PairingReport:
    """Pair a street or community (default: everything) in the caller's one transaction.

    ``level`` is ``households``, ``members`` or ``all``. Member pairs are solved for the whole
    street of the scope. ``time_limit``: seconds of search per community (``None``: by its
    size, :func:`gridsvc.pairing.problem.time_budget`). Raises :class:`Conflict` when a run
    for one of the communities is in progress, :class:`InfeasibleSettings` for impossible
    settings, :class:`SolverFailed` when a solver did not prove its result (nothing is
    persisted then: the caller rolls back). City runs that commit each community on its own,
    on every core or on the job queue, are :mod:`gridsvc.pairing.city`.
    """
    check_level(level)
    scope = _scope(db, street_code, community_code)
    _lock(db, scope["id"].tolist())
    outcomes: list[UnitOutcome] = []
    steps = (len(scope) if level != "members" else 0) + (
        scope["street_id"].nunique() if level != "households" else 0
    )

    def tick(what: str) -> None:
        if progress:
            progress(len(outcomes) / max(steps, 1), what)

    options = {"settings": settings, "created_by": created_by, "time_limit": time_limit}
    if level in ("households", "all"):
        for row in scope.itertuples():
            outcomes.append(pair_community(db, community_code=row.code, force=force, **options))
            tick(row.code)
    if level in ("members", "all"):
        for code in scope["street_code"].unique():
            outcomes.append(
                pair_street(
                    db, street_code=code, force=force, locked=scope["id"].tolist(), **options
                )
            )
            tick(code)
    return PairingReport.of(outcomes)


def check_level(level: str) -> None:
    """Refuse a level other than households, members or all."""
    if level not in (*LEVELS, "all"):
        raise InputRejected(
            "bad level",
            [Reject("pair", None, "level", "expected households, members or all", level)],
        )


def plan_version(db: Db, community_id: int) -> int:
    """The community's current plan version (0 when it has none)."""
    version = db.execute(
        text("SELECT version FROM plans WHERE community_id = :c"), {"c": community_id}
    ).scalar()
    return int(version or 0)


def propose_rebalance(
    db: Db,
    *,
    community_code: str,
    settings: Settings,
    created_by: str | None = None,
    actor_id: int | None = None,
    time_limit: float = 2.0,
    progress: Callable[[float, str], None] | None = None,
) -> Proposal:
    """Re-solve a community's household pairs keeping its current plan where it can.

    Pairs that are not current cost ``settings.churn_weight_m`` extra metres. The result is
    stored as a run and a proposal (the diff against the current plan version); the plan is
    unchanged until the proposal is accepted. One open proposal per community, plan version
    and data version: asking again returns the open one (a double click makes one proposal).
    The new proposal is written to the audit log (``proposal``) as ``created_by``/``actor_id``.
    """
    scope = _scope(db, None, community_code)
    row = scope.iloc[0]
    cid = int(row["id"])
    _lock(db, [cid])
    base = plan_version(db, cid)
    data_ver = _inputs_fingerprint(db, cid)
    existing = _reusable_proposal(db, cid, base, data_ver, community_code)
    if existing is not None:
        return existing
    if progress:
        progress(0.1, "loading")
    clients = _households(db, [cid])
    servers = _members(db, [cid], settings)
    if clients.empty or servers.empty:
        raise NotFound(f"community {community_code!r} has no households or no members")
    current_pairs = pd.DataFrame(
        db.execute(
            text(
                "SELECT household_id, member_id FROM current_household_pairs "
                "WHERE community_id = :c"
            ),
            {"c": cid},
        ).all(),
        columns=["household_id", "member_id"],
    )
    current = current_pairs.set_index("household_id")["member_id"]
    contacts = _recent_contacts(db, cid)
    problem = _problem(
        clients,
        servers,
        level="households",
        db=db,
        settings=settings,
        current=current,
        churn=contacts.clip(upper=CHURN_CONTACTS_MAX) * settings.contact_churn_m,
    )
    if progress:
        progress(0.3, "solving")
    result = problem.solve(time_limit=time_limit)
    if progress:
        progress(0.8, "saving")
    run = _save_run(
        db,
        result,
        level="households",
        scope=community_code,
        street_id=int(row["street_id"]),
        community_id=cid,
        kind="rebalance",
        settings=settings,
        created_by=created_by,
        client_ids=clients["id"].to_numpy(),
        server_ids=servers["id"].to_numpy(),
    )
    cur = problem.current if problem.current is not None else np.full(len(clients), -1)
    diff = diff_pairs(cur, result, server_gone=~problem.server_eligible)
    codes_c, codes_s = problem.client_ids, problem.server_ids

    def server_code(j: Any) -> str | None:
        return None if j is None or int(j) < 0 else str(codes_s[int(j)])

    changes = [
        {
            "kind": kind,
            "client": str(codes_c[r.client]),
            "old_server": server_code(getattr(r, "old_server", None)),
            "server": server_code(getattr(r, "server", None)),
            "reason": r.reason,
        }
        for kind, frame in (("moved", diff.moved), ("new", diff.new), ("dropped", diff.dropped))
        for r in frame.itertuples()
    ]
    _contact_reasons(changes, contacts, clients, problem, diff)
    counts = {
        "kept": len(diff.kept),
        "moved": len(diff.moved),
        "new": len(diff.new),
        "dropped": len(diff.dropped),
    }
    quality = {
        "cost_m": round(result.cost, 1),
        "churn_m": round(result.churn_cost, 1),
        "lower_bound_m": run.lower_bound_m,
        "gap": run.gap,
    }
    pid = int(
        db.execute(
            text(
                "INSERT INTO proposals (community_id, base_version, run_id, summary, changes, "
                "created_by) VALUES (:c, :v, :r, CAST(:s AS jsonb), CAST(:ch AS jsonb), :by) "
                "RETURNING id"
            ),
            {
                "c": cid,
                "v": base,
                "r": run.id,
                "s": json.dumps({**counts, "forced": diff.forced, **quality, "inputs": data_ver}),
                "ch": json.dumps(changes, ensure_ascii=False),
                "by": created_by,
            },
        ).scalar_one()
    )
    made = Proposal(pid, community_code, cid, base, run.id, counts, diff.forced, changes, **quality)
    audit.record(
        db,
        "proposal",
        username=created_by,
        user_id=actor_id,
        target=f"proposal {pid}",
        community_id=cid,
        details={"community": community_code, "base_version": base, **counts, "run_id": run.id},
    )
    return made


def _inputs_fingerprint(db: Db, community_id: int) -> str:
    """A digest of what a rebalance of the community reads: its households, members and
    pair controls, row by row (a change to any of them makes a new proposal)."""
    return str(
        db.execute(
            text(
                "SELECT md5(concat("
                "(SELECT string_agg(h::text, '|' ORDER BY h.id) FROM households h "
                "WHERE h.community_id = :c), '#', "
                "(SELECT string_agg(m::text, '|' ORDER BY m.id) FROM members m "
                "WHERE m.community_id = :c), '#', "
                "(SELECT string_agg(p::text, '|' ORDER BY p::text) FROM pair_controls p), '#', "
                "(SELECT concat(c::text, s::text) FROM communities c "
                "JOIN streets s ON s.id = c.street_id WHERE c.id = :c)))"
            ),
            {"c": community_id},
        ).scalar()
    )


def _reusable_proposal(
    db: Db, community_id: int, base: int, data_ver: str, community_code: str
) -> Proposal | None:
    """The open proposal made from this plan version and these inputs, if any."""
    row = db.execute(
        text(
            "SELECT id, base_version, run_id, summary, changes FROM proposals "
            "WHERE community_id = :c AND status = 'open' AND base_version = :v "
            "AND summary->>'inputs' = :d ORDER BY id DESC LIMIT 1"
        ),
        {"c": community_id, "v": base, "d": data_ver},
    ).first()
    if row is None:
        return None
    s = row.summary
    counts = {k: int(s.get(k, 0)) for k in ("kept", "moved", "new", "dropped")}
    quality = {k: s.get(k) for k in ("cost_m", "churn_m", "lower_bound_m", "gap")}
    return Proposal(
        int(row.id),
        community_code,
        community_id,
        int(row.base_version),
        int(row.run_id),
        counts,
        int(s.get("forced", 0)),
        list(row.changes or []),
        **quality,
    )


def reusable_proposal(db: Db, *, community_code: str) -> Proposal | None:
    """The open proposal :func:`propose_rebalance` would return now without solving, if any."""
    cid = db.execute(
        text("SELECT id FROM communities WHERE code = :c"), {"c": community_code}
    ).scalar()
    if cid is None:
        return None
    data_ver = _inputs_fingerprint(db, int(cid))
    return _reusable_proposal(db, int(cid), plan_version(db, int(cid)), data_ver, community_code)


def open_proposals(db: Db) -> list[dict[str, Any]]:
    """Open proposals of the communities the caller sees, newest first."""
    rows = db.execute(
        text(
            "SELECT p.id, c.code AS community, c.name AS community_name, p.base_version, "
            "p.created_by, p.created_at, p.summary FROM proposals p "
            "JOIN communities c ON c.id = p.community_id WHERE p.status = 'open' "
            "ORDER BY p.id DESC LIMIT 200"
        )
    ).all()
    return [dict(r._mapping) for r in rows]


def _recent_contacts(db: Db, community_id: int) -> pd.Series:
    """Contacts of the last 90 days of each current pair (empty before the contact log)."""
    exists = db.execute(text("SELECT to_regclass('contacts') IS NOT NULL")).scalar()
    return pair_contacts(db, community_id) if exists else pd.Series(dtype="int64")  # type: ignore[arg-type]


def _contact_reasons(
    changes: list[dict[str, Any]],
    contacts: pd.Series,
    clients: pd.DataFrame,
    problem: PairingProblem,
    diff: Any,
) -> None:
    """Say which pairs the contacts kept ("kept: 6 contacts in 90 days") and which moved despite
    them; appended to the proposal's changes as kind ``kept``."""
    if contacts.empty:
        return
    by_code = clients.set_index("code")["id"]
    codes_c, codes_s = problem.client_ids, problem.server_ids
    for r in diff.kept.itertuples():
        n = int(contacts.get(by_code.get(codes_c[r.client]), 0))
        if n:
            changes.append(
                {
                    "kind": "kept",
                    "client": str(codes_c[r.client]),
                    "old_server": str(codes_s[r.server]),
                    "server": str(codes_s[r.server]),
                    "reason": churn_reason(min(n, CHURN_CONTACTS_MAX)),
                }
            )
    for change in changes:
        n = int(contacts.get(by_code.get(change["client"]), 0))
        if change["kind"] == "moved" and n:
            change["reason"] += f"; {n} contacts in 90 days"


def _open_proposal(db: Db, proposal_id: int) -> Any:
    row = db.execute(
        text(
            "SELECT id, community_id, base_version, run_id, status FROM proposals "
            "WHERE id = :i FOR UPDATE"
        ),
        {"i": proposal_id},
    ).first()
    if row is None:
        raise NotFound(f"no proposal {proposal_id}")
    if row.status != "open":
        raise Conflict(f"proposal {proposal_id} is already {row.status}")
    return row


def accept_proposal(
    db: Db,
    proposal_id: int,
    *,
    expected_version: int | None = None,
    decided_by: str | None = None,
    actor_id: int | None = None,
    reason: str = "",
) -> Decision:
    """Make a proposal the community's plan (a new version), in the caller's transaction.

    Written to the audit log (``proposal_accept``) as ``decided_by``/``actor_id``.

    Raises :class:`Conflict` when the plan changed since the proposal was made (or since the
    version the caller reviewed): the proposal is stale and must be made again.
    """
    row = _open_proposal(db, proposal_id)
    plan = db.execute(
        text("SELECT version, household_run_id FROM plans WHERE community_id = :c FOR UPDATE"),
        {"c": row.community_id},
    ).first()
    version = int(plan.version) if plan else 0
    stale = version != row.base_version or (
        expected_version is not None and expected_version != version
    )
    if stale:
        raise Conflict(
            f"proposal {proposal_id} was made from plan version {row.base_version}, "
            f"the plan is at version {version}: make a new proposal"
        )
    new_version = _set_plan(db, row.community_id, "household_run_id", row.run_id, decided_by)
    _close_proposal(db, proposal_id, "accepted", decided_by, reason)
    decision = Decision(
        proposal_id,
        int(row.community_id),
        "accepted",
        new_version,
        before={"version": version, "run_id": None if plan is None else plan.household_run_id},
        after={"version": new_version, "run_id": int(row.run_id)},
    )
    _audit_decision(db, decision, decided_by, actor_id, reason)
    return decision


def _audit_decision(
    db: Db, decision: Decision, by: str | None, actor_id: int | None, reason: str
) -> None:
    audit.record(
        db,
        "proposal_accept" if decision.status == "accepted" else "proposal_reject",
        username=by,
        user_id=actor_id,
        target=f"proposal {decision.proposal_id}",
        reason=reason,
        before=decision.before,
        after=decision.after,
        community_id=decision.community_id,
    )


def _close_proposal(
    db: Db, proposal_id: int, status: str, decided_by: str | None, reason: str
) -> None:
    db.execute(
        text(
            "UPDATE proposals SET status = :s, decided_by = :by, decided_at = now(), "
            "reason = :why WHERE id = :i"
        ),
        {"s": status, "by": decided_by, "why": reason, "i": proposal_id},
    )


def reject_proposal(
    db: Db,
    proposal_id: int,
    *,
    decided_by: str | None = None,
    actor_id: int | None = None,
    reason: str = "",
) -> Decision:
    """Close a proposal without changing the plan (audited: ``proposal_reject``)."""
    row = _open_proposal(db, proposal_id)
    _close_proposal(db, proposal_id, "rejected", decided_by, reason)
    decision = Decision(
        proposal_id, int(row.community_id), "rejected", plan_version(db, row.community_id)
    )
    _audit_decision(db, decision, decided_by, actor_id, reason)
    return decision


def set_control(
    db: Db,
    kind: str,
    *,
    server_code: str,
    household_code: str | None = None,
    member_code: str | None = None,
    created_by: str | None = None,
) -> int:
    """Pin or forbid a pair: household–member (``household_code``) or member–cadre."""
    if kind not in ("pin", "forbid"):
        raise InputRejected("bad control", [Reject("control", None, "kind", "pin or forbid", kind)])
    if household_code:
        sql = (
            "INSERT INTO pair_controls (kind, household_id, member_id, created_by) "
            "SELECT :k, h.id, m.id, :by FROM households h, members m "
            "WHERE h.code = :c AND m.code = :s RETURNING id"
        )
        client = household_code
    else:
        sql = (
            "INSERT INTO pair_controls (kind, member_id, cadre_id, created_by) "
            "SELECT :k, m.id, d.id, :by FROM members m, cadres d "
            "WHERE m.code = :c AND d.code = :s RETURNING id"
        )
        client = member_code
    got = db.execute(
        text(sql), {"k": kind, "c": client, "s": server_code, "by": created_by}
    ).scalar()
    if got is None:
        raise NotFound(f"no such pair {client!r} → {server_code!r}")
    return int(got)


def current_pairs(db: Db, *, street_code: str | None = None, community_code: str | None = None):
    """Rows of the current plans: level, client, server, distance_m, same_building, same_grid."""
    ids = _scope(db, street_code, community_code)["id"].tolist()
    rows = (
        db.execute(
            text(
                "SELECT 'households' AS level, h.code AS client, m.code AS server, p.distance_m, "
                "p.same_building, p.same_grid, ST_X(h.geom) AS x0, ST_Y(h.geom) AS y0, "
                "ST_X(m.geom) AS x1, ST_Y(m.geom) AS y1 "
                "FROM current_household_pairs p JOIN households h ON h.id = p.household_id "
                "JOIN members m ON m.id = p.member_id WHERE p.community_id = ANY(:ids) "
                "UNION ALL "
                "SELECT 'members', m.code, d.code, p.distance_m, NULL, NULL, ST_X(m.geom), "
                "ST_Y(m.geom), ST_X(d.geom), ST_Y(d.geom) FROM current_member_pairs p "
                "JOIN members m ON m.id = p.member_id JOIN cadres d ON d.id = p.cadre_id "
                "WHERE p.community_id = ANY(:ids) ORDER BY 1, 2"
            ),
            {"ids": ids},
        )
        .mappings()
        .all()
    )
    return pd.DataFrame(
        rows,
        columns=[
            "level",
            "client",
            "server",
            "distance_m",
            "same_building",
            "same_grid",
            "x0",
            "y0",
            "x1",
            "y1",
        ],
    )
