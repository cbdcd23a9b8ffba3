"""Page labels in Chinese (default) and English; the language comes from ?lang=, user, setting.

One catalogue for the pages (:data:`LABELS`, enums, roles, audit actions, reasons, record
fields, error titles) that falls back to the map and report labels (:mod:`maps.labels`), so
the pages and the maps share one vocabulary. A key found in neither comes back as itself and
is noted in ``g.missing_labels`` (the page-walking test fails on any).

Why not Flask-Babel: the catalogue is keyed by stable identifiers that the services return
(blind-spot kinds, diff reasons, audit actions, enum values), not by English source strings,
and it is shared with the offline ``maps`` package, which has no Flask. Moving both to gettext
catalogues is a mechanical change for later; the lookup (:func:`t`) is the one seam.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, g, request, session

log = logging.getLogger(__name__)

LABELS: dict[str, dict[str, str]] = {
    "app": {"zh": "网格党建服务", "en": "Grid service"},
    "login": {"zh": "登录", "en": "Log in"},
    "logout": {"zh": "退出", "en": "Log out"},
    "username": {"zh": "用户名", "en": "Username"},
    "password": {"zh": "密码", "en": "Password"},
    "login_failed": {"zh": "用户名或密码错误", "en": "Wrong username or password"},
    "home": {"zh": "首页", "en": "Home"},
    "map": {"zh": "覆盖地图", "en": "Coverage map"},
    "roster": {"zh": "结对名单", "en": "Pairing roster"},
    "blindspots": {"zh": "盲点", "en": "Blind spots"},
    "stations": {"zh": "驿站选址建议", "en": "Station suggestions"},
    "rebalance": {"zh": "结对调整", "en": "Rebalance"},
    "upload": {"zh": "数据导入", "en": "Data upload"},
    "audit": {"zh": "审计日志", "en": "Audit log"},
    "report": {"zh": "下载报告", "en": "Download report"},
    "scope": {"zh": "范围", "en": "Scope"},
    "all": {"zh": "全部", "en": "All"},
    "community": {"zh": "社区", "en": "Community"},
    "street": {"zh": "街道", "en": "Street"},
    "grid": {"zh": "网格", "en": "Grid"},
    "households": {"zh": "户数", "en": "Households"},
    "paired": {"zh": "已结对", "en": "Paired"},
    "paired_share": {"zh": "结对覆盖率", "en": "Households paired"},
    "members": {"zh": "党员", "en": "Members"},
    "active": {"zh": "在岗党员", "en": "Active members"},
    "reserve": {"zh": "后备党员", "en": "Reserve members"},
    "without_cadre": {"zh": "无干部联系党员", "en": "Members without cadre"},
    "cadres": {"zh": "干部", "en": "Cadres"},
    "distance_mean_m": {"zh": "平均结对距离(米)", "en": "Mean pair distance (m)"},
    "search": {
        "zh": "编码的任意部分、楼栋名称或楼号、姓名(组织员)",
        "en": "Any part of a code, a building name or number, a name (planners)",
    },
    "go": {"zh": "查询", "en": "Go"},
    "details": {"zh": "详情", "en": "Details"},
    "code": {"zh": "编码", "en": "Code"},
    "name": {"zh": "名称", "en": "Name"},
    "kind": {"zh": "类型", "en": "Kind"},
    "count": {"zh": "数量", "en": "Count"},
    "reason": {"zh": "原因", "en": "Reason"},
    "rank": {"zh": "排名", "en": "Rank"},
    "filter": {"zh": "筛选", "en": "Filter"},
    "export_xlsx": {"zh": "导出 Excel", "en": "Export XLSX"},
    "export_csv": {"zh": "导出 CSV", "en": "Export CSV"},
    "unmasked": {"zh": "含完整姓名电话(将记入审计)", "en": "Unmasked (audited)"},
    "member_households": {"zh": "党员联系户", "en": "Members and households"},
    "cadre_members": {"zh": "干部联系党员", "en": "Cadres and members"},
    "no_pairs": {"zh": "尚无结对方案", "en": "No pairing plan yet"},
    "run_proposal": {"zh": "生成调整方案", "en": "Run a proposal"},
    "accept": {"zh": "接受", "en": "Accept"},
    "reject": {"zh": "拒绝", "en": "Reject"},
    "why": {"zh": "调整原因", "en": "Reason for the change"},
    "stale": {
        "zh": "方案已过期：他人已修改本社区结对，请重新生成方案",
        "en": "The proposal is stale: someone else changed this community's pairs; run it again",
    },
    "accepted": {"zh": "方案已接受，版本", "en": "Proposal accepted, version"},
    "rejected": {"zh": "方案已拒绝", "en": "Proposal rejected"},
    "version": {"zh": "方案版本", "en": "Plan version"},
    "kept": {"zh": "保持", "en": "Kept"},
    "moved": {"zh": "调整", "en": "Moved"},
    "new": {"zh": "新增", "en": "New"},
    "dropped": {"zh": "取消", "en": "Dropped"},
    "layer": {"zh": "图层", "en": "Layer"},
    "file": {"zh": "文件", "en": "File"},
    "submit": {"zh": "提交", "en": "Submit"},
    "imported": {"zh": "导入完成", "en": "Imported"},
    "import_rejected": {
        "zh": "导入被拒绝，未写入任何记录",
        "en": "Import rejected; nothing written",
    },
    "skip_invalid": {"zh": "跳过无效记录，导入其余", "en": "Skip invalid records, import the rest"},
    "queued_above": {"zh": "超过此大小转入后台任务", "en": "background job above"},
    "rejected_count": {"zh": "被拒记录", "en": "Rejected"},
    "rejects_csv": {"zh": "下载全部被拒记录 (CSV)", "en": "Download every reject (CSV)"},
    "record": {"zh": "记录", "en": "Record"},
    "field": {"zh": "字段", "en": "Field"},
    "value": {"zh": "值", "en": "Value"},
    "job": {"zh": "后台任务", "en": "Background job"},
    "progress": {"zh": "进度", "en": "Progress"},
    "status": {"zh": "状态", "en": "Status"},
    "when": {"zh": "时间", "en": "When"},
    "who": {"zh": "用户", "en": "Who"},
    "action": {"zh": "操作", "en": "Action"},
    "target": {"zh": "对象", "en": "Target"},
    "error": {"zh": "出错了", "en": "Error"},
    "household": {"zh": "住户", "en": "Household"},
    "before": {"zh": "调整前党员", "en": "Member before"},
    "after": {"zh": "调整后党员", "en": "Member after"},
    "change": {"zh": "变化", "en": "Change"},
    "diff_map": {"zh": "结对变化地图", "en": "Map of the changes"},
    "forced": {"zh": "因数据变化必须调整", "en": "Forced by data changes"},
    "proposal": {"zh": "调整方案", "en": "Proposal"},
    "current_version": {"zh": "当前方案版本", "en": "Current plan version"},
    "status_open": {"zh": "待审", "en": "open"},
    "status_accepted": {"zh": "已接受", "en": "accepted"},
    "status_rejected": {"zh": "已拒绝", "en": "rejected"},
    "status_stale": {"zh": "已过期", "en": "stale"},
    "shown_first": {"zh": "仅显示前 500 条", "en": "First 500 shown"},
    "users": {"zh": "用户", "en": "Users"},
    "role": {"zh": "角色", "en": "Role"},
    "run_pairing": {"zh": "运行结对(后台)", "en": "Run pairing (background)"},
    "size_limit": {"zh": "文件大小上限", "en": "Size limit"},
    "open_proposals": {"zh": "待审调整方案", "en": "Open proposals"},
    "no_open_proposals": {"zh": "暂无待审方案", "en": "No open proposals"},
    "yes": {"zh": "是", "en": "Yes"},
    "no": {"zh": "否", "en": "No"},
    "radius_m": {"zh": "服务半径(米)", "en": "Radius (m)"},
    "sites_k": {"zh": "新增驿站数", "en": "New stations"},
    "new_households": {"zh": "新增覆盖户数", "en": "Households added"},
    "lon": {"zh": "经度", "en": "Longitude"},
    "lat": {"zh": "纬度", "en": "Latitude"},
    "crs": {"zh": "坐标系", "en": "Coordinate system"},
    "crs_auto": {"zh": "自动识别", "en": "Detect"},
    "total": {"zh": "共", "en": "Total"},
    "page": {"zh": "页", "en": "Page"},
    "prev": {"zh": "上一页", "en": "Previous"},
    "next": {"zh": "下一页", "en": "Next"},
    "rows_of": {"zh": "第 {a}–{b} 条，共 {n} 条", "en": "Rows {a}–{b} of {n}"},
    "session_expired": {
        "zh": "登录已过期或页面已失效，请重新登录后继续",
        "en": "Your session has expired or the page is out of date: log in again to continue",
    },
    "not_found_title": {"zh": "未找到", "en": "Not found"},
    "not_found": {
        "zh": "您要找的内容不存在，或不在您的管辖范围内",
        "en": "Not found, or outside your scope",
    },
    "back_home": {"zh": "返回首页", "en": "Back to the home page"},
    "error_title.400": {"zh": "请求有误", "en": "Bad request"},
    "error_title.403": {"zh": "无权访问", "en": "Not allowed"},
    "error_title.404": {"zh": "未找到", "en": "Not found"},
    "error_title.405": {"zh": "不支持的操作", "en": "Method not allowed"},
    "error_title.409": {"zh": "操作冲突", "en": "Conflict"},
    "error_title.413": {"zh": "文件过大", "en": "Too large"},
    "error_title.422": {"zh": "输入有误", "en": "Invalid input"},
    "error_title.428": {"zh": "缺少版本号", "en": "Version needed"},
    "error_title.429": {"zh": "请求过于频繁", "en": "Too many requests"},
    "error_title.500": {"zh": "服务器内部错误", "en": "Internal error"},
    "error_text.403": {"zh": "您的角色无权进行此操作", "en": "Your role may not do this"},
    "error_text.404": {
        "zh": "您要找的内容不存在，或不在您的管辖范围内",
        "en": "This does not exist, or is outside your scope",
    },
    "error_text.405": {"zh": "此页面不支持该操作", "en": "This page does not support that"},
    "error_text.413": {"zh": "上传的文件超过大小上限", "en": "The upload is over the size limit"},
    "error_text.500": {
        "zh": "服务器出错，已记录详细信息，请稍后再试",
        "en": "The server failed and logged the details; try again later",
    },
    "error_text.other": {
        "zh": "请求未能完成，原因如下（原文）：",
        "en": "The request could not be done; the reason:",
    },
    "ip": {"zh": "IP 地址", "en": "IP address"},
    "beijing_time": {"zh": "北京时间", "en": "Beijing time"},
    "job_kind.import": {"zh": "数据导入", "en": "Import"},
    "job_kind.pairing": {"zh": "结对计算", "en": "Pairing"},
    "job_kind.rebalance": {"zh": "结对调整方案", "en": "Rebalance proposal"},
    "job_status.queued": {"zh": "排队中", "en": "queued"},
    "job_status.running": {"zh": "运行中", "en": "running"},
    "job_status.done": {"zh": "已完成", "en": "done"},
    "job_status.failed": {"zh": "失败", "en": "failed"},
    "job_message.loading": {"zh": "读取数据", "en": "loading"},
    "job_message.solving": {"zh": "求解中", "en": "solving"},
    "job_message.saving": {"zh": "保存结果", "en": "saving"},
    "job_message.done": {"zh": "完成", "en": "done"},
    "job_message.reading": {"zh": "读取文件", "en": "reading"},
    "job_message.validating": {"zh": "校验记录", "en": "validating"},
    "records": {"zh": "条记录", "en": "records"},
    "menu": {"zh": "菜单", "en": "Menu"},
    "on_map": {"zh": "在地图上查看", "en": "Show on the map"},
    "suggest": {"zh": "生成选址建议", "en": "Suggest sites"},
    "overview_street": {"zh": "街道全图", "en": "Street map"},
    "overview_district": {"zh": "全区概览", "en": "District overview"},
    "building": {"zh": "楼栋", "en": "Building"},
    "sites_total": {
        "zh": "{n} 个建议站点（步行 {r} 米内），共新增覆盖 {h} 户",
        "en": "{n} suggested sites (within {r} m on foot) reach {h} more households",
    },
    "no_results": {"zh": "没有找到匹配的记录", "en": "Nothing found"},
}

#: Values the services return, by family: ``t("role.viewer")`` or ``label_of("role", v)``.
ENUMS: dict[str, dict[str, tuple[str, str]]] = {
    "role": {
        "viewer": ("查看人员", "Viewer"),
        "planner": ("组织员", "Planner"),
        "admin": ("管理员", "Admin"),
    },
    "member_kind": {
        "resident": ("居民党员", "Resident member"),
        "in_service": ("在职党员", "In-service member"),
        "mobile": ("流动党员", "Mobile member"),
        "retired": ("离退休党员", "Retired member"),
    },
    "building_kind": {
        "residential": ("住宅", "Residential"),
        "commercial": ("商务楼宇", "Commercial"),
        "mixed": ("商住混合", "Mixed"),
        "public": ("公共建筑", "Public"),
    },
    "cadre_level": {
        "street": ("街道干部", "Street cadre"),
        "community": ("社区干部", "Community cadre"),
    },
    "record": {
        "household": ("住户", "Household"),
        "member": ("党员", "Member"),
        "building": ("楼栋", "Building"),
        "cadre": ("干部", "Cadre"),
    },
    "change": {
        "kept": ("保持", "Kept"),
        "moved": ("调整", "Moved"),
        "new": ("新增", "New"),
        "dropped": ("取消", "Dropped"),
    },
    "diff_reason": {
        "server_unavailable": ("原联系党员不再可用", "The member is no longer available"),
        "new_client": ("新住户", "New household"),
        "rebalanced_for_loads_or_distance": (
            "为均衡联系户数或缩短距离",
            "Balanced loads or shorter distance",
        ),
        "servers_full": ("本社区党员均已满额", "Every member is full"),
        "beyond_max_distance": ("超出最大结对距离", "Beyond the longest pair allowed"),
        "no_server_in_scope": ("本社区无可结对党员", "No eligible member in the community"),
    },
    "action": {
        "login": ("登录", "Log in"),
        "login_failed": ("登录失败", "Failed login"),
        "logout": ("退出", "Log out"),
        "proposal": ("生成调整方案", "Proposal made"),
        "proposal_accept": ("接受调整方案", "Proposal accepted"),
        "proposal_reject": ("拒绝调整方案", "Proposal rejected"),
        "import": ("数据导入", "Import"),
        "import_rejected": ("导入被拒绝", "Import rejected"),
        "view_unmasked": ("查看完整个人信息", "Viewed unmasked data"),
        "export_unmasked": ("导出完整个人信息", "Exported unmasked data"),
        "report_unmasked": ("生成含完整个人信息的报告", "Unmasked report"),
        "export_rejects": ("下载被拒记录", "Downloaded rejects"),
        "job_start": ("启动后台任务", "Job started"),
        "user_add": ("新增用户", "User added"),
        "user_update": ("修改用户", "User changed"),
        "token_issue": ("签发 API 令牌", "API token issued"),
        "station_suggestions": ("驿站选址建议", "Station suggestions"),
    },
    "field": {
        "kind": ("类别", "Kind"),
        "code": ("编码", "Code"),
        "name": ("姓名/名称", "Name"),
        "phone": ("电话", "Phone"),
        "size": ("家庭人口", "People"),
        "grid_code": ("网格编码", "Grid"),
        "building_code": ("楼栋编码", "Building"),
        "community_code": ("社区编码", "Community"),
        "lon": ("经度", "Longitude"),
        "lat": ("纬度", "Latitude"),
        "member_kind": ("党员类别", "Member kind"),
        "eligible": ("可结对", "Eligible"),
        "available": ("可服务", "Available"),
        "building_kind": ("楼栋类别", "Building kind"),
        "floors": ("层数", "Floors"),
        "party_org": ("党组织", "Party organisation"),
        "households": ("住户数", "Households"),
        "members": ("党员数", "Members"),
    },
    "column": {
        "member_code": ("党员编码", "Member code"),
        "member_name": ("党员姓名", "Member name"),
        "member_phone": ("党员电话", "Member phone"),
        "member_grid_code": ("党员所在网格", "Member's grid"),
        "household_code": ("住户编码", "Household code"),
        "household_name": ("户主姓名", "Household name"),
        "household_phone": ("住户电话", "Household phone"),
        "grid_code": ("网格编码", "Grid"),
        "building_code": ("楼栋编码", "Building"),
        "distance_m": ("距离(米)", "Distance (m)"),
        "same_building": ("同一楼栋", "Same building"),
        "same_grid": ("同一网格", "Same grid"),
        "cadre_code": ("干部编码", "Cadre code"),
        "cadre_name": ("干部姓名", "Cadre name"),
        "cadre_phone": ("干部电话", "Cadre phone"),
        "cadre_level": ("干部层级", "Cadre level"),
    },
    "layer": {
        "streets": ("街道", "Streets"),
        "communities": ("社区", "Communities"),
        "grids": ("网格", "Grids"),
        "buildings": ("楼栋", "Buildings"),
        "households": ("住户", "Households"),
        "members": ("党员", "Members"),
        "cadres": ("干部", "Cadres"),
        "stations": ("红色驿站", "Red Stations"),
        "roads": ("道路", "Roads"),
    },
    "status": {
        "open": ("待审", "open"),
        "accepted": ("已接受", "accepted"),
        "rejected": ("已拒绝", "rejected"),
        "stale": ("已过期", "stale"),
    },
}


def lang() -> str:
    """The language of this request: ?lang=, the session, the user's, the setting."""
    from flask import current_app

    if "lang" in g:
        return g.lang
    chosen = request.args.get("lang")
    if chosen in ("zh", "en"):
        session["lang"] = chosen
    chosen = session.get("lang")
    if chosen not in ("zh", "en"):
        user = g.get("user")
        chosen = user.lang if user else current_app.config["GRIDSVC_SETTINGS"].lang
    g.lang = chosen
    return chosen


