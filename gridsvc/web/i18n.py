"""Page labels in Chinese (default) and English; the language comes from ?lang=, user, setting."""

from __future__ import annotations

from flask import Flask, g, request, session

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
    "search": {"zh": "按户、党员或楼栋编码搜索", "en": "Search household, member or building code"},
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
    "job_units": {"zh": "各社区进度", "en": "Progress per community"},
    "job_kind_pairing": {"zh": "结对计算", "en": "Pairing"},
    "job_kind_import": {"zh": "数据导入", "en": "Import"},
    "job_kind_pair_community": {"zh": "社区结对", "en": "Community pairing"},
    "job_kind_pair_street": {"zh": "街道结对", "en": "Street pairing"},
    "unit_level_pair_community": {"zh": "住户→党员", "en": "Households → members"},
    "unit_level_pair_street": {"zh": "党员→干部(街道)", "en": "Members → cadres (street)"},
    "unit_status_queued": {"zh": "排队中", "en": "Queued"},
    "unit_status_running": {"zh": "计算中", "en": "Solving"},
    "unit_status_done": {"zh": "已完成", "en": "Done"},
    "unit_status_failed": {"zh": "失败", "en": "Failed"},
    "unit_skipped": {"zh": "数据未变,沿用现方案", "en": "Unchanged, current plan kept"},
    "unit_paired": {"zh": "已结对", "en": "Paired"},
    "unit_cost": {"zh": "总距离(米)", "en": "Total distance (m)"},
    "unit_gap": {"zh": "与下界差距", "en": "Gap to bound"},
    "unit_no_bound": {"zh": "无有效下界", "en": "no useful bound"},
    "scope_name": {"zh": "范围", "en": "Scope"},
    "level": {"zh": "层级", "en": "Level"},
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


def t(key: str) -> str:
    """The label ``key`` in this request's language (the key itself when unknown)."""
    entry = LABELS.get(key)
    return entry.get(lang(), entry["zh"]) if entry else key


def init_app(app: Flask) -> None:
    """Make ``t`` and ``lang`` available to templates."""
    app.jinja_env.globals.update(t=t, lang=lang)
