"""Write README.md from docs/README.template.md: the screen captures and the preset list.

Run after adding a preset or recapturing screens: `python docs/build_readme.py`.
(tests/test_readme.py checks that the README lists every preset of the catalogue.)
"""

from __future__ import annotations

from pathlib import Path

from engine.catalogue.presets import catalogue

ROOT = Path(__file__).resolve().parent.parent


def preset_list() -> str:
    lines = []
    chapter = None
    for p in catalogue():
        if p.preset.chapter != chapter:
            chapter = p.preset.chapter
            lines += ["", f"**{chapter.capitalize()}**", ""]
        lines.append(f"- `{p.id}`: {p.preset.summary}")
    return "\n".join(lines).strip()


def main() -> None:
    text = (ROOT / "docs" / "README.template.md").read_text(encoding="utf-8")
    text = text.replace("PRESET_LIST", preset_list())
    for capture in sorted((ROOT / "docs" / "screens").glob("*.txt")):
        text = text.replace(f"SCREEN:{capture.stem}\n", capture.read_text(encoding="utf-8").rstrip() + "\n")
    (ROOT / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
