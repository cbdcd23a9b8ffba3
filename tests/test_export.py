"""Export: every format, masking by default, scopes, the registry, and round trips."""

import logging

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner
from io_helpers import COMMUNITY, STREET, make_district, write_csv
from sqlalchemy import text

from geodata.export import EXPORTERS, Scope, export_layer, exporter, mask_name, mask_phone
from geodata.importer import import_file
from gridsvc.cli import cli
from gridsvc.db import make_engine
from gridsvc.errors import InputRejected, NotFound

HEADER = ["code", "name", "phone", "lon", "lat", "size", "elderly_alone", "disabled"]
ROWS = [
    ["H1", "张小三", "13812341234", 114.3125, 30.5825, 3, "是", "否"],
    ["H2", "李四", "13900001111", 114.305, 30.585, 1, "false", "true"],
]


@pytest.fixture
def loaded(conn, settings, tmp_path):
    make_district(conn)
    path = write_csv(tmp_path / "in.csv", HEADER, ROWS)
    import_file(conn, "households", path, settings=settings, crs="4326")
    return conn


def test_masks():
    assert [mask_name(n) for n in ("张三", "张小三", "欧阳小明", "王", "", None)] == [
        "张*",
        "张*三",
        "欧**明",
        "*",
        "",
        None,
    ]
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("12345") == "***45"


def test_csv_is_masked_with_bom_and_lon_lat(loaded, tmp_path):
    out = tmp_path / "h.csv"
    result = export_layer(loaded, "households", out)
    assert result.records == 2 and result.masked
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    assert list(table["name"]) == ["张*三", "李*"]
    assert list(table["phone"]) == ["138****1234", "139****1111"]
    assert not {"elderly_alone", "disabled", "low_income", "children"} & set(table.columns)
    assert {"lon", "lat", "building_code", "grid_code", "community_code"} <= set(table.columns)
    assert table.loc[0, "building_code"] == "B1"
    assert float(table.loc[0, "lon"]) == pytest.approx(114.3125)


def test_unmasked_is_explicit_and_logged(loaded, tmp_path, caplog):
    out = tmp_path / "h.xlsx"
    with caplog.at_level(logging.WARNING, logger="geodata.export"):
        export_layer(loaded, "households", out, unmasked=True, user="planner1")
    assert "unmasked export of households (2 records)" in caplog.text and "planner1" in caplog.text
    audit = loaded.execute(
        text(
            "SELECT username, target, details->>'records' FROM audit_log "
            "WHERE action = 'export.unmasked' ORDER BY id DESC LIMIT 1"
        )
    ).one()
    assert tuple(audit) == ("planner1", "households", "2")
    sheet = openpyxl.load_workbook(out).active
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    first = dict(zip(header, rows[1], strict=True))
    assert first["name"] == "张小三" and first["phone"] == "13812341234"
    assert first["elderly_alone"] is True and first["disabled"] is False


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg"])
def test_geographic_formats(loaded, tmp_path, suffix):
    out = tmp_path / f"h{suffix}"
    export_layer(loaded, "households", out)
    frame = gpd.read_file(out, engine="pyogrio")
    assert frame.crs.to_epsg() == 4326
    assert sorted(frame["name"]) == ["张*三", "李*"]
    assert frame.geometry.iloc[0].geom_type == "Point"


def test_polygons_in_csv_as_wkt(loaded, tmp_path):
    out = tmp_path / "b.csv"
    export_layer(loaded, "buildings", out)
    table = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    assert table.loc[0, "wkt"].startswith("MULTIPOLYGON")
    assert table.loc[0, "grid_code"] == "420106001001002"


def test_unmasked_csv_round_trips_through_the_importer(loaded, settings, tmp_path):
    out = tmp_path / "h.csv"
    export_layer(loaded, "households", out, unmasked=True)
    before = loaded.execute(text("SELECT * FROM households ORDER BY code")).all()
    result = import_file(loaded, "households", out, settings=settings, crs="4326")
    assert (result.inserted, result.updated, result.rejects) == (0, 2, ())
    after = loaded.execute(text("SELECT * FROM households ORDER BY code")).all()
    assert after == before


