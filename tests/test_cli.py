"""The command line's answers to bad input: one line naming the problem, exit code 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tiny_presets import tiny_preset

from tui_lab.cli import main


@pytest.mark.parametrize("command", ["run", "check", "search"])
def test_a_negative_worker_count_is_invalid_input(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "optimizers", "--quick", "--workers", "-1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "run_inline" not in err and "Traceback" not in err


def test_a_preset_file_that_is_not_utf8_names_the_file(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes('title = "Caf\xe9"\n'.encode("latin-1"))
    assert main(["run", str(path), "--quick"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "UTF-8" in err


def test_a_closed_pipe_is_not_a_traceback():
    # `dllab presets --json | head -1`: the reader goes away before dllab has written everything
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from tui_lab.cli import main; sys.exit(main())",
                             "presets", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before it writes anything (importing takes far longer than this)
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_claims_that_could_not_be_checked_are_not_called_failures():
    from rich.console import Console

    from engine.catalogue.claims import check_claim
    from engine.catalogue.presets import Claim
    from engine.runs.outcomes import RunOutcome
    from tui_lab.headless import claims_view

    claim = Claim(text="A below B", metric="train_loss", left="A", op="<", right="B")
    outcomes = [RunOutcome("a", "A", 0, status="cancelled"), RunOutcome("b", "B", 0, status="done", final={"train_loss": 1.0})]
    console = Console(record=True, width=100)
    console.print(claims_view([check_claim(claim, outcomes)]))
    text = console.export_text()
    assert "not checked" in text and "fails" not in text and "cancelled" in text


def test_runs_keeps_numbers_whole_at_80_columns(tmp_path, monkeypatch, capsys):
    from engine.events import RunFinished, RunStarted
    from engine.runs.store import RunStore
    from tui_lab.cli import main

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "80")
    store = RunStore(tmp_path)
    store.record(RunStarted("r1", "a variant with a long name", 0, "optimizers", "c", {}, "cpu", 10, 100, 10))
    store.record(RunFinished("r1", "done", 100, "finished", {"train_loss": 1.989e-4, "val_acc": 0.6421}, {}, 12.3))
    store.close()
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "1.99e-04" in out and "64.2%" in out and "12.3" in out  # the accuracy as the app shows it
    assert max(len(line) for line in out.splitlines()) <= 80


def test_runs_with_an_unknown_status_names_the_statuses(capsys):
    with pytest.raises(SystemExit) as info:
        main(["runs", "--status", "bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "'bogus'" in err and "early-stopped" in err and "cancelled" in err and "Traceback" not in err
    assert main(["runs", "--status", "early-stopped"]) == 0


def test_an_unknown_fast_path_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "optimizers", "--quick", "--fast", "bf16,warp"])
    assert info.value.code == 2
    assert "unknown fast path 'warp'" in capsys.readouterr().err


def test_fast_paths_reach_the_runner(monkeypatch, capsys):
    import tui_lab.headless as headless

    seen = {}

    def fake_run_inline(specs, **kw):
        seen.update(kw)

    monkeypatch.setattr(headless, "run_inline", fake_run_inline)
    main(["run", "optimizers", "--quick", "--workers", "0", "--fast", "cuda_graphs", "--device", "cpu"])
    assert seen["fast"] == "cuda_graphs"
    assert "cuda_graphs needs a CUDA device" in capsys.readouterr().err


def test_the_live_table_says_running_once_a_run_has_started():
    from rich.console import Console

    from engine.events import EvalMetrics, RunStarted
    from engine.recipe.config import DataSpec, Recipe, RunSpec
    from engine.runs.outcomes import OutcomeCollector
    from tui_lab.headless import _Progress

    spec = RunSpec(recipe=Recipe(data=DataSpec(name="digits")), variant="SGD")
    collector = OutcomeCollector()
    for rid in ("a", "b"):
        collector.register(rid, "SGD", 0)
    progress = _Progress([spec, spec], ["a", "b"], collector)
    started = RunStarted("a", "SGD", 0, "p", "c", {}, "cpu", 10, 100, 10)
    collector.add(started)
    progress.note(started)
    collector.add(EvalMetrics("a", 10, 1.0, {"train_loss": 1.2, "val_acc": 0.6012}, 1.0))
    console = Console(width=100, record=True)
    console.print(progress.render())
    rows = [line for line in console.export_text().splitlines() if "SGD" in line]
    assert "running" in rows[0] and "pending" in rows[1]
    assert "60.1%" in rows[0]  # the accuracy as the app shows it



def test_the_live_table_labels_the_minibatch_loss_as_the_dashboard_does():
    """The Dashboard says "batch loss" (the mean of the latest minibatches); `dllab run`'s live table
    said "loss". At 80 columns its numbers stay whole: long variant names give way (the step count
    "11999/12000" used to lose its end), and "batch loss" may take two lines of header."""
    from rich.console import Console

    from engine.events import EvalMetrics, RunStarted, StepMetrics
    from engine.recipe.config import DataSpec, Recipe, RunSpec
    from engine.runs.outcomes import OutcomeCollector
    from tui_lab.headless import _Progress

    names = ["DropConnect 0.5 and a long tail to its name", "none"]
    specs = [RunSpec(recipe=Recipe(data=DataSpec(name="digits")), variant=name) for name in names]
    collector = OutcomeCollector()
    for i, name in enumerate(names):
        collector.register(f"r{i}", name, 0)
    progress = _Progress(specs, ["r0", "r1"], collector)
    for i, name in enumerate(names):
        started = RunStarted(f"r{i}", name, 0, "p", "c", {}, "cpu", 10, 12000, 10)
        collector.add(started)
        progress.note(started)
        steps = StepMetrics(f"r{i}", 11999, 3.0, 1.234e-5, 0.1, 3.0, 1234.5)
        collector.add(steps)
        progress.note(steps)
        collector.add(EvalMetrics(f"r{i}", 11999, 3.0, {"train_loss": 1.2, "val_acc": 0.6012}, 3.0))
    for width in (80, 120):
        console = Console(width=width, record=True)
        console.print(progress.render(width))
        lines = console.export_text().splitlines()
        assert max(len(line) for line in lines) <= width
        header = " ".join(lines[1:lines.index(next(line for line in lines if "━╇━" in line))])
        assert "batch loss" in header if width == 120 else ("batch" in header and "loss" in header), header
        rows = [line for line in lines if "11999/12000" in line]
        assert len(rows) == 2 and all("1.234e-05" in row and "60.1%" in row and "1.23e+03" in row for row in rows)
    assert [c.header for c in progress.render().columns][3] == "batch loss"


TINY = tiny_preset("""
[base.model]
hidden = [8]

