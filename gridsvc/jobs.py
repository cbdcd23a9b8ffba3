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
"""

from __future__ import annotations

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

#: The queue's one task: run a recorded job.
TASK = "gridsvc:run_job"
Progress = Callable[[float, str], None]
_DEFER_LOCK = threading.Lock()


def conninfo(url: str) -> str:
    """A libpq URL for psycopg from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_queue(url: str, *, min_size: int = 4, max_size: int | None = None) -> procrastinate.App:
    """The job queue on the database at ``url`` with gridsvc's task (a new app each call).

    The task is registered on each app: adding a shared blueprint to a second app renames its
    tasks (``gridsvc:gridsvc:run_job``), so a process that made two queues lost the task.
    ``min_size`` and ``max_size`` size its connection pool (psycopg_pool's defaults).
    """
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(url), min_size=min_size, max_size=max_size
    )
    app = procrastinate.App(connector=connector)
    app.task(name=TASK, pass_context=False)(run_job)
    return app


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
    queue = _deferring_queue(queue_url)
    with _DEFER_LOCK, queue.open():
        queue.tasks[TASK].defer(job_id=job_id)


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
    return body


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


@dataclass(frozen=True)
class Outcome:
    """What a handler returns: the result, an error (the job failed, yet its transaction
    commits: logs and audit entries stay) and an output file (``jobs.payload``)."""

    result: dict[str, Any]
    error: str | None = None
    output: bytes | None = field(default=None, repr=False)


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
def _pairing(conn: Connection, job: Job, settings: Settings, progress: Progress) -> dict[str, Any]:
    from gridsvc.pairing.service import run_pairing

    progress(0.0, "loading")
    report = run_pairing(
        conn,
        street_code=job.params.get("street"),
        community_code=job.params.get("community"),
        settings=settings,
        created_by=job.params.get("username"),
        progress=lambda share, what: progress(0.95 * share, what),
    )
    progress(1.0, "done")
    return report.to_dict()


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


def run_job(job_id: int) -> None:
    """Run one recorded job and keep its row up to date (the worker's entry point)."""
    execute_job(load_settings(), job_id)


def execute_job(settings: Settings, job_id: int, *, engine: Engine | None = None) -> None:
    """Run job ``job_id`` as its user's scope; record progress, result or error."""
    own = engine is None
    engine = engine or make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            row = conn.execute(
                text(
                    "UPDATE jobs SET status = 'running', started_at = now() WHERE id = :i "
                    "AND status = 'queued' RETURNING kind, params, user_id"
                ),
                {"i": job_id},
            ).first()
        if row is None:
            return
        progress = _progress(engine, job_id)
        try:
            with engine.begin() as conn:
                user = get_user(conn, row.user_id) if row.user_id else None
                conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
                apply_scope(conn, user)
                job = Job(job_id, row.kind, row.params, user)
                outcome = HANDLERS[row.kind](conn, job, settings, progress)
            if not isinstance(outcome, Outcome):
                outcome = Outcome(outcome)
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
