"""Your own model (``model.kind = "custom"``): it trains from the command line with every health
signal once allowed; without the opt-in, or when it cannot be imported or has the wrong shape, the
run is refused before it starts with a message that says what to do; a shipped preset cannot name one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.catalogue.presets import PresetError, builtin_dir, parse_preset
from engine.runs.store import RunStore
from tui_lab.cli import main

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from tiny_presets import tiny_preset  # noqa: E402


def preset(factory: str) -> str:
    return tiny_preset(f'[base.model]\nkind = "custom"\nfactory = "{factory}"\n\n[base.train]\nsteps = 60\n'
                       'eval_every = 20\n\n[[variants]]\nname = "Mine"\n')


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLLAB_ALLOW_CODE", "0")  # not allowed; restored (unset) after the test
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    return tmp_path / "home"


def test_a_custom_model_trains_once_allowed_with_its_health_signals(tmp_path: Path, home: Path, capsys) -> None:
    (tmp_path / "mine.toml").write_text(preset("custom_models:small_net"))
    assert main(["run", str(tmp_path / "mine.toml"), "--device", "cpu", "--workers", "0", "--allow-code"]) == 0
    with RunStore(home) as store:
        (row,) = store.list_runs()
        diagnostics = store.series(row.run_id).diagnostics
    assert row.status == "done" and row.n_params == 2 * 24 + 24 + 24 * 12 + 12 + 12 * 3 + 3
    assert set(diagnostics[-1].layers) >= {"block1", "block2", "head"}
    assert "dead" in diagnostics[-1].layers["block1"]  # the ReLU after its first layer is read


def test_without_the_opt_in_it_is_refused_saying_how_to_allow_it(tmp_path: Path, home: Path, capsys) -> None:
    (tmp_path / "mine.toml").write_text(preset("custom_models:small_net"))
    assert main(["run", str(tmp_path / "mine.toml"), "--device", "cpu", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "dllab imports code only when you allow it: add --allow-code" in err
    assert not (home / "runs.sqlite").exists() or not RunStore(home).list_runs()


@pytest.mark.parametrize(("factory", "words"), [
    ("custom_models:wrong_outputs", "the model returns (2, 4) for 2 samples; it must return (N, 3)"),
    ("custom_models:not_a_module", "returned a str, not an nn.Module"),
    ("no_such_module:net", "cannot be imported: ModuleNotFoundError"),
    ("custom_models:missing", "cannot be imported: AttributeError"),
])
def test_a_custom_model_that_cannot_be_used_is_refused_before_it_runs(tmp_path: Path, home: Path, capsys,
                                                                       factory: str, words: str) -> None:
    (tmp_path / "mine.toml").write_text(preset(factory))
    assert main(["run", str(tmp_path / "mine.toml"), "--device", "cpu", "--allow-code"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_catalogue_preset_cannot_name_code(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="a catalogue preset cannot use model.kind = 'custom'"):
        parse_preset(preset("custom_models:small_net"), builtin_dir() / "mine.toml")
    parse_preset(preset("custom_models:small_net"), tmp_path / "mine.toml")  # a person's own file may


def test_the_opt_in_variable_is_the_one_the_engine_reads() -> None:
    from engine.models.custom import ALLOW_ENV
    from tui_lab.commands.args import ALLOW_CODE_ENV

    assert ALLOW_ENV == ALLOW_CODE_ENV
