"""City pairing runs: one community is one unit of work, on every core or on the job queue.

A city run is a ``jobs`` row (kind ``pairing``) with one child job per community
(``pair_community``: its households) and one per street (``pair_street``: its members, run
once every community of the street is through). Each child commits alone: its run, pairs,
explanations and plan version. A crash loses at most the communities being solved; ``gridsvc
pair --resume RUN`` (RUN: the parent job id) runs the children not done, and a plain repeat run
skips communities whose inputs are unchanged since their current plan.

Children run in ``GRIDSVC_WORKERS`` local processes (:func:`run_here`) or, with ``--queue`` and
from the web, as procrastinate jobs of ``gridsvc worker`` processes on any host
(:func:`follow_step` is the parent's follower there). A child records the plan version its
community had when the run started and refuses to write over a newer one, and a second
execution of a child finds the run its first execution committed: a community is never
committed twice by one city run, even when a worker taken for dead comes back.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from time import monotonic
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridsvc.errors import NotFound
from gridsvc.pairing import service
from gridsvc.pairing.problem import time_budget
from gridsvc.settings import Settings

PARENT, COMMUNITY, STREET = "pairing", "pair_community", "pair_street"
TERMINAL = ("done", "failed")
Progress = Callable[[float, str], None]
#: Share of a budget kept for starting the processes and ending the run (its last units).
BUDGET_RESERVE = 0.03
#: Seconds a community's unit takes besides its search: loading, the engine's fixed steps
#: (arcs, relaxation, bound set-up, a deficit's pricing), saving and the job's bookkeeping
#: (the 1,000,000-household demo city's 3,700-household communities on an idle core: 0.23 s
#: where members are in surplus, 0.54 s where they are short; 0.3 s on the whole).
UNIT_OVERHEAD_S = 0.3
#: Seconds a street's unit (its members → cadres) takes on the demo city: 0.13 s.
STREET_UNIT_S = 0.15
#: Least seconds between two writes of a city run's progress by the processes' parent.
PROGRESS_S = 0.5
#: The least search time a budget gives a community (seconds).
BUDGET_FLOOR = 0.1


def spread_budget(
    sizes: list[int],
    *,
    budget: float,
    workers: int,
    cap: float,
    reserve: float = BUDGET_RESERVE,
    overhead: float = UNIT_OVERHEAD_S,
) -> list[float]:
    """Search seconds per community: ``budget`` wall seconds over ``workers`` processes,
    less the ``reserve`` share and each unit's fixed ``overhead``, shared by size
    (households), each at most ``cap`` (``--time-limit``) and at least :data:`BUDGET_FLOOR`.

    >>> spread_budget([100, 300], budget=10, workers=2, cap=10)
    [4.15, 10]
    """
    total = sum(sizes)
    if total <= 0:
        return [min(cap, BUDGET_FLOOR) for _ in sizes]
    search = budget * max(workers, 1) * (1.0 - reserve) - overhead * len(sizes)
    return [round(min(cap, max(BUDGET_FLOOR, search * n / total)), 3) for n in sizes]


_LEFT_SQL = """
SELECT (p.params->>'budget')::float8 AS budget,
       coalesce((p.params->>'workers')::int, 1) AS workers,
       extract(epoch FROM p.created_at - clock_timestamp())::float8
         + (p.params->>'budget')::float8
         - coalesce((p.params->>'budget_spent')::float8, 0)
         - :reserve * (p.params->>'budget')::float8 AS left_s,
       count(k.id) FILTER (WHERE k.kind = 'pair_community' AND k.status = 'queued') AS units,
       coalesce(sum((k.params->>'households')::int)
                FILTER (WHERE k.kind = 'pair_community' AND k.status = 'queued'), 0) AS households,
       count(k.id) FILTER (WHERE k.kind = 'pair_community' AND k.status = 'running') AS running,
       count(k.id) FILTER (WHERE k.kind = 'pair_street' AND k.status = 'queued') AS streets