[base.train]
steps = 20

[[variants]]
name = "a variant named far too long for this"

[[variants]]
name = "Adam"
train = { optimizer = "adam", lr = 0.01 }
""", summary="Two variants.")


def test_the_results_table_keeps_every_number_whole_at_80_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    preset = tmp_path / "tiny.toml"
    preset.write_text(TINY)
    assert main(["run", str(preset), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "status" in line)
    assert "val loss" in header and "wall s" in header and "min train" not in header
    adam = next(line for line in lines if line.lstrip().startswith("Adam"))
    assert all("…" not in cell for cell in adam.split()[1:])  # numbers whole; only names give way
    assert any(cell.endswith("%") and 0 <= float(cell[:-1]) <= 100 for cell in adam.split()), adam  # val acc
    # the long name is cut in the middle (its last word stays, as the app cuts names)
    assert any("a varia" in line and "… this" in line for line in lines)


@pytest.mark.parametrize(("seeds", "words"), [("0,0", "given twice"), ("-1", "0 or more")])
def test_seeds_must_be_distinct_and_not_negative(seeds, words, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "optimizers", "--quick", "--seeds", seeds])
    assert info.value.code == 2 and words in capsys.readouterr().err


def test_preset_ids_are_never_cut_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    from engine.catalogue.presets import builtin_ids

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert all(f" {pid} " in out for pid in builtin_ids())


def test_the_catalogue_fits_100_columns_and_a_preset_card_reads_like_the_library(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    from engine.catalogue.presets import builtin_ids

    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    assert len(listing.splitlines()) < 8 * len(builtin_ids())  # the summary has room: it was 315 lines here
    assert "dllab presets ID" in listing
    assert main(["presets", "dropout"]) == 0
    card = capsys.readouterr().out
    for part in ("Dropout and DropConnect", "What changes", "Variants (", "• dropout 0.5", "Claims",
                 "dllab run dropout --quick"):
        assert part in card, part
    assert main(["list"]) == 0 and "dllab catalogue" in capsys.readouterr().out  # the alias people try first
    assert main(["presets", "dropout", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "dropout"
    assert main(["presets", "dropuot"]) == 2 and "did you mean dropout" in capsys.readouterr().err
    # `show` takes a run: given a preset id, it says where the preset's card and runs are
    assert main(["show", "dropout"]) == 2
    assert "dllab presets dropout" in capsys.readouterr().err


def test_runs_of_an_unknown_preset_is_invalid_input_with_the_nearest_ids(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    assert main(["runs", "--preset", "optimzers"]) == 2
    captured = capsys.readouterr()
    assert "unknown preset 'optimzers'" in captured.err and "optimizers" in captured.err
    assert "dllab presets" in captured.err and "Traceback" not in captured.err and captured.out == ""
    assert main(["runs", "--preset", "optimzers", "--json"]) == 2


def test_runs_of_a_known_preset_without_runs_is_an_empty_answer(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.toml").write_text(TINY)
    for preset in ("optimizers", "mine"):
        assert main(["runs", "--preset", preset]) == 0
        assert f"no stored runs of preset {preset!r}" in capsys.readouterr().err


def test_runs_of_a_deleted_recipe_still_list(tmp_path, monkeypatch, capsys):
    from engine.events import RunFinished, RunStarted
    from engine.runs.store import RunStore

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    with RunStore(tmp_path) as store:  # its preset file is gone; its runs stay in the store
        store.record(RunStarted("r1", "A", 0, "my-old-recipe", "c", {}, "cpu", 10, 100, 10))
        store.record(RunFinished("r1", "done", 100, "finished", {"train_loss": 0.5}, {}, 1.0))
    assert main(["runs", "--preset", "my-old-recipe"]) == 0
    assert "r1" in capsys.readouterr().out
    assert main(["runs", "--preset", "my-old-recipe", "--status", "failed"]) == 0  # known, none failed
    assert "no stored runs of preset 'my-old-recipe' with status 'failed'" in capsys.readouterr().err
    assert main(["runs", "--preset", "my-old-recip"]) == 2
    assert "did you mean my-old-recipe" in capsys.readouterr().err


def test_runs_and_show_print_names_with_brackets_as_written(tmp_path, monkeypatch, capsys):
    """A user's preset and variant names are not rich markup ("[/b]" used to be a traceback)."""
    from engine.events import RunFinished, RunStarted
    from engine.runs.store import RunStore

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "120")
    with RunStore(tmp_path) as store:
        store.record(RunStarted("r1", "a [/b] c", 0, "[bold]p", "c", {}, "cpu", 10, 100, 10))
        store.record(RunFinished("r1", "done", 100, "finished [x]", {"train_loss": 0.5}, {}, 1.0))
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "a [/b] c" in out and "[bold]p" in out
    assert main(["show", "r1"]) == 0
    assert "[bold]p / a [/b] c" in capsys.readouterr().out


