"""Address parsing and matching: a corpus of the forms rosters use, and numeral properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geodata.addresses import (
    Building,
    BuildingIndex,
    building_parts,
    chinese_numeral,
    compound_key,
    normalise,
    parse_address,
    parse_numeral,
)

CUIHU, QINGYUN, QIANJU = 1, 2, 3


def _buildings() -> list[Building]:
    out: list[Building] = []

    def add(community, cname, compound, numbers, *, prefix="", named=None):
        for n in numbers:
            code = f"{prefix}{n}"
            name = named(n) if named else f"{n}号楼"
            out.append(Building(len(out) + 1, code, name, compound, str(n), community, cname))

    add(CUIHU, "翠湖社区", "翠湖小区", range(1, 13), prefix="CH-")
    add(CUIHU, "翠湖社区", "翠湖小区", ["A", "B"], prefix="CH-", named=lambda n: f"{n}座")
    add(CUIHU, "翠湖社区", "翠湖花园", range(1, 6), prefix="HY-")
    add(CUIHU, "翠湖社区", "文林苑", range(1, 4), prefix="WL-")
    add(CUIHU, "翠湖社区", "五一小区", range(1, 3), prefix="WY-")
    add(CUIHU, "翠湖社区", "幸福里", range(1, 5), prefix="XF1-")
    add(QINGYUN, "青云社区", "幸福里", range(3, 7), prefix="XF2-")
    add(QINGYUN, "青云社区", "青云小区", range(1, 9), prefix="QY-")
    add(QINGYUN, "青云社区", "滇池路南段职工住宅小区", range(1, 3), prefix="DN-")
    add(QINGYUN, "青云社区", "滇池路北段职工住宅小区", range(1, 3), prefix="DB-")
    add(QINGYUN, "青云社区", "云南省建筑工程公司宿舍", range(1, 4), prefix="JG-")
    add(QINGYUN, "青云社区", "金碧辉煌大酒店职工家属院", range(1, 3), prefix="JB-")
    # 钱局社区: buildings named only "N号楼" (no compound): the community is their compound
    for n in (1, 2, 3):
        out.append(Building(len(out) + 1, f"QJ-{n}", f"{n}号楼", None, None, QIANJU, "钱局社区"))
    # two buildings carrying the same compound and number: a data error the matcher must name
    out.append(Building(len(out) + 1, "QY-8bis", "8号楼", "青云小区", "8", QINGYUN, "青云社区"))
    return out


INDEX = BuildingIndex(_buildings())

#: (address, community_id or None, expected building code, or "!" + the start of the reason)
CORPUS = [
    # the forms of the issue
    ("翠湖小区3号楼2单元501室", None, "CH-3"),
    ("翠湖小区3栋2-501", None, "CH-3"),
    ("翠湖小区3幢2单元501", None, "CH-3"),
    ("翠湖小区3座2单元501", None, "CH-3"),
    ("翠湖小区3号2单元501", None, "CH-3"),
    ("翠湖小区3#2-501", None, "CH-3"),
    ("翠湖小区3#楼2单元501", None, "CH-3"),
    ("翠湖小区三号楼二单元五〇一", None, "CH-3"),
    ("翠湖小区叁号楼贰单元伍零壹室", None, "CH-3"),
    ("翠湖小区十二号楼1单元101", None, "CH-12"),
    ("翠湖小区拾贰栋1-101", None, "CH-12"),
    ("翠湖小区第十二栋", None, "CH-12"),
    ("翠湖小区１２号楼１单元１０１室", None, "CH-12"),
    ("翠湖小区３＃２－５０１", None, "CH-3"),
    ("翠湖小区 3 号楼 2 单元 501 室", None, "CH-3"),
    ("翠湖小区，3号楼，2单元，501室", None, "CH-3"),
    ("翠湖小区-3号楼-2单元-501", None, "CH-3"),
    ("翠湖小区3-2-501", None, "CH-3"),
    ("翠湖小区3—2—501", None, "CH-3"),
    ("翠湖小区3号楼201", None, "CH-3"),
    ("翠湖小区3号楼", None, "CH-3"),
    ("翠湖小区3栋2单元", None, "CH-3"),
    ("翠湖小区3号楼2单元501号", None, "CH-3"),
    ("翠湖小区3号楼2门501", None, "CH-3"),
    ("翠湖小区3号楼5层501", None, "CH-3"),
    ("翠湖小区A座1201", None, "CH-A"),
    ("翠湖小区a座1201", None, "CH-A"),
    ("翠湖小区Ｂ座2单元301", None, "CH-B"),
    # leading district / street / community names
    ("五华区翠湖小区3号楼2单元501", None, "CH-3"),
    ("昆明市五华区华山街道翠湖社区翠湖小区3栋2-501", None, "CH-3"),
    ("云南省昆明市五华区华山街道翠湖社区翠湖小区3号楼", None, "CH-3"),
    ("华山街道翠湖小区3号楼2单元501", None, "CH-3"),
    ("翠湖社区翠湖小区3号楼", None, "CH-3"),
    ("翠湖社区居委会翠湖小区3号楼", None, "CH-3"),
    ("人民路12号翠湖小区3栋2-501", None, "CH-3"),
    # normalised compound names: generic words, spaces
    ("翠湖3号楼2单元501", None, "CH-3"),
    ("翠湖住宅小区3号楼", None, "CH-3"),
    ("翠 湖 小 区 3 号 楼", None, "CH-3"),
    ("文林苑小区2栋1单元101", None, "WL-2"),
    ("文林苑2号楼", None, "WL-2"),
    ("建筑工程公司宿舍2栋", None, "JG-2"),
    ("云南省建筑工程公司宿舍3号楼", None, "JG-3"),
    ("金碧辉煌大酒店职工家属院1栋", None, "JB-1"),
    ("金碧辉煌大酒店职工1栋", None, "JB-1"),
    # a compound name with numerals in it
    ("五一小区2号楼1单元101", None, "WY-2"),
    ("五一小区二号楼", None, "WY-2"),
    # a community whose buildings carry no compound
    ("钱局社区2号楼3单元402", None, "QJ-2"),
    ("钱局社区二号楼", None, "QJ-2"),
    # the community narrows a compound name that repeats
    ("幸福里1号楼", None, "XF1-1"),
    ("幸福里6号楼", None, "XF2-6"),
    ("幸福里3号楼", CUIHU, "XF1-3"),
    ("幸福里3号楼", QINGYUN, "XF2-3"),
    ("青云社区幸福里4号楼", None, "XF2-4"),
    # no compound: the building number alone, only inside the given community
    ("三号楼二单元五〇一", CUIHU, "!ambiguous"),
    ("三号楼二单元五〇一", QIANJU, "QJ-3"),
    ("三号楼二单元五〇一", None, "!no compound named"),
    # fuzzy: one wrong character in a long name, clear of the next
    ("金碧辉皇大酒店职工家属院1栋", None, "JB-1"),
    # must not match
    ("翠湖小区13号楼2单元501", None, "!no building 13"),
    ("翠湖花苑3号楼", None, "!no such compound"),
    ("翠湖家园3号楼", None, "!no such compound"),
    ("蓝天小区3号楼", None, "!no such compound"),
    ("滇池路中段职工住宅小区1栋", None, "!ambiguous compound"),
    ("幸福里3号楼", None, "!ambiguous building 3"),
    ("幸福里4号楼", None, "!ambiguous building 4"),
    ("青云小区8号楼", None, "!ambiguous building 8"),
    ("翠湖小区", None, "!no building number"),
    ("翠湖小区3楼501", None, "!no building number"),  # 3楼 is a floor, not building 3
    ("翠湖小区501室", None, "!no building number"),
    ("翠湖小区2单元501", None, "!no building number"),
    ("翠湖小区二单元501室", None, "!no building number"),
    ("", None, "!empty address"),
    ("翠湖小区C座", None, "!no building C"),
    ("青云小区3号楼", CUIHU, "!no such compound"),
]


def resolve(address: str, community: int | None) -> str:
    parsed = parse_address(address)
    if parsed.building_no is None:
        return "!" + (parsed.problem or "")
    found = INDEX.match(
        parsed.compound, parsed.building_no, community_id=community, community=parsed.community
    )
    return found.building.code if found.building else "!" + (found.reason or "")


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 60
    assert len({(a, c) for a, c, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("address", "community", "expected"), CORPUS)
def test_corpus(address, community, expected):
    got = resolve(address, community)
    if expected.startswith("!"):
        assert got.startswith(expected), got
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("翠湖小区3号楼2单元501室", ("翠湖小区", "3", "2", "501")),
        ("翠湖小区3栋2-501", ("翠湖小区", "3", "2", "501")),
        ("三号楼二单元五〇一", (None, "3", "2", "501")),
        ("翠湖小区３＃２－５０１", ("翠湖小区", "3", "2", "501")),
        ("翠湖小区十二幢3单元1201", ("翠湖小区", "12", "3", "1201")),
        ("翠湖小区3号楼201", ("翠湖小区", "3", None, "201")),
        ("翠湖小区3-501", ("翠湖小区", "3", None, "501")),
        ("翠湖小区B2栋3-101", ("翠湖小区", "B2", "3", "101")),
    ],
)
def test_parts(address, parts):
    a = parse_address(address)
    assert (a.compound, a.building_no, a.unit, a.room) == parts


def test_ambiguity_names_both_candidates():
    found = INDEX.match("幸福里", "3")
    assert found.building is None
    assert "XF1-3" in found.reason and "XF2-3" in found.reason
    fuzzy = INDEX.match("滇池路中段职工住宅小区", "1")
    assert "滇池路南段职工住宅小区" in fuzzy.reason and "滇池路北段职工住宅小区" in fuzzy.reason


def test_fuzzy_match_carries_its_score_and_thresholds_are_settings():
    found = INDEX.match("金碧辉皇大酒店职工家属院", "1")
    assert found.how == "fuzzy" and 0.85 <= found.score < 1
    strict = BuildingIndex(_buildings(), fuzzy_min=0.95)
    assert strict.match("金碧辉皇大酒店职工家属院", "1").building is None
    loose_margin = BuildingIndex(_buildings(), fuzzy_min=0.5, fuzzy_margin=0.9)
    assert "ambiguous" in loose_margin.match("金碧辉皇大酒店职工家属院", "1").reason


def test_how_it_matched():
    assert INDEX.match("翠湖小区", "3").how == "exact"
    assert INDEX.match("翠湖", "3").how == "normalised"
    assert INDEX.match(None, "3", community_id=QIANJU).how == "community"


def test_building_parts_from_names():
    assert building_parts("3号楼") == (None, "3")
    assert building_parts("翠湖小区十二栋") == ("翠湖小区", "12")
    assert building_parts("翠湖小区B座") == ("翠湖小区", "B")
    assert building_parts("综合楼") == (None, None)
    assert building_parts(None) == (None, None)


def test_normalise():
    assert normalise("翠湖小区　３＃（北）") == "翠湖小区3#北"
    assert compound_key("翠湖住宅小区") == "翠湖"
    assert compound_key("小区") == "小区"


# --- numerals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("三", 3),
        ("叁", 3),
        ("十二", 12),
        ("一十二", 12),
        ("二十", 20),
        ("一百零一", 101),
        ("五〇一", 501),
        ("五零一", 501),
        ("壹仟零贰拾", 1020),
        ("两百", 200),
        ("12", 12),
        ("〇", 0),
    ],
)
def test_numerals(text, value):
    assert parse_numeral(text) == value


@pytest.mark.parametrize("text", ["", "十十", "三百百", "三五十", "甲", "3a"])
def test_malformed_numerals(text):
    with pytest.raises(ValueError):
        parse_numeral(text)


@given(st.integers(0, 9999), st.sampled_from(["positional", "digits", "financial"]))
def test_every_written_number_reads_back(n, style):
    assert parse_numeral(chinese_numeral(n, style=style)) == n


@given(st.integers(1, 99), st.integers(1, 9), st.integers(101, 3299))
def test_any_number_written_any_way_parses_to_the_same_parts(building, unit, room):
    forms = [
        f"翠湖小区{building}号楼{unit}单元{room}室",
        f"翠湖小区{chinese_numeral(building)}栋{chinese_numeral(unit)}单元"
        f"{chinese_numeral(room, style='digits')}",
        f"翠湖小区{str(building).translate(_FULL)}＃{unit}－{room}",
    ]
    for form in forms:
        a = parse_address(form)
        assert (a.compound, a.building_no, a.unit, a.room) == (
            "翠湖小区",
            str(building),
            str(unit),
            str(room),
        ), form


_FULL = str.maketrans("0123456789", "０１２３４５６７８９")


@given(st.text(max_size=40))
def test_parser_never_raises(text):
    parse_address(text)


def test_every_reason_has_a_label_in_both_languages_with_the_same_values():
    import string

    from geodata.addresses import REASONS
    from gridsvc.web.i18n import LABELS

    def names(template):
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}

    for code, english in REASONS.items():
        label = LABELS[f"why_{code}"]
        assert names(label["zh"]) == names(label["en"]) == names(english), code
