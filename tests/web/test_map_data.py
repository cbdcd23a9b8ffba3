"""Map data of a scope: load ranges come from the configured settings, not the defaults."""

from __future__ import annotations

from webhelpers import COMMUNITY_A, owner_engine

from gridsvc.pairing import service
from gridsvc.portal.mapdata import load_map_data
from gridsvc.settings import LoadRange


def test_map_load_counts_use_the_configured_ranges(web):
    engine = owner_engine(web)
    with engine.connect() as conn, conn.begin() as transaction:
        service.run_pairing(
            conn, settings=web.settings, community_code=COMMUNITY_A, level="households"
        )
        narrow = web.settings.with_(household_load=LoadRange(1, 2))
        data = load_map_data(conn, community_code=COMMUNITY_A, settings=narrow)
        high = web.settings.with_(household_load=LoadRange(30, 40))
        below = load_map_data(conn, community_code=COMMUNITY_A, settings=high).summary
        transaction.rollback()
    engine.dispose()
    members = data.members
    assert set(members["max_load"]) == {2} and set(members["min_load"]) == {1}
    above = int((members["load"] > 2).sum())
    assert above > 0 and data.summary["loads_above_max"] == above
    assert below["loads_below_min"] == int(members["active"].sum()) > 0