FROM jobs p LEFT JOIN jobs k ON k.parent_id = p.id
WHERE p.id = :p
GROUP BY p.id
"""


def unit_time_limit(
    conn: Connection, parent_id: int | None, params: dict[str, Any]
) -> float | None:
    """A unit's search seconds: what the run gave it (``time_limit``; None: the engine's size
    budget), or for a community under a ``--budget`` what the run has left when it starts.

    The time left (from the run's start) times its workers, less the fixed cost of every unit
    still to run (:data:`UNIT_OVERHEAD_S`, :data:`STREET_UNIT_S`; the units in flight beside
    this one count as one such cost each), shared by households between this unit and those
    queued: a machine slower than the estimate leaves the later units less search, a faster
    one more, so the run ends near its budget; at least :data:`BUDGET_FLOOR`, at most the
    unit's ``cap`` (``--time-limit`` or its size budget).
    """
    planned = params.get("time_limit")
    planned = float(planned) if planned else None
    if parent_id is None or not params.get("cap"):
        return planned
    row = conn.execute(text(_LEFT_SQL), {"p": parent_id, "reserve": BUDGET_RESERVE}).first()
    if row is None or row.budget is None:
        return planned
    mine = max(int(params.get("households") or 0), 1)
    others = max(int(row.running) - 1, 0)
    fixed = UNIT_OVERHEAD_S * (int(row.units) + 1 + others) + STREET_UNIT_S * int(row.streets)
    search = float(row.left_s) * max(int(row.workers), 1) - fixed
    share = search * mine / (int(row.households) + mine)
    share = min(share, float(row.left_s) - UNIT_OVERHEAD_S)  # this unit ends in the budget
    return round(min(float(params["cap"]), max(BUDGET_FLOOR, share)), 3)


def create_run(
    conn: Connection,
    *,
    street_code: str | None,
    community_code: str | None,
    level: str,
    time_limit: float | None,
    budget: float | None,
    workers: int,
    force: bool,
    username: str | None,
    user_id: int | None = None,
    budget_spent: float = 0.0,
) -> int:
    """Record a city run (a parent job, queued) started from the command line.

    ``budget_spent``: seconds of ``budget`` the command spent before the run (its start-up).
    """
    service.check_level(level)
    service.scope_communities(conn, street_code, community_code)  # refuse an unknown scope now
    params = {
        "street": street_code,
        "community": community_code,
        "level": level,
        "time_limit": time_limit,
        "budget": budget,
        "budget_spent": round(budget_spent, 3) if budget else 0.0,
        "workers": workers,
        "force": force,
        "username": username,
        "origin": "cli",
    }
    return int(
        conn.scalar(
            text(
                "INSERT INTO jobs (kind, params, user_id) VALUES (:k, CAST(:p AS jsonb), :u) "
                "RETURNING id"
            ),
            {"k": PARENT, "p": json.dumps(params), "u": user_id},
        )
    )


def fan_out(conn: Connection, parent_id: int, params: dict[str, Any], settings: Settings) -> None:
    """Record the children of a city run (once: a second call finds them)."""
    if conn.scalar(text("SELECT count(*) FROM jobs WHERE parent_id = :p"), {"p": parent_id}):
        return
    level = params.get("level") or "all"
    service.check_level(level)
    scope = service.scope_communities(conn, params.get("street"), params.get("community"))
    asked = params.get("time_limit")  # None: each community's size budget (time_budget)
    shared = {
        "force": bool(params.get("force")),
        "username": params.get("username"),
        "origin": params.get("origin"),
    }
    user_id = conn.scalar(text("SELECT user_id FROM jobs WHERE id = :p"), {"p": parent_id})
    rows: list[dict[str, Any]] = []
    if level in ("households", "all"):
        sizes = dict(
            conn.execute(
                text(
                    "SELECT community_id, count(*) FROM households "
                    "WHERE community_id = ANY(:ids) GROUP BY community_id"
                ),
                {"ids": scope["id"].tolist()},
            ).all()
        )
        counts = [int(sizes.get(cid, 0)) for cid in scope["id"]]
        caps = [float(asked) if asked else time_budget(n) for n in counts]
        budget = params.get("budget")
        limits = caps
        if budget:
            spread = spread_budget(
                counts, budget=float(budget), workers=int(params.get("workers") or 1), cap=max(caps)
            )
            limits = [min(limit, cap) for limit, cap in zip(spread, caps, strict=True)]
        for row, n, limit, cap in zip(scope.itertuples(), counts, limits, caps, strict=True):
            child = {
                **shared,
                "community": row.code,
                "households": n,
                "time_limit": limit,
                "base_version": service.plan_version(conn, int(row.id)),
            }
            if budget:  # the unit sets its search time from what the run has left
                child["cap"] = cap
            rows.append({"k": COMMUNITY, "p": child, "s": int(row.street_id), "c": int(row.id)})
    if level in ("members", "all"):
        for street_code, street in scope.groupby("street_code", sort=True):
            child = {**shared, "street": street_code, "time_limit": asked}
            rows.append({"k": STREET, "p": child, "s": int(street["street_id"].iloc[0]), "c": None})
    for row in rows:
        conn.execute(
            text(
                "INSERT INTO jobs (kind, params, user_id, street_id, community_id, parent_id) "
                "VALUES (:k, CAST(:p AS jsonb), :u, :s, :c, :parent)"
            ),
            {**row, "p": json.dumps(row["p"]), "u": user_id, "parent": parent_id},
        )


@dataclass(frozen=True)
class Child:
    """A child job of a city run, as its parent sees it."""

    id: int
    kind: str
    status: str
    street_id: int | None
    scope: str
    households: int


def children(conn: Connection, parent_id: int) -> list[Child]:
    """The children of a city run, communities first."""
    rows = conn.execute(
        text(
            "SELECT id, kind, status, street_id, coalesce(params->>'community', "
            "params->>'street') AS scope, coalesce((params->>'households')::int, 0) AS n "
            "FROM jobs WHERE parent_id = :p ORDER BY kind, id"
        ),
        {"p": parent_id},
    ).all()
    return [Child(r.id, r.kind, r.status, r.street_id, r.scope, r.n) for r in rows]


def ready_streets(kids: list[Child]) -> list[Child]:
    """Street children still queued whose communities have all ended."""
    open_streets = {k.street_id for k in kids if k.kind == COMMUNITY and k.status not in TERMINAL}
    return [
        k
        for k in kids
        if k.kind == STREET and k.status == "queued" and k.street_id not in open_streets
    ]


def resume(conn: Connection, parent_id: int) -> dict[str, Any]:
    """Put a city run's unfinished children back in the queue; its params.

    Raises
    ------
    NotFound
        ``parent_id`` is not a city pairing run.
    """
    row = conn.execute(
        text("SELECT params FROM jobs WHERE id = :i AND kind = :k AND parent_id IS NULL"),
        {"i": parent_id, "k": PARENT},
    ).first()
    if row is None:
        raise NotFound(f"no city pairing run {parent_id} (gridsvc pair prints its number)")
    conn.execute(
        text(
            "UPDATE jobs SET status = 'queued', started_at = NULL, error = NULL "
            "WHERE parent_id = :p AND status IN ('running', 'failed')"
        ),
        {"p": parent_id},
    )
    conn.execute(
        text(
            "UPDATE jobs SET status = 'running', finished_at = NULL, error = NULL, "
            "started_at = coalesce(started_at, now()) WHERE id = :p"
        ),
        {"p": parent_id},
    )
    return dict(row.params)


# --- the summary -----------------------------------------------------------------------------


def report(conn: Connection, parent_id: int) -> dict[str, Any]:
    """What a city run did: per community its cost, gap and time, their medians, what it
    skipped and which children failed (read from the runs it committed)."""
    runs = conn.execute(
        text(
            'SELECT id, level, scope, status, "case", n_clients, n_paired, coverage_bound, '
            "n_active, n_reserve, cost_m, lower_bound_m, gap, "
            "coalesce((timings->>'total')::float, 0) AS seconds "
            "FROM pairing_runs WHERE job_id = :p ORDER BY level, scope"
        ),
        {"p": parent_id},
    ).all()
    summaries = [
        service.RunSummary(
            id=r.id,
            level=r.level,
            scope=r.scope,
            status=r.status,
            case=r.case,
            n_clients=r.n_clients,
            n_paired=r.n_paired,
            coverage_bound=r.coverage_bound,
            n_active=r.n_active,
            n_reserve=r.n_reserve,
            cost_m=round(r.cost_m, 1),
            lower_bound_m=r.lower_bound_m,
            gap=r.gap,
            seconds=round(r.seconds, 3),
            gap_note=_gap_note(r.lower_bound_m, r.gap, r.cost_m),
        )
        for r in runs
    ]
    kids = conn.execute(
        text(
            "SELECT kind, status, error, result, coalesce(params->>'community', "
            "params->>'street') AS scope FROM jobs WHERE parent_id = :p ORDER BY kind, scope"
        ),
        {"p": parent_id},
    ).all()
    skipped = {
        f"{'households' if k.kind == COMMUNITY else 'members'} {k.scope}": k.result["skipped"]
        for k in kids
        if k.status == "done"
        and k.result
        and k.result.get("skipped")
        and not str(k.result["skipped"]).startswith("already committed")
    }
    failed = {k.scope: k.error or "" for k in kids if k.status == "failed"}
    versions = dict(
        conn.execute(
            text(
                "SELECT c.code, p.version FROM plans p JOIN communities c ON c.id = p.community_id "
                "WHERE p.community_id IN (SELECT community_id FROM jobs WHERE parent_id = :p) "
                "OR c.street_id IN (SELECT street_id FROM jobs WHERE parent_id = :p "
                "AND kind = 'pair_street')"
            ),
            {"p": parent_id},
        ).all()
    )
    households = [s for s in summaries if s.level == "households"]
    gaps = [s.gap for s in households if s.gap is not None]
    return {
        "run": parent_id,
        "runs": [s.__dict__ for s in summaries],
        "versions": versions,
        "skipped": skipped,
        "failed": failed,
        "communities": len([k for k in kids if k.kind == COMMUNITY]),
        "median_cost_m": statistics.median([s.cost_m for s in households]) if households else None,
        "median_gap": statistics.median(gaps) if gaps else None,
        "no_gap": len(households) - len(gaps),
    }


def _gap_note(lower_bound: float | None, gap: float | None, cost: float) -> str | None:
    if gap is not None:
        return None
    if lower_bound is None:
        return "bound unavailable"
    return "bound is trivial (0 m): no gap to report" if lower_bound <= 0 < cost else None


def finish(engine: Engine, parent_id: int) -> dict[str, Any]:
    """Record the end of a city run: done, or failed naming the children that failed."""
    with engine.begin() as conn:
        body = report(conn, parent_id)
        error = (
            "failed: " + "; ".join(f"{k}: {v}" for k, v in sorted(body["failed"].items()))
            if body["failed"]
            else None
        )
        conn.execute(
            text(
                "UPDATE jobs SET status = :s, progress = CASE WHEN :s = 'done' THEN 1 "
                "ELSE progress END, result = CAST(:r AS jsonb), error = :e, message = :m, "
                "finished_at = now() WHERE id = :i"
            ),
            {
                "s": "failed" if error else "done",
                "r": json.dumps(body, default=str),
                "e": error,
                "m": f"{body['communities']}/{body['communities']}",
                "i": parent_id,
            },
        )
    return body


def set_progress(engine: Engine, parent_id: int, kids: list[Child], what: str) -> float:
    """The parent's progress: the share of households (and streets) whose unit ended."""
    weight = {k.id: max(k.households, 1) if k.kind == COMMUNITY else 1 for k in kids}
    total = sum(weight.values()) or 1
    share = sum(weight[k.id] for k in kids if k.status in TERMINAL) / total
    ended = sum(k.kind == COMMUNITY and k.status in TERMINAL for k in kids)
    count = sum(k.kind == COMMUNITY for k in kids)
    message = f"{ended}/{count} · {what}"  # codes and counts only: the page is in two languages
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE jobs SET progress = :p, message = :m WHERE id = :i"),
            {"p": share, "m": message, "i": parent_id},
        )
    return share


