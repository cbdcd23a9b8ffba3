"""Background jobs (city-wide pairing runs, large imports) on procrastinate, a PostgreSQL queue.

The web app writes a row of ``jobs`` (what, for whom, progress) and defers ``gridsvc:run_job``;
``gridsvc worker`` runs it. A job works as the ``gridsvc_app`` role with the scope of the user
who asked (``SET LOCAL ROLE`` on the worker's own connection: the worker runs no user SQL), so
row-level security bounds it exactly as it bounds that user's requests.

``jobs.payload`` (bytea) holds a job's input file while it waits or runs (an upload to import)
and, once it ends, its downloadable output (an import's rejects CSV) or nothing: the input is
dropped in the statement that records the end. Keeping the file in the database, not in a spool
folder, works wherever the worker runs (docker-compose gives the app and the worker no shared
volume), commits with the job row or not at all, and leaves no orphan file when a worker dies.

Workers die (kill -9, a machine lost): every worker beats a heartbeat into procrastinate's
``procrastinate_workers`` (GRIDSVC_WORKER_HEARTBEAT_S) and a periodic task,
``gridsvc:retry_stalled`` (every GRIDSVC_STALLED_CHECK_S seconds, on whichever worker is alive),
asks procrastinate for the jobs of workers silent for GRIDSVC_WORKER_STALLED_S
(``get_stalled_jobs``) and retries them (``retry_job``). The job row goes back to ``queued``
first, so the retried task runs it again; an import job is failed instead and its uploaded
file dropped (an import commits all or nothing, so nothing of it was kept).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import procrastinate
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from gridsvc.accounts.scope import APP_ROLE, apply_scope
from gridsvc.accounts.users import User, get_user
from gridsvc.db import make_engine
from gridsvc.errors import GridsvcError, NotFound
from gridsvc.settings import Settings, load_settings

#: The queue's task: run a recorded job.
TASK = "gridsvc:run_job"
#: A queued city pairing run's follower (re-deferred until the run ends).
FOLLOW = "gridsvc:follow_job"
#: The periodic look for jobs of dead workers.
RETRY_STALLED = "gridsvc:retry_stalled"
#: Queue priorities (higher first): housekeeping, then street units, then communities.
MAINTENANCE, STREET_UNIT = 20, 10
Progress = Callable[[float, str], None]
_DEFER_LOCK = threading.Lock()


def conninfo(url: str) -> str:
    """A libpq URL for psycopg from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_queue(
    url: str,
    *,
    min_size: int = 4,
    max_size: int | None = None,
    stalled_check_s: int = 10,
) -> procrastinate.App:
    """The job queue on the database at ``url`` with gridsvc's tasks (a new app each call).

    The tasks are registered on each app: adding a shared blueprint to a second app renames its
    tasks (``gridsvc:gridsvc:run_job``), so a process that made two queues lost the task.
    ``min_size`` and ``max_size`` size its connection pool (psycopg_pool's defaults);
    ``stalled_check_s`` is the period of the look for dead workers' jobs.
    """
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(url), min_size=min_size, max_size=max_size
    )
    app = procrastinate.App(connector=connector)
    app.task(name=TASK, pass_context=False)(run_job)
    # Housekeeping runs before any waiting unit (higher priority): a busy queue must not hold
    # back the recovery of a dead worker's job, nor the street level of a finished street.
    app.task(name=FOLLOW, pass_context=False, priority=MAINTENANCE)(follow_job)
    stalled = app.task(
        name=RETRY_STALLED, queueing_lock=RETRY_STALLED, pass_context=True, priority=MAINTENANCE
    )(retry_stalled)
    app.periodic(
        # croniter's sixth field is the seconds: every stalled_check_s seconds of every minute
        cron=f"* * * * * */{stalled_check_s}",
        periodic_id="dead-workers",
        priority=MAINTENANCE,
    )(stalled)
    return app


