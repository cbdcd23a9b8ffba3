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
    # accounts: users page, own password, login throttling, policy reasons
    "user": {"zh": "用户", "en": "User"},
    "scope_code": {"zh": "街道或社区代码", "en": "Street or community code"},
    "users_scope_note": {"zh": "仅显示和管理本范围内的用户", "en": "Users of your scope only"},
    "manage": {"zh": "管理", "en": "Manage"},
    "new_user": {"zh": "新建用户", "en": "New user"},
    "create": {"zh": "创建", "en": "Create"},
    "language": {"zh": "语言", "en": "Language"},
    "role_viewer": {"zh": "查看员", "en": "Viewer"},
    "role_planner": {"zh": "规划员", "en": "Planner"},
    "role_admin": {"zh": "管理员", "en": "Admin"},
    "state_active": {"zh": "启用", "en": "Active"},
    "state_disabled": {"zh": "已停用", "en": "Disabled"},
    "disable": {"zh": "停用", "en": "Disable"},
    "enable": {"zh": "启用", "en": "Enable"},
    "user_created": {"zh": "已创建用户", "en": "User created"},
    "user_enabled": {"zh": "已启用用户", "en": "User enabled"},
    "user_disabled": {
        "zh": "已停用用户（其会话和令牌立即失效）",
        "en": "User disabled (its sessions and tokens stop now)",
    },
    "reset_password": {"zh": "重置密码", "en": "Reset password"},
    "new_password_once": {
        "zh": "新密码（仅显示这一次，请当面转交）",
        "en": "New password (shown this once only)",
    },
    "api_tokens": {"zh": "接口令牌", "en": "API tokens"},
    "token_name": {"zh": "名称", "en": "Name"},
    "token_prefix": {"zh": "开头字符", "en": "Starts with"},
    "created": {"zh": "创建时间", "en": "Created"},
    "last_used": {"zh": "最近使用", "en": "Last used"},
    "never": {"zh": "从未", "en": "Never"},
    "revoke": {"zh": "吊销", "en": "Revoke"},
    "token_revoked": {"zh": "已吊销", "en": "Revoked"},
    "no_tokens": {"zh": "没有令牌", "en": "No tokens"},
    "issue_token": {"zh": "签发令牌", "en": "Issue a token"},
    "new_token_once": {"zh": "新令牌（仅显示这一次）", "en": "New token (shown this once only)"},
    "my_account": {"zh": "我的账号", "en": "My account"},
    "change_password": {"zh": "修改密码", "en": "Change password"},
    "current_password": {"zh": "当前密码", "en": "Current password"},
    "new_password": {"zh": "新密码", "en": "New password"},
    "confirm_password": {"zh": "确认新密码", "en": "Confirm the new password"},
    "passwords_differ": {"zh": "两次输入的新密码不一致", "en": "The two new passwords differ"},
    "password_changed": {
        "zh": "密码已修改，其他会话已退出",
        "en": "Password changed; your other sessions ended",
    },
    "password_rules": {
        "zh": "密码规则：至少 {n} 个字符，不能为空白，不能包含用户名，"
        "不能是常见密码，至少 4 种不同字符。",
        "en": "Passwords: at least {n} characters, not blank, not containing the user name, "
        "not a common password, at least 4 different characters.",
    },
    "not_done": {"zh": "未完成：", "en": "Not done:"},
    "field_password": {"zh": "密码", "en": "Password"},
    "field_username": {"zh": "用户名", "en": "Username"},
    "field_role": {"zh": "角色", "en": "Role"},
    "field_scope": {"zh": "范围", "en": "Scope"},
    "field_lang": {"zh": "语言", "en": "Language"},
    "field_None": {"zh": "输入", "en": "Input"},
    "reason_blank": {"zh": "密码为空白", "en": "the password is blank"},
    "reason_min_length": {"zh": "至少 {n} 个字符", "en": "at least {n} characters"},
    "reason_max_length": {"zh": "最多 {n} 个字符", "en": "at most {n} characters"},
    "reason_username": {"zh": "密码包含用户名", "en": "the password contains the user name"},
    "reason_common": {"zh": "属于常见密码", "en": "a common password"},
    "reason_distinct": {"zh": "至少 4 种不同字符", "en": "at least 4 different characters"},
    "reason_same": {"zh": "新密码与当前密码相同", "en": "the new password is the current one"},
    "reason_wrong_current": {"zh": "当前密码不正确", "en": "the current password is wrong"},
    "reason_outside_scope": {"zh": "超出您的管理范围", "en": "outside your scope"},
    "reason_taken": {"zh": "用户名已被占用", "en": "the username is taken"},
    "reason_no_such_code": {"zh": "代码不存在或不在您的范围内", "en": "no such code in your scope"},
    "reason_needs_scope": {"zh": "需要街道或社区代码", "en": "needs a street or a community"},
    "reason_bad_username": {
        "zh": "用户名为 1 至 64 个字母、数字或 . _ - @（无空格、无 /）",
        "en": "1 to 64 letters, digits or . _ - @ (no spaces, no /)",
    },
    "address": {"zh": "地址", "en": "Address"},
    "act_login": {"zh": "登录", "en": "Log in"},
    "act_login_failed": {"zh": "登录失败", "en": "Failed login"},
    "act_login_locked": {"zh": "账号临时锁定", "en": "Account locked"},
    "act_login_throttled": {"zh": "地址登录受限", "en": "Address throttled"},
    "act_logout": {"zh": "退出", "en": "Log out"},
    "act_user_add": {"zh": "新建用户", "en": "User created"},
    "act_user_disable": {"zh": "停用用户", "en": "User disabled"},
    "act_user_enable": {"zh": "启用用户", "en": "User enabled"},
    "act_password_reset": {"zh": "重置密码", "en": "Password reset"},
    "act_password_change": {"zh": "修改密码", "en": "Password changed"},
    "act_token_issue": {"zh": "签发令牌", "en": "Token issued"},
    "act_token_revoke": {"zh": "吊销令牌", "en": "Token revoked"},
    "act_view_unmasked": {"zh": "查看未脱敏数据", "en": "Unmasked view"},
    "act_export_unmasked": {"zh": "导出未脱敏数据", "en": "Unmasked export"},
    "act_import": {"zh": "数据导入", "en": "Import"},
    "act_import_rejected": {"zh": "导入被拒绝", "en": "Import rejected"},
    "act_job_start": {"zh": "启动后台任务", "en": "Job started"},
    "act_export_rejects": {"zh": "下载被拒记录", "en": "Rejects downloaded"},
    "act_proposal": {"zh": "生成调整方案", "en": "Proposal made"},
    "act_proposal_accept": {"zh": "接受调整方案", "en": "Proposal accepted"},
    "act_proposal_reject": {"zh": "拒绝调整方案", "en": "Proposal rejected"},
    "login_throttled": {
        "zh": "登录失败次数过多，请 {minutes} 分钟后再试",
        "en": "Too many failed logins: try again in {minutes} minutes",
    },
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
    "check_first": {"zh": "检查(先不导入)", "en": "Check (nothing imported yet)"},
    "preview_title": {"zh": "导入前核对", "en": "Check before importing"},
    "would_insert": {"zh": "将新增", "en": "Would insert"},
    "would_update": {"zh": "将更新", "en": "Would update"},
    "matched_count": {"zh": "地址已匹配楼栋", "en": "Addresses matched to a building"},
    "missing_count": {
        "zh": "本表中已没有的现有记录",
        "en": "Existing records no longer in this file",
    },
    "retire_missing": {
        "zh": "将这些记录标记为已迁出(不删除)",
        "en": "Mark them as moved out (nothing is deleted)",
    },
    "retired_count": {"zh": "已标记迁出", "en": "Marked moved out"},
    "confirm_import": {"zh": "确认导入", "en": "Import now"},
    "cannot_commit": {
        "zh": "有被拒记录：请修正文件后重新上传，或勾选“跳过无效记录”",
        "en": "Some records are rejected: fix the file and upload it again, or skip them",
    },
    "id_numbers_hashed": {
        "zh": "身份证号：仅保存加密散列，用于下次导入识别同一人，不保存号码本身",
        "en": "ID numbers: only a keyed hash is kept, to recognise the same person next time",
    },
    "id_numbers_dropped": {
        "zh": "身份证号：已舍弃，不保存",
        "en": "ID numbers: left out, not stored",
    },
    "address_report": {"zh": "地址匹配结果", "en": "Address matching"},
    "compound": {"zh": "小区", "en": "Compound"},
    "building_no": {"zh": "楼号", "en": "Building"},
    "unit": {"zh": "单元", "en": "Unit"},
    "room": {"zh": "室", "en": "Room"},
    "matched_building": {"zh": "匹配楼栋", "en": "Matched building"},
    "how_matched": {"zh": "匹配方式", "en": "How"},
    "match_exact": {"zh": "名称一致", "en": "exact"},
    "match_normalised": {"zh": "规范化后一致", "en": "normalised"},
    "match_fuzzy": {"zh": "相似名称", "en": "similar name"},
    "match_community": {"zh": "社区内楼号", "en": "number in the community"},
    "match_building_code": {"zh": "楼栋编码", "en": "building code"},
    "match_point": {"zh": "坐标", "en": "point"},
    "match_none": {"zh": "未匹配", "en": "not matched"},
    "why_empty": {"zh": "地址为空", "en": "empty address"},
    "why_no_number": {"zh": "地址中没有楼号", "en": "no building number"},
    "why_unreadable": {"zh": "无法识别的数字：{value}", "en": "unreadable number: {value}"},
    "why_no_compound": {"zh": "未写小区名称", "en": "no compound named"},
    "why_no_building": {
        "zh": "{compound}没有{number}号楼",
        "en": "no building {number} in {compound}",
    },
    "why_no_such_compound": {"zh": "没有这个小区", "en": "no such compound"},
    "why_no_such_compound_near": {
        "zh": "没有这个小区(最接近：{closest}，相似度 {score})",
        "en": "no such compound (closest {closest}, {score})",
    },
    "why_no_compounds": {"zh": "楼栋图层中没有小区", "en": "no compound in the buildings layer"},
    "why_ambiguous_compound": {
        "zh": "小区不明确：{first}({first_score})或{second}({second_score})",
        "en": "ambiguous compound: {first} ({first_score}) or {second} ({second_score})",
    },
    "why_ambiguous_building": {
        "zh": "楼栋不明确：{compound}的{number}号楼有{first}和{second}",
        "en": "ambiguous building {number} of {compound}: {first} or {second}",
    },
    "why_community_no_building": {
        "zh": "未写小区名称，社区内也没有{number}号楼",
        "en": "no compound named, and no building {number} in the community",
    },
    "why_community_ambiguous": {
        "zh": "未写小区名称，社区内的{number}号楼有{first}和{second}",
        "en": "no compound named, and building {number} of the community is {first} or {second}",
    },
    "why_no_room": {
        "zh": "没有门牌号：无编码的住户需要门牌号才能区分",
        "en": "no room number: a household without a code needs one to be told apart",
    },
    "radius_label": {"zh": "步行半径(米)", "en": "Walking radius (m)"},
    "kind_unpaired_households": {"zh": "未结对住户", "en": "Households without a member"},
    "kind_members_without_cadre": {"zh": "无干部联系的党员", "en": "Members without a cadre"},
    "kind_far_pairs": {"zh": "结对距离过远", "en": "Pairs too far apart"},
    "kind_grids_without_members": {"zh": "无党员居住的网格", "en": "Grids where no member lives"},
    "kind_station_gaps": {"zh": "驿站步行范围外的楼栋", "en": "Buildings beyond station reach"},
    "kind_uncovered_commercial": {
        "zh": "无党组织覆盖的商务楼宇",
        "en": "Commercial buildings without a party organisation",
    },
    "radius_invalid": {
        "zh": "步行半径须为规定范围内的米数",
        "en": "The walking radius must be a number of metres within the allowed range",
    },
    # phone pages of members and cadres (gridsvc/web/mobile.py)
    "my_households": {"zh": "我的联系户", "en": "My households"},
    "my_members": {"zh": "我联系的党员", "en": "My members"},
    "my_history": {"zh": "联系记录", "en": "My contacts"},
    "log_contact": {"zh": "记一次联系", "en": "Log a contact"},
    "contact_logged": {"zh": "已记录联系", "en": "Contact logged"},
    "channel": {"zh": "联系方式", "en": "Channel"},
    "channel_visit": {"zh": "上门走访", "en": "Visit"},
    "channel_phone": {"zh": "电话", "en": "Phone call"},
    "channel_wechat": {"zh": "微信", "en": "WeChat"},
    "channel_other": {"zh": "其他", "en": "Other"},
    "note": {"zh": "备注（可选）", "en": "Note (optional)"},
    "contacted_at": {"zh": "联系时间（北京时间）", "en": "When (Beijing time)"},
    "share_location": {"zh": "附上当前位置", "en": "Add my location"},
    "location_added": {"zh": "已附位置", "en": "Location added"},
    "location_refused": {"zh": "未获得位置", "en": "No location"},
    "status_never": {"zh": "从未联系", "en": "Never contacted"},
    "status_overdue": {"zh": "已逾期", "en": "Overdue"},
    "status_due_soon": {"zh": "7天内到期", "en": "Due within 7 days"},
    "status_ok": {"zh": "按期", "en": "Up to date"},
    "late_count": {"zh": "户逾期或从未联系", "en": "overdue or never contacted"},
    "due": {"zh": "应联系日期", "en": "Due"},
    "last_contact": {"zh": "上次联系", "en": "Last contact"},
    "days_since": {"zh": "天前", "en": "days ago"},
    "days_ago_paren": {"zh": "（{n} 天前）", "en": " ({n} days ago)"},
    "cadence": {"zh": "联系周期", "en": "Cadence"},
    "days": {"zh": "天", "en": "days"},
    "vulnerable": {"zh": "困难户", "en": "Vulnerable"},
    "flag_elderly_alone": {"zh": "独居老人", "en": "Elderly living alone"},
    "flag_disabled": {"zh": "残疾人", "en": "Disabled"},
    "flag_low_income": {"zh": "低收入", "en": "Low income"},
    "flag_children": {"zh": "有未成年人", "en": "Children"},
    "building": {"zh": "楼栋", "en": "Building"},
    "phone": {"zh": "电话", "en": "Phone"},
    "show_phone": {"zh": "查看完整电话（记入审计）", "en": "Show the number (audited)"},
    "household_size": {"zh": "人口", "en": "People"},
    "paired_member": {"zh": "联系党员", "en": "Paired member"},
    "no_households": {"zh": "暂无联系户", "en": "No households yet"},
    "no_contacts": {"zh": "暂无联系记录", "en": "No contacts yet"},
    "overdue_count": {"zh": "逾期户", "en": "Overdue"},
    "contacted_share": {"zh": "周期内联系率", "en": "Contacted within cadence"},
    "back": {"zh": "返回", "en": "Back"},
    "households_unit": {"zh": "户", "en": "households"},
    "household_history": {"zh": "联系历史", "en": "Contact history"},
    "older": {"zh": "更早", "en": "Older"},
    "by": {"zh": "联系人", "en": "By"},
    "member_households_of": {"zh": "查看所联系住户", "en": "Their households"},
    "role_member": {"zh": "党员", "en": "Member"},
    "role_cadre": {"zh": "干部", "en": "Cadre"},
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
    "job_status.queued": {"zh": "排队中", "en": "Queued"},
    "job_status.running": {"zh": "运行中", "en": "Running"},
    "job_status.done": {"zh": "已完成", "en": "Done"},
    "job_status.failed": {"zh": "失败", "en": "Failed"},
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