# --- on this machine: GRIDSVC_WORKERS processes ------------------------------------------------

_ENGINE: Engine | None = None
_SETTINGS: Settings | None = None


def _init_process(settings: Settings) -> None:
    """A pool process: its own engine (one connection) for the children it runs."""
    global _ENGINE, _SETTINGS
    from gridsvc.db import make_engine

    _SETTINGS = settings
    # commits without waiting for the WAL flush: a unit writes four or five small transactions
    # (its job's state, its pairs, its plan), and each waited for the disk with the core idle.
    # A server crash may lose the last of them, always a suffix of the run (the WAL is
    # ordered): gridsvc pair --resume solves what was lost again.
    _ENGINE = make_engine(
        settings.database_url,
        pool_size=1,
        max_overflow=1,
        connect_args={"options": "-c synchronous_commit=off"},
    )


def _run_child(child_id: int) -> int:
    from gridsvc.jobs import execute_job

    assert _SETTINGS is not None and _ENGINE is not None
    execute_job(_SETTINGS, child_id, engine=_ENGINE)
    return child_id


def run_here(
    engine: Engine,
    settings: Settings,
    parent_id: int,
    *,
    workers: int,
    on_child: Callable[[Child, list[Child]], None] | None = None,
) -> dict[str, Any]:
    """Run a city run's queued children on this machine, ``workers`` processes at a time
    (one process, no pool, when ``workers`` is 1 or there is one community), then finish it.

    Street children start as soon as their communities have ended.
    """
    from gridsvc.jobs import execute_job

    with engine.connect() as conn:
        kids = children(conn, parent_id)
    queued = [k for k in kids if k.kind == COMMUNITY and k.status == "queued"]
    # largest communities first: the slowest units do not end the run alone
    queued.sort(key=lambda k: -k.households)
    parallel = workers > 1 and len(queued) > 1
    if not parallel:
        for k in queued + [s for s in kids if s.kind == STREET and s.status == "queued"]:
            execute_job(settings, k.id, engine=engine)
            kids = _refresh(engine, parent_id, k, on_child)
        return finish(engine, parent_id)
    # fork: the processes start with everything imported (spawn re-imports pandas, OR-Tools
    # and the rest: seconds per process on a busy machine); no connection crosses the fork
    import gridsvc.pairing._solve  # noqa: F401  (the engine, imported once before the fork)

    engine.dispose()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_process, initargs=(settings,)
    ) as pool:
        # at most one unit per process in flight, so that a street whose communities have
        # ended goes before the communities still waiting
        waiting = list(queued)
        running: dict[Future[int], Child] = {}
        started: set[int] = set()
        reported = monotonic()
        while True:
            streets = [k for k in ready_streets(kids) if k.id not in started]
            while len(running) < workers and (streets or waiting):
                unit = streets.pop(0) if streets else waiting.pop(0)
                started.add(unit.id)
                running[pool.submit(_run_child, unit.id)] = unit
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                child = running.pop(future)
                future.result()
                # its unit ended (its job row says how): known here without a query, so the
                # freed process gets its next unit at once; the progress row is written at
                # most every PROGRESS_S (each write waited for the disk with a process idle)
                kids = [replace(k, status="done") if k.id == child.id else k for k in kids]
                if on_child:
                    on_child(child, kids)
                if monotonic() - reported >= PROGRESS_S:
                    set_progress(engine, parent_id, kids, child.scope)
                    reported = monotonic()
        kids = children_now(engine, parent_id)
        set_progress(engine, parent_id, kids, "")
        leftover = [k for k in kids if k.status == "queued"]
        for k in leftover:  # streets of communities that were not queued (resumed runs)
            execute_job(settings, k.id, engine=engine)
    return finish(engine, parent_id)


