"""Contacts, requests and wishes bump data_version, so the pages cached on it show them."""

from __future__ import annotations

import pytest
from sqlalchemy import text


@pytest.mark.parametrize("table", ["contacts", "requests", "wishes"])
def test_a_change_of_activity_bumps_the_data_version(conn, table):
    before = conn.scalar(text("SELECT version FROM data_version"))
    conn.execute(text(f"DELETE FROM {table} WHERE false"))  # a statement, no row
    assert conn.scalar(text("SELECT version FROM data_version")) == before + 1