# residents' requests and micro-wishes (gridsvc/web/request_pages.py, issue 11)
LABELS.update(
    {
        "my_orders": {"zh": "我的工单", "en": "My orders"},
        "wish_board": {"zh": "微心愿", "en": "Micro-wishes"},
        "requests": {"zh": "群众诉求", "en": "Residents' requests"},
        "echo_wall": {"zh": "回音壁", "en": "Feedback wall"},
        "echo_intro": {
            "zh": "件件有着落，事事有回音：本社区群众诉求办理情况（不含姓名、电话、户号）",
            "en": "Every request answered: how this community's requests were handled "
            "(no names, phones or household codes)",
        },
        "cat_mediation": {"zh": "矛盾调解", "en": "Mediation"},
        "cat_sanitation": {"zh": "环境卫生", "en": "Sanitation"},
        "cat_elderly_care": {"zh": "养老助残", "en": "Elderly and disability care"},
        "cat_policy": {"zh": "政策咨询", "en": "Policy advice"},
        "cat_repair": {"zh": "维修", "en": "Repairs"},
        "cat_other": {"zh": "其他", "en": "Other"},
        "rch_visit": {"zh": "上门", "en": "In person"},
        "rch_phone": {"zh": "电话", "en": "Phone"},
        "rch_grid_worker": {"zh": "网格员", "en": "Grid worker"},
        "rch_wechat_group": {"zh": "微信群", "en": "WeChat group"},
        "rch_other": {"zh": "其他", "en": "Other"},
        "rst_waiting": {"zh": "待派单", "en": "Waiting"},
        "rst_dispatched": {"zh": "已派单", "en": "Dispatched"},
        "rst_accepted": {"zh": "已接单", "en": "Accepted"},
        "rst_in_progress": {"zh": "办理中", "en": "In progress"},
        "rst_done": {"zh": "已办结", "en": "Done"},
        "rst_visited": {"zh": "已回访", "en": "Followed up"},
        "rst_returned": {"zh": "退回", "en": "Declined"},
        "rst_escalated": {"zh": "升级", "en": "Escalated"},
        "wst_open": {"zh": "待认领", "en": "Open"},
        "wst_claimed": {"zh": "已认领", "en": "Claimed"},
        "wst_done": {"zh": "已实现", "en": "Fulfilled"},
        "wst_thanked": {"zh": "已反馈", "en": "Thanked"},
        "wflag_low_income": {"zh": "低保", "en": "Subsistence allowance"},
        "wflag_disabled": {"zh": "残疾", "en": "Disabled"},
        "wflag_elderly_alone": {"zh": "独居老人", "en": "Elderly living alone"},
        "wflag_hardship_member": {"zh": "困难党员", "en": "Party member in hardship"},
        "wflag_left_behind_child": {"zh": "留守儿童", "en": "Left-behind child"},
        "req_accept": {"zh": "接单", "en": "Accept"},
        "req_decline": {"zh": "退回", "en": "Decline"},
        "req_start": {"zh": "开始办理", "en": "Start"},
        "req_finish": {"zh": "办结", "en": "Done"},
        "req_visit": {"zh": "回访", "en": "Follow up"},
        "req_reason": {"zh": "退回原因", "en": "Reason for declining"},
        "req_done_note": {"zh": "办理情况", "en": "What was done"},
        "req_due": {"zh": "办结期限", "en": "Due"},
        "req_overdue": {"zh": "已超期", "en": "Overdue"},
        "req_why": {"zh": "派单理由", "en": "Why this member"},
        "req_new": {"zh": "登记诉求", "en": "New request"},
        "req_text": {"zh": "诉求内容", "en": "Request"},
        "req_household": {"zh": "户编码", "en": "Household code"},
        "req_category": {"zh": "类别", "en": "Category"},
        "req_channel": {"zh": "来源渠道", "en": "Channel"},
        "req_status": {"zh": "状态", "en": "Status"},
        "req_member": {"zh": "承办党员", "en": "Member"},
        "req_created": {"zh": "登记时间", "en": "Received"},
        "req_dispatch_all": {"zh": "一键派单（全部待派）", "en": "Dispatch all waiting"},
        "req_dispatched": {"zh": "已派单", "en": "Dispatched"},
        "req_done_ok": {"zh": "操作成功", "en": "Done"},
        "req_none": {"zh": "暂无工单", "en": "No orders"},
        "req_open_count": {"zh": "在办", "en": "open"},
        "req_overdue_count": {"zh": "超期", "en": "overdue"},
        "req_grid": {"zh": "网格", "en": "Grid"},
        "req_days_to_close": {"zh": "办结天数", "en": "Days to close"},
        "req_satisfaction": {"zh": "满意度", "en": "Satisfaction"},
        "req_print": {"zh": "下载可打印版", "en": "Download printable page"},
        "req_total": {"zh": "件", "en": "requests"},
        "wish_value": {"zh": "预估价值（元）", "en": "Value (yuan)"},
        "wish_wanted_by": {"zh": "期望日期", "en": "Wanted by"},
        "wish_claim": {"zh": "认领", "en": "Claim"},
        "wish_done": {"zh": "已实现", "en": "Fulfilled"},
        "wish_units": {"zh": "已向辖区单位开放", "en": "Open to the street's units"},
        "wish_none": {"zh": "暂无微心愿", "en": "No wishes"},
        "wish_mine": {"zh": "我认领的", "en": "Claimed by me"},
        "cadre_orders": {"zh": "所联系党员的工单", "en": "Orders of my members"},
        "kind_overdue_request": {
            "zh": "超期未办结的群众诉求",
            "en": "Requests past their time limit",
        },
    }
)


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
    if family == "action" and f"act_{value}" in LABELS:  # the accounts services' actions
        entry = LABELS[f"act_{value}"]
        return entry.get(language, entry["zh"])
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


