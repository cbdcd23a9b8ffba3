"""Labels of maps and reports in Chinese (default) and English."""

from __future__ import annotations

import re

LANGS = ("zh", "en")

_LABELS: dict[str, tuple[str, str]] = {
    # layers
    "streets": ("街道边界", "Streets"),
    "communities": ("社区边界", "Communities"),
    "grids": ("网格（按结对率）", "Grids (share paired)"),
    "buildings": ("楼栋（按结对率）", "Buildings (share paired)"),
    "households": ("住户", "Households"),
    "household": ("住户", "Household"),
    "suggested_sites": ("建议新设驿站", "Suggested new stations"),
    "households_heat": ("住户热力图", "Households (heat map)"),
    "members": ("党员（在岗/储备）", "Members (active / reserve)"),
    "pair_lines": ("党员—住户结对连线", "Member–household pairs"),
    "cadres": ("干部及联系党员", "Cadres and their members"),
    "stations": ("红色驿站", "Red Stations"),
    "blindspots": ("盲点", "Blind spots"),
    # legend and tooltips
    "legend": ("图例", "Legend"),
    "summary": ("覆盖概况", "Coverage"),
    "share_paired": ("结对率", "Share paired"),
    "code": ("编码", "Code"),
    "name": ("名称", "Name"),
    "person": ("姓名", "Name"),
    "phone": ("电话", "Phone"),
    "kind": ("类别", "Kind"),
    "level": ("层级", "Level"),
    "load": ("联系数", "Load"),
    "active": ("在岗党员", "Active member"),
    "reserve": ("储备党员", "Reserve member"),
    "cadre": ("干部", "Cadre"),
    "station": ("红色驿站", "Red Station"),
    "services": ("服务", "Services"),
    "paired": ("已结对", "Paired"),
    "unpaired": ("未结对", "Unpaired"),
    "ring": ("步行圈", "walking ring"),
    "rank": ("排序", "Rank"),
    "reason": ("原因", "Reason"),
    "lines_hint": ("放大至{z}级或点击党员时显示", "shown from zoom {z} or on a click on a member"),
    "ring_m": ("{m}米步行圈", "{m} m walking ring"),
    "from_zoom": ("{z}级起显示", "from zoom {z}"),
    "per_building": ("按楼栋汇总", "per building"),
    "blindspots_here": ("盲点数", "Blind spots"),
    "top_rank": ("最靠前排序", "Top rank"),
    "value": ("数值", "Value"),
    "figure": ("指标", "Figure"),
    "colon": ("：", ": "),
    "below_own": ("低于各自下限", "Below their own minimum"),
    "within_own": ("在各自范围内", "Within their own range"),
    "above_own": ("高于各自上限", "Above their own maximum"),
    "lines_omitted": (
        "结对过多，仅在选中党员时绘制连线",
        "too many pairs: lines drawn for a selection only",
    ),
    "households_count": ("户数", "Households"),
    "paired_count": ("已结对户数", "Paired households"),
    "members_count": ("党员数", "Members"),
    "resident": ("居民党员", "resident"),
    "in_service": ("在职党员", "in service"),
    "mobile": ("流动党员", "mobile"),
    "retired": ("离退休党员", "retired"),
    "street": ("街道干部", "street cadre"),
    "community": ("社区干部", "community cadre"),
    # summary figures
    "households_total": ("住户总数", "Households"),
    "households_paired": ("已结对住户", "Households paired"),
    "household_coverage": ("住户覆盖率", "Household coverage"),
    "members_total": ("党员总数", "Members"),
    "members_active": ("在岗党员", "Active members"),
    "members_reserve": ("储备党员", "Reserve members"),
    "members_with_cadre": ("有干部联系的党员", "Members with a cadre"),
    "member_coverage": ("党员覆盖率", "Member coverage"),
    "cadres_total": ("干部总数", "Cadres"),
    "stations_total": ("红色驿站", "Red Stations"),
    "blindspots_total": ("盲点数", "Blind spots"),
    "median_distance_m": ("结对距离中位数（米）", "Median pair distance (m)"),
    "p90_distance_m": ("结对距离90分位（米）", "90th percentile distance (m)"),
    "max_distance_m": ("最远结对距离（米）", "Longest pair (m)"),
    "far_pairs": ("远距离结对", "Far pairs"),
    # coverage columns (gridsvc.coverage)
    "col.households": ("住户", "Households"),
    "paired_share": ("结对率", "Share paired"),
    "col.members": ("党员", "Members"),
    "col.active": ("在岗党员", "Active members"),
    "col.reserve": ("储备党员", "Reserve members"),
    "eligible": ("可结对党员", "Eligible members"),
    "without_cadre": ("无干部联系党员", "Members without a cadre"),
    "col.cadres": ("干部", "Cadres"),
    "load_mean": ("平均联系户数", "Mean load"),
    "distance_mean_m": ("平均结对距离（米）", "Mean pair distance (m)"),
    "distance_p95_m": ("95分位结对距离（米）", "95th percentile distance (m)"),
    "col.stations": ("红色驿站", "Red Stations"),
    "load_min": ("最少联系户数", "Fewest households"),
    "load_max": ("最多联系户数", "Most households"),
    "loads_below_min": ("联系户数低于下限的党员", "Members below the minimum"),
    "loads_above_max": ("联系户数高于上限的党员", "Members above the maximum"),
    "pairs": ("结对数", "Pairs"),
    "distance_max_m": ("最远结对距离（米）", "Longest pair (m)"),
    "same_building_share": ("同楼结对比例", "Pairs in the same building"),
    "same_grid_share": ("同网格结对比例", "Pairs in the same grid"),
    "cadre_load_mean": ("干部平均联系党员数", "Members per cadre (mean)"),
    "cadre_load_min": ("干部最少联系党员数", "Members per cadre (fewest)"),
    "cadre_load_max": ("干部最多联系党员数", "Members per cadre (most)"),
    "cadre_loads_below_min": ("联系党员数低于下限的干部", "Cadres below the minimum"),
    "cadre_loads_above_max": ("联系党员数高于上限的干部", "Cadres above the maximum"),
    "vulnerable": ("困难情形数", "Vulnerable flags"),
    "elderly_alone": ("独居老人", "Elderly living alone"),
    "disabled": ("残疾人", "Disabled"),
    "low_income": ("低收入", "Low income"),
    "children": ("有未成年人", "Children"),
    "count": ("数量", "Count"),
    "street_code": ("街道编码", "Street"),
    "community_code": ("社区编码", "Community"),
    "grid_code": ("网格编码", "Grid"),
    "building_code": ("楼栋编码", "Building"),
    "member_code": ("党员编码", "Member"),
    "nearest_member_m": ("最近党员（米）", "Nearest member (m)"),
    "nearest_cadre_m": ("最近干部（米）", "Nearest cadre (m)"),
    "nearest_station_m": ("最近驿站（米）", "Nearest station (m)"),
    "distance_m": ("距离（米）", "Distance (m)"),
    "floors": ("层数", "Floors"),
    "floor_area_m2": ("建筑面积（㎡）", "Floor area (m²)"),
    # blind spot kinds
    "unpaired_households": ("未结对住户", "Households with no member"),
    "members_without_cadre": ("无干部联系的党员", "Members with no cadre"),
    "far_pairs_kind": ("远距离结对", "Households paired far away"),
    "grids_without_members": ("无党员居住的网格", "Grids where no member lives"),
    "outside_stations": ("驿站步行圈外的居住区", "Homes outside every station's reach"),
    "station_gaps": ("驿站生活圈外的居住楼栋", "Homes outside a station's life circle"),
    "uncovered_commercial": (
        "无党组织覆盖的商务楼宇/市场",
        "Commercial buildings with no party org",
    ),
    "overdue_contact": ("逾期未联系住户", "Households overdue for a contact"),
    "overdue_request": ("超期未办结的群众诉求", "Requests past their time limit"),
    "requests_by_status": ("群众诉求（按状态）", "Residents' requests (by status)"),
    "requests_heat": ("近90天诉求热力图", "Requests, last 90 days (heat)"),
    "request_waiting": ("待派单", "Waiting"),
    "request_returned": ("退回", "Declined"),
    "request_escalated": ("升级", "Escalated"),
    "request_dispatched": ("已派单", "Dispatched"),
    "request_accepted": ("已接单", "Accepted"),
    "request_in_progress": ("办理中", "In progress"),
    "request_done": ("已办结", "Done"),
    "request_visited": ("已回访", "Followed up"),
    "request_cat_mediation": ("矛盾调解", "Mediation"),
    "request_cat_sanitation": ("环境卫生", "Sanitation"),
    "request_cat_elderly_care": ("养老助残", "Elderly and disability care"),
    "request_cat_policy": ("政策咨询", "Policy advice"),
    "request_cat_repair": ("维修", "Repairs"),
    "request_cat_other": ("其他", "Other"),
    "contact_ok": ("周期内已联系", "Contacted within cadence"),
    "contact_due_soon": ("7天内到期", "Due within 7 days"),
    "contact_overdue": ("已逾期", "Overdue"),
    "contact_never": ("从未联系", "Never contacted"),
    "contact_buildings": ("楼栋（按联系情况）", "Buildings (by last contact)"),
    "contact_households": ("住户（按联系情况）", "Households (by last contact)"),
    "contact_members": ("党员（按周期内联系率）", "Members (share contacted)"),
    "days_since": ("距上次联系天数", "Days since last contact"),
    "cadence_days": ("联系周期（天）", "Cadence (days)"),
    "contacted": ("周期内已联系住户", "Contacted within cadence"),
    "contacted_share": ("周期内联系率", "Contacted within cadence"),
    # report
    "report_title": ("网格党建覆盖报告", "Grid coverage report"),
    "generated_at": ("生成时间", "Generated"),
    "generated_by": ("生成人", "By"),
    "plan_version": ("结对方案版本", "Plan version"),
    "scope": ("范围", "Scope"),
    "coverage_by_community": ("各社区覆盖情况", "Coverage by community"),
    "coverage_by_grid": ("各网格覆盖情况", "Coverage by grid"),
    "load_distribution": ("党员联系户数分布", "Households per member"),
    "distance_figures": ("结对距离", "Pair distances"),
    "blindspot_lists": ("盲点清单", "Blind spots"),
    "station_reach": ("红色驿站服务范围", "Red Station reach"),
    "within_m": ("{m}米内住户", "Households within {m} m"),
    "masked_note": ("个人信息已脱敏", "Personal data masked"),
    "unmasked_note": ("含完整个人信息，注意保密", "Full personal detail: confidential"),
    "none": ("无", "none"),
    "more_rows": ("另有 {n} 条未列出", "{n} more not listed"),
    "range_band": ("规定范围", "Allowed range"),
    "members_axis": ("党员数", "Members"),
    "load_axis": ("联系户数", "Households per member"),
}