def test_runs_at_80_columns_keeps_the_wall_time_with_long_names_and_statuses(tmp_path, monkeypatch, capsys):
    """Long preset / variant names and an `early-stopped` status used to push the wall-time column
    out of an 80-column table (its header cut to "wal", its numbers gone): the names give way."""
    from engine.events import RunFinished, RunStarted
    from engine.runs.store import RunStore

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "80")
    store = RunStore(tmp_path)
    store.record(RunStarted("r1", "a variant with a long name", 0, "early-stopping", "c", {}, "cpu", 10, 100, 10))
    store.record(RunFinished("r1", "early-stopped", 100, "stopped", {"train_loss": 0.7939, "val_acc": 0.3663}, {}, 12.3))
    store.record(RunStarted("r2", "plain, lr 1.5", 0, "normalization", "c", {}, "cpu", 10, 100, 10))
    store.record(RunFinished("r2", "diverged", 10, "loss became inf", {"train_loss": float("inf"), "val_acc": 0.1}, {},
                             2.25))
    store.close()
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "seed" in line)
    assert "wall s" in header, header
    (early,) = [line for line in lines if line.lstrip().startswith("r1")]
    (diverged,) = [line for line in lines if line.lstrip().startswith("r2")]
    assert early.split()[-4:] == ["early-stopped", "36.6%", "0.7939", "12.3"], early
    assert diverged.split()[-4:] == ["diverged", "10.0%", "inf", "2.2"], diverged


