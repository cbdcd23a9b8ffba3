"""Pairing service against PostGIS, each test in a rolled-back transaction; CLI on a scratch DB."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from geodata.demo import load_demo
from gridsvc.cli import cli
from gridsvc.db import make_engine
from gridsvc.errors import Conflict, InfeasibleSettings
from gridsvc.pairing import service


@pytest.fixture
def demo(conn):
    load_demo(conn, seed=5, households=700)
    return conn.execute(text("SELECT code FROM communities ORDER BY code")).scalars().all()


def scalar(conn, sql, **params):
    return conn.execute(text(sql), params).scalar()


def test_run_persists_runs_pairs_explanations_and_a_plan(conn, demo, settings):
    code = demo[0]
    report = service.run_pairing(conn, settings=settings, community_code=code, time_limit=2)
    levels = {r.level for r in report.runs}
    assert levels == {"households", "members"}
    hh_run = next(r for r in report.runs if r.level == "households")
    assert hh_run.status in {"optimal", "feasible"} and hh_run.gap is not None
    households = scalar(conn, "SELECT count(*) FROM households")
    pairs = scalar(conn, "SELECT count(*) FROM current_household_pairs")
    unpaired = scalar(conn, "SELECT count(*) FROM pairing_unpaired WHERE run_id = :r", r=hh_run.id)
    assert pairs == hh_run.n_paired and pairs + unpaired == households
    # each household at most once, loads within the members' ranges
    loads = conn.execute(
        text("SELECT member_id, count(*) AS n FROM current_household_pairs GROUP BY member_id")
    ).all()
    assert all(15 <= n <= 25 for _, n in loads)
    reserve = scalar(conn, "SELECT count(*) FROM pairing_reserve WHERE run_id = :r", r=hh_run.id)
    assert reserve == hh_run.n_reserve > 0
    reasons = set(conn.execute(text("SELECT reason FROM pairing_reserve")).scalars())
    assert reasons <= {"surplus", "not_eligible", "max_active_reached", "no_client_in_reach"}
    # explanation columns, and the member level
    row = conn.execute(
        text("SELECT distance_m, same_building, same_grid FROM current_household_pairs LIMIT 1")
    ).one()
    assert row.distance_m >= 0 and isinstance(row.same_building, bool)
    assert scalar(conn, "SELECT count(*) FROM current_member_pairs") > 0
    assert service.plan_version(conn, scalar(conn, "SELECT id FROM communities")) == 2
    run = conn.execute(
        text("SELECT created_by, settings, timings, lower_bound_m FROM pairing_runs LIMIT 1")
    ).one()
    assert "household_load" in run.settings and "total" in run.timings


def test_rebalance_proposal_accept_bumps_version_and_stale_is_refused(conn, demo, settings):
    code = demo[0]
    service.run_pairing(
        conn, settings=settings, community_code=code, level="households", time_limit=2
    )
    cid = scalar(conn, "SELECT id FROM communities WHERE code = :c", c=code)
    v1 = service.plan_version(conn, cid)
    # one active member leaves: its households must move, few others should
    gone = scalar(conn, "SELECT member_id FROM current_household_pairs LIMIT 1")
    forced = scalar(
        conn, "SELECT count(*) FROM current_household_pairs WHERE member_id = :m", m=gone
    )
    conn.execute(text("UPDATE members SET available = false WHERE id = :m"), {"m": gone})
    first = service.propose_rebalance(conn, community_code=code, settings=settings, created_by="t")
    # a second click returns the open proposal of the same plan and data version
    again = service.propose_rebalance(conn, community_code=code, settings=settings)
    assert again.id == first.id and again.counts == first.counts
    assert first.base_version == v1 and first.forced == forced
    changed = first.counts["moved"] + first.counts["new"] + first.counts["dropped"]
    assert forced <= changed < 2 * forced + 1
    # the proposal reports its cost with a proven bound on cost + churn, and the gap
    assert first.churn_m == settings.churn_weight_m * first.counts["moved"]
    assert first.gap is not None and 0 <= first.gap < 0.5
    assert first.lower_bound_m <= first.cost_m + first.churn_m + 0.1
    assert f"gap {first.gap:.2%}" in first.summary
    stored = scalar(conn, "SELECT summary->>'gap' FROM proposals WHERE id = :i", i=first.id)
    assert float(stored) == pytest.approx(first.gap)
    assert service.plan_version(conn, cid) == v1  # nothing changes before acceptance
    outcome = service.accept_proposal(conn, first.id, expected_version=v1, decided_by="t")
    assert outcome.version == v1 + 1
    assert not scalar(
        conn, "SELECT count(*) FROM current_household_pairs WHERE member_id = :m", m=gone
    )
    # the services write their own audit entries (the CLI is audited too)
    actions = conn.execute(
        text("SELECT action FROM audit_log WHERE target = :t ORDER BY id"),
        {"t": f"proposal {first.id}"},
    ).scalars()
    assert list(actions) == ["proposal", "proposal_accept"]
    with pytest.raises(Conflict, match="already accepted"):
        service.reject_proposal(conn, first.id)
    # an open proposal made from an older version is stale
    conn.execute(text("UPDATE members SET available = true WHERE id = :m"), {"m": gone})
    old = service.propose_rebalance(conn, community_code=code, settings=settings)
    conn.execute(
        text("UPDATE proposals SET base_version = base_version - 1 WHERE id = :i"), {"i": old.id}
    )
    with pytest.raises(Conflict, match="version"):
        service.accept_proposal(conn, old.id, decided_by="t")


def test_pins_and_forbids_from_the_database_are_obeyed(conn, demo, settings):
    code = demo[0]
    hh, far = conn.execute(
        text(
            "SELECT h.code, m.code FROM households h, members m WHERE m.eligible "
            "AND m.available ORDER BY ST_Distance(h.geom, m.geom) DESC LIMIT 1"
        )
    ).one()
    service.set_control(conn, "pin", household_code=hh, server_code=far)
    near = scalar(
        conn,
        "SELECT m.code FROM households h, members m WHERE h.code = :h AND m.code <> :f "
        "ORDER BY ST_Distance(h.geom, m.geom) LIMIT 1",
        h=hh,
        f=far,
    )
    other = scalar(conn, "SELECT code FROM households WHERE code <> :h ORDER BY code LIMIT 1", h=hh)
    service.set_control(conn, "forbid", household_code=other, server_code=near)
    service.run_pairing(conn, settings=settings, community_code=code, level="households")
    got = dict(
        conn.execute(
            text(
                "SELECT h.code, m.code FROM current_household_pairs p JOIN households h "
                "ON h.id = p.household_id JOIN members m ON m.id = p.member_id"
            )
        ).all()
    )
    assert got[hh] == far
    assert got.get(other) != near


def test_impossible_settings_persist_nothing(conn, demo, settings):
    member = scalar(conn, "SELECT code FROM members WHERE eligible AND available LIMIT 1")
    conn.execute(
        text("UPDATE members SET min_load = 1, max_load = 2 WHERE code = :m"), {"m": member}
    )
    for hh in conn.execute(text("SELECT code FROM households LIMIT 3")).scalars().all():
        service.set_control(conn, "pin", household_code=hh, server_code=member)
    with pytest.raises(InfeasibleSettings, match=f"pinned.*{member}"):
        service.run_pairing(conn, settings=settings, community_code=demo[0])
    assert scalar(conn, "SELECT count(*) FROM pairing_runs") == 0


def test_concurrent_run_is_refused(conn, demo, settings, engine):
    cid = scalar(conn, "SELECT id FROM communities WHERE code = :c", c=demo[0])
    with engine.connect() as other, other.begin():
        assert other.execute(text("SELECT pg_try_advisory_xact_lock(:c)"), {"c": cid}).scalar()
        with pytest.raises(Conflict, match="already running"):
            service.run_pairing(conn, settings=settings, community_code=demo[0])


def test_cli_pair_rebalance_accept_and_export(scratch_url, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", scratch_url)
    eng = make_engine(scratch_url)
    with eng.begin() as c:
        load_demo(c, seed=6, households=500)
        code = c.execute(text("SELECT code FROM communities")).scalar()
    eng.dispose()
    runner = CliRunner()
    res = runner.invoke(cli, ["pair", "--community", code, "--time-limit", "1"])
    assert res.exit_code == 0, res.output
    assert "households" in res.output and f"plan {code}: version 2" in res.output
    res = runner.invoke(cli, ["rebalance", "--community", code])
    assert res.exit_code == 0, res.output
    pid = int(res.output.split("proposal ")[-1].split()[0])
    res = runner.invoke(cli, ["plan", "accept", str(pid)])
    assert res.exit_code == 0 and "version 3" in res.output, res.output
    res = runner.invoke(cli, ["plan", "reject", str(pid)])
    assert res.exit_code == 5, res.output
    out = tmp_path / "pairs.csv"
    res = runner.invoke(cli, ["export", "pairings", str(out), "--community", code])
    assert res.exit_code == 0, res.output
    with out.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert {"level", "client", "server", "distance_m", "same_building", "same_grid"} <= set(rows[0])
    assert {r["level"] for r in rows} == {"households", "members"}
    res = runner.invoke(cli, ["pair", "--community", "999999999999"])
    assert res.exit_code == 4
