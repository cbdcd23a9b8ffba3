"""Pages: login with CSRF, a copied cookie dies at logout, every page renders, languages."""

from __future__ import annotations

import re

from webhelpers import COMMUNITY_A, PASSWORD, count, csrf_token, login_form


def test_login_logout_and_a_copied_cookie(app, web):
    client = app.test_client()
    assert client.get("/").status_code == 302  # to the login page
    before = count(web, "SELECT count(*) FROM audit_log WHERE action = 'login'")
    login_form(client, "viewer_a")
    assert count(web, "SELECT count(*) FROM audit_log WHERE action = 'login'") == before + 1
    home = client.get("/")
    assert home.status_code == 200 and "户数" in home.get_data(as_text=True)
    cookie = client.get_cookie("gridsvc_session")
    assert cookie.http_only and cookie.secure and cookie.same_site == "Lax"
    thief = app.test_client()
    thief.set_cookie("gridsvc_session", cookie.value)
    assert thief.get("/").status_code == 200  # a copied cookie works while the session lives
    token = csrf_token(home.get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert thief.get("/").status_code == 302  # ...and stops working at logout
    assert thief.get("/api/me").status_code == 401


def test_wrong_password_and_missingcsrf_token(app, web):
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    wrong = client.post(
        "/login", data={"username": "viewer_a", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "错误" in wrong.get_data(as_text=True)
    assert count(web, "SELECT count(*) FROM audit_log WHERE action = 'login_failed'") >= 1
    no_csrf = client.post("/login", data={"username": "viewer_a", "password": PASSWORD})
    # a form without a valid token (expired session, stale page): back to log in, in Chinese
    assert no_csrf.status_code == 303 and "/login" in no_csrf.headers["Location"]
    shown = client.get(no_csrf.headers["Location"]).get_data(as_text=True)
    assert "请重新登录" in shown and "CSRF" not in shown


def test_every_page_renders_for_its_role(app, web):
    client = app.test_client()
    login_form(client, "admin")
    pages = [
        "/",
        f"/map?community={COMMUNITY_A}&q=5301",
        f"/map/frame?community={COMMUNITY_A}",
        f"/roster?community={COMMUNITY_A}",
        f"/blindspots?community={COMMUNITY_A}",
        "/rebalance",
        "/upload",
        "/audit",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, (page, response.get_data(as_text=True)[:300])
        html = response.get_data(as_text=True)
        assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?(https?:)?//", html), page
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "Households" in english
    viewer = app.test_client()
    login_form(viewer, "viewer_a")
    assert viewer.get("/upload").status_code == 403
    assert viewer.get("/audit").status_code == 403
    # another street's community: one clean 404 page on every route, nothing embedded
    for route in ("/map", "/map/frame", "/roster", "/blindspots"):
        outside = viewer.get(f"{route}?community=530102902001")
        html = outside.get_data(as_text=True)
        assert outside.status_code == 404, route
        assert "不在您的管辖范围内" in html and "530102902001" not in html, route
        assert "<iframe" not in html and "Not Found" not in html, route