def worker_options(settings: Settings) -> dict[str, float]:
    """Heartbeat and dead-worker timings of ``run_worker`` from the settings."""
    return {
        "update_heartbeat_interval": settings.worker_heartbeat_s,
        "stalled_worker_timeout": settings.worker_stalled_s,
    }


async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> int:
    """Put the jobs of dead workers back on the queue (procrastinate's stalled-job API)."""
    import asyncio

    settings = load_settings()
    manager = context.app.job_manager
    jobs = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.worker_stalled_s)
    count = 0
    for job in jobs:
        if job.task_name == RETRY_STALLED:
            continue
        if job.task_name == TASK:
            await asyncio.to_thread(requeue_lost, settings, int(job.task_kwargs["job_id"]))
        await manager.retry_job(job)
        count += 1
    return count


def requeue_lost(settings: Settings, job_id: int) -> str | None:
    """A dead worker's job: back to ``queued`` (an import: failed, its file dropped)."""
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            return conn.scalar(
                text(
                    "UPDATE jobs SET status = CASE WHEN kind = 'import' THEN 'failed' "
                    "ELSE 'queued' END, payload = CASE WHEN kind = 'import' THEN NULL "
                    "ELSE payload END, error = CASE WHEN kind = 'import' THEN :e END, "
                    "finished_at = CASE WHEN kind = 'import' THEN now() END, started_at = NULL "
                    "WHERE id = :i AND status = 'running' AND kind <> 'pairing' "
                    "RETURNING status"
                ),
                {"i": job_id, "e": "the worker running this import was lost: upload it again"},
            )
    finally:
        engine.dispose()


@functools.cache
def _deferring_queue(url: str) -> procrastinate.App:
    """One queue app per database and process for deferring (each new app renames
    procrastinate's own built-in tasks once more)."""
    return make_queue(url, min_size=1, max_size=1)


def create_job(
    conn: Connection,
    kind: str,
    *,
    user_id: int,
    params: dict[str, Any],
    street_id: int | None = None,
    community_id: int | None = None,
    payload: bytes | None = None,
) -> int:
    """Record a queued job (with its input file, if any); the caller defers it after committing."""
    return int(
        conn.scalar(
            text(
                "INSERT INTO jobs (kind, params, user_id, street_id, community_id, payload) "
                "VALUES (:k, CAST(:p AS jsonb), :u, :s, :c, :b) RETURNING id"
            ),
            {
                "k": kind,
                "p": json.dumps(params),
                "u": user_id,
                "s": street_id,
                "c": community_id,
                "b": payload,
            },
        )
    )


def active_job(
    conn: Connection,
    kind: str,
    *,
    user_id: int,
    street_id: int | None,
    community_id: int | None,
) -> tuple[int, str] | None:
    """The user's queued or running job of ``kind`` on this scope (id, status), if any.

    Takes a transaction-level advisory lock on (kind, user, scope) first, so two requests at
    once cannot both find none and queue two: the second waits for the first to commit.
    """
    key = f"job:{kind}:{user_id}:{street_id}:{community_id}"
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
    found = conn.execute(
        text(
            "SELECT id, status FROM jobs WHERE kind = :k AND user_id = :u "
            "AND street_id IS NOT DISTINCT FROM :s AND community_id IS NOT DISTINCT FROM :c "
            "AND status IN ('queued', 'running') ORDER BY id LIMIT 1"
        ),
        {"k": kind, "u": user_id, "s": street_id, "c": community_id},
    ).first()
    return None if found is None else (int(found.id), str(found.status))


def defer_job(queue_url: str, job_id: int) -> None:
    """Put a recorded job on the queue (one connection, opened for it and closed)."""
    defer_jobs(queue_url, [job_id])


