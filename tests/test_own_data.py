"""Your own data (``data.name = "file"``): a CSV, an .npz, a .npy pair and a folder of images train
end to end; every bad file is an exit-2 message naming the file and the row or column, given
before any worker starts and before the store holds anything."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.data import load_data
from engine.data.base import DatasetError
from engine.data.facts import describe
from engine.recipe.config import DataSpec
from engine.runs.store import RunStore
from tui_lab.cli import main


def spiral_table(path: Path, n: int = 240, seed: int = 0, label: str = "label") -> None:
    """Two interleaved arms in a CSV: x1, x2 and a text label per row."""
    rng = np.random.default_rng(seed)
    rows = ["x1,x2," + label]
    for i in range(n):
        k = i % 2
        t = rng.uniform(0.5, 3.0)
        x1, x2 = t * math.cos(t + k * math.pi), t * math.sin(t + k * math.pi)
        rows.append(f"{x1:.5f},{x2:.5f},{'cat' if k else 'dog'}")
    path.write_text("\n".join(rows) + "\n")


def preset_text(data: str, model: str = "", steps: int = 60, train: str = "") -> str:
    return f"""
title = "Mine"
technique = "mine"
chapter = "optimization"
step = "optimization"
benefit = "optimization"
summary = "My own data."
explain = "Mine."

[base.data]
{data}

[base.model]
hidden = [16]
{model}

[base.train]
steps = {steps}
eval_every = 20
log_every = 10
{train}

