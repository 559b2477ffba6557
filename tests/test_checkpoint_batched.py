"""Checkpoints and resume of a batched group: a group stopped and resumed gives every run the series
and the final numbers of a group that never stopped (CPU), whether it was cancelled or its process
died, with finished rows frozen or already dropped from the stack."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.batched.plan import plan
from engine.batched.train import train_batched
from engine.events import EvalMetrics, RunFinished, StepMetrics
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.training.checkpoint import checkpoint_path
from tests.test_checkpoint import Died, StopAt, one_thread  # noqa: F401 - one_thread: a fixture used by every test

BASE = dict(steps=120, batch_size=32, eval_every=10, log_every=7)
MEMBERS = {
    "adam": dict(train=TrainSpec(optimizer="adam", lr=0.01, seed=0, **BASE)),
    "momentum, dropout, plateau": dict(model=ModelSpec(hidden=[32, 32], dropout=0.2),
                                       train=TrainSpec(optimizer="momentum", lr=0.05, schedule="plateau", plateau_patience=1,
                                                       seed=0, **BASE)),
    "adam, seed 1, ema, noise": dict(train=TrainSpec(optimizer="adam", lr=0.01, seed=1, ema=0.9,
                                                     augment=["noise"], **BASE)),
    "sgd, too high": dict(train=TrainSpec(optimizer="sgd", lr=500.0, seed=0, **BASE)),
}
IDS = ["a", "b", "c", "d"]


def specs(names: list[str] | None = None) -> list[RunSpec]:
    out = []
    for name in names or list(MEMBERS):
        parts = {"model": ModelSpec(hidden=[32, 32]), **MEMBERS[name]}
        out.append(RunSpec(recipe=Recipe(data=DataSpec(name="spiral", n_samples=300), **parts), variant=name))
    return out


def folder(home: Path) -> Path:
    """Where the executor puts a home's checkpoints (one name per run)."""
    return checkpoint_path(home, "any").parent


def series(events: list, run_id: str) -> list:
    return [(type(e).__name__, e.step, e.train_loss if isinstance(e, StepMetrics) else e.metrics)
            for e in events if isinstance(e, StepMetrics | EvalMetrics) and e.run_id == run_id]


def whole_group(names: list[str] | None = None) -> tuple[list, dict[str, RunFinished]]:
    events: list = []
    finished = train_batched(specs(names), events.append, run_ids=IDS[: len(names or MEMBERS)])
    return events, {f.run_id: f for f in finished}


def test_the_members_train_as_one_group() -> None:
    assert [len(g) for g in plan(specs())] == [4]


def test_a_cancelled_group_resumed_equals_one_that_never_stopped(tmp_path: Path) -> None:
    whole, fins = whole_group()
    assert fins["d"].status == "diverged" and fins["a"].status == "done"  # one row frozen mid-way
    first: list = []
    stopped = train_batched(specs(), first.append, StopAt(47), run_ids=IDS, checkpoints=folder(tmp_path))
    ended = {f.run_id: f for f in stopped}
    assert ended["d"].status == "diverged" and not checkpoint_path(tmp_path, "d").exists()
    training = [run_id for run_id in IDS if ended[run_id].status == "cancelled"]
    assert training == ["a", "b", "c"] and all(ended[r].step == 47 for r in training)
    assert all(checkpoint_path(tmp_path, r).exists() for r in training)
    rest: list = []
    resumed = train_batched(specs(["adam", "momentum, dropout, plateau", "adam, seed 1, ema, noise"]),
                            rest.append, run_ids=training, checkpoints=folder(tmp_path), resume=True)
    assert [f.run_id for f in resumed] == training
    assert {e.run_id for e in rest} == set(training)  # the diverged run says nothing more
    clock = [e.elapsed for e in first + rest if isinstance(e, StepMetrics) and e.run_id == "a"]
    assert clock == sorted(clock)  # the runs' clock goes on where it stopped (the time axis, the wall time)
    for f in resumed:
        assert series(first, f.run_id) + series(rest, f.run_id) == series(whole, f.run_id), f.run_id
        fin = fins[f.run_id]
        assert (f.status, f.step, f.reason) == (fin.status, fin.step, fin.reason)
        assert f.final == fin.final and f.best == fin.best
        assert not checkpoint_path(tmp_path, f.run_id).exists()  # nothing left to resume


