"""Every page in Chinese and in English: no internal key, no untranslated label, no raw
True/False, times in Beijing time, the chosen language kept through login."""

from __future__ import annotations

import logging
import re

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import text
from webhelpers import COMMUNITY_A, PASSWORD, csrf_token, login_form, owner_engine

CJK = re.compile(r"[\u4e00-\u9fff]")
SNAKE = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
RAW = re.compile(r"\b(True|False|None|nan|NaN)\b")
#: Words a Chinese page may show as they are (formats, codes, the language switch).
LATIN_OK = re.compile(r"^[\s\d.,:;·/#%()+\-–~×*|@MBmKkGgEPSGCRxlsXLCVAIPAPIbytesnglish≈]*$")


@pytest.fixture(scope="module")
def codes(web) -> dict[str, str]:
    engine = owner_engine(web)
    with engine.connect() as conn:
        found = {
            kind: conn.scalar(
                text(
                    f"SELECT t.code FROM {table} t JOIN communities c ON c.id = t.community_id "
                    "WHERE c.code = :c ORDER BY t.code LIMIT 1"
                ),
                {"c": COMMUNITY_A},
            )
            for kind, table in (
                ("household", "households"),
                ("member", "members"),
                ("building", "buildings"),
            )
        }
    engine.dispose()
    return found


def _pages(codes: dict[str, str]) -> list[str]:
    return [
        "/",
        f"/map?community={COMMUNITY_A}",
        f"/map?community={COMMUNITY_A}&q=1",
        f"/roster?community={COMMUNITY_A}",
        f"/roster?community={COMMUNITY_A}&page=2",
        f"/blindspots?community={COMMUNITY_A}",
        "/rebalance",
        "/upload",
        "/audit",
        f"/records/household/{codes['household']}",
        f"/records/member/{codes['member']}",
        f"/records/building/{codes['building']}",
        "/records/household/NO-SUCH-CODE",
        "/roster?community=530102902999",
        "/requests",
        "/account",
        "/users",
        "/users/viewer_a",
    ]


def _visible(html: str) -> BeautifulSoup:
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "iframe", "option", "code"]):
        tag.decompose()
    for data in soup.select(".who, .target, [lang]"):  # user names, audit targets (data)
        if data.name != "html":
            data.decompose()
    return soup


def _check(page: str, html: str, lang: str) -> list[str]:
    soup = _visible(html)
    problems = []
    words = soup.get_text(" ", strip=True)
    problems += [f"{page}: internal key {m!r}" for m in SNAKE.findall(words)]
    problems += [f"{page}: raw value {m!r}" for m in RAW.findall(words)]
    for tag in soup.select(
        "th, button, label, h1, h2, h3, nav a, summary, p.pager, title, td.reason"
    ):
        own = " ".join(tag.find_all(string=True, recursive=True)).strip()
        if not own:
            continue
        if lang == "en" and CJK.search(own) and tag.name not in ("h1", "title", "h2"):
            problems.append(f"{page}: Chinese in English page {tag.name}: {own!r}")
        if lang == "zh" and not CJK.search(own) and not LATIN_OK.match(own):
            problems.append(f"{page}: not Chinese {tag.name}: {own!r}")
    return problems


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("who", ["admin", "planner_a", "viewer_a"])
def test_every_page_speaks_one_language(app, web, codes, caplog, lang, who):
    client = app.test_client()
    login_form(client, who)
    client.get(f"/?lang={lang}")
    problems: list[str] = []
    with caplog.at_level(logging.WARNING, logger="gridsvc.web.i18n"):
        for page in _pages(codes):
            response = client.get(page)
            if response.status_code == 403:
                continue
            assert response.status_code in (200, 404), (page, response.status_code)
            problems += _check(page, response.get_data(as_text=True), lang)
    untranslated = [r.getMessage() for r in caplog.records if "untranslated" in r.getMessage()]
    assert not untranslated, untranslated
    assert not problems, "\n".join(problems)


def test_audit_times_are_beijing_time(app, web):
    client = app.test_client()
    login_form(client, "admin")
    html = client.get("/audit?lang=zh").get_data(as_text=True)
    engine = owner_engine(web)
    with engine.connect() as conn:
        newest = conn.scalar(
            text("SELECT to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS') "
                 "FROM audit_log ORDER BY id DESC LIMIT 1")
        )  # fmt: skip
    engine.dispose()
    assert newest in html and "北京时间" in html


def test_language_chosen_on_the_login_page_survives_login(app):
    client = app.test_client()
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert "Log in" in page
    client.post(
        "/login",
        data={"username": "viewer_a", "password": PASSWORD, "csrf_token": csrf_token(page)},
    )
    home = client.get("/").get_data(as_text=True)
    assert "Households" in home and "户数" not in home