@pytest.mark.parametrize("solo", [False, True])
def test_solo_trains_every_run_on_its_own(tmp_path, capsys, monkeypatch, solo):
    """`--solo`: no batched groups (a run's numbers then do not depend on its group)."""
    import engine.batched.train as batched_train

    groups: list[int] = []
    real = batched_train.train_batched
    monkeypatch.setattr(batched_train, "train_batched", lambda specs, *a, **k: (groups.append(len(specs)),
                                                                                 real(specs, *a, **k))[1])
    preset = tmp_path / "tiny.toml"
    preset.write_text(TINY)
    assert main(["run", str(preset), "--workers", "0", *(["--solo"] if solo else [])]) == 0
    assert groups == ([] if solo else [2])
    assert "Adam" in capsys.readouterr().out


def test_show_prints_the_fields_that_matter_and_says_the_rest_are_defaults(tmp_path, monkeypatch, capsys):
    """`dllab show` listed every recipe field (L-BFGS and augmentation settings for a plain Adam run):
    now the ones that differ from their defaults and those that say what the run was."""
    from engine.events import EvalMetrics, RunFinished, RunStarted
    from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
    from engine.runs.store import RunStore

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "80")
    spec = RunSpec(recipe=Recipe(data=DataSpec(name="mnist1d", preprocess="standardize"), model=ModelSpec(),
                                 train=TrainSpec(optimizer="adam", lr=0.01, steps=600)), variant="Adam")
    with RunStore(tmp_path) as store:
        store.record(RunStarted("r1", "Adam", 0, "optimizers", "c", spec.model_dump(mode="json"), "cpu", 10, 600, 10))
        store.record(EvalMetrics("r1", 600, 18.75, {"train_loss": 0.109, "val_loss": 1.809, "train_acc": 0.9672,
                                                    "val_acc": 0.6062}, 3.9))
        store.record(RunFinished("r1", "done", 600, "finished", {"train_loss": 0.109, "val_acc": 0.6062}, {}, 3.9))
    assert main(["show", "r1"]) == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())
    for shown in ("name=mnist1d", "preprocess=standardize", "kind=mlp", "hidden=[100, 100]", "optimizer=adam",
                  "lr=0.01", "batch_size=100", "steps=600"):
        assert shown in text, shown
    for left_out in ("lbfgs", "augment", "momentum", "unlabeled", "gradcheck", "kappa", "init_std", "epochs"):
        assert left_out not in text, left_out
    assert "at their defaults" in text and "60.6%" in text and "96.7%" in text
    assert max(len(line) for line in out.splitlines()) <= 80


LONG_NAMES = ["weight decay " + "and a very long description " * 6 + "0.01",
              "weight decay " + "and a very long description " * 6 + "0.1"]
"""Two variant names far wider than a terminal that differ only in their last word."""