def defer_jobs(
    queue_url: str, job_ids: list[int], *, follow: int | None = None, priority: int = 0
) -> None:
    """Put recorded jobs on the queue (once each: a job already waiting is not queued twice),
    and a city run's follower when ``follow`` names it."""
    queue = _deferring_queue(queue_url)
    with _DEFER_LOCK, queue.open():
        for job_id in job_ids:
            with contextlib.suppress(procrastinate.exceptions.AlreadyEnqueued):
                queue.tasks[TASK].configure(
                    queueing_lock=f"gridsvc-job-{job_id}", priority=priority
                ).defer(job_id=job_id)
        if follow is not None:
            _defer_follow(queue, follow, 0.0)


def _defer_follow(queue: procrastinate.App, parent_id: int, seconds: float) -> None:
    with contextlib.suppress(procrastinate.exceptions.AlreadyEnqueued):
        queue.tasks[FOLLOW].configure(
            queueing_lock=f"gridsvc-follow-{parent_id}", schedule_in={"seconds": seconds}
        ).defer(job_id=parent_id)


def follow_job(job_id: int) -> None:
    """The follower of a queued city pairing run (the queue's task): one look, then again
    in GRIDSVC_FOLLOW_S seconds until the run has ended."""
    from gridsvc.pairing.city import follow_step

    settings = load_settings()
    done = follow_step(
        _worker_engine(settings.database_url),
        job_id,
        defer=lambda ids: defer_jobs(settings.database_url, list(ids), priority=STREET_UNIT),
    )
    if not done:
        queue = _deferring_queue(settings.database_url)
        with _DEFER_LOCK, queue.open():
            _defer_follow(queue, job_id, settings.follow_s)


#: Jobs a user may see: their own; an admin also those inside their scope (an admin without a
#: scope: all). Scope functions and ``communities`` are those of the request's row-level security.
_VISIBLE = (
    "(user_id = :u OR (CAST(:admin AS boolean) AND (gridsvc_scope_all() "
    "OR street_id = gridsvc_scope_street() OR community_id IN (SELECT id FROM communities))))"
)


def job_status(conn: Connection, job_id: int, *, user: User) -> dict[str, Any]:
    """A job's status, progress and result, when ``user`` may see it.

    Raises
    ------
    NotFound
        No such job, or one the user may not see (another user's; for an admin, outside their
        scope).
    """
    row = conn.execute(
        text(
            "SELECT id, kind, status, progress, message, result, error, params, created_at, "
            "started_at, finished_at, payload IS NOT NULL AS has_output FROM jobs "
            f"WHERE id = :i AND {_VISIBLE}"
        ),
        {"i": job_id, "u": user.id, "admin": user.is_admin},
    ).first()
    if row is None:
        raise NotFound(f"job {job_id}: no such job of yours")
    body = dict(row._mapping)
    for key in ("created_at", "started_at", "finished_at"):
        body[key] = body[key].isoformat() if body[key] else None
    body["children"] = _children_status(conn, job_id)
    return body


def _children_status(conn: Connection, job_id: int) -> list[dict[str, Any]]:
    """A city run's units: per community (then street) its status, cost and gap."""
    rows = conn.execute(
        text(
            "SELECT j.id, j.kind, j.status, coalesce(j.params->>'community', "
            "j.params->>'street') AS scope, coalesce(c.name, s.name) AS name, "
            "(j.result->'run'->>'cost_m')::float AS cost_m, "
            "(j.result->'run'->>'gap')::float AS gap, "
            "(j.result->'run'->>'n_paired')::int AS n_paired, "
            "(j.result->'run'->>'n_clients')::int AS n_clients, "
            "j.result->>'skipped' AS skipped, j.error FROM jobs j "
            "LEFT JOIN communities c ON c.id = j.community_id "
            "LEFT JOIN streets s ON s.id = j.street_id AND j.community_id IS NULL "
            "WHERE j.parent_id = :p ORDER BY j.kind, scope"
        ),
        {"p": job_id},
    ).all()
    return [dict(r._mapping) for r in rows]


