"""The docs: generated files in step, README short, links that resolve, no history notes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridsvc import docgen

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: Written by other work in parallel; linked from the README.
ELSEWHERE = {
    "security.md", "security-io.md", "scale.md", "addresses.md", "contacts.md",
    "pairing-large.md", "web-ux.md",
}  # fmt: skip
OWN = (
    "install-and-upgrade.md", "offline-install.md", "data-formats.md", "pairing.md",
    "coverage-and-siting.md", "maps-and-reports.md", "web-and-api.md", "architecture.md",
    "benchmarks.md", "settings.md", "layers.md",
)  # fmt: skip
_LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


@pytest.mark.parametrize("path", sorted(docgen.generated()), ids=lambda p: p.name)
def test_generated_docs_are_in_step(path):
    expected = docgen.generated()[path]
    assert path.read_text(encoding="utf-8") == expected, "stale: run `python -m gridsvc.docgen`"


def test_check_mode_names_a_stale_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(docgen, "DOCS", tmp_path)
    assert docgen.main(["--check"]) == 1
    assert "settings.md" in capsys.readouterr().err
    assert docgen.main([]) == 0 and docgen.main(["--check"]) == 0


def test_every_setting_the_code_reads_is_in_the_table():
    table = (DOCS / "settings.md").read_text(encoding="utf-8")
    from gridsvc.settings import _PARSERS

    for suffix in _PARSERS:
        assert f"`GRIDSVC_{suffix}`" in table, suffix


def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for command in ("make demo", "make test", "docs/map.png", "gridsvc audit export"):
        assert command in text
    linked = {m.group(1) for m in _LINK.finditer(text) if "://" not in m.group(1)}
    assert {f"docs/{name}" for name in OWN} | {f"docs/{n}" for n in ELSEWHERE} <= linked
    missing = [link for link in linked if not (ROOT / link).exists() and link[5:] not in ELSEWHERE]
    assert missing == []


@pytest.mark.parametrize("name", OWN)
def test_docs_links_resolve_and_carry_no_history(name):
    text = (DOCS / name).read_text(encoding="utf-8")
    for match in _LINK.finditer(text):
        target = match.group(1)
        if "://" in target or target in ELSEWHERE:
            continue
        assert (DOCS / target).exists(), (name, target)
    history = re.compile(
        r"before this session|this morning|once used|used to |no longer|was out of date|"
        r"earlier (README|figure)|is now |until .* (listed|fixed)",
        re.I,
    )
    assert not history.search(text), history.search(text)
