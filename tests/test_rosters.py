"""Rosters by address into PostGIS: match report, all-or-nothing, ID hashes, member roster
columns, updates by (building, unit, room), missing records and --retire-missing, the CLI."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner
from io_helpers import COMMUNITY, frame, make_district, scalar, write_csv, write_xlsx
from shapely import box
from sqlalchemy import create_engine, text

from geodata.importer import import_file
from geodata.load import load_layer
from geodata.rosters import hash_id_number
from gridsvc.errors import InputRejected

HOUSEHOLDS = ["户主姓名", "联系电话", "家庭人口", "居住地址", "身份证号"]
ID_1 = "53010219560302123X"
ID_2 = "530102195603021247"


@pytest.fixture
def district(conn):
    make_district(conn)
    names = ["翠湖小区1号楼", "翠湖小区2号楼", "翠湖小区3栋"]
    footprints = [box(114.311 + i * 0.002, 30.584, 114.3115 + i * 0.002, 30.585) for i in range(3)]
    rows = [{"code": f"CH{i + 1}", "name": n} for i, n in enumerate(names)]
    load_layer(conn, "buildings", frame(rows, footprints))
    return conn


@pytest.fixture
def keyed(settings):
    return settings.with_(secret_key="test-secret")


def run(conn, settings, path, layer="households", **options):
    return import_file(conn, layer, path, settings=settings, **options)


def households(conn):
    rows = conn.execute(
        text(
            "SELECT h.code, b.code, h.unit, h.room, h.name, h.moved_out_at IS NOT NULL "
            "FROM households h JOIN buildings b ON b.id = h.building_id ORDER BY h.code"
        )
    )
    return [tuple(r) for r in rows]


def test_buildings_gain_compound_and_number_from_their_names(district):
    rows = district.execute(
        text("SELECT code, compound, number FROM buildings ORDER BY code")
    ).all()
    assert [tuple(r) for r in rows] == [
        ("B1", None, "1"),
        ("CH1", "翠湖小区", "1"),
        ("CH2", "翠湖小区", "2"),
        ("CH3", "翠湖小区", "3"),
    ]


def test_a_roster_by_address_imports_into_the_named_buildings(district, keyed, tmp_path):
    path = write_csv(
        tmp_path / "roster.csv",
        HOUSEHOLDS,
        [
            ["张三", "13800001111", 3, "翠湖小区3号楼2单元501室", ID_1],
            ["李四", "13800002222", 2, "五华区翠湖小区二号楼一单元五〇二", ID_2],
            ["王五", "13800003333", 1, "和平社区1号楼3-301", ""],
        ],
        encoding="gbk",
    )
    report = tmp_path / "match.csv"
    result = run(district, keyed, path, report_path=report)
    assert (result.inserted, result.updated, result.rejects) == (3, 0, ())
    assert households(district) == [
        ("B1-3-301", "B1", "3", "301", "王五", False),
        ("CH2-1-502", "CH2", "1", "502", "李四", False),
        ("CH3-2-501", "CH3", "2", "501", "张三", False),
    ]
    # the point is the building's inner point; grid and community derived from it
    inside = scalar(
        district,
        "SELECT bool_and(ST_Intersects(h.geom, b.geom)) FROM households h "
        "JOIN buildings b ON b.id = h.building_id",
    )
    assert inside
    assert scalar(district, "SELECT count(*) FROM households WHERE community_id IS NULL") == 0
    with report.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["building_code"] for r in rows] == ["CH3", "CH2", "B1"]
    assert rows[1]["compound"] == "翠湖小区" and rows[1]["room"] == "502"
    assert [r["match"] for r in rows] == ["exact", "exact", "exact"]
    assert result.id_numbers == "hashed"


def test_id_numbers_are_never_stored_in_clear(district, keyed, tmp_path):
    path = write_csv(
        tmp_path / "roster.csv",
        HOUSEHOLDS,
        [["张三", "13800001111", 3, "翠湖小区3号楼2单元501室", ID_1]],
    )
    run(district, keyed, path)
    stored = district.execute(text("SELECT to_jsonb(h)::text FROM households h")).scalar()
    assert ID_1 not in stored and ID_1[:-1] not in stored
    expected = hash_id_number(ID_1, "test-secret")
    assert scalar(district, "SELECT id_hash FROM households") == expected
    assert hash_id_number(ID_1, "another-secret") != expected


def test_id_numbers_dropped_or_refused_without_a_key(district, settings, tmp_path):
    path = write_csv(
        tmp_path / "roster.csv",
        HOUSEHOLDS,
        [["张三", "13800001111", 3, "翠湖小区3号楼2单元501室", ID_1]],
    )
    with pytest.raises(InputRejected) as caught:
        run(district, settings.with_(secret_key=None), path)
    assert "GRIDSVC_SECRET_KEY" in caught.value.rejects[0].reason
    result = run(district, settings.with_(secret_key=None, id_numbers="drop"), path)
    assert result.id_numbers == "dropped" and result.inserted == 1
    assert scalar(district, "SELECT id_hash FROM households") is None


def test_unmatched_addresses_reject_the_whole_file_with_reasons(district, keyed, tmp_path):
    path = write_csv(
        tmp_path / "roster.csv",
        HOUSEHOLDS,
        [
            ["张三", "13800001111", 3, "翠湖小区3号楼2单元501室", ""],
            ["李四", "13800002222", 2, "翠湖小区9号楼1单元101", ""],
            ["王五", "13800003333", 1, "蓝天小区1号楼101", ""],
            ["赵六", "13800004444", 1, "翠湖小区", ""],
            ["钱七", "13800005555", 1, "翠湖小区3号楼", ""],
        ],
    )
    before = scalar(district, "SELECT count(*) FROM households")
    with pytest.raises(InputRejected) as caught:
        run(district, keyed, path)
    reasons = {(r.record, r.field): r.reason for r in caught.value.rejects}
    assert reasons[(2, "address")] == "no building 9 in 翠湖小区"
    assert reasons[(3, "address")].startswith("no such compound")
    assert reasons[(4, "address")] == "no building number"
    assert reasons[(5, "room")].startswith("no room number")
    assert len(caught.value.rejects) == 4
    assert scalar(district, "SELECT count(*) FROM households") == before
    result = run(district, keyed, path, skip_invalid=True, rejects_path=tmp_path / "r.csv")
    assert result.inserted == 1 and len(result.rejects) == 4


def test_dry_run_reports_and_writes_nothing(district, keyed, tmp_path):
    path = write_xlsx(
        tmp_path / "roster.xlsx",
        HOUSEHOLDS,
        [
            ["张三", "13800001111", 3, "翠湖小区3号楼2单元501室", ID_1],
            ["李四", "13800002222", 2, "翠湖小区9号楼1单元101", ""],
        ],
    )
    logs = scalar(district, "SELECT count(*) FROM import_log")
    result = run(district, keyed, path, dry_run=True, report_path=tmp_path / "m.csv")
    assert result.dry_run and result.inserted == 0 and len(result.rejects) == 1
    assert scalar(district, "SELECT count(*) FROM households") == 0
    assert scalar(district, "SELECT count(*) FROM import_log") == logs
    with (tmp_path / "m.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1]["reason"] == "no building 9 in 翠湖小区" and rows[1]["building_code"] == ""
    ok = run(district, keyed, path, dry_run=True, skip_invalid=True)
    assert ok.inserted == 1 and scalar(district, "SELECT count(*) FROM households") == 0


def test_parts_columns_instead_of_an_address(district, keyed, tmp_path):
    path = write_csv(
        tmp_path / "parts.csv",
        ["姓名", "小区", "楼栋号", "单元", "门牌号"],
        [["张三", "翠湖", "三号楼", "2单元", "501室"], ["李四", "翠湖小区", "1", "1", "101"]],
    )
    result = run(district, keyed, path)
    assert result.inserted == 2
    assert [r[:4] for r in households(district)] == [
        ("CH1-1-101", "CH1", "1", "101"),
        ("CH3-2-501", "CH3", "2", "501"),
    ]
    assert [r.match for r in result.report] == ["normalised", "exact"]


def test_next_months_roster_updates_by_address_then_id_and_reports_missing(
    district, keyed, tmp_path
):
    first = write_csv(
        tmp_path / "m1.csv",
        HOUSEHOLDS,
        [
            ["张三", "13800001111", 3, "翠湖小区3号楼2单元501室", ID_1],
            ["李四", "13800002222", 2, "翠湖小区2号楼1单元502", ID_2],
            ["王五", "13800003333", 1, "翠湖小区1号楼1单元101", ""],
        ],
    )
    run(district, keyed, first)
    # 张三 changed phone; 李四 moved to building 1 (found by ID hash); 王五 gone; 孙八 new
    second = write_csv(
        tmp_path / "m2.csv",
        HOUSEHOLDS,
        [
            ["张三", "13900001111", 4, "翠湖小区3栋2-501", ID_1],
            ["李四", "13800002222", 2, "翠湖小区1号楼2单元201", ID_2],
            ["孙八", "13800006666", 1, "翠湖小区2号楼1单元101", ""],
        ],
    )
    result = run(district, keyed, second)
    assert (result.inserted, result.updated) == (1, 2)
    assert result.missing == ("CH1-1-101",) and result.retired == 0
    assert [r.code_from for r in result.report] == ["building/unit/room", "id_hash", "new"]
    assert households(district) == [
        ("CH1-1-101", "CH1", "1", "101", "王五", False),
        ("CH2-1-101", "CH2", "1", "101", "孙八", False),
        ("CH2-1-502", "CH1", "2", "201", "李四", False),
        ("CH3-2-501", "CH3", "2", "501", "张三", False),
    ]
    assert scalar(district, "SELECT size FROM households WHERE code = 'CH3-2-501'") == 4
    again = run(district, keyed, second, retire_missing=True)
    assert again.retired == 1 and (again.inserted, again.updated) == (0, 3)
    assert households(district)[0][-1] is True  # 王五 moved out, not deleted


def test_member_roster_columns(district, keyed, tmp_path):
    header = [
        "姓名",
        "性别",
        "出生日期",
        "所在支部",
        "联系电话",
        "居住地址",
        "党员类型",
        "是否可结对",
    ]
    path = write_xlsx(
        tmp_path / "党员花名册.xlsx",
        header,
        [
            [
                "张三",
                "男",
                "1956-03-02",
                "第一支部",
                "13800001111",
                "翠湖小区3号楼2单元501",
                "退休党员",
                "是",
            ],
            [
                "李四",
                "女",
                "1988/7/15",
                "第二支部",
                "13800002222",
                "翠湖小区3号楼2单元501",
                "在职",
                "否",
            ],
            [
                "王五",
                "男",
                "1970.01",
                "第一支部",
                "13800003333",
                "翠湖小区1号楼1-101",
                "流动党员",
                "是",
            ],
        ],
    )
    result = run(district, keyed, path, layer="members")
    assert result.inserted == 3 and not result.rejects
    rows = district.execute(
        text(
            "SELECT m.name, m.gender, m.birth_date::text, m.branch, m.kind, m.eligible, b.code, "
            "m.unit, m.room FROM members m JOIN buildings b ON b.id = m.building_id "
            "ORDER BY m.name"
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("张三", "male", "1956-03-02", "第一支部", "retired", True, "CH3", "2", "501"),
        ("李四", "female", "1988-07-15", "第二支部", "in_service", False, "CH3", "2", "501"),
        ("王五", "male", "1970-01-01", "第一支部", "mobile", True, "CH1", "1", "101"),
    ]
    # husband and wife in one flat keep two records when the roster comes again
    again = run(district, keyed, path, layer="members")
    assert (again.inserted, again.updated) == (0, 3)


def test_a_bad_birth_date_is_a_named_reject(district, keyed, tmp_path):
    path = write_csv(
        tmp_path / "m.csv",
        ["姓名", "出生日期", "居住地址"],
        [["张三", "三月二日", "翠湖小区3号楼2单元501"]],
    )
    with pytest.raises(InputRejected) as caught:
        run(district, keyed, path, layer="members")
    (reject,) = caught.value.rejects
    assert (reject.record, reject.field, reject.value) == (1, "birth_date", "三月二日")


def test_cli_dry_run_report_then_import(scratch_url, tmp_path):
    engine = create_engine(scratch_url)
    with engine.begin() as conn:
        make_district(conn)
    engine.dispose()
    try:
        _cli_dry_run_report_then_import(scratch_url, tmp_path)
    finally:  # the scratch database is shared: leave it as found
        engine = create_engine(scratch_url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM households WHERE community_id IN "
                    "(SELECT id FROM communities WHERE code = :c)"
                ),
                {"c": COMMUNITY},
            )
            conn.execute(text("DELETE FROM buildings WHERE code = 'B1'"))
            conn.execute(text("DELETE FROM streets WHERE code = :s"), {"s": COMMUNITY[:9]})
        engine.dispose()


def _cli_dry_run_report_then_import(scratch_url, tmp_path):
    from gridsvc.cli import cli

    path = write_csv(
        tmp_path / "roster.csv",
        ["户主姓名", "居住地址"],
        [["张三", "和平社区1号楼2单元501"], ["李四", "和平社区一号楼二单元五〇二"]],
    )
    env = {"GRIDSVC_DATABASE_URL": scratch_url, "GRIDSVC_SECRET_KEY": "k"}
    runner = CliRunner()
    report = tmp_path / "match.csv"
    args = ["import", "households", str(path), "--dry-run", "--report", str(report)]
    dry = runner.invoke(cli, args, env=env)
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "2 would be inserted" in dry.output
    assert report.exists()
    done = runner.invoke(cli, ["import", "households", str(path)], env=env)
    assert done.exit_code == 0, done.output
    engine = create_engine(scratch_url)
    with engine.connect() as conn:
        codes = (
            conn.execute(text("SELECT code FROM households WHERE code LIKE 'B1-%' ORDER BY code"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert codes == ["B1-2-501", "B1-2-502"]


def test_the_demo_loads_from_generated_address_rosters(conn, settings, tmp_path):
    from geodata.demo import generate_demo, load_demo

    counts = load_demo(
        conn, seed=5, households=2000, address_rosters=True, settings=settings, rosters_dir=tmp_path
    )
    generated = generate_demo(seed=5, households=2000).layers
    assert counts["households"] == len(generated["households"])
    assert counts["members"] == len(generated["members"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["住户信息表.xlsx", "党员花名册.xlsx"]
    want = sorted(
        generated["households"][["building_code", "unit", "room"]].itertuples(
            index=False, name=None
        )
    )
    got = conn.execute(
        text(
            "SELECT b.code, h.unit, h.room FROM households h "
            "JOIN buildings b ON b.id = h.building_id"
        )
    ).all()
    assert sorted(tuple(r) for r in got) == want  # every household in the building it named
    members = conn.execute(
        text("SELECT count(*) FILTER (WHERE branch IS NULL OR birth_date IS NULL) FROM members")
    ).scalar()
    assert members == 0


def test_moved_out_households_and_members_are_not_paired(conn, settings):
    from geodata.demo import load_demo
    from gridsvc.pairing import service

    load_demo(conn, seed=5, households=700)
    code = conn.execute(text("SELECT min(code) FROM communities")).scalar()
    conn.execute(
        text(
            "UPDATE households SET moved_out_at = now() WHERE id IN "
            "(SELECT id FROM households ORDER BY id LIMIT 50)"
        )
    )
    conn.execute(
        text(
            "UPDATE members SET moved_out_at = now() WHERE id IN "
            "(SELECT id FROM members ORDER BY id LIMIT 5)"
        )
    )
    service.run_pairing(
        conn, settings=settings, community_code=code, level="households", time_limit=2
    )
    paired_gone = conn.execute(
        text(
            "SELECT count(*) FROM current_household_pairs p "
            "JOIN households h ON h.id = p.household_id "
            "JOIN members m ON m.id = p.member_id "
            "WHERE h.moved_out_at IS NOT NULL OR m.moved_out_at IS NOT NULL"
        )
    ).scalar()
    assert paired_gone == 0
    assert conn.execute(text("SELECT count(*) FROM current_household_pairs")).scalar() > 0