def job_output(conn: Connection, job_id: int, *, user: User) -> bytes:
    """The output file of a finished job ``user`` may see (an import's rejects CSV).

    Raises
    ------
    NotFound
        No such job for this user, or it is not finished or left no file.
    """
    payload = conn.scalar(
        text(
            "SELECT payload FROM jobs WHERE id = :i AND status IN ('done', 'failed') "
            f"AND {_VISIBLE}"
        ),
        {"i": job_id, "u": user.id, "admin": user.is_admin},
    )
    if payload is None:
        raise NotFound(f"job {job_id}: no finished job of yours with a file to download")
    return bytes(payload)


def job_input(conn: Connection, job_id: int) -> bytes:
    """The input file of a running job (for its handler)."""
    payload = conn.scalar(
        text("SELECT payload FROM jobs WHERE id = :i AND status = 'running'"), {"i": job_id}
    )
    if payload is None:
        raise NotFound(f"job {job_id}: no input file (already used, or not running)")
    return bytes(payload)


@dataclass(frozen=True)
class Job:
    """A job as its handler sees it."""

    id: int
    kind: str
    params: dict[str, Any]
    user: User | None
    parent_id: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What a handler returns: the result, an error (the job failed, yet its transaction
    commits: logs and audit entries stay) and an output file (``jobs.payload``)."""

    result: dict[str, Any]
    error: str | None = None
    output: bytes | None = field(default=None, repr=False)
    #: The job goes on (a city run waiting for its children): it stays ``running``; ``defer``
    #: names the jobs to queue once this transaction commits, ``follow`` its follower.
    pending: bool = False
    defer: list[int] = field(default_factory=list)
    follow: int | None = None


Handler = Callable[[Connection, Job, Settings, Progress], dict[str, Any] | Outcome]
#: Job kind → handler(conn, job, settings, progress) -> result dict or :class:`Outcome`.
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``kind``."""

    def register(func: Handler) -> Handler:
        HANDLERS[kind] = func
        return func

    return register


@handler("pairing")
def _pairing(conn: Connection, job: Job, settings: Settings, progress: Progress) -> Outcome:
    """A city run on the queue: one job per community and per street, and a follower."""
    from gridsvc.pairing import city

    city.fan_out(conn, job.id, job.params, settings)
    kids = [k for k in city.children(conn, job.id) if k.kind == city.COMMUNITY]
    # largest first (the queue hands jobs out in the order deferred): no big one ends the run
    ids = [k.id for k in sorted(kids, key=lambda k: -k.households)]
    progress(0.0, f"0/{len(ids)}")
    return Outcome({}, pending=True, defer=ids, follow=job.id)


@handler("pair_community")
def _pair_community(
    conn: Connection, job: Job, settings: Settings, progress: Progress
) -> dict[str, Any]:
    from gridsvc.pairing.city import unit_time_limit
    from gridsvc.pairing.service import pair_community

    p = job.params
    progress(0.0, p["community"])
    outcome = pair_community(
        conn,
        community_code=p["community"],
        settings=settings,
        created_by=p.get("username"),
        time_limit=unit_time_limit(conn, job.parent_id, p),
        job_id=job.parent_id,
        base_version=p.get("base_version"),
        force=bool(p.get("force")),
        wait=True,
    )
    return outcome.to_dict()


@handler("pair_street")
def _pair_street(
    conn: Connection, job: Job, settings: Settings, progress: Progress
) -> dict[str, Any]:
    from gridsvc.pairing.city import unit_time_limit
    from gridsvc.pairing.service import pair_street

    p = job.params
    progress(0.0, p["street"])
    outcome = pair_street(
        conn,
        street_code=p["street"],
        settings=settings,
        created_by=p.get("username"),
        time_limit=unit_time_limit(conn, job.parent_id, p),
        job_id=job.parent_id,
        force=bool(p.get("force")),
        wait=True,
    )
    return outcome.to_dict()


