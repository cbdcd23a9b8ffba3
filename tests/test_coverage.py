"""Coverage, blind spots and siting against a real PostGIS: a hand-made district with known answers.

The district (metres east/north of a point in Kunming, UTM 48N)::

    community C1                                     community C2
    grid G1 (0-200)        grid G2 (200-400)         grid G3 (400-1400)
    B1 res (50,50): H1 H2  B2 res (300,50): H3 H4    B6 res (500,100): H5 H7
       M1 (eligible)          M2 (not eligible)      B7 res (1200,100): H6
    B4 commercial, org     B3 commercial, no org     B5 commercial, blank org
    station S1 at (50,60); community cadre K1 at (100,100)

Pairs (inserted into temp tables that shadow the pairing views for the test's transaction):
H1-M1 10 m same building and grid, H3-M1 250 m, H5-M1 600 m (far); M1-K1. H2, H4, H6, H7
are unpaired.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Connection, text

from geodata.projection import to_lonlat, to_metres
from gridsvc.coverage import compute_coverage, find_blindspots, load_suggestions, suggest_sites
from gridsvc.errors import InputRejected, NotFound
from gridsvc.siting import VulnerabilityWeights

EPSG = 32648
X0, Y0, _ = to_metres([102.70], [25.05], epsg=EPSG)
STREET, C1, C2 = "530102901", "530102901001", "530102901002"


def _lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = to_lonlat([X0[0] + x], [Y0[0] + y], epsg=EPSG)
    return float(lon[0]), float(lat[0])


def _box(x0: float, y0: float, x1: float, y1: float) -> str:
    ring = [_lonlat(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    coords = ", ".join(f"{lon} {lat}" for lon, lat in ring)
    return f"SRID=4326;MULTIPOLYGON((({coords})))"


def _pt(x: float, y: float) -> str:
    lon, lat = _lonlat(x, y)
    return f"SRID=4326;POINT({lon} {lat})"


def _insert(conn: Connection, table: str, rows: list[dict]) -> dict[str, int]:
    ids = {}
    for row in rows:
        cols = ", ".join(row)
        vals = ", ".join(f":{c}" for c in row)
        ids[row["code"]] = conn.execute(
            text(f"INSERT INTO {table} ({cols}) VALUES ({vals}) RETURNING id"), row
        ).scalar_one()
    return ids


@pytest.fixture
def district(conn: Connection) -> dict[str, int]:
    """Insert the district and its pairs; return code → id."""
    ids = _insert(conn, "streets", [{"code": STREET, "name": "测试街道"}])
    ids |= _insert(
        conn,
        "communities",
        [
            {"code": C1, "name": "一社区", "street_id": ids[STREET], "geom": _box(0, 0, 400, 200)},
            {
                "code": C2,
                "name": "二社区",
                "street_id": ids[STREET],
                "geom": _box(400, 0, 1400, 200),
            },
        ],
    )
    for name, comm, box in (
        ("G1", C1, (0, 0, 200, 200)),
        ("G2", C1, (200, 0, 400, 200)),
        ("G3", C2, (400, 0, 1400, 200)),
    ):
        code = comm + "00" + name[-1]
        row = {"code": code, "name": name, "community_id": ids[comm], "geom": _box(*box)}
        ids[name] = _insert(conn, "grids", [row])[code]
    buildings = [
        ("B1", "residential", None, "G1", C1, 50, 50, 6),
        ("B2", "residential", None, "G2", C1, 300, 50, 6),
        ("B3", "commercial", None, "G2", C1, 350, 150, 10),
        ("B4", "commercial", "楼宇党支部", "G1", C1, 150, 150, 10),
        ("B5", "commercial", "  ", "G3", C2, 450, 150, 2),
        ("B6", "residential", None, "G3", C2, 500, 100, 6),
        ("B7", "residential", None, "G3", C2, 1200, 100, 6),
    ]
    for code, kind, org, grid, comm, x, y, floors in buildings:
        row = {"code": code, "kind": kind, "party_org": org, "grid_id": ids[grid], "floors": floors}
        row |= {"community_id": ids[comm], "available_site": kind == "commercial"}
        ids |= _insert(conn, "buildings", [row | {"geom": _box(x - 10, y - 10, x + 10, y + 10)}])
    where = {"B1": (50, 50), "B2": (300, 50), "B6": (500, 100), "B7": (1200, 100)}
    grid_of = {"B1": "G1", "B2": "G2", "B6": "G3", "B7": "G3"}
    comm_of = {"B1": C1, "B2": C1, "B6": C2, "B7": C2}
    homes = {"H1": "B1", "H2": "B1", "H3": "B2", "H4": "B2", "H5": "B6", "H7": "B6", "H6": "B7"}
    for code, b in homes.items():
        row = {"code": code, "building_id": ids[b], "grid_id": ids[grid_of[b]]}
        row |= {"community_id": ids[comm_of[b]], "elderly_alone": code == "H4"}
        ids |= _insert(conn, "households", [row | {"geom": _pt(*where[b])}])
    for code, b, eligible in (("M1", "B1", True), ("M2", "B2", False)):
        row = {"code": code, "building_id": ids[b], "grid_id": ids[grid_of[b]], "kind": "retired"}
        row |= {"community_id": ids[comm_of[b]], "eligible": eligible}
        ids |= _insert(conn, "members", [row | {"geom": _pt(*where[b])}])
    cadre = {"code": "K1", "level": "community", "street_id": ids[STREET], "community_id": ids[C1]}
    ids |= _insert(conn, "cadres", [cadre | {"geom": _pt(100, 100)}])
    ids |= _insert(conn, "stations", [{"code": "S1", "community_id": ids[C1], "geom": _pt(50, 60)}])
    _pairs(
        conn,
        households=[
            (ids[C1], ids["H1"], ids["M1"], 10.0, True, True),
            (ids[C1], ids["H3"], ids["M1"], 250.0, False, False),
            (ids[C2], ids["H5"], ids["M1"], 600.0, False, False),
        ],
        members=[(ids[C1], ids["M1"], ids["K1"], 70.0)],
    )
    return ids


def _pairs(conn: Connection, *, households: list[tuple], members: list[tuple]) -> None:
    """Temp tables named like the pairing views shadow them (pg_temp is searched first)."""
    conn.exec_driver_sql(
        "CREATE TEMP TABLE current_household_pairs (community_id int, household_id int, "
        "member_id int, distance_m float8, same_building bool, same_grid bool) ON COMMIT DROP"
    )
    conn.exec_driver_sql(
        "CREATE TEMP TABLE current_member_pairs (community_id int, member_id int, cadre_id int, "
        "distance_m float8) ON COMMIT DROP"
    )
    conn.execute(
        text("INSERT INTO current_household_pairs VALUES (:c, :h, :m, :d, :b, :g)"),
        [dict(zip("chmdbg", row, strict=True)) for row in households],
    )
    conn.execute(
        text("INSERT INTO current_member_pairs VALUES (:c, :m, :k, :d)"),
        [dict(zip("cmkd", row, strict=True)) for row in members],
    )


def test_coverage_figures(conn, district, settings):
    report = compute_coverage(conn, street_code=STREET, settings=settings)
    s = report.summary
    assert (s["households"], s["paired"]) == (7, 3)
    assert s["paired_share"] == pytest.approx(3 / 7)
    assert s["reach_300"] == pytest.approx(4 / 7) and s["reach_1000"] == pytest.approx(6 / 7)
    assert (s["members"], s["eligible"], s["active"], s["reserve"], s["without_cadre"]) == (
        2,
        1,
        1,
        0,
        1,
    )
    assert s["distance_mean_m"] == pytest.approx(860 / 3)
    assert s["distance_p95_m"] == pytest.approx(np.quantile([10, 250, 600], 0.95))
    assert s["distance_max_m"] == 600 and s["same_building_share"] == pytest.approx(1 / 3)
    assert (s["cadres"], s["cadre_load_max"]) == (1, 1)
    comm = report.communities.set_index("code")
    assert comm.loc[C1, "households"] == 4 and comm.loc[C1, "paired"] == 2
    assert comm.loc[C1, "distance_mean_m"] == pytest.approx(130)
    assert comm.loc[C2, "paired"] == 1 and comm.loc[C2, "members"] == 0
    grids = report.grids.set_index("code")
    assert grids.loc[C1 + "001", "paired_share"] == pytest.approx(0.5)
    assert grids.loc[C2 + "003", "households"] == 3
    b = report.buildings.set_index("code")
    assert b.loc["B3", "households"] == 0 and b.loc["B6", "reach_300"] == 0
    dist = report.load_distribution.set_index(["kind", "load"])["count"]
    assert dist[("households_per_member", 3)] == 1 and dist[("members_per_cadre", 1)] == 1
    body = report.to_dict()
    assert body["summary"]["households"] == 7 and body["scope"]["code"] == STREET


def test_loads_are_checked_against_the_ranges_the_pairing_uses(conn, district, settings):
    """Member M1 serves 3 households, cadre K1 one member: below the global 15-25 and 8-15."""

    def figures() -> tuple[int, int]:
        s = compute_coverage(conn, street_code=STREET, settings=settings).summary
        return s["loads_below_min"], s["cadre_loads_below_min"]

    assert figures() == (1, 1)  # global settings
    conn.execute(text("UPDATE streets SET member_min = 1, member_max = 4"))
    conn.execute(text("UPDATE communities SET household_min = 2, household_max = 3"))
    assert figures() == (0, 0)  # the street's cadre range, M1's community's household range
    conn.execute(text("UPDATE members SET min_load = 4, max_load = 30 WHERE code = 'M1'"))
    conn.execute(text("UPDATE communities SET member_min = 2, member_max = 5"))
    assert figures() == (1, 1)  # M1's own range, then K1's community over its street
    # the very ranges the pairing service poses to the solver
    from gridsvc.coverage._data import load_scope, resolve_scope
    from gridsvc.pairing import service

    data = load_scope(conn, resolve_scope(conn, street_code=STREET), settings=settings)
    ranges = data.members.set_index("code")[["min_load", "max_load"]]
    posed = service._members(conn, data.communities["community_id"].tolist(), settings)
    assert ranges.loc[posed["code"]].to_numpy().tolist() == (
        posed[["min_load", "max_load"]].to_numpy().tolist()
    )
    assert ranges.loc["M1"].tolist() == [4, 30] and ranges.loc["M2"].tolist() == [2, 3]
    cadres = service._cadres(conn, int(data.scope.street_ids[0]), settings)
    assert cadres[["min_load", "max_load"]].to_numpy().tolist() == [[2, 5]]
    assert data.cadres[["min_load", "max_load"]].to_numpy().tolist() == [[2, 5]]


def test_community_scope_and_not_found(conn, district, settings):
    report = compute_coverage(conn, community_code=C2, settings=settings)
    assert report.summary["households"] == 3 and list(report.grids["code"]) == [C2 + "003"]
    with pytest.raises(NotFound, match="530102901999"):
        compute_coverage(conn, community_code="530102901999", settings=settings)


def test_every_blind_spot_kind(conn, district, settings):
    spots = find_blindspots(conn, street_code=STREET, settings=settings)
    assert spots.counts() == {
        "unpaired_households": 4,
        "members_without_cadre": 1,
        "far_pairs": 1,
        "grids_without_members": 2,
        "station_gaps": 2,
        "uncovered_commercial": 2,
        "overdue_contact": 3,  # every paired household: no contact logged yet
        "overdue_request": 0,  # no request logged
    }
    for frame in spots.frames.values():
        assert frame.crs.to_epsg() == 4326 and list(frame["rank"]) == list(range(1, len(frame) + 1))
        assert not len(frame) or frame["reason"].str.len().min() > 0  # overdue_request: none
        assert frame.geometry.notna().all()
    assert list(spots["unpaired_households"]["code"]) == ["H6", "H7", "H4", "H2"]
    assert list(spots["members_without_cadre"]["code"]) == ["M2"]
    far = spots["far_pairs"].iloc[0]
    assert (far["code"], far["member_code"], far["distance_m"]) == ("H5", "M1", 600)
    assert far.geometry.geom_type == "LineString"
    assert list(spots["grids_without_members"]["code"]) == [C2 + "003", C1 + "002"]
    gaps = spots["station_gaps"]
    assert list(gaps["code"]) == ["B7", "B6"]
    assert gaps["outside_1000"].tolist() == [True, False]
    assert dict(spots.station_gap_counts[500]) == {"buildings": 1, "households": 1}
    assert dict(spots.station_gap_counts[300]) == {"buildings": 2, "households": 3}
    assert list(spots["uncovered_commercial"]["code"]) == ["B3", "B5"]
    geo = spots.to_geojson()
    assert len(geo["features"]) == 15 and geo["features"][0]["properties"]["kind"]


def test_far_pair_setting_and_kind_filter(conn, district, settings):
    spots = find_blindspots(
        conn, community_code=C1, kinds=["far_pairs"], settings=settings.with_(far_pair_m=100)
    )
    assert list(spots.frames) == ["far_pairs"] and list(spots["far_pairs"]["code"]) == ["H3"]
    with pytest.raises(InputRejected, match="nope"):
        find_blindspots(conn, kinds=["nope"], settings=settings)


def test_english_reasons(conn, district, settings):
    spots = find_blindspots(
        conn, community_code=C2, kinds=["station_gaps"], settings=settings.with_(lang="en")
    )
    assert spots["station_gaps"]["reason"].iloc[0].startswith("nearest Red Station 1,151 m")


def test_suggest_sites_stores_a_drawable_run(conn, district):
    run = suggest_sites(
        conn,
        community_code=C2,
        radius_m=300,
        k=1,
        weights=VulnerabilityWeights(),
        candidates="buildings",
    )
    # Only B5 (commercial, available) is a candidate in C2: it reaches H5 and H7 at B6 (~71 m).
    assert run.result.status == "optimal" and run.sites["building_code"].tolist() == ["B5"]
    assert run.sites["new_households"].tolist() == [2]
    stored = load_suggestions(conn, run.run_id)
    assert stored["building_code"].tolist() == ["B5"] and stored.crs.to_epsg() == 4326
    lattice = suggest_sites(
        conn, community_code=C2, radius_m=300, k=None, candidates="lattice", spacing_m=100
    )
    assert lattice.result.problem == "lscp" and lattice.result.covered_count == 3
    with pytest.raises(InputRejected, match="available_site"):
        conn.execute(text("UPDATE buildings SET available_site = false"))
        suggest_sites(conn, community_code=C2, radius_m=300, k=1)
    with pytest.raises(NotFound):
        load_suggestions(conn, 10**9)


def test_kunming_real_footprints(conn, settings):
    """Real OSM footprints (ODbL, tests/data/kunming): figures add up across levels."""
    from geodata.kunming import COMMUNITY, STREET, load_kunming

    counts = load_kunming(conn)
    report = compute_coverage(conn, street_code=STREET, settings=settings)
    s = report.summary
    assert s["households"] == counts["households"] > 0
    assert report.grids["households"].sum() == s["households"]
    assert report.buildings["households"].sum() == s["households"]
    assert s["members"] == counts["members"]
    circles = [s[f"reach_{r}"] for r in sorted(settings.life_circles_m)]
    assert 0 <= circles[0] <= circles[1] <= circles[2] <= 1
    spots = find_blindspots(conn, community_code=COMMUNITY, settings=settings)
    gaps = spots.station_gap_counts
    assert gaps[300]["households"] == round((1 - s["reach_300"]) * s["households"])
    assert gaps[300]["buildings"] >= gaps[500]["buildings"] >= gaps[1000]["buildings"]
    assert spots.counts()["station_gaps"] == gaps[300]["buildings"]
    run = suggest_sites(conn, community_code=COMMUNITY, radius_m=300, k=2, candidates="buildings")
    before = run.result.covered_count - int(run.result.new_count.sum())
    assert run.result.status == "optimal" and run.result.covered_count >= before
    assert len(load_suggestions(conn, run.run_id)) == len(run.sites) <= 2


def test_pairing_views_when_present(conn, settings):
    """Against the pairing developer's real views (skipped until their migration exists)."""
    present = conn.scalar(text("SELECT to_regclass('current_household_pairs') IS NOT NULL"))
    if not present:
        pytest.skip("views current_household_pairs/current_member_pairs not created yet (issue 3)")
    report = compute_coverage(conn, settings=settings)
    assert report.pairs_available


