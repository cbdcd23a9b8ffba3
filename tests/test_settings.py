"""Settings: defaults, environment parsing, errors that name the variable."""

import pytest

from gridsvc.settings import LoadRange, load_settings


def test_defaults_follow_the_domain():
    s = load_settings({})
    assert (s.household_load.min, s.household_load.max) == (15, 25)
    assert (s.member_load.min, s.member_load.max) == (8, 15)
    assert s.life_circles_m == (300, 500, 1000)
    assert s.database_url.startswith("postgresql+psycopg://")


def test_database_url_aliases_and_scheme():
    s = load_settings({"DATABASE_URL": "postgres://u:p@db:5432/x"})
    assert s.database_url == "postgresql+psycopg://u:p@db:5432/x"
    s = load_settings(
        {"DATABASE_URL": "postgres://a/b", "GRIDSVC_DATABASE_URL": "postgresql://c/d"}
    )
    assert s.database_url == "postgresql+psycopg://c/d"
    assert s.effective_test_database_url.endswith("/d_test")


def test_environment_values_are_parsed():
    s = load_settings(
        {
            "GRIDSVC_HOUSEHOLD_LOAD": "5-10",
            "GRIDSVC_MAX_PAIR_DISTANCE_M": "800",
            "GRIDSVC_CROSS_COMMUNITY": "yes",
            "GRIDSVC_LIFE_CIRCLES_M": "300,500",
        }
    )
    assert s.household_load == LoadRange(5, 10)
    assert s.max_pair_distance_m == 800.0
    assert s.cross_community is True
    assert s.life_circles_m == (300, 500)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRIDSVC_HOUSEHOLD_LOAD", "25-15"),
        ("GRIDSVC_MEMBER_LOAD", "eight"),
        ("GRIDSVC_FAR_PAIR_M", "far"),
        ("GRIDSVC_LANG", "fr"),
    ],
)
def test_malformed_values_name_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        load_settings({name: value})