def t(key: str, **fmt: Any) -> str:
    """The label ``key`` in this request's language: the pages' catalogue, ``family.value``
    enums (:data:`ENUMS`), then the map labels; the key itself (noted) when unknown."""
    text = lookup(key, lang())
    if text is None:
        g.setdefault("missing_labels", set()).add(key)
        text = key
    return text.format(**fmt) if fmt else text


def lookup(key: str, language: str) -> str | None:
    """The label of ``key`` in ``language``, or None when no catalogue has it."""
    entry = LABELS.get(key)
    if entry:
        return entry.get(language, entry["zh"])
    family, _, value = key.partition(".")
    pair = ENUMS.get(family, {}).get(value)
    if pair:
        return pair[0 if language == "zh" else 1]
    from maps.labels import kind_label, label

    if family == "blindspot":  # the maps' and reports' own names of the six kinds
        return None if kind_label(value, "zh") == value else kind_label(value, language)

    if label(key, "zh") == key:  # not in the maps' catalogue either
        return None
    return label(key, language)


def label_of(family: str, value: Any) -> str:
    """An enum value's label (booleans as 是/否); unknown values as they are."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return t("yes" if value else "no")
    return t(f"{family}.{value}")


def job_message(message: str | None) -> str:
    """A job's progress message (``validating: 1,200 records``) in this request's language;
    a message that is a code (a community being paired) stays as it is."""
    if not message:
        return ""
    head, sep, rest = message.partition(":")
    known = lookup(f"job_message.{head}", lang())
    if known is None:
        return message
    return known + (sep + rest.replace(" records", " " + t("records")) if sep else "")


def localtime(value: Any, *, seconds: bool = False) -> str:
    """A timestamp (aware datetime or ISO text) in GRIDSVC_TIMEZONE, e.g. 2026-12-07 10:05."""
    from flask import current_app

    if value in (None, ""):
        return "–"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    zone = current_app.config["GRIDSVC_SETTINGS"].zone
    if when.tzinfo is None:
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _note_missing(response: Any) -> Any:
    """Log the keys this request asked for that no catalogue has (untranslated text)."""
    missing = g.get("missing_labels")
    if missing:
        log.warning("untranslated labels on %s: %s", request.path, ", ".join(sorted(missing)))
    return response


def init_app(app: Flask) -> None:
    """Make ``t``, ``label_of``, ``lang`` and the ``localtime`` filter available to templates;
    log untranslated keys."""
    app.after_request(_note_missing)
    app.jinja_env.globals.update(t=t, lang=lang, label_of=label_of, job_message=job_message)
    app.jinja_env.filters["localtime"] = localtime
