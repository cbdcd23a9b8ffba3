"""Fixtures of the web tests: a committed database with two streets, users, tokens, the app.

Constants and helpers are in ``webhelpers``. The web app connects as ``gridsvc_app`` (row-
level security applies); fixtures write as the owner. Street A is a small demo street; street B
is one tiny community added by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from webhelpers import COMMUNITY_A, PASSWORD, STREET_A, STREET_B

from gridsvc.accounts.tokens import issue_token
from gridsvc.accounts.users import create_user
from gridsvc.db import drop_database, init_database, make_engine
from gridsvc.settings import Settings

_B_SQL = """
INSERT INTO streets (code, name) VALUES ('530102902', '测试街道');
INSERT INTO communities (code, name, street_id, geom)
  SELECT '530102902001', '测试社区', id,
  ST_Multi(ST_MakeEnvelope(102.60, 25.00, 102.61, 25.01, 4326)) FROM streets
  WHERE code = '530102902';
INSERT INTO grids (code, name, community_id, geom)
  SELECT '530102902001001', '测试网格', id,
  ST_Multi(ST_MakeEnvelope(102.60, 25.00, 102.61, 25.01, 4326)) FROM communities
  WHERE code = '530102902001';
INSERT INTO buildings (code, name, kind, community_id, grid_id, geom)
  SELECT 'B-ZZ-1', '测试楼', 'residential', c.id, g.id,
  ST_Multi(ST_MakeEnvelope(102.601, 25.001, 102.6012, 25.0012, 4326))
  FROM communities c JOIN grids g ON g.community_id = c.id WHERE c.code = '530102902001';
INSERT INTO households (code, name, phone, community_id, grid_id, building_id, geom)
  SELECT 'H-ZZ-' || i, '王小' || i, '13800138000', c.id, g.id, b.id,
  ST_SetSRID(ST_MakePoint(102.6011, 25.0011), 4326)
  FROM communities c JOIN grids g ON g.community_id = c.id JOIN buildings b ON b.grid_id = g.id,
  generate_series(1, 20) AS i WHERE c.code = '530102902001';
INSERT INTO members (code, name, kind, community_id, grid_id, building_id, geom)
  SELECT 'M-ZZ-1', '李四', 'resident', c.id, g.id, b.id,
  ST_SetSRID(ST_MakePoint(102.6011, 25.0011), 4326)
  FROM communities c JOIN grids g ON g.community_id = c.id JOIN buildings b ON b.grid_id = g.id
  WHERE c.code = '530102902001';
"""


@dataclass(frozen=True)
class Web:
    """The committed web test database and who can use it."""

    url: str
    settings: Settings
    tokens: dict[str, str]


@pytest.fixture(scope="session")
def web(settings: Settings) -> Iterator[Web]:
    """A fresh database with the demo street A, the tiny street B, users and their tokens."""
    from geodata.demo import load_demo

    url = make_url(settings.database_url)
    web_url = url.set(database=f"{url.database}_webapp").render_as_string(hide_password=False)
    drop_database(web_url)
    init_database(web_url)
    engine = make_engine(web_url)
    with engine.begin() as conn:
        load_demo(conn, seed=3, households=2000)
        for statement in _B_SQL.split(";\n"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    tokens = _users(engine)
    engine.dispose()
    yield Web(web_url, settings.with_(database_url=web_url), tokens)
    drop_database(web_url)


def _users(engine: Engine) -> dict[str, str]:
    people = {
        "viewer_a": ("viewer", STREET_A, None),
        "viewer_b": ("viewer", STREET_B, None),
        "viewer_ca": ("viewer", None, COMMUNITY_A),
        "planner_a": ("planner", STREET_A, None),
        "planner_a2": ("planner", None, COMMUNITY_A),
        "admin": ("admin", None, None),
        "admin_a": ("admin", STREET_A, None),
        "admin_b": ("admin", STREET_B, None),
    }
    tokens = {}
    with engine.begin() as conn:
        for name, (role, street, community) in people.items():
            user = create_user(
                conn, name, PASSWORD, role=role, street_code=street, community_code=community
            )
            tokens[name] = issue_token(conn, user.id, "tests")
    return tokens


@pytest.fixture(scope="session")
def app(web: Web):
    """The Flask app on the web test database (TESTING, no job queue)."""
    from gridsvc.web import create_app

    app = create_app({"TESTING": True, "GRIDSVC_SETTINGS": web.settings, "GRIDSVC_NO_QUEUE": True})
    yield app
    app.extensions["gridsvc.engine"].dispose()


@pytest.fixture
def client(app):
    """A test client without a session."""
    return app.test_client()