@handler("rebalance")
def _rebalance(
    conn: Connection, job: Job, settings: Settings, progress: Progress
) -> dict[str, Any]:
    from gridsvc.pairing.service import propose_rebalance

    progress(0.0, "loading")
    proposal = propose_rebalance(
        conn,
        community_code=job.params["community"],
        settings=settings,
        created_by=job.params.get("username"),
        actor_id=job.user.id if job.user else None,
        progress=progress,
    )
    progress(1.0, "done")
    return {
        "proposal_id": proposal.id,
        "community": proposal.community,
        "counts": proposal.counts,
        "forced": proposal.forced,
    }


@handler("import")
def _import(conn: Connection, job: Job, settings: Settings, progress: Progress) -> Outcome:
    from gridsvc.portal.imports import import_job

    return import_job(conn, job, settings=settings, progress=progress)


@functools.cache
def _worker_engine(url: str) -> Engine:
    """One engine per database for the jobs of a worker process (not one per job)."""
    return make_engine(url)


def run_job(job_id: int) -> None:
    """Run one recorded job and keep its row up to date (the worker's entry point)."""
    settings = load_settings()
    execute_job(settings, job_id, engine=_worker_engine(settings.database_url))


def execute_job(
    settings: Settings, job_id: int, *, engine: Engine | None = None, here: bool = False
) -> None:
    """Run job ``job_id`` as its user's scope; record progress, result or error.

    A city pairing run defers its children to the queue; with ``here`` it runs them in this
    process instead and ends with them (no worker needed: tests, small installations).
    """
    own = engine is None
    engine = engine or make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            row = conn.execute(
                text(
                    "UPDATE jobs SET status = 'running', started_at = now() WHERE id = :i "
                    "AND status = 'queued' RETURNING kind, params, user_id, parent_id"
                ),
                {"i": job_id},
            ).first()
        if row is None:
            return
        progress = _progress(engine, job_id)
        try:
            with engine.begin() as conn:
                user = get_user(conn, row.user_id) if row.user_id else None
                if user is not None or row.params.get("origin") != "cli":
                    # a job of the command line (no user) runs with the command's own role
                    conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
                    apply_scope(conn, user)
                job = Job(job_id, row.kind, row.params, user, row.parent_id)
                outcome = HANDLERS[row.kind](conn, job, settings, progress)
            if not isinstance(outcome, Outcome):
                outcome = Outcome(outcome)
            if outcome.pending and here:
                from gridsvc.pairing.city import run_here

                run_here(engine, settings, job_id, workers=1)
                return
            if outcome.pending:
                if outcome.defer or outcome.follow is not None:
                    defer_jobs(settings.database_url, outcome.defer, follow=outcome.follow)
                return
            status = "failed" if outcome.error else "done"
            _finish(
                engine,
                job_id,
                status,
                result=outcome.result,
                error=outcome.error,
                output=outcome.output,
            )
        except GridsvcError as exc:
            _finish(engine, job_id, "failed", error=exc.message)
        except Exception as exc:  # a job must end with a status the page can show
            _finish(engine, job_id, "failed", error=f"{type(exc).__name__}: {exc}")
            traceback.print_exc()
    finally:
        if own:
            engine.dispose()


def _progress(engine: Engine, job_id: int) -> Progress:
    def report(fraction: float, message: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE jobs SET progress = :p, message = :m WHERE id = :i"),
                {"p": max(0.0, min(1.0, fraction)), "m": message, "i": job_id},
            )

    return report


def _finish(
    engine: Engine,
    job_id: int,
    status: str,
    *,
    result: Any = None,
    error: str | None = None,
    output: bytes | None = None,
) -> None:
    """Record the end of a job; its input file is replaced by its output (or dropped)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE jobs SET status = :s, progress = CASE WHEN :s = 'done' THEN 1 "
                "ELSE progress END, result = CAST(:r AS jsonb), error = :e, payload = :b, "
                "finished_at = now() WHERE id = :i"
            ),
            {
                "s": status,
                "r": None if result is None else json.dumps(result, default=str),
                "e": error,
                "b": output,
                "i": job_id,
            },
        )
