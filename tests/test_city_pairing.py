"""City pairing runs: one community one committed unit, on processes and on the job queue.

Runs commit, so they use a database of their own (``<test db>_city``), made afresh per module.
The worker test starts two ``gridsvc worker`` processes and kills one with SIGKILL mid-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from geodata.demo import load_demo
from gridsvc.cli import cli
from gridsvc.db import drop_database, init_database, make_engine
from gridsvc.errors import Conflict
from gridsvc.jobs import create_job, requeue_lost
from gridsvc.pairing import city, service
from gridsvc.settings import Settings

GRIDSVC = Path(sys.executable).with_name("gridsvc")


@pytest.fixture(scope="module")
def city_url(settings: Settings) -> Iterator[str]:
    url = make_url(settings.database_url)
    name = f"{url.database}_city"
    assert "test" in name
    target = url.set(database=name).render_as_string(hide_password=False)
    drop_database(target)
    init_database(target)
    eng = make_engine(target)
    with eng.begin() as conn:
        load_demo(conn, seed=11, households=9000)  # one street of 3 communities
    eng.dispose()
    yield target
    drop_database(target)


@pytest.fixture
def city_engine(city_url: str) -> Iterator[Engine]:
    eng = make_engine(city_url)
    yield eng
    eng.dispose()


def plans(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT community_id, version FROM plans")).all())


def communities(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(text("SELECT id, code FROM communities ORDER BY id"))
        ]


def start(engine: Engine, settings: Settings, *, level: str = "all", **options) -> int:
    with engine.begin() as conn:
        parent = city.create_run(
            conn,
            street_code=None,
            community_code=None,
            level=level,
            time_limit=options.get("time_limit", 1.0),
            budget=options.get("budget"),
            workers=options.get("workers", 2),
            force=options.get("force", False),
            username="t",
        )
        city.resume(conn, parent)
        params = conn.execute(text("SELECT params FROM jobs WHERE id = :i"), {"i": parent})
        city.fan_out(conn, parent, params.scalar_one(), settings)
    return parent


def test_spread_budget_shares_search_time_by_size_within_the_cap():
    limits = city.spread_budget([1000, 3000, 0], budget=10, workers=2, cap=20)
    assert limits[1] == pytest.approx(3 * limits[0])
    assert limits[2] == city.BUDGET_FLOOR
    # the search time given out is what the workers have, less the reserve and each unit's
    # fixed overhead
    assert sum(limits[:2]) == pytest.approx(
        10 * 2 * (1 - city.BUDGET_RESERVE) - 3 * city.UNIT_OVERHEAD_S
    )
    assert city.spread_budget([10_000], budget=600, workers=2, cap=10) == [10]


def test_a_unit_takes_its_search_time_from_what_the_budget_has_left(
    city_engine: Engine, settings: Settings
) -> None:
    parent = start(city_engine, settings, level="all", budget=3, time_limit=5)
    with city_engine.begin() as conn:
        kids = [k for k in city.children(conn, parent) if k.kind == city.COMMUNITY]
        first = kids[0]
        params = conn.scalar(text("SELECT params FROM jobs WHERE id = :i"), {"i": first.id})
        conn.execute(text("UPDATE jobs SET status = 'running' WHERE id = :i"), {"i": first.id})
        # the whole budget left: 3 s x 2 workers less every unit's fixed cost, by households
        fixed = city.UNIT_OVERHEAD_S * len(kids) + city.STREET_UNIT_S * 1
        search = 3 * (1 - city.BUDGET_RESERVE) * 2 - fixed
        expected = search * first.households / sum(k.households for k in kids)
        assert 0.5 < expected < 5
        assert city.unit_time_limit(conn, parent, params) == pytest.approx(expected, abs=0.15)
        # the others ended fast: this unit may take what is left, up to its cap
        conn.execute(
            text("UPDATE jobs SET status = 'done' WHERE parent_id = :p AND id <> :i"),
            {"p": parent, "i": first.id},
        )
        alone = city.unit_time_limit(conn, parent, params)
        assert expected < alone <= 3 * (1 - city.BUDGET_RESERVE) - city.UNIT_OVERHEAD_S
        # the budget spent: the floor
        conn.execute(
            text("UPDATE jobs SET created_at = created_at - interval '40 seconds' WHERE id = :p"),
            {"p": parent},
        )
        assert city.unit_time_limit(conn, parent, params) == city.BUDGET_FLOOR
        # no budget: the limit the run spread
        assert city.unit_time_limit(conn, parent, {**params, "cap": None}) == params["time_limit"]
        conn.execute(
            text("UPDATE jobs SET status = 'done' WHERE id = :p OR parent_id = :p"), {"p": parent}
        )


def test_each_community_is_its_own_unit_repeat_skips_unchanged_and_resume_finishes(
    city_engine, city_url, settings
):
    s = settings.with_(database_url=city_url, workers=2)
    before = plans(city_engine)
    parent = start(city_engine, s)
    body = city.run_here(city_engine, s, parent, workers=2)
    comms = communities(city_engine)
    after = plans(city_engine)
    # one households run per community and one members run for the street, each committed
    with city_engine.connect() as conn:
        runs = conn.execute(
            text("SELECT level, community_id, job_id FROM pairing_runs WHERE job_id = :p"),
            {"p": parent},
        ).all()
    assert sorted(r.community_id for r in runs if r.level == "households") == [c for c, _ in comms]
    assert sum(r.level == "members" for r in runs) == 1
    assert all(after[c] == before.get(c, 0) + 2 for c, _ in comms)
    assert body["median_cost_m"] > 0 and not body["failed"] and not body["skipped"]
    assert any("median over communities" in line for line in city.summary_lines(body))

    # a repeat run skips every unit whose inputs are unchanged, and says so
    again = city.run_here(city_engine, s, start(city_engine, s), workers=2)
    assert not again["runs"] and plans(city_engine) == after
    assert set(again["skipped"]) == {f"households {code}" for _, code in comms} | {
        f"members {comms[0][1][:9]}"
    }
    assert all("unchanged since plan version" in why for why in again["skipped"].values())

    # one household moves: only its community is solved again (and the street's members not)
    cid, code = comms[1]
    with city_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE households SET geom = ST_Translate(geom, 0.0003, 0) WHERE id = "
                "(SELECT min(id) FROM households WHERE community_id = :c)"
            ),
            {"c": cid},
        )
    third = city.run_here(city_engine, s, start(city_engine, s, level="households"), workers=2)
    assert [r["scope"] for r in third["runs"]] == [code]
    assert plans(city_engine)[cid] == after[cid] + 1

    # a run cut short: children left running (the process died) are finished by --resume
    parent = start(city_engine, s, level="households", force=True)
    kids = city.children_now(city_engine, parent)
    first = kids[0]
    from gridsvc.jobs import execute_job

    execute_job(s, first.id, engine=city_engine)
    with city_engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET status = 'running' WHERE id = :i"), {"i": kids[1].id})
    mid = plans(city_engine)
    res = CliRunner().invoke(
        cli, ["pair", "--resume", str(parent)], env={"GRIDSVC_DATABASE_URL": city_url}
    )
    assert res.exit_code == 0, res.output
    end = plans(city_engine)
    with city_engine.connect() as conn:
        first_cid = conn.scalar(
            text("SELECT community_id FROM jobs WHERE id = :i"), {"i": first.id}
        )
        per_comm = dict(
            conn.execute(
                text(
                    "SELECT community_id, count(*) FROM pairing_runs WHERE job_id = :p "
                    "GROUP BY community_id"
                ),
                {"p": parent},
            ).all()
        )
    assert end[first_cid] == mid[first_cid]  # done before the cut: not solved again
    assert all(end[c] == mid[c] + 1 for c, _ in comms if c != first_cid)
    assert all(n == 1 for n in per_comm.values()) and len(per_comm) == len(comms)
    assert f"run {parent}" not in res.output or "median over communities" in res.output


def test_a_community_is_never_committed_twice_under_the_race(city_engine, city_url, settings):
    """Two writers solve the same community from the same plan version at the same time: the
    plan-version check lets exactly one commit, the other is refused and writes nothing."""
    s = settings.with_(database_url=city_url)
    cid, code = communities(city_engine)[0]
    base = plans(city_engine).get(cid, 0)
    with city_engine.connect() as conn:
        runs_before = conn.scalar(text("SELECT count(*) FROM pairing_runs"))
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def writer() -> None:
        eng = make_engine(city_url)
        try:
            with eng.begin() as conn:
                barrier.wait()
                outcomes.append(
                    service.pair_community(
                        conn,
                        community_code=code,
                        settings=s,
                        time_limit=0.5,
                        base_version=base,
                        wait=True,
                    )
                )
        except Conflict as exc:
            outcomes.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1, outcomes
    assert "no longer at version" in str(next(o for o in outcomes if isinstance(o, Conflict)))
    assert plans(city_engine)[cid] == base + 1
    with city_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM pairing_runs")) == runs_before + 1


def test_a_killed_import_job_is_failed_and_its_file_dropped(city_engine):
    with city_engine.begin() as conn:
        job = create_job(conn, "import", user_id=None, params={}, payload=b"code,name\n1,x\n")
        conn.execute(text("UPDATE jobs SET status = 'running' WHERE id = :i"), {"i": job})
    from gridsvc.settings import load_settings

    s = load_settings().with_(database_url=str(city_engine.url.render_as_string(False)))
    assert requeue_lost(s, job) == "failed"
    with city_engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, payload, error FROM jobs WHERE id = :i"), {"i": job}
        ).one()
    assert row.status == "failed" and row.payload is None and "upload it again" in row.error


def _worker(city_url: str, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "GRIDSVC_DATABASE_URL": city_url,
        "GRIDSVC_WORKER_HEARTBEAT_S": "1",
        "GRIDSVC_WORKER_STALLED_S": "4",
        "GRIDSVC_STALLED_CHECK_S": "2",
        "GRIDSVC_FOLLOW_S": "1",
    }
    return subprocess.Popen([str(GRIDSVC), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)


def test_two_workers_one_killed_mid_run_every_community_one_new_plan_version(
    city_engine, city_url, tmp_path
):
    before = plans(city_engine)
    comms = communities(city_engine)
    logs = [(tmp_path / f"w{i}.log").open("w") for i in range(2)]
    workers = [_worker(city_url, log) for log in logs]
    try:
        with city_engine.begin() as conn:
            parent = city.create_run(
                conn,
                street_code=None,
                community_code=None,
                level="households",
                time_limit=6.0,
                budget=None,
                workers=2,
                force=True,
                username="t",
            )
        from gridsvc.jobs import defer_job

        defer_job(city_url, parent)
        deadline = time.monotonic() + 120
        doing = 0
        while doing < 2 and time.monotonic() < deadline:  # both workers busy solving
            time.sleep(0.3)
            with city_engine.connect() as conn:
                doing = conn.scalar(
                    text("SELECT count(*) FROM jobs WHERE parent_id = :p AND status = 'running'"),
                    {"p": parent},
                )
        assert doing == 2, "the two workers never ran two communities at once"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        killed = time.monotonic()
        status, recovered = None, None
        while status not in city.TERMINAL and time.monotonic() < deadline + 120:
            time.sleep(0.5)
            with city_engine.connect() as conn:
                status = conn.scalar(text("SELECT status FROM jobs WHERE id = :i"), {"i": parent})
                retried = conn.scalar(
                    text(
                        "SELECT count(*) FROM procrastinate_jobs WHERE attempts > 1 "
                        "AND task_name = 'gridsvc:run_job' AND (args->>'job_id')::int IN "
                        "(SELECT id FROM jobs WHERE parent_id = :p)"
                    ),
                    {"p": parent},
                )
            if retried and recovered is None:
                recovered = time.monotonic() - killed
        # stalled after 4 s, looked for every 2 s, then the other worker's current community
        assert recovered is not None and recovered < 60, recovered
        assert status == "done"
        after = plans(city_engine)
        assert {c: after[c] - before.get(c, 0) for c, _ in comms} == {c: 1 for c, _ in comms}
        with city_engine.connect() as conn:
            per_comm = conn.execute(
                text(
                    "SELECT community_id, count(*) FROM pairing_runs WHERE job_id = :p "
                    "GROUP BY community_id"
                ),
                {"p": parent},
            ).all()
            retried = conn.scalar(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE attempts > 1 "
                    "AND task_name = 'gridsvc:run_job'"
                )
            )
        assert sorted(n for _, n in per_comm) == [1] * len(comms)
        assert retried >= 1  # the killed worker's community went back to the queue
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(20)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait()
        for log in logs:
            log.close()


def test_a_trivial_or_missing_bound_prints_a_dash_with_the_reason():
    base = {
        "id": 1, "level": "households", "scope": "c", "status": "feasible", "case": "surplus",
        "n_clients": 3, "n_paired": 3, "coverage_bound": 3, "n_active": 1, "n_reserve": 2,
        "cost_m": 1025.0, "seconds": 0.1,
    }  # fmt: skip
    trivial = service.RunSummary(
        **base, lower_bound_m=0.0, gap=None, gap_note=city._gap_note(0.0, None, 1025.0)
    )
    assert trivial.gap_text == "– (bound is trivial (0 m): no gap to report)"
    missing = service.RunSummary(
        **base, lower_bound_m=None, gap=None, gap_note=city._gap_note(None, None, 1025.0)
    )
    assert missing.gap_text == "– (bound unavailable)"
    proven = service.RunSummary(**base, lower_bound_m=1000.0, gap=0.0244)
    assert proven.gap_text == "2.44%"
    body = {
        "runs": [trivial.__dict__, proven.__dict__], "skipped": {}, "failed": {},
        "median_cost_m": 1025.0, "median_gap": 0.0244, "no_gap": 1,
    }  # fmt: skip
    lines = city.summary_lines(body)
    assert "gap – (bound is trivial" in lines[0] and "gap 2.44%" in lines[1]
    assert (
        lines[-1] == "median over communities: cost 1,025 m, gap 2.44% (1 without a useful bound)"
    )