def _names_told_apart(lines: list[str]) -> bool:
    """Whether both LONG_NAMES show, cut in the middle, their last words (what tells them apart) kept."""
    return (any("weight" in line and "… 0.01" in line for line in lines)
            and any("weight" in line and "… 0.1 " in line for line in lines))


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_live_table_cuts_very_long_names_in_the_middle(width):
    from rich.console import Console

    from engine.events import RunStarted, StepMetrics
    from engine.recipe.config import DataSpec, Recipe, RunSpec
    from engine.runs.outcomes import OutcomeCollector
    from tui_lab.headless import _Progress

    specs = [RunSpec(recipe=Recipe(data=DataSpec(name="digits")), variant=name) for name in LONG_NAMES]
    collector = OutcomeCollector()
    progress = _Progress(specs, ["r0", "r1"], collector)
    for i, name in enumerate(LONG_NAMES):
        collector.register(f"r{i}", name, 0)
        for event in (RunStarted(f"r{i}", name, 0, "p", "c", {}, "cpu", 10, 12000, 10),
                      StepMetrics(f"r{i}", 11999, 3.0, 1.234e-5, 0.1, 3.0, 1234.5)):
            collector.add(event)
            progress.note(event)
    console = Console(width=width, record=True)
    console.print(progress.render(width))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) == width  # the names take the room there is, no more
    rows = [line for line in lines if "11999/12000" in line]
    assert len(rows) == 2 and all("1.234e-05" in row and "1.23e+03" in row and "running" in row for row in rows)
    assert _names_told_apart(lines), "\n".join(lines)


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_results_table_cuts_very_long_names_in_the_middle(width):
    from types import SimpleNamespace

    from rich.console import Console

    from engine.runs.outcomes import RunOutcome
    from tui_lab.headless import ComparisonResult, results_table

    outcomes = [RunOutcome(f"r{i}", name, 0, status="done", step=600, wall_time=1234.5,
                           final={"train_loss": 1.234e-5, "val_loss": 0.98765, "val_acc": 0.6012},
                           best={"min_train_loss": 1.1e-5, "best_epoch": 12.0, "best_step": 480})
                for i, name in enumerate(LONG_NAMES)]
    preset = SimpleNamespace(id="p", preset=SimpleNamespace(title="Weight decay"))
    console = Console(width=width, record=True)
    console.print(results_table(ComparisonResult(preset, True, outcomes, []), width))
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    rows = [line for line in lines if " done " in line]
    numbers = ["1.234e-05", "0.9877", "60.1%", "480", "1234.5"] + ([] if width < 90 else ["1.1e-05"])
    assert len(rows) == 2 and all(n in row.split() for row in rows for n in numbers), rows
    assert _names_told_apart(lines), "\n".join(lines)


@pytest.mark.parametrize("width", [80, 100, 120])
def test_runs_cuts_very_long_names_and_heads_the_loss_for_what_it_is(tmp_path, monkeypatch, capsys, width):
    """The loss `dllab runs` shows is the final evaluation on the training split: "train loss (eval)",
    as the History heads it, not the minibatch "batch loss" of `dllab run`'s live table."""
    from engine.events import RunFinished, RunStarted
    from engine.runs.store import RunStore

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", str(width))
    with RunStore(tmp_path) as store:
        for i, name in enumerate(LONG_NAMES):
            store.record(RunStarted(f"r{i}", name, 0, "weight-decay-" + "x" * 80, "c", {}, "cpu", 10, 100, 10))
            store.record(RunFinished(f"r{i}", "done", 100, "finished", {"train_loss": 1.989e-4, "val_acc": 0.6421},
                                     {}, 1234.5))
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    rule = next(k for k, line in enumerate(lines) if "────" in line)
    header = lines[rule - 2:rule]
    assert "train loss" in header[0] and "(eval)" in header[1] and "wall s" in header[1], header
    rows = [line for line in lines if line.lstrip().startswith(("r0", "r1"))]
    numbers = ["done", "64.2%", "1.99e-04", "1234.5"]
    assert len(rows) == 2 and all(row.split()[-4:] == numbers if width < 96 else row.split()[-6:-2] == numbers
                                  for row in rows), rows
    assert all("weight-" in row and "…" in row for row in rows)  # the preset gives way too
    assert _names_told_apart(lines), "\n".join(lines)


def test_the_live_table_is_drawn_at_its_refreshes_not_at_each_event(monkeypatch):
    """Fitting the live table to the terminal measures it (milliseconds); a comparison sends dozens of
    events a second: the table is drawn when the view refreshes, and last with every run's end."""
    import io

    from rich.console import Console

    import tui_lab.headless as headless
    from engine.catalogue.presets import load_preset
    from engine.events import RunFinished, RunStarted, StepMetrics

    class FakeRunner:
        def __init__(self, specs, **kw):
            self.run_ids = [f"r{i}" for i in range(len(specs))]
            self.specs = specs

        def start(self):
            pass

        def events(self):
            for rid, spec in zip(self.run_ids, self.specs, strict=True):
                yield RunStarted(rid, spec.variant, spec.seed, "p", "c", {}, "cpu", 10, 500, 10)
                yield from (StepMetrics(rid, step, 1.0, 0.5, 0.1, 1.0, 100.0) for step in range(1, 501))
                yield RunFinished(rid, "done", 500, "finished", {"train_loss": 0.5}, {}, 1.0)

        def close(self):
            pass

    renders = []
    render = headless._Progress.render
    monkeypatch.setattr(headless, "Runner", FakeRunner)
    monkeypatch.setattr(headless._Progress, "render", lambda self, width=None: renders.append(1) or render(self, width))
    console = Console(file=io.StringIO(), width=80)
    result = headless.run_comparison(load_preset("optimizers"), quick=True, console=console)
    assert len(result.outcomes) == 7 and len(renders) < 10  # 7 × 502 events
    last = [line for line in console.file.getvalue().splitlines() if "500/500" in line]
    assert len(last) == 7 and all("done" in line for line in last)