def test_cli_exit_codes(engine, settings):
    from click.testing import CliRunner

    from gridsvc.cli import cli

    env = {"GRIDSVC_DATABASE_URL": settings.database_url}
    runner = CliRunner()
    missing = runner.invoke(cli, ["coverage", "--community", "530102999999"], env=env)
    assert missing.exit_code == 4 and "530102999999" in missing.output
    both = runner.invoke(cli, ["coverage", "--street", "530102999", "--community", "1"], env=env)
    assert both.exit_code == 2
    kind = runner.invoke(cli, ["blindspots", "--kind", "nope"], env=env)
    assert kind.exit_code == 3 and "nope" in kind.output
    no_k = runner.invoke(cli, ["sites", "suggest", "--community", "1", "--radius", "300"], env=env)
    assert no_k.exit_code == 2 and "--cover-all" in no_k.output
    weights = [
        "sites",
        "suggest",
        "--community",
        "1",
        "--radius",
        "300",
        "--k",
        "1",
        "--weights",
        "x=1",
    ]
    assert runner.invoke(cli, weights, env=env).exit_code == 3


def test_blind_spots_agree_with_the_pairings_own_explanation(conn, settings):
    """Pair the demo street (community 005 is short of members), then list its blind spots."""
    from geodata.demo import load_demo
    from gridsvc.pairing.service import run_pairing

    load_demo(conn, seed=1)
    street = "530102001"
    runs = run_pairing(conn, settings=settings, street_code=street, time_limit=1).runs
    households = [r for r in runs if r.level == "households"]
    (members,) = [r for r in runs if r.level == "members"]
    unpaired = sum(r.n_clients - r.n_paired for r in households)
    assert unpaired > 0 and members.n_clients > members.n_paired  # both kinds occur
    spots = find_blindspots(
        conn,
        street_code=street,
        kinds=["unpaired_households", "members_without_cadre"],
        settings=settings,
    )
    # households with no member: the runs' unpaired households, one for one, with their reason
    hh = spots["unpaired_households"]
    assert len(hh) == unpaired
    explained = conn.execute(
        text(
            "SELECT h.code, u.reason FROM pairing_unpaired u "
            "JOIN households h ON h.id = u.household_id WHERE u.run_id = ANY(:runs)"
        ),
        {"runs": [r.id for r in households]},
    ).all()
    assert dict(zip(hh["code"], hh["pairing_reason"], strict=True)) == dict(explained)
    assert hh["reason"].str.contains("党员均已满额").all()
    # members with no cadre: the member run's unpaired members; reserve members say so
    m = spots["members_without_cadre"]
    assert len(m) == members.n_clients - members.n_paired
    assert set(m["pairing_reason"]) == {"servers_full"}
    reserve = conn.scalar(
        text("SELECT count(*) FROM pairing_reserve WHERE run_id = ANY(:runs)"),
        {"runs": [r.id for r in households]},
    )
    without = m["reserve_reason"].notna().sum()
    assert 0 < without <= reserve and m["reason"].str.contains("干部均已满额").all()
    cov = compute_coverage(conn, street_code=street, settings=settings).summary
    assert cov["households"] - cov["paired"] == unpaired
    assert cov["without_cadre"] == len(m)
