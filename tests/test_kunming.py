"""Real data: 140 OpenStreetMap footprints in Kunming (ODbL) load as a district."""

import pytest
import shapely
from sqlalchemy import text

from geodata.kunming import kunming_layers, load_kunming


def test_derived_district_is_consistent():
    layers = kunming_layers()
    assert len(layers["buildings"]) == 140
    grids = layers["grids"]
    community = layers["communities"].geometry.iloc[0]
    assert len(grids) == 16
    assert shapely.union_all(grids.geometry.values).area == pytest.approx(community.area, rel=1e-6)
    assert shapely.contains(community, layers["buildings"].geometry.values).all()
    hh = layers["households"]
    residential = set(layers["buildings"].query("kind == 'residential'")["code"])
    assert len(hh) > 1000 and set(hh["building_code"]) <= residential


def test_loads_into_postgis_with_every_building_in_a_grid(conn):
    counts = load_kunming(conn)
    assert counts["buildings"] == 140
    row = conn.execute(
        text(
            "SELECT count(*), count(grid_id), count(community_id) FROM buildings "
            "WHERE code LIKE 'KM-%'"
        )
    ).one()
    assert tuple(row) == (140, 140, 140)
    area = conn.execute(
        text("SELECT sum(ST_Area(geom::geography)) FROM buildings WHERE code LIKE 'KM-%'")
    ).scalar()
    assert 80_000 < area < 400_000  # real footprints: 57–9,458 m² each