def test_masked_export_cannot_overwrite_real_names(loaded, settings, tmp_path):
    out = tmp_path / "h.csv"
    export_layer(loaded, "households", out)
    with pytest.raises(InputRejected) as err:
        import_file(loaded, "households", out, settings=settings, crs="4326")
    assert {r.field for r in err.value.rejects} == {"name", "phone"}


def test_scopes(loaded, tmp_path):
    out = tmp_path / "h.csv"
    assert export_layer(loaded, "households", out, scope=Scope(street_code=STREET)).records == 2
    assert (
        export_layer(loaded, "households", out, scope=Scope(community_code=COMMUNITY)).records == 2
    )
    assert export_layer(loaded, "grids", out, scope=Scope(community_code=COMMUNITY)).records == 2
    assert export_layer(loaded, "streets", out, scope=Scope(community_code=COMMUNITY)).records == 1
    with pytest.raises(NotFound):
        export_layer(loaded, "households", out, scope=Scope(street_code="999999999"))


def test_unknown_layer_or_extension(loaded, tmp_path):
    with pytest.raises(InputRejected, match="unknown layer"):
        export_layer(loaded, "nothing", tmp_path / "x.csv")
    with pytest.raises(InputRejected, match="unknown extension"):
        export_layer(loaded, "households", tmp_path / "x.shp")


def test_registry_takes_new_layers(loaded, tmp_path):
    @exporter("household_sizes", masked=("name",))
    def sizes(conn, scope):
        rows = conn.execute(text("SELECT code, name, size FROM households ORDER BY code")).all()
        return gpd.GeoDataFrame(
            pd.DataFrame(rows, columns=["code", "name", "size"]), geometry=[None] * len(rows)
        )

    try:
        out = tmp_path / "s.csv"
        assert export_layer(loaded, "household_sizes", out).records == 2
        assert list(pd.read_csv(out, encoding="utf-8-sig")["name"]) == ["张*三", "李*"]
    finally:
        EXPORTERS.pop("household_sizes")


def invoke(url, *args):
    return CliRunner().invoke(cli, list(args), env={"GRIDSVC_DATABASE_URL": url})


@pytest.fixture
def scratch(scratch_url):
    """The scratch database, with what the CLI test commits removed afterwards."""
    yield scratch_url
    engine = make_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM streets WHERE code = '420106077'"))
        conn.execute(text("DELETE FROM import_log WHERE source IN ('streets.csv', 'c.csv')"))
    engine.dispose()


def test_cli_import_and_export(scratch, tmp_path):
    scratch_url = scratch
    street = write_csv(tmp_path / "streets.csv", ["code", "name"], [["420106077", "测试街道"]])
    result = invoke(scratch_url, "import", "streets", str(street))
    assert result.exit_code == 0, result.output
    assert "streets: 1 inserted, 0 updated, 0 rejected" in result.output
    bad = write_csv(
        tmp_path / "c.csv",
        ["code", "name", "street_code"],
        [["420106077001", "甲社区", "420106077"], ["42010607702", "乙社区", "420106077"]],
    )
    result = invoke(scratch_url, "import", "communities", str(bad))
    assert result.exit_code == 3
    assert "c.csv, record 2, field code: must be 12 digits" in result.output
    result = invoke(scratch_url, "import", "communities", str(bad), "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "rejects written to" in result.output and (tmp_path / "c.csv.rejects.csv").exists()
    out = tmp_path / "communities.gpkg"
    result = invoke(scratch_url, "export", "communities", str(out), "--street", "420106077")
    assert result.exit_code == 0, result.output
    assert gpd.read_file(out, engine="pyogrio")["code"].tolist() == ["420106077001"]
    engine = make_engine(scratch_url)
    with engine.connect() as conn:
        logged = conn.execute(
            text("SELECT rejected, inserted FROM import_log WHERE source = 'c.csv' ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in logged] == [(1, 0), (1, 1)]


def test_cli_refuses_both_scopes(scratch_url, tmp_path):
    result = invoke(
        scratch_url, "export", "grids", str(tmp_path / "g.csv"), "--street", "1", "--community", "2"
    )
    assert result.exit_code == 2
