"""The README's field tables are the ones geodata/layers.py generates."""

from pathlib import Path

from geodata.layers import markdown

README = Path(__file__).parents[1] / "README.md"


def test_readme_field_tables_match_the_layer_specs():
    text = README.read_text(encoding="utf-8")
    begin, end = "<!-- layers:begin -->\n", "<!-- layers:end -->"
    documented = text[text.index(begin) + len(begin) : text.index(end)]
    assert documented == markdown(), "run: python -m geodata.layers --markdown"
