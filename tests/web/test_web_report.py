"""One report builder: ``GET /api/report`` (下载报告) and ``gridsvc report`` give the same
document for the same scope, user and language; file names say scope, date and masking."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
from webhelpers import COMMUNITY_A, STREET_A, bearer, count, owner_engine

from gridsvc import reports
from gridsvc.reports import build_report
from maps.report import ReportSection


def _unescape(html: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), html)


def _document(html: str) -> dict[str, object]:
    """What a reader compares: the header (less the minute it was made), every heading and
    every table cell beside the map."""
    html = _unescape(html)
    head = html[html.index('<header class="gs-head">') : html.index("</header>")]
    meta = [m for m in re.findall(r"<span[^>]*>(.*?)</span>", head) if "生成时间" not in m]
    meta = [m for m in meta if not m.startswith("Generated")]
    aside = html[html.index("<aside") : html.index("</aside>")]
    return {
        "title": re.search(r"<title>(.*?)</title>", html).group(1),
        "meta": meta,
        "headings": re.findall(r"<h[23][^>]*>(.*?)</h[23]>", aside),
        "cells": re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", aside),
    }


def test_api_and_cli_give_the_same_report(client, web):
    response = client.get(
        f"/api/report?community={COMMUNITY_A}&lang=zh", headers=bearer(web, "planner_a")
    )
    assert response.status_code == 200
    today = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    disposition = response.headers["Content-Disposition"]
    assert f'filename="report-{COMMUNITY_A}-{today}-masked.html"' in disposition
    engine = owner_engine(web)
    with engine.connect() as conn:
        cli = build_report(
            conn,
            community_code=COMMUNITY_A,
            settings=web.settings.with_(lang="zh"),
            user="planner_a",
        )
    engine.dispose()
    web_doc, cli_doc = _document(response.get_data(as_text=True)), _document(cli)
    assert web_doc == cli_doc
    meta = " ".join(web_doc["meta"])
    assert f"（{COMMUNITY_A}）" in meta and "planner_a" in meta and "范围：（）" not in meta
    headings = " ".join(web_doc["headings"])
    for section in ("覆盖概况", "各社区覆盖情况", "各网格覆盖情况", "红色驿站服务范围"):
        assert section in headings, (section, headings)
    # the grids are named as people say them, not by their code twice
    assert any(re.fullmatch(r".+社区第\d+网格", c) for c in web_doc["cells"])


def test_report_follows_the_language_and_defaults_to_the_callers_scope(client, web):
    english = client.get("/api/report?lang=en", headers=bearer(web, "viewer_a"))
    assert english.status_code == 200
    assert f"report-{STREET_A}-" in english.headers["Content-Disposition"]
    doc = _document(english.get_data(as_text=True))
    assert doc["headings"] and not [h for h in doc["headings"] if re.search(r"[\u4e00-\u9fff]", h)]


def test_unmasked_report_needs_a_planner_and_is_audited_by_the_builder(client, web):
    refused = client.get(
        f"/api/report?community={COMMUNITY_A}&unmasked=true", headers=bearer(web, "viewer_a")
    )
    assert refused.status_code == 403
    before = count(web, "SELECT count(*) FROM audit_log WHERE action = 'report_unmasked'")
    full = client.get(
        f"/api/report?community={COMMUNITY_A}&unmasked=true", headers=bearer(web, "planner_a")
    )
    assert full.status_code == 200 and "-unmasked.html" in full.headers["Content-Disposition"]
    after = count(web, "SELECT count(*) FROM audit_log WHERE action = 'report_unmasked'")
    assert after == before + 1


def test_one_more_section_plugs_in(client, web):
    def contacts(inputs: reports.ReportInputs) -> ReportSection:
        table = pd.DataFrame({"code": inputs.data.members["code"].head(3), "name": ["张三"] * 3})
        return ReportSection("contacts", "联系情况", table, note="测试", people=True)

    reports.SECTIONS.append(contacts)
    try:
        html = _unescape(
            client.get(
                f"/api/report?community={COMMUNITY_A}", headers=bearer(web, "planner_a")
            ).get_data(as_text=True)
        )
    finally:
        reports.SECTIONS.remove(contacts)
    assert '<h2 id="gs-contacts">联系情况</h2>' in html
    assert "张*" in html and ">张三<" not in html  # masked in a masked report
