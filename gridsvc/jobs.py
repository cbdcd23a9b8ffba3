"""Background jobs (city-wide pairing runs) on procrastinate, a PostgreSQL job queue.

The web app writes a row of ``jobs`` (what, for whom, progress) and defers ``gridsvc:run_job``;
``gridsvc worker`` runs it. A job works as the ``gridsvc_app`` role with the scope of the user
who asked (``SET LOCAL ROLE`` on the worker's own connection: the worker runs no user SQL), so
row-level security bounds it exactly as it bounds that user's requests.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any

import procrastinate
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from gridsvc.accounts.scope import APP_ROLE, apply_scope
from gridsvc.accounts.users import get_user
from gridsvc.db import make_engine
from gridsvc.errors import GridsvcError, NotFound
from gridsvc.settings import Settings, load_settings

tasks = procrastinate.Blueprint()
Progress = Callable[[float, str], None]


def conninfo(url: str) -> str:
    """A libpq URL for psycopg from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_queue(url: str) -> procrastinate.App:
    """The job queue on the database at ``url`` with gridsvc's tasks."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))
    app.add_tasks_from(tasks, namespace="gridsvc")
    return app


def create_job(
    conn: Connection,
    kind: str,
    *,
    user_id: int,
    params: dict[str, Any],
    street_id: int | None = None,
    community_id: int | None = None,
) -> int:
    """Record a queued job; the caller defers it after committing."""
    return int(
        conn.scalar(
            text(
                "INSERT INTO jobs (kind, params, user_id, street_id, community_id) "
                "VALUES (:k, CAST(:p AS jsonb), :u, :s, :c) RETURNING id"
            ),
            {"k": kind, "p": json.dumps(params), "u": user_id, "s": street_id, "c": community_id},
        )
    )


def defer_job(queue_url: str, job_id: int) -> None:
    """Put a recorded job on the queue."""
    queue = make_queue(queue_url)
    with queue.open():
        queue.tasks["gridsvc:run_job"].defer(job_id=job_id)


def job_status(conn: Connection, job_id: int, *, user_id: int | None = None) -> dict[str, Any]:
    """A job's status and progress (only the asker's jobs when ``user_id`` is given)."""
    row = conn.execute(
        text(
            "SELECT id, kind, status, progress, message, result, error, params, created_at, "
            "started_at, finished_at FROM jobs WHERE id = :i "
            "AND (CAST(:u AS integer) IS NULL OR user_id = :u)"
        ),
        {"i": job_id, "u": user_id},
    ).first()
    if row is None:
        raise NotFound(f"job {job_id}: no such job of yours")
    body = dict(row._mapping)
    for key in ("created_at", "started_at", "finished_at"):
        body[key] = body[key].isoformat() if body[key] else None
    return body


#: Job kind → handler(conn, params, settings, progress) -> result dict.
HANDLERS: dict[str, Callable[..., dict[str, Any]]] = {}


def handler(kind: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register the function that runs jobs of ``kind``."""

    def register(func: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        HANDLERS[kind] = func
        return func

    return register


@handler("pairing")
def _pairing(
    conn: Connection, params: dict[str, Any], settings: Settings, progress: Progress
) -> dict[str, Any]:
    from gridsvc.pairing.service import run_pairing

    progress(0.0, "loading")
    report = run_pairing(
        conn,
        street_code=params.get("street"),
        community_code=params.get("community"),
        settings=settings,
        created_by=params.get("username"),
        progress=lambda share, what: progress(0.95 * share, what),
    )
    progress(1.0, "done")
    return report.to_dict()


@tasks.task(name="run_job", pass_context=False)
def run_job(job_id: int) -> None:
    """Run one recorded job and keep its row up to date (the worker's entry point)."""
    execute_job(load_settings(), job_id)


def execute_job(settings: Settings, job_id: int, *, engine: Engine | None = None) -> None:
    """Run job ``job_id`` as its user's scope; record progress, result or error."""
    own = engine is None
    engine = engine or make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            job = conn.execute(
                text(
                    "UPDATE jobs SET status = 'running', started_at = now() WHERE id = :i "
                    "AND status = 'queued' RETURNING kind, params, user_id"
                ),
                {"i": job_id},
            ).first()
        if job is None:
            return
        progress = _progress(engine, job_id)
        try:
            with engine.begin() as conn:
                user = get_user(conn, job.user_id) if job.user_id else None
                conn.exec_driver_sql(f"SET LOCAL ROLE {APP_ROLE}")
                apply_scope(conn, user)
                result = HANDLERS[job.kind](conn, job.params, settings, progress)
            _finish(engine, job_id, "done", result=result)
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
    engine: Engine, job_id: int, status: str, *, result: Any = None, error: str | None = None
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE jobs SET status = :s, progress = CASE WHEN :s = 'done' THEN 1 "
                "ELSE progress END, result = CAST(:r AS jsonb), error = :e, finished_at = now() "
                "WHERE id = :i"
            ),
            {
                "s": status,
                "r": None if result is None else json.dumps(result, default=str),
                "e": error,
                "i": job_id,
            },
        )