_RING = re.compile(r"(reach|within|outside)_(\d+)")
_RING_LABELS = {
    "reach": ("{m}米生活圈覆盖率", "Share within {m} m"),
    "within": ("{m}米内住户", "Households within {m} m"),
    "outside": ("{m}米外住户", "Households beyond {m} m"),
}

#: Aliases: a blind-spot kind may be named like a summary figure.
_ALIASES = {"far_pairs": "far_pairs_kind"}


def label(key: str, lang: str = "zh", **fmt: object) -> str:
    """The label for ``key`` in ``lang``; unknown keys come back as they are.

    Parameters
    ----------
    key
        A label key, a layer name, a summary figure or a blind-spot kind.
    lang
        ``"zh"`` (default) or ``"en"``.
    **fmt
        Values for ``{placeholders}`` in the label.
    """
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {LANGS}, got {lang!r}")
    pair = _LABELS.get(key)
    ring = _RING.fullmatch(key)
    if pair is None and ring:
        pair = _RING_LABELS[ring.group(1)]
        fmt = {**fmt, "m": ring.group(2)}
    text = key if pair is None else pair[LANGS.index(lang)]
    return text.format(**fmt) if fmt else text


def column_label(key: str, lang: str = "zh") -> str:
    """The label of a table column or summary figure (``col.<key>`` first, then ``key``)."""
    return label(f"col.{key}", lang) if f"col.{key}" in _LABELS else label(key, lang)


def kind_label(kind: str, lang: str = "zh") -> str:
    """The label of a blind-spot kind (falls back to the kind itself)."""
    return label(_ALIASES.get(kind, kind), lang)
