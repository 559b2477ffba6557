"""The README lists every preset with its summary and has no unfilled placeholders."""

from __future__ import annotations

from pathlib import Path

from engine.catalogue.presets import catalogue

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_preset():
    text = README.read_text(encoding="utf-8")
    for p in catalogue():
        assert f"`{p.id}`: {p.preset.summary}" in text, f"README lacks {p.id}: run python docs/build_readme.py"
    assert "PRESET_LIST" not in text and "SCREEN:" not in text
