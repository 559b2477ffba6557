"""`tui_lab.tables`: names cut in the middle, and tables fitted to a width by shortening names."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from tui_lab.tables import clip_name, fit_names, fits, longest, table_width


def test_a_name_is_cut_in_the_middle_keeping_its_last_word():
    assert clip_name("dropout 0.5", 20) == "dropout 0.5"
    assert clip_name("grid, random placement #12", 22) == "grid, random plac… #12"
    assert clip_name("a variant named far too long for this", 16) == "a variant … this"
    assert clip_name("early-stopping-with-a-long-preset", 8) == "early-s…"  # one word: cut at its end


def test_a_tensor_name_keeps_its_last_part():
    """The gradient check's tensors differ at their end (weight / bias) and in the middle (the block)."""
    assert clip_name("blocks.0.linear.weight *", 20, ".") == "blocks.0.l….weight *"
    assert clip_name("blocks.1.linear.bias", 16, ".") == "blocks.1.l….bias"
    assert clip_name("head.weight", 8, ".") == "head.we…"  # no room for the last part beside a head


def _table(names: list[str], numbers: list[str]):
    """A `build` for `fit_names`: a name column and a number column."""
    def build(lengths: dict[str, int]) -> Table:
        table = Table()
        table.add_column("name", no_wrap=True)
        table.add_column("number", justify="right", no_wrap=True)
        for name, number in zip(names, numbers, strict=True):
            table.add_row(Text(clip_name(name, lengths["name"])), number)
        return table
    return build


def test_names_give_way_until_the_table_fits():
    names, numbers = ["a rather long variant name, lr 0.01", "short"], ["1.234e-05", "0.5"]
    build = _table(names, numbers)
    whole = fit_names(build, None, {"name": longest(names)}, floor=8)
    assert table_width(whole) == len(names[0]) + len("1.234e-05") + 7  # 3 borders, 4 cells of padding
    for width in (30, 40, table_width(whole)):
        table = fit_names(build, width, {"name": longest(names)}, floor=8)
        assert table_width(table) == width and fits(table, width)


def test_names_stop_at_the_floor_and_the_numbers_are_never_cut():
    names = ["a rather long variant name, lr 0.01"]
    table = fit_names(_table(names, ["1.234e-05"]), 10, {"name": longest(names)}, floor=8)
    assert table_width(table) == 8 + 9 + 7 and not fits(table, 10)
    short = fit_names(_table(["SGD, lr 0.1"], ["1.234e-05"]), 10, {"name": 11}, floor=12)
    assert table_width(short) == 11 + 9 + 7  # a name shorter than the floor stays whole


def test_the_longest_name_gives_way_first():
    seen = []

    def build(lengths: dict[str, int]) -> Table:
        seen.append(dict(lengths))
        table = Table()
        table.add_column("preset", no_wrap=True)
        table.add_column("variant", no_wrap=True)
        table.add_row(clip_name("p" * 30, lengths["preset"]), clip_name("v" * 12, lengths["variant"]))
        return table

    table = fit_names(build, 30, {"preset": 30, "variant": 12}, floor=6)
    assert table_width(table) == 30 and seen[-1]["variant"] == 12  # the preset alone gave way
    table = fit_names(build, 20, {"preset": 30, "variant": 12}, floor=6)
    assert table_width(table) == 20 and seen[-1] == {"preset": 6, "variant": 7}  # then both
