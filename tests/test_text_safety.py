"""Text from a preset file or the run store is shown as written, never obeyed: no control character
reaches the terminal (bidirectional overrides and Unicode's line separators among them), and no name
is read as Rich markup by the command line's tools."""

from __future__ import annotations

import pytest
from tiny_presets import tiny_preset

from tui_lab.cli import main
from tui_lab.data.fmt import clean

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
"""The bidirectional controls: embeddings, overrides, isolates and marks."""


def test_clean_removes_the_bidirectional_controls():
    """"Trojan Source": U+202E turns the rest of the line around, so a variant "adam\u202e1.0 rl"
    reads "adam lr 0.1" on the screen. None of them reaches the terminal."""
    assert clean(f"adam{BIDI}lr") == "adamlr"
    assert clean("SGD \u202e1.0 rl\u202c") == "SGD 1.0 rl"
    assert clean(f"a{BIDI}\nb", lines=True) == "a\nb"
    assert clean("Grüße · ±") == "Grüße · ±"  # letters and symbols stay


def test_clean_treats_the_unicode_line_and_paragraph_separators_as_new_lines():
    """U+2028 and U+2029 break a line for Python (and so for the widgets that split text) but not for
    every terminal: a one-line name gets a space, text of several lines a new line."""
    assert clean("first\u2028second\u2029third") == "first second third"
    assert clean("first\u2028second\u2029third", lines=True) == "first\nsecond\nthird"


MARKUP = "[bold red]Red[/] [link=x.test]x[/link]"
PRESET = tiny_preset(f"""
[base.model]
hidden = [8]

[base.train]
steps = 20
batch_size = 32

[quick.train]
steps = 10

[[variants]]
name = "{MARKUP}"
""", title="Markup", technique="markup")


@pytest.fixture
def markup_preset(tmp_path):
    path = tmp_path / "markup.toml"
    path.write_text(PRESET, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["lr-find", "--quick", "--steps", "8"],
                                     ["sanity", "--quick", "--steps", "5", "--samples", "8"],
                                     ["gradcheck", "--max-elements", "4"]])
def test_the_tools_show_a_variant_named_with_markup_as_written(markup_preset, command, capsys):
    """`dllab lr-find` printed the variant's name into Rich markup: "[bold red]Red[/]" came out as a
    bold red "Red", and a [link=...] as a hyperlink. The names are shown as written."""
    tool, *options = command
    code = main([tool, str(markup_preset), *options])
    out = capsys.readouterr().out
    assert code in (0, 1), out
    assert "[bold red]Red[/]" in out and "[link=x.test]x[/link]" in out, out