#: Reasons of the accounts services (English, in messages and rejects) and their labels.
_REASONS: tuple[tuple[str, str], ...] = (
    (r"the password is blank", "reason_blank"),
    (r"at least (?P<n>\d+) characters", "reason_min_length"),
    (r"at most (?P<n>\d+) characters", "reason_max_length"),
    (r"contains the user name", "reason_username"),
    (r"a common password", "reason_common"),
    (r"at least 4 different characters", "reason_distinct"),
    (r"is the current one", "reason_same"),
    (r"current password is wrong", "reason_wrong_current"),
    (r"outside the scope|only an admin without a scope|own scope only", "reason_outside_scope"),
    (r"username is taken", "reason_taken"),
    (r"no such (street|community) code", "reason_no_such_code"),
    (r"needs a street or a community", "reason_needs_scope"),
    (r"1 to 64 letters", "reason_bad_username"),
)


def action(name: str) -> str:
    """An audit action in this request's language (the name itself when unknown)."""
    return t(f"act_{name}") if f"act_{name}" in LABELS else name


def reason(text: str) -> str:
    """A service's reason in this request's language (the text itself when unknown)."""
    import re

    for pattern, key in _REASONS:
        found = re.search(pattern, text or "")
        if found:
            return t(key).format(**found.groupdict())
    return text


def init_app(app: Flask) -> None:
    """Make ``t``, ``lang`` and ``reason`` available to templates."""
    app.jinja_env.globals.update(t=t, lang=lang, reason=reason, action=action)
    """Make ``t``, ``label_of``, ``lang`` and the ``localtime`` filter available to templates;
    log untranslated keys."""
    app.after_request(_note_missing)
    app.jinja_env.globals.update(t=t, lang=lang, label_of=label_of, job_message=job_message)
    app.jinja_env.filters["localtime"] = localtime
