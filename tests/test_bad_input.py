"""Bad input never reaches a traceback: a preset that nests too deeply, one that cannot be read, a
run store that is not one, control characters in text, a base value every variant overrides, a
huge value in an error. Each is one line on stderr and exit 2 before any work starts, and nothing
is written to the store."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest
from tiny_presets import tiny_preset

from engine.catalogue.presets import PresetError, parse_preset
from engine.runs.store import FILENAME, RunStore, StoreError
from tui_lab.cli import main

VARIANTS = """
[base.model]
hidden = [8]

[base.train]
steps = 5

[[variants]]
name = "a"
"""

CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
"""What must never reach the terminal from a file or the store (newlines aside)."""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DLLAB_HOME", str(home))
    return home


def rows_in(home: Path) -> int:
    """The runs the store holds (0 when there is no store)."""
    if not (home / FILENAME).is_file():
        return 0
    with RunStore(home) as store:
        return len(store.list_runs())


def refused(args: list[str], capsys, *words: str) -> str:
    """`dllab ARGS` exits 2 with one line on stderr that has `words`, no traceback, no control
    characters; returns the line."""
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not CONTROL.search(err.strip()), repr(err)
    for word in words:
        assert word in err, (word, err)
    return err


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- 1. a preset nested a few hundred levels deep --------------------------------------------------

@pytest.mark.parametrize("value", [
    "[" * 600 + "]" * 600,  # arrays: the TOML parser's own recursion
    "{a = " * 600 + "1" + "}" * 600,  # inline tables in inline tables
])
def test_a_preset_nested_hundreds_of_levels_deep_is_refused(value, tmp_path, home, capsys):
    path = write(tmp_path, tiny_preset(f"[base.model]\nx = {value}\n" + VARIANTS.replace("[base.model]\n", "")))
    refused(["run", str(path), "--quick", "--workers", "0"], capsys, str(path), "nests too deeply")
    assert rows_in(home) == 0


def test_table_headers_thousands_of_levels_deep_are_refused_before_anything_recurses(tmp_path, capsys):
    # the parser reads them without recursing; merging and validating such data would not
    path = write(tmp_path, tiny_preset("[base.model." + ".".join(["a"] * 3000) + "]\nx = 1\n" + VARIANTS))
    refused(["presets", str(path)], capsys, str(path), "nests too deeply")


def test_a_builder_value_nested_hundreds_of_levels_deep_is_a_message():
    from tui_lab.data.draft import parse_overrides

    with pytest.raises(ValueError, match="nests too deeply"):
        parse_overrides("model.hidden = " + "[" * 600 + "]" * 600)


# -- 2. a preset file that exists but cannot be read ------------------------------------------------

def test_a_folder_given_as_the_preset_is_named_as_a_folder(tmp_path, home, capsys):
    folder = tmp_path / "presets.toml"
    folder.mkdir()
    refused(["run", str(folder), "--quick"], capsys, str(folder), "a folder, not a preset file")


def test_a_preset_file_without_read_permission_names_the_file_and_the_reason(tmp_path, home, capsys, monkeypatch):
    path = write(tmp_path, tiny_preset(VARIANTS))
    real_bytes, real_text = Path.read_bytes, Path.read_text

    def denied(real):
        def read(self, *args, **kwargs):
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)
        return read

    monkeypatch.setattr(Path, "read_bytes", denied(real_bytes))
    monkeypatch.setattr(Path, "read_text", denied(real_text))
    refused(["run", str(path), "--quick"], capsys, str(path), "Permission denied")
    assert rows_in(home) == 0
    # the Library lists a saved recipe it cannot read among the problems, and goes on
    from tui_lab.screens.library import saved_presets

    loaded, problems = saved_presets(tmp_path)
    assert loaded == [] and "Permission denied" in problems[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_a_preset_file_without_read_permission_for_real(tmp_path, home, capsys):
    path = write(tmp_path, tiny_preset(VARIANTS))
    path.chmod(0)
    refused(["run", str(path), "--quick"], capsys, str(path), "Permission denied")


def test_a_preset_name_too_long_for_a_path_is_a_message(home, capsys):
    err = refused(["run", "a" * 5000, "--quick"], capsys, "cannot look for preset")
    assert len(err) < 300


# -- 3. a run store that cannot be used --------------------------------------------------------------

def store_commands(preset: Path) -> list[list[str]]:
    """Every command that opens the store; `dllab` alone opens the app (after the store's check)."""
    return [["runs"], ["show", "abc"], ["run", str(preset), "--quick"], ["run", str(preset), "--quick", "--workers", "0"],
            ["check", str(preset), "--quick", "--workers", "0"], ["search", str(preset), "--field", "train.lr=0.01:0.1",
                                                                  "--budget", "1", "--quick"], []]


@pytest.fixture
def no_app(monkeypatch: pytest.MonkeyPatch):
    """`dllab` alone must stop before the app takes the screen: a test that reaches it fails."""
    from tui_lab.app import DllabApp

    def started(self, *args, **kwargs):
        raise AssertionError("the app started on a store it cannot use")

    monkeypatch.setattr(DllabApp, "run", started)


def test_a_store_that_is_not_a_database_is_one_line_from_every_command(tmp_path, home, capsys, no_app):
    junk = os.urandom(4096)
    (home / FILENAME).write_bytes(junk)
    preset = write(tmp_path, tiny_preset(VARIANTS))
    for args in store_commands(preset):
        refused(args, capsys, str(home / FILENAME), "not a dllab run store", "DLLAB_HOME")
    assert (home / FILENAME).read_bytes() == junk  # left as it was


@pytest.mark.parametrize("content", [b"", b"notes\n"])
def test_a_dllab_home_that_is_a_file_is_one_line_and_the_file_is_left_alone(content, tmp_path, capsys, monkeypatch,
                                                                            no_app):
    home = tmp_path / "home"
    home.write_bytes(content)  # an empty one was made a database before
    monkeypatch.setenv("DLLAB_HOME", str(home))
    preset = write(tmp_path, tiny_preset(VARIANTS))
    for args in store_commands(preset):
        refused(args, capsys, str(home), "not a folder")
    assert home.read_bytes() == content


@pytest.fixture
def read_only_store(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with one run, then opened as a read-only file would be (root writes any file, so
    the test asks SQLite itself: ``PRAGMA query_only``)."""
    from engine.events import RunFinished, RunStarted

    with RunStore(home) as store:
        store.record(RunStarted("r1", "a", 0, "tiny", "c", {}, "cpu", 10, 100, 10))
        store.record(RunFinished("r1", "done", 100, "finished", {}, {}, 1.0))
    real = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real(*args, **kwargs)
        conn.execute("PRAGMA query_only = ON")
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    return home


@pytest.mark.parametrize("workers", [[], ["--workers", "0"]])
def test_a_read_only_store_stops_a_run_before_it_starts(workers, tmp_path, read_only_store, capsys):
    preset = write(tmp_path, tiny_preset(VARIANTS))
    refused(["run", str(preset), "--quick", *workers], capsys, str(read_only_store / FILENAME), "read-only")
    assert main(["runs"]) == 0 and "r1" in capsys.readouterr().out  # reading it still works


def test_a_read_only_store_stops_the_app_before_it_starts(read_only_store, capsys, no_app):
    refused([], capsys, "read-only")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes any file")
def test_a_read_only_home_for_real(tmp_path, home, capsys):
    preset = write(tmp_path, tiny_preset(VARIANTS))
    home.chmod(0o500)
    try:
        refused(["run", str(preset), "--quick", "--workers", "0"], capsys, str(home))
    finally:
        home.chmod(0o700)


def test_the_store_error_names_the_file_and_what_to_do(tmp_path, monkeypatch):
    (tmp_path / FILENAME).write_bytes(b"x" * 1000)
    store = RunStore(tmp_path)
    with pytest.raises(StoreError) as info:
        store.list_runs()
    assert str(tmp_path / FILENAME) in str(info.value) and "DLLAB_HOME" in str(info.value)
    folder = tmp_path / "sub"
    (folder / FILENAME).mkdir(parents=True)
    monkeypatch.setenv("DLLAB_HOME", str(folder))
    with pytest.raises(StoreError, match="a folder, where the run store's file should be"):
        RunStore().check()


# -- 4. control characters in preset text ---------------------------------------------------------

@pytest.mark.parametrize(("field", "text"), [
    ("title", tiny_preset(VARIANTS, title="T\\u001b]0;pwned\\u0007")),
    ("variants.0.name", tiny_preset(VARIANTS.replace('name = "a"', 'name = "a\\u001b[2J"'))),
    ("variants.0.description", tiny_preset(VARIANTS + 'description = "d\\u009b2J"\n')),
    ("summary", tiny_preset(VARIANTS, summary="s\\u007f")),
    ("title", tiny_preset(VARIANTS, title="two\\nlines")),  # one-line text has no newline
    ("explain", tiny_preset(VARIANTS).replace('explain = "Tiny."', 'explain = "e\\u001b[31m"')),
    ("claims.0.text", tiny_preset(VARIANTS + '\n[[claims]]\ntext = "\\u001b[2J"\nmetric = "val_acc"\nleft = "a"\n'
                                  'op = ">"\nvalue = 0.1\n')),
    ("model.'x\\x1b'", tiny_preset(VARIANTS.replace("[base.model]\n", '[base.model]\n"x\\u001b" = 1\n'))),
])
def test_control_characters_in_preset_text_are_refused_naming_the_field(field, text, tmp_path, home, capsys):
    path = write(tmp_path, text)
    refused(["run", str(path), "--quick", "--workers", "0"], capsys, str(path), field, "control character")
    assert rows_in(home) == 0


def test_newlines_and_tabs_are_fine_in_the_text_of_several_lines():
    text = tiny_preset(VARIANTS + 'description = "one\\n\\ttwo"\n').replace('explain = "Tiny."',
                                                                           'explain = """one\n\ttwo"""')
    loaded = parse_preset(text, Path("ok.toml"))
    assert loaded.preset.explain == "one\n\ttwo" and loaded.preset.variants[0].description == "one\n\ttwo"


def test_a_preset_file_whose_name_has_a_control_character_is_refused(tmp_path, capsys):
    path = write(tmp_path, tiny_preset(VARIANTS), name="x\x1b[2J.toml")
    refused(["presets", str(path)], capsys, "file's name", "control character")


def test_clean_strips_control_characters():
    from tui_lab.data.fmt import clean

    assert clean("a\x1b]0;pwned\x07b\x1b[2Jc\x9bd\x7fe") == "a]0;pwnedb[2Jcde"
    assert clean("one\ntwo\tthree\r\n") == "one two three "
    assert clean("one\n\ttwo\x1b", lines=True) == "one\n\ttwo"
    assert clean("Adam (β₁ 0.9) — ünïcode") == "Adam (β₁ 0.9) — ünïcode"


def store_hostile_run(home: Path) -> None:
    """A run an older version stored with control characters in every text (presets allowed them)."""
    from engine.events import EvalMetrics, Message, RunFinished, RunStarted

    with RunStore(home) as store:
        store.record(RunStarted("r\x1b[2J1", "var\x1b[2Jiant", 0, "pre\x1b]0;pwned\x07set", "c", {
            "recipe": {"data": {"name": "moons\x1b[5m"}, "model": {"kind": "mlp"}, "train": {"steps": 10}}},
            "cpu", 10, 10, 10))
        store.record(EvalMetrics("r\x1b[2J1", 10, 1.0, {"val_acc": 0.5, "val_loss": 0.7}, 0.1))
        store.record(Message("r\x1b[2J1", "warn\x1b[2Jing\x9b", "warning"))
        store.record(RunFinished("r\x1b[2J1", "failed", 10, "rea\x1b]0;x\x07son", {"val_acc": 0.5}, {}, 1.0))


@pytest.mark.parametrize("args", [["runs"], ["runs", "--preset", "pre\x1b]0;pwned\x07set"], ["show", "r"]])
def test_runs_and_show_never_print_control_characters_from_the_store(args, home, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    store_hostile_run(home)
    assert main(args) == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert not CONTROL.search(out), repr(out)
    assert "pwned" in out  # the text is shown, without what would have been obeyed


def test_the_headless_results_never_print_control_characters():
    from rich.console import Console

    from engine.catalogue.claims import check_claims
    from engine.runs.outcomes import RunOutcome
    from tui_lab.headless import ComparisonResult, print_result

    loaded = parse_preset(tiny_preset(VARIANTS), Path("t.toml"))
    outcome = RunOutcome("r1", "a\x1b[2J", 0, status="failed", reason="boom\x1b]0;pwned\x07")
    result = ComparisonResult(loaded, True, [outcome], check_claims([], [outcome]))
    console = Console(record=True, width=120, force_terminal=False)
    print_result(result, console)
    text = console.export_text()
    assert "boom" in text and not CONTROL.search(text.replace("\n", "")), repr(text)


def test_an_error_message_is_printed_without_control_characters(tmp_path, capsys):
    # a preset path of the user's (a saved recipe's file name) reaches the message as written
    path = tmp_path / "we\x1b[2Jird" / "p.toml"
    refused(["run", str(path)], capsys, "no such preset file")


# -- 5. a base value that every variant overrides ---------------------------------------------------

SWISHY = tiny_preset("""
[base.model]
activation = "swishy"

[base.train]
steps = 5

[[variants]]
name = "relu"
model = { activation = "relu" }

[[variants]]
name = "tanh"
model = { activation = "tanh" }
""")


def test_a_base_value_that_every_variant_overrides_is_still_validated(tmp_path, home, capsys):
    with pytest.raises(PresetError) as info:
        parse_preset(SWISHY, Path("swishy.toml"))
    message = str(info.value)
    assert "base recipe" in message and "model.activation" in message and "'swishy'" in message
    assert "(line 15)" in message
    path = write(tmp_path, SWISHY)
    refused(["run", str(path), "--quick", "--workers", "0"], capsys, "base recipe", "swishy")
    assert rows_in(home) == 0


def test_a_quick_table_value_that_every_variant_overrides_is_still_validated():
    text = tiny_preset("""
[base.train]
steps = 5

[quick.train]
optimizer = "adamm"

[[variants]]
name = "a"
quick = { train = { optimizer = "sgd" } }
""")
    with pytest.raises(PresetError, match=r"quick form \(\[quick\] table\): train.optimizer.*'adamm'"):
        parse_preset(text, Path("q.toml"))


def test_a_base_missing_what_every_variant_sets_is_fine():
    # a partial recipe: only the fields the base sets are judged
    text = tiny_preset("""
[base.train]
steps = 5

[[variants]]
name = "a"
model = { hidden = [4] }
""").replace('[base.data]\nname = "spiral"\nn_samples = 200\n', "") + '\n[variants.data]\nname = "spiral"\n'
    assert parse_preset(text, Path("ok.toml")).preset.variants[0].data == {"name": "spiral"}


# -- 6. an error about a huge value quotes it short -------------------------------------------------

HUGE = "x" * 1_000_000


@pytest.mark.parametrize("text", [
    tiny_preset(f'[base.model]\nactivation = "{HUGE}"\n' + VARIANTS.replace("[base.model]\n", "")),  # a literal
    tiny_preset(VARIANTS.replace('name = "a"', f'name = "{HUGE}"')),  # at most 40 characters
    tiny_preset(VARIANTS.replace("[base.model]\n", f"[base.model]\n{HUGE} = 1\n")),  # an unknown key
    tiny_preset(VARIANTS + f'\n[[claims]]\ntext = "{HUGE}"\nmetric = "val_acx"\nleft = "a"\nop = ">"\nvalue = 0.1\n'),
    tiny_preset(VARIANTS + f'\n[[claims]]\ntext = "t"\nmetric = "{HUGE}"\nleft = "a"\nop = ">"\nvalue = 0.1\n'),
    tiny_preset(VARIANTS.replace("steps = 5", f'steps = "{HUGE}"')),  # pydantic's input_value
])
def test_an_error_about_a_huge_value_quotes_it_short(text):
    with pytest.raises(PresetError) as info:
        parse_preset(text, Path("huge.toml"))
    message = str(info.value)
    assert len(message) < 1000 and "xxxx" in message and "…" in message, message[:2000]


def test_the_cli_prints_a_short_line_for_a_huge_value(tmp_path, home, capsys):
    path = write(tmp_path, tiny_preset(VARIANTS.replace('name = "a"', f'name = "{HUGE}"')))
    err = refused(["run", str(path), "--quick", "--workers", "0"], capsys, "variants.0.name")
    assert len(err) < 500