def test_a_saved_recipe_is_taken_by_its_id(tmp_path, monkeypatch, capsys):
    """The Builder saves to $DLLAB_HOME/presets/<id>.toml; `run`, `check`, `open`, `presets ID` all
    take that id (the catalogue first when both have one)."""
    import tui_lab.app

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "400")  # the card's paths on one line
    saved = tmp_path / "presets"
    saved.mkdir()
    (saved / "my-recipe.toml").write_text(TINY)
    assert main(["presets", "my-recipe"]) == 0
    out = capsys.readouterr().out
    assert "Tiny" in out and f"saved recipe ({saved / 'my-recipe.toml'})" in out
    assert main(["presets", "my-recipe", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["id"] == "my-recipe" and card["path"] == str(saved / "my-recipe.toml")
    assert main(["run", "my-recipe", "--quick", "--workers", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["preset"] == "my-recipe" and len(result["runs"]) == 2
    assert main(["runs", "--preset", "my-recipe", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2

    opened = []

    class App:  # `dllab open ID`: the app is given the loaded recipe
        def __init__(self, open_preset=None, **kwargs):
            opened.append(open_preset)
            self.bridge, self.return_code = type("Bridge", (), {"close_now": lambda self: None})(), 0

        def run(self):
            pass

    monkeypatch.setattr(tui_lab.app, "DllabApp", App)
    monkeypatch.setattr("tui_lab.engine_bridge.ensure_resource_tracker", lambda: None)
    assert main(["open", "my-recipe", "--quick"]) == 0
    assert opened[0].id == "my-recipe" and opened[0].path == saved / "my-recipe.toml"

    assert main(["check", "my-recipee", "--quick"]) == 2
    assert "did you mean my-recipe?" in capsys.readouterr().err
    # a saved copy of a catalogue id: the catalogue's runs, and the card says where the copy is
    (saved / "dropout.toml").write_text(TINY)
    assert main(["presets", "dropout"]) == 0
    out = capsys.readouterr().out
    assert "Dropout" in out and f"a saved recipe of this id, {saved / 'dropout.toml'}, is run by its path" in out


# -- bad input never reaches a traceback, nor the store --------------------------------------------


def _stored_rows(home) -> int:
    import sqlite3

    path = home / "runs.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        except sqlite3.OperationalError:  # no table yet
            return 0


def _refused(argv: list[str], capsys) -> str:
    """`dllab ARGV` is invalid input: exit 2 (as a return or argparse's SystemExit), no traceback;
    the message on stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "Error:" not in err.replace("error:", ""), err
    return err


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_seed_beyond_what_the_store_and_torch_take_is_invalid(command, tmp_path, monkeypatch, capsys):
    """--seeds 99999999999999999999999 reached SQLite: OverflowError, exit 1, phantom rows."""
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    for seed in ("99999999999999999999999", str(2**32)):
        err = _refused([command, "optimizers", "--quick", "--workers", "0", "--seeds", seed], capsys)
        assert "--seeds" in err and "at most 4294967295" in err
    assert _stored_rows(tmp_path) == 0


@pytest.mark.parametrize(("top", "tables", "words"), [
    ("seeds = [99999999999999999999999]\nquick_seeds = [99999999999999999999999]\n", "", "seeds.0 (line"),
    ("quick_seeds = [4294967296]\n", "", "quick_seeds.0 (line"),
    ("", "[base.train]\nsteps = 1000000000000\n", "train.steps"),
    ("", "[base.train]\nlr = inf\n", "finite"),
    ("", "[base.train]\nweight_decay = inf\n", "finite"),
    ("", "[base.model]\ninit_value = nan\n", "finite"),
    ("", '[base.model]\nkind = "cnn"\nchannels = [1000000000]\n', "model.channels"),
    ("", '[[claims]]\ntext = "never"\nmetric = "train_loss"\nleft = "A"\nop = "<"\nvalue = inf\n', "finite"),
])
def test_numbers_no_run_can_take_are_invalid_input(top, tables, words, tmp_path, monkeypatch, capsys):
    """A preset's seed beyond 64 bits (OverflowError from SQLite, exit 1, phantom rows), 10**12
    steps, `lr = inf` (ran, "diverged", exit 0), `init_value = nan`, a claim's `value = inf`."""
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    path = tmp_path / "bad.toml"
    text = tiny_preset(tables + '[[variants]]\nname = "A"\n').replace("[base.data]", top + "[base.data]", 1)
    path.write_text(text)
    for command in ("run", "check"):
        err = _refused([command, str(path), "--quick", "--workers", "0"], capsys)
        assert words in err, err
    assert _stored_rows(tmp_path) == 0


PREFLIGHT_CASES = [
    ("mnist1d", "", '[base.train]\nloss = "l1"\n', "loss 'l1' is a regression loss and cannot train mnist1d"),
    ("spiral", 'preprocess = "pca"\npca_components = 3\n', "", "pca_components=3 exceeds the 2 input features"),
    ("digits", "n_samples = 5000\n", "", "n_samples=5000 exceeds the 1797 samples of digits"),
    ("mnist", "", "", "mnist needs files under a data folder"),
    ("spiral", "", "[base.model]\nhidden = [1000000, 1000000]\n", "this run needs about"),
]


def _preflight_preset(tmp_path, dataset: str, data_lines: str, tables: str):
    text = tiny_preset(tables + '[[variants]]\nname = "A"\n[[variants]]\nname = "B"\n')
    text = text.replace('name = "spiral"\nn_samples = 200\n', f'name = "{dataset}"\n{data_lines}')
    path = tmp_path / "conflict.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("dataset", "data_lines", "tables", "words"), PREFLIGHT_CASES,
                         ids=[c[3][:24] for c in PREFLIGHT_CASES])
@pytest.mark.parametrize("command", ["run", "check"])
def test_conflicts_known_before_training_stop_before_any_worker(command, dataset, data_lines, tables, words,
                                                                 tmp_path, monkeypatch, capsys):
    """`loss = "l1"` on mnist1d (and its neighbours) failed 17 s later, after the workers started,
    as "a run failed" (exit 1). Now: exit 2, one line per problem, nothing stored, no worker."""
    import engine.runs.runner as runner

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    monkeypatch.setenv("DLLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(runner.Runner, "start", lambda self: pytest.fail("a worker started"))
    path = _preflight_preset(tmp_path, dataset, data_lines, tables)
    err = _refused([command, str(path), "--quick"], capsys)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dllab: conflict (quick form): every variant: "), err
    assert words in lines[0]
    assert _stored_rows(tmp_path) == 0


def test_open_refuses_a_comparison_that_cannot_start_before_the_app_opens(tmp_path, monkeypatch, capsys):
    import tui_lab.app

    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    monkeypatch.setattr(tui_lab.app, "DllabApp", lambda *a, **k: pytest.fail("the app opened"))
    path = _preflight_preset(tmp_path, *PREFLIGHT_CASES[0][:3])
    err = _refused(["open", str(path), "--quick"], capsys)
    assert PREFLIGHT_CASES[0][3] in err and _stored_rows(tmp_path) == 0


def test_check_preset_refuses_before_any_run(tmp_path):
    from engine.catalogue.check import check_preset
    from engine.catalogue.presets import PresetError

    path = _preflight_preset(tmp_path, *PREFLIGHT_CASES[0][:3])
    with pytest.raises(PresetError, match="cannot train mnist1d"):
        check_preset(str(path))


def test_parsing_run_arguments_does_not_import_torch():
    """The --fast type imported torch: a bad option took seconds to be refused, and Ctrl+C in those
    seconds printed a KeyboardInterrupt traceback."""
    code = ("import sys\n"
            "from tui_lab.cli import build_parser\n"
            "for command in ('run', 'check', 'open'):\n"
            "    extra = ['--fast', 'bf16,cuda-graphs', '--workers', '2'] if command != 'open' else []\n"
            "    build_parser().parse_args([command, 'optimizers', '--quick', '--seeds', '0,1', *extra])\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_the_fast_path_names_are_the_engines():
    from engine.batched.accel import FAST_PATHS
    from tui_lab.commands import args

    assert args.FAST_PATHS == FAST_PATHS
