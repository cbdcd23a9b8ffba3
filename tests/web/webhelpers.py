"""Constants and helpers of the web tests (fixtures are in ``conftest.py``)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from gridsvc.db import make_engine

STREET_A, STREET_B = "530102001", "530102902"
COMMUNITY_A, COMMUNITY_B = "530102001001", "530102902001"
PASSWORD = "correct horse battery"


def bearer(web, who: str) -> dict[str, str]:
    """The Authorization header of a test user."""
    return {"Authorization": f"Bearer {web.tokens[who]}"}


def owner_engine(web) -> Engine:
    """An engine as the database owner (fixtures and checks only)."""
    return make_engine(web.url)


def count(web, sql: str) -> int:
    """One number from the owner's point of view."""
    engine = owner_engine(web)
    with engine.connect() as conn:
        value = conn.scalar(text(sql))
    engine.dispose()
    return int(value)


def csrf_token(html: str) -> str:
    """The CSRF token of a rendered form."""
    import re

    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def login_form(client, username: str) -> None:
    """Log in through the login form, as a browser would."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


def households_csv(prefix: str, *, rows: int = 1000, bad: tuple[int, ...] = ()) -> bytes:
    """Households of community B at its test building (52 bytes a row); records in ``bad``
    name a building that does not exist."""
    lines = ["code,size,building_code,community_code,lon,lat"]
    for i in range(1, rows + 1):
        building = "B-NOPE-9" if i in bad else "B-ZZ-1"
        lines.append(f"{prefix}{i:05d},2,{building},{COMMUNITY_B},102.6011,25.0011")
    return ("\n".join(lines) + "\n").encode()