def children_now(engine: Engine, parent_id: int) -> list[Child]:
    """The children of a city run, read on a connection of their own."""
    with engine.connect() as conn:
        return children(conn, parent_id)


def _refresh(
    engine: Engine,
    parent_id: int,
    child: Child,
    on_child: Callable[[Child, list[Child]], None] | None,
) -> list[Child]:
    kids = children_now(engine, parent_id)
    set_progress(engine, parent_id, kids, child.scope)
    if on_child:
        on_child(child, kids)
    return kids


# --- on the job queue: the parent's follower ---------------------------------------------------


def follow_step(engine: Engine, parent_id: int, *, defer: Callable[[Iterable[int]], None]) -> bool:
    """One look of a queued city run at its children: defer the street children whose
    communities have ended, record progress, and finish the run when every child has ended.
    Returns True when the run is finished (the follower stops)."""
    with engine.connect() as conn:
        status = conn.scalar(text("SELECT status FROM jobs WHERE id = :i"), {"i": parent_id})
        kids = children(conn, parent_id)
    if status in TERMINAL:
        return True
    if kids and all(k.status in TERMINAL for k in kids):
        finish(engine, parent_id)
        return True
    streets = ready_streets(kids)
    if streets:
        defer(k.id for k in streets)
    set_progress(engine, parent_id, kids, "streets" if streets else "communities")
    return False


def summary_lines(body: dict[str, Any]) -> list[str]:
    """The summary a planner reads: per community cost and gap, then the medians."""
    lines = []
    for r in body["runs"]:
        gap = service.RunSummary(**r).gap_text
        lines.append(
            f"run {r['id']} {r['level']} {r['scope']}: {r['case']}, paired {r['n_paired']}/"
            f"{r['n_clients']} (max {r['coverage_bound']}), active {r['n_active']}, reserve "
            f"{r['n_reserve']}, cost {r['cost_m']:,.0f} m, gap {gap}, {r['status']}, "
            f"{r['seconds']:.2f} s"
        )
    for what, why in sorted(body["skipped"].items()):
        lines.append(f"skipped {what}: {why}")
    for what, why in sorted(body["failed"].items()):
        lines.append(f"FAILED {what}: {why}")
    if body["median_cost_m"] is not None:
        gap = "–" if body["median_gap"] is None else f"{body['median_gap']:.2%}"
        no_gap = f" ({body['no_gap']} without a useful bound)" if body["no_gap"] else ""
        lines.append(
            f"median over communities: cost {body['median_cost_m']:,.0f} m, gap {gap}{no_gap}"
        )
    return lines