[[variants]]
name = "A"
"""


def run_preset(tmp_path: Path, monkeypatch, text: str, *extra: str) -> int:
    (tmp_path / "mine.toml").write_text(text)
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path.parent)  # a relative data.path is found beside the preset, not here
    return main(["run", str(tmp_path / "mine.toml"), "--device", "cpu", "--workers", "0", *extra])


def stored(tmp_path: Path) -> list:
    if not (tmp_path / "home" / "runs.sqlite").exists():
        return []
    with RunStore(tmp_path / "home") as store:
        return store.list_runs()


def test_a_csv_table_trains_end_to_end_from_a_preset_beside_it(tmp_path: Path, monkeypatch, capsys) -> None:
    spiral_table(tmp_path / "arms.csv")
    assert run_preset(tmp_path, monkeypatch, preset_text('name = "file"\npath = "arms.csv"')) == 0
    (row,) = stored(tmp_path)
    assert row.status == "done" and row.final["val_acc"] > 0.5
    assert row.spec["recipe"]["data"]["path"] == str((tmp_path / "arms.csv").resolve())


def test_what_a_table_holds_is_known_before_a_run(tmp_path: Path) -> None:
    spiral_table(tmp_path / "arms.csv", n=100)
    spec = DataSpec(name="file", path=str(tmp_path / "arms.csv"))
    facts = describe(spec)
    assert (facts.task, facts.n_classes, facts.input_shape, facts.n_total) == ("classification", 2, (2,), 100)
    data = load_data(spec, seed=0)
    assert data.x_train.shape[1:] == (2,) and data.info["class_names"] == ["cat", "dog"]
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 100
    picked = DataSpec(name="file", path=str(tmp_path / "arms.csv"), features=["x2"], label="label")
    assert describe(picked).input_shape == (1,)


def test_an_npz_with_a_numeric_target_is_a_regression(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=200)
    np.savez(tmp_path / "lin.npz", x=x, y=y)
    assert describe(DataSpec(name="file", path=str(tmp_path / "lin.npz"))).task == "regression"
    text = preset_text('name = "file"\npath = "lin.npz"', steps=300, train='loss = "mse"\nlr = 0.05')
    assert run_preset(tmp_path, monkeypatch, text) == 0
    (row,) = stored(tmp_path)
    assert row.status == "done" and row.final["val_loss"] < 0.2  # the targets' variance is about 5.3


def test_an_npz_and_a_npy_pair_train(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    for data in ('name = "file"\npath = "xy.npz"', 'name = "file"\npath = "x.npy"\ntargets = "y.npy"'):
        assert run_preset(tmp_path, monkeypatch, preset_text(data)) == 0
    assert [r.status for r in stored(tmp_path)] == ["done", "done"]


def test_a_folder_of_images_trains_a_cnn(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    for k, name in enumerate(("stripes", "blank")):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(30):
            a = rng.integers(0, 40, size=(12, 12)).astype(np.uint8)
            if k == 0:
                a[::3] = 220
            Image.fromarray(a, mode="L").save(tmp_path / "pics" / name / f"{i}.png")
    facts = describe(DataSpec(name="file", path=str(tmp_path / "pics")))
    assert (facts.task, facts.n_classes, facts.input_shape) == ("classification", 2, (1, 12, 12))
    text = preset_text('name = "file"\npath = "pics"', model='kind = "cnn"\nchannels = [4]\nkernel_size = 3')
    assert run_preset(tmp_path, monkeypatch, text) == 0
    (row,) = stored(tmp_path)
    assert row.status == "done" and row.final["val_acc"] > 0.9


def bad_table(tmp_path: Path, lines: list[str]) -> str:
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    return 'name = "file"\npath = "bad.csv"'


GOOD = ["1.0,2.0,0", "0.5,1.5,1", "0.1,0.2,0", "2.0,1.0,1", "1.5,0.5,0", "0.3,0.9,1"]


@pytest.mark.parametrize(("lines", "extra", "words"), [
    (["a,b,label", *GOOD], 'label = "target"', "no column 'target' (data.label); the columns are 'a', 'b', 'label'"),
    (["a,b,label", *GOOD[:2], "1.0,2.0", *GOOD[2:]], "", "line 4: 2 cells where the header has 3"),
    (["a,b,label", *GOOD[:3], "1.0,abc,1", *GOOD[3:]], "", "line 5, column 'b': the cell holds 'abc', not a number"),
    (["a,b,label", "nan,1,0", *GOOD], "", "line 2, column 'a': 'nan' is not a finite number"),
    (["a,b,label", "1.0,,0", *GOOD], "", "line 2, column 'b': the cell is empty"),
    (["a,b,label", *(row[:-1] + "1" for row in GOOD)], "", "every sample has the same label"),
    (["a,b,label", *GOOD, "1,1,5"], "n_classes = 2", "label 5 (sample 6) is out of range"),
    (["a,b,c", *GOOD], "", "no label column: set data.label to one of the columns ('a', 'b', 'c')"),
])
def test_a_bad_table_is_refused_before_any_run_naming_the_place(tmp_path: Path, monkeypatch, capsys, lines,
                                                                 extra, words) -> None:
    text = preset_text(bad_table(tmp_path, lines) + "\n" + extra)
    assert run_preset(tmp_path, monkeypatch, text) == 2
    err = capsys.readouterr().err
    assert words in err and "bad.csv" in err and "Traceback" not in err
    assert stored(tmp_path) == []  # nothing started, nothing written


def test_other_bad_files_say_what_is_wrong(tmp_path: Path) -> None:
    np.savez(tmp_path / "keys.npz", inputs=np.zeros((5, 2)), y=np.zeros(5))
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    (tmp_path / "notes.md").write_text("hi")
    (tmp_path / "empty").mkdir()
    cases = {
        "keys.npz": "needs arrays named 'x' (inputs) and 'y' (targets); it holds 'inputs', 'y'",
        "x.npy": "needs data.targets",
        "notes.md": "not a data file dllab reads",
        "empty": "no class subfolders",
        "gone.csv": "no such file or folder",
    }
    for name, words in cases.items():
        with pytest.raises(DatasetError, match=None) as info:
            describe(DataSpec(name="file", path=str(tmp_path / name)))
        assert words in str(info.value), name


def test_own_data_fields_belong_to_name_file() -> None:
    with pytest.raises(ValueError, match="needs a `path`"):
        DataSpec(name="file")
    with pytest.raises(ValueError, match="`label` is only used with name = 'file'"):
        DataSpec(name="spiral", label="y")
