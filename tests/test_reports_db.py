"""The report service and ``gridsvc report`` against PostGIS with the demo street."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from geodata.demo import load_demo
from gridsvc.cli import cli
from gridsvc.coverage import compute_coverage
from gridsvc.errors import Forbidden, NotFound
from gridsvc.reports import build_report, gather_report
from maps.report import render_report

STREET = "530102001"
COMMUNITY = "530102001001"


def _text(html: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), html)


@pytest.fixture
def demo(conn):
    load_demo(conn, seed=1)
    return conn


def _fake_pairs(conn) -> None:
    """Stand-ins shadowing the pairing views (temporary views: pg_temp is searched first)."""
    conn.execute(
        text(
            "CREATE TEMP VIEW current_household_pairs AS "
            "SELECT h.community_id, h.id AS household_id, m.id AS member_id, "
            "ST_Distance(h.geom::geography, m.geom::geography) AS distance_m, "
            "h.building_id = m.building_id AS same_building, h.grid_id = m.grid_id AS same_grid "
            "FROM households h JOIN LATERAL (SELECT id, geom, building_id, grid_id FROM members "
            "WHERE community_id = h.community_id AND eligible ORDER BY geom <-> h.geom LIMIT 1) m "
            "ON true WHERE h.id % 3 <> 0"
        )
    )
    conn.execute(
        text(
            "CREATE TEMP VIEW current_member_pairs AS "
            "SELECT m.community_id, m.id AS member_id, c.id AS cadre_id, 0.0 AS distance_m "
            "FROM members m JOIN LATERAL (SELECT id FROM cadres WHERE community_id = "
            "m.community_id ORDER BY geom <-> m.geom LIMIT 1) c ON true WHERE m.id % 2 = 0"
        )
    )


def test_gather_report_without_pairs(demo, settings):
    data = gather_report(demo, street_code=STREET, settings=settings, user="tester")
    assert data.scope == STREET and data.generated_by == "tester"
    assert len(data.map.households) == 18_620 and not data.map.households["paired"].any()
    assert len(data.map.grids) == 45 and set(data.map.grids["households"]) != {0}
    assert "unpaired_households" in data.blindspots
    assert list(data.stations.columns) == [
        "code",
        "name",
        "within_300",
        "within_500",
        "within_1000",
    ]
    assert (data.stations["within_1000"] >= data.stations["within_300"]).all()


def test_report_with_pairs_draws_lines_and_loads(demo, settings):
    _fake_pairs(demo)
    data = gather_report(demo, community_code=COMMUNITY, settings=settings)
    assert data.map.households["paired"].mean() > 0.5
    assert data.map.pairs is not None and len(data.map.pairs) > 1000
    assert data.map.members["active"].any() and data.loads.max() > 0
    assert data.distances.size > 1000
    # the report's figures are coverage's figures, computed from the same pairs
    assert data.map.summary["distance_mean_m"] == pytest.approx(data.distances.mean())
    assert data.map.summary["distance_p95_m"] == pytest.approx(np.percentile(data.distances, 95))
    assert data.map.summary["paired"] == data.distances.size == data.map.households["paired"].sum()
    html = _text(build_report(demo, community_code=COMMUNITY, settings=settings))
    assert "党员—住户结对连线" in html and "<script src" not in html
    member = data.map.pairs["member_code"].iloc[0]
    one = gather_report(
        demo, community_code=COMMUNITY, settings=settings, members=frozenset({member})
    )
    assert len(one.map.pairs) > 0 and set(one.map.pairs["member_code"]) == {member}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_shows_no_raw_names(demo, settings, lang):
    _fake_pairs(demo)
    html = _text(build_report(demo, community_code=COMMUNITY, settings=settings.with_(lang=lang)))
    aside = html[html.index("<aside") : html.index("</aside>")]
    heads = [h for h in re.findall(r"<th>(.*?)</th>", aside) if h]
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", " ", aside, flags=re.S))
    assert len(heads) > 15 and not re.findall(r"\b[a-z]+_[a-z0-9_]+\b", visible)
    cjk = [h for h in heads if re.search(r"[\u4e00-\u9fff]", h)]
    assert cjk == (heads if lang == "zh" else []), heads


def test_unmasked_needs_the_right_and_is_audited(demo, settings):
    with pytest.raises(Forbidden):
        build_report(demo, community_code=COMMUNITY, settings=settings, unmasked=True)
    masked = _text(build_report(demo, community_code=COMMUNITY, settings=settings))
    name = demo.scalar(text("SELECT name FROM members ORDER BY id LIMIT 1"))
    assert len(name) >= 2 and f'"{name}"' not in masked
    full = _text(
        build_report(
            demo,
            community_code=COMMUNITY,
            settings=settings,
            unmasked=True,
            allowed=True,
            user="auditor",
        )
    )
    assert f'"{name}"' in full
    audited = (
        demo.scalar(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'report_unmasked' AND username = "
                "'auditor'"
            )
        )
        if demo.scalar(text("SELECT to_regclass('audit_log') IS NOT NULL"))
        else 1
    )
    assert audited == 1


def test_unknown_scope(demo, settings):
    with pytest.raises(NotFound):
        build_report(demo, street_code="999999999", settings=settings)


def test_cli_report(scratch_url, tmp_path):
    env = {"GRIDSVC_DATABASE_URL": scratch_url}
    runner = CliRunner()
    assert runner.invoke(cli, ["demo", "--seed", "5"], env=env).exit_code == 0
    out = tmp_path / "r.html"
    result = runner.invoke(
        cli, ["report", "--community", COMMUNITY, "--out", str(out), "--lang", "en"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "masked" in result.output and out.stat().st_size > 100_000
    assert "Coverage by grid" in out.read_text(encoding="utf-8")
    missing = runner.invoke(cli, ["report", "--street", "999999999", "--out", str(out)], env=env)
    assert missing.exit_code == 4
    neither = runner.invoke(cli, ["report", "--out", str(out)], env=env)
    assert neither.exit_code == 2


def test_load_table_uses_the_ranges_the_pairing_uses(demo, settings):
    _fake_pairs(demo)
    demo.execute(text("UPDATE streets SET household_min = 1, household_max = 2"))
    data = gather_report(demo, community_code=COMMUNITY, settings=settings)
    assert data.load_range == (1, 2) and data.loads_outside is None
    demo.execute(text("UPDATE members SET min_load = 3, max_load = 40 WHERE id % 4 = 0"))
    data = gather_report(demo, community_code=COMMUNITY, settings=settings)
    cov = compute_coverage(demo, community_code=COMMUNITY, settings=settings).summary
    assert data.loads_outside == (cov["loads_below_min"], cov["loads_above_max"])
    assert sum(data.loads_outside) > 0
    html = render_report(data)
    assert "低于各自下限" in html and "少于1户" not in html