def test_a_group_whose_process_died_resumes_from_its_last_checkpoint_after_dropping_rows(
        tmp_path: Path, monkeypatch) -> None:
    """Two runs of four diverge early, so the stack drops their rows (compaction) before the process
    dies; the resumed group rebuilds the stack as it was and goes on with the two others."""
    import engine.batched.checkpoint as checkpoint

    names = ["adam", "sgd, too high", "momentum, dropout, plateau", "sgd, too high"]
    whole, fins = whole_group(names)
    assert [fins[r].status for r in IDS] == ["done", "diverged", "done", "diverged"]
    monkeypatch.setattr(checkpoint, "EVERY_S", 0.0)  # a checkpoint at every evaluation
    before: list = []
    written: list[dict] = []

    def dies_at_step_90(event) -> None:
        if isinstance(event, StepMetrics) and event.step >= 90:
            written.append(torch.load(checkpoint_path(tmp_path, "a"), weights_only=True))
            raise Died  # the process is gone: nothing after its last checkpoint counts
        before.append(event)

    with pytest.raises(Died):
        train_batched(specs(names), dies_at_step_90, run_ids=IDS, checkpoints=folder(tmp_path))
    state = written[0]
    at = state["step"]
    assert 0 < at < 90 and sorted(state["stack"]) == sorted(state["active"]) == [0, 2]  # rows dropped
    kept = [e for e in before if getattr(e, "step", 0) <= at and not isinstance(e, RunFinished)]
    rest: list = []
    resumed = train_batched(specs(["adam", "momentum, dropout, plateau"]), rest.append, run_ids=["a", "c"],
                            checkpoints=folder(tmp_path), resume=True)
    for f in resumed:
        assert series(kept, f.run_id) + series(rest, f.run_id) == series(whole, f.run_id), f.run_id
        assert f.final == fins[f.run_id].final


def test_a_run_cancelled_alone_leaves_the_group_and_its_checkpoint(tmp_path: Path) -> None:
    stops = [lambda: False, StopAt(30), lambda: False, lambda: False]
    ended = {f.run_id: f for f in train_batched(specs(), lambda e: None, stops, run_ids=IDS,
                                                checkpoints=folder(tmp_path))}
    assert ended["b"].status == "cancelled" and ended["a"].status == "done"
    assert not list(folder(tmp_path).glob("*.pt"))  # b cannot go on (its group trained past it); the rest ended


def test_resume_asks_for_the_runs_the_checkpoint_was_training(tmp_path: Path) -> None:
    train_batched(specs(), lambda e: None, StopAt(30), run_ids=IDS, checkpoints=folder(tmp_path))
    with pytest.raises(ValueError, match="goes on with runs a, b, c"):
        train_batched(specs(["adam"]), lambda e: None, run_ids=["a"], checkpoints=folder(tmp_path), resume=True)


def test_dllab_resume_goes_on_with_the_whole_group_in_the_store(tmp_path: Path, monkeypatch, capsys) -> None:
    from engine.runs.executor import WorkUnit, run_unit
    from engine.runs.store import RunStore
    from tui_lab.cli import main

    unit = WorkUnit(tuple(specs()), tuple(IDS))
    with RunStore(tmp_path / "whole") as store:
        run_unit(unit, lambda e: None, lambda: False, device="cpu", store=store)
        whole = {r: store.series(r) for r in IDS}
        whole_rows = {r: store.get_run(r) for r in IDS}
    home = tmp_path / "home"
    with RunStore(home) as store:
        run_unit(unit, lambda e: None, [StopAt(47)] * 4, device="cpu", store=store)
    monkeypatch.setenv("DLLAB_HOME", str(home))
    monkeypatch.setenv("DLLAB_SERVICE", "off")
    assert main(["resume", "d"]) == 2  # it diverged: nothing to train
    assert "has ended (diverged)" in capsys.readouterr().err
    assert main(["resume", "b"]) == 0
    out = capsys.readouterr()
    assert "its 3 runs went on together" in out.err
    with RunStore(home) as store:
        for r in IDS:
            row = store.get_run(r)
            assert (row.status, row.final) == (whole_rows[r].status, whole_rows[r].final), r
            got, want = store.series(r), whole[r]
            assert [(p.step, p.train_loss) for p in got.steps] == [(p.step, p.train_loss) for p in want.steps], r
            assert [(p.step, p.metrics) for p in got.evals] == [(p.step, p.metrics) for p in want.evals], r
