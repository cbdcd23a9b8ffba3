"""The demo district: deterministic, shaped like the seeds' figures, loads into PostGIS."""

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from geodata.demo import generate_demo, load_demo


@pytest.fixture(scope="module")
def street():
    return generate_demo(seed=3)


def test_same_seed_same_district(street):
    again = generate_demo(seed=3)
    for name, frame in street.layers.items():
        assert frame.drop(columns="geometry").equals(again.layers[name].drop(columns="geometry"))
        assert shapely.equals_exact(
            frame.geometry.values, again.layers[name].geometry.values, tolerance=0
        ).all()
    assert (
        not generate_demo(seed=4)
        .layers["households"]
        .geometry.equals(street.layers["households"].geometry)
    )


def test_shape_follows_the_seeds(street):
    layers = street.layers
    assert len(layers["communities"]) == 5
    hh = layers["households"]
    per_comm = hh.groupby("community_code").size()
    assert per_comm.between(3300, 4100).all()
    res = layers["buildings"].query("kind == 'residential'").groupby("community_code").size()
    assert (res == 76).all()
    per_grid = hh.groupby("grid_code").size()
    assert per_grid.between(300, 500).all(), per_grid.describe()
    assert {"commercial", "public"} <= set(layers["buildings"]["kind"])
    members = layers["members"]
    rate = members.groupby("community_code").size() / per_comm
    assert (rate.iloc[:4] > 0.10).all() and rate.iloc[4] < 0.05  # the last one is in deficit
    assert members["kind"].value_counts().idxmax() == "retired"
    assert 0.05 < (~members["eligible"]).mean() < 0.35
    cadres = layers["cadres"]
    assert (
        cadres.query("level == 'community'").groupby("community_code").size().between(9, 11).all()
    )
    assert (cadres["level"] == "street").sum() >= 1
    assert layers["stations"].groupby("community_code").size().between(2, 3).all()


def test_grids_tile_their_community_without_gaps_or_overlaps(street):
    comms = street.layers["communities"].set_index("code")
    for code, grids in street.layers["grids"].groupby("community_code"):
        community = comms.loc[code, "geometry"]
        union = shapely.union_all(grids.geometry.values)
        assert union.symmetric_difference(community).area < 1e-9 * community.area
        assert sum(g.area for g in grids.geometry) == pytest.approx(community.area, rel=1e-9)
        # numbered west→east, north→south
        c = shapely.centroid(grids.sort_values("code").geometry.values)
        assert np.all(np.diff(shapely.get_x(c[:3])) > 0)
        assert shapely.get_y(c[0]) > shapely.get_y(c[-1])


def test_households_sit_inside_their_buildings(street):
    b = street.layers["buildings"].set_index("code")
    hh = street.layers["households"]
    inside = shapely.contains(b.loc[hh["building_code"], "geometry"].values, hh.geometry.values)
    assert inside.all()


def test_city_scale_generation_is_fast_and_sized():
    city = generate_demo(seed=1, households=200_000)
    assert len(city.layers["households"]) == 200_000
    assert len(city.layers["communities"]) == round(200_000 / 3724)
    assert city.layers["communities"]["code"].is_unique
    assert city.layers["streets"]["code"].str.fullmatch(r"\d{9}").all()


def test_load_demo_into_postgis(conn):
    counts = load_demo(conn, seed=2)
    assert counts["households"] == 5 * 3724
    derived = conn.execute(
        text(
            "SELECT count(*) FILTER (WHERE building_id IS NULL OR grid_id IS NULL "
            "OR community_id IS NULL) FROM households"
        )
    ).scalar()
    assert derived == 0
    # grid of each household's point is the grid the generator named (location agrees)
    mismatched = conn.execute(
        text(
            "SELECT count(*) FROM households h JOIN grids g ON g.id = h.grid_id "
            "WHERE NOT ST_Intersects(g.geom, h.geom)"
        )
    ).scalar()
    assert mismatched == 0
    again = load_demo(conn, seed=2)
    assert again == counts
    n = conn.execute(text("SELECT count(*) FROM households WHERE code LIKE :p"), {"p": "530102%"})
    assert n.scalar() == 5 * 3724
