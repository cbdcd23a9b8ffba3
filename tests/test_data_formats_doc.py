"""The layers' field tables in docs/layers.md are the ones geodata/layers.py generates."""

from pathlib import Path

from geodata.layers import markdown

DOCS = Path(__file__).parents[1] / "docs"


def test_layer_field_tables_match_the_layer_specs():
    text = (DOCS / "layers.md").read_text(encoding="utf-8")
    begin, end = "<!-- layers:begin -->\n", "<!-- layers:end -->"
    documented = text[text.index(begin) + len(begin) : text.index(end)]
    assert documented == markdown(), "run: python -m gridsvc.docgen"


def test_data_formats_doc_links_the_field_tables():
    assert "(layers.md)" in (DOCS / "data-formats.md").read_text(encoding="utf-8")
