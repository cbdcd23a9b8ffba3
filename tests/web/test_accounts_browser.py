"""The users page in headless Chromium: a street admin sees its street's users only, creates one
(a weak password is refused in Chinese), issues and revokes its token, disables and enables it;
a wrong login shows the same message for any name."""

from __future__ import annotations

import threading

import pytest
from webhelpers import PASSWORD

GOOD = "Xishan hill path 2026"


@pytest.fixture(scope="module")
def live_url(web):
    """The app served by waitress on a free loopback port (plain HTTP: no Secure cookie)."""
    from waitress.server import create_server

    from gridsvc.web import create_app

    settings = web.settings.with_(secret_key="u" * 32, cookie_secure=False)
    app = create_app({"GRIDSVC_SETTINGS": settings})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    app.extensions["gridsvc.engine"].dispose()


def _log_in(page, live_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


@pytest.mark.browser
def test_street_admin_manages_its_users_in_the_browser(live_url, chromium):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r: r.url.startswith(live_url) or outside.append(r.url))
        _log_in(page, live_url, "admin_a")
        page.click("#nav-toggle")  # a phone: the links fold behind the menu button
        page.click("nav >> text=用户")
        names = page.locator("#users td:first-child").all_inner_texts()
        assert "viewer_a" in names and not {"viewer_b", "admin_b", "admin"} & set(names)
        roles = set(page.locator("#users td:nth-child(2)").all_inner_texts())
        assert roles <= {"查看员", "规划员", "管理员"}  # translated, never the internal key
        page.fill("#new-user input[name=username]", "browser_clerk")
        page.fill("#new-user input[name=password]", "1234567890")
        page.fill("#new-user input[name=scope]", "530102001001")
        page.click("#new-user button[type=submit]")
        assert "属于常见密码" in page.locator("#problem").inner_text()
        page.fill("#new-user input[name=password]", GOOD)
        page.click("#new-user button[type=submit]")
        page.click("#users >> text=browser_clerk")
        page.click("#new-token-form button")
        token = page.locator("#new-token code").inner_text()
        assert token.startswith("gst_")
        api = context.request
        me = api.get(f"{live_url}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status == 200
        page.click("#tokens button.revoke")
        assert "已吊销" in page.locator("#tokens").inner_text()
        gone = api.get(f"{live_url}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert gone.status == 401
        page.click("#toggle-active")
        assert page.locator("#user-state").inner_text() == "已停用"
        page.click("#toggle-active")
        assert page.locator("#user-state").inner_text() == "启用"
        assert not outside
    finally:
        context.close()


@pytest.mark.browser
def test_wrong_login_says_the_same_for_any_name(live_url, chromium):
    context = chromium.new_context()
    try:
        page = context.new_page()
        messages = []
        for name in ("viewer_a", "no_such_person"):
            _log_in(page, live_url, name, "not the password")
            messages.append(page.locator("p.error").inner_text())
        assert messages[0] == messages[1] == "用户名或密码错误"
    finally:
        context.close()
