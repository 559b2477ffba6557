"""Checkpoints and resume of a solo run: a run stopped and resumed gives the series and the final
numbers of a run that never stopped (CPU), whether it was cancelled or its process died."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.events import EvalMetrics, RunFinished, StepMetrics
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.training.checkpoint import checkpoint_path, supported
from engine.training.loop import train

RECIPES = {
    "dropout, momentum, cosine, augment": dict(
        model=ModelSpec(hidden=[32, 32], dropout=0.2),
        train=TrainSpec(steps=120, batch_size=32, optimizer="momentum", lr=0.05, schedule="cosine",
                        augment=["noise"], eval_every=20, log_every=7, seed=3)),
    "ensemble of 3 with dropout, snapshot ensemble": dict(
        model=ModelSpec(hidden=[16], dropout=0.2, ensemble=3),
        train=TrainSpec(steps=100, batch_size=32, optimizer="adam", lr=0.01, checkpoint_ensemble=2,
                        eval_every=10, log_every=5, seed=2)),
    "adam, mixup, ema, early stopping": dict(
        model=ModelSpec(hidden=[32]),
        train=TrainSpec(steps=150, batch_size=16, optimizer="adam", lr=0.01, mixup=0.4, ema=0.9,
                        early_stopping=True, patience=3, eval_every=10, log_every=5, seed=1)),
}


def spec(name: str) -> RunSpec:
    return RunSpec(recipe=Recipe(data=DataSpec(name="spiral", n_samples=300), **RECIPES[name]), variant=name)


class StopAt:
    """should_stop: yes from the moment the loop asks before step `step`."""

    def __init__(self, step: int) -> None:
        self.step, self.calls = step, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.step


class Died(Exception):
    pass


def series(events: list) -> list:
    return [(type(e).__name__, e.step, e.train_loss if isinstance(e, StepMetrics) else e.metrics)
            for e in events if isinstance(e, StepMetrics | EvalMetrics)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(RECIPES))
def test_a_cancelled_run_resumed_equals_one_that_never_stopped(name: str, tmp_path: Path) -> None:
    whole: list = []
    fin = train(spec(name), whole.append, run_id="w")
    path = checkpoint_path(tmp_path, "r")
    first: list = []
    stopped = train(spec(name), first.append, StopAt(47), run_id="r", checkpoint=path)
    assert stopped.status == "cancelled" and stopped.step == 47 and path.exists()
    rest: list = []
    resumed = train(spec(name), rest.append, run_id="r", checkpoint=path, resume=True)
    assert series(first) + series(rest) == series(whole)
    clock = [e.elapsed for e in first + rest if isinstance(e, StepMetrics)]
    assert clock == sorted(clock) and resumed.wall_time >= stopped.wall_time  # its clock goes on
    assert (resumed.status, resumed.step, resumed.reason) == (fin.status, fin.step, fin.reason)
    assert resumed.final == fin.final and resumed.best == fin.best
    assert not path.exists()  # a finished run leaves no checkpoint behind


def test_a_run_whose_process_died_resumes_from_its_last_checkpoint(tmp_path: Path, monkeypatch) -> None:
    import engine.training.checkpoint as checkpoint

    name = "dropout, momentum, cosine, augment"
    whole: list = []
    fin = train(spec(name), whole.append, run_id="w")
    monkeypatch.setattr(checkpoint, "EVERY_S", 0.0)  # a checkpoint at every evaluation
    path = checkpoint_path(tmp_path, "r")
    before: list = []
    written: list[int] = []

    def dies_at_step_90(event) -> None:
        if isinstance(event, StepMetrics) and event.step >= 90:
            written.append(torch.load(path, weights_only=True)["step"])
            raise Died  # the process is gone: nothing after its last checkpoint counts

        before.append(event)

    with pytest.raises(Died):
        train(spec(name), dies_at_step_90, run_id="r", checkpoint=path)
    at = written[0]
    assert 0 < at < 90
    kept = [e for e in before if getattr(e, "step", 0) <= at and not isinstance(e, RunFinished)]
    rest: list = []
    resumed = train(spec(name), rest.append, run_id="r", checkpoint=path, resume=True)
    assert series(kept) + series(rest) == series(whole)
    assert resumed.final == fin.final


def test_which_runs_can_be_checkpointed() -> None:
    assert supported(spec("adam, mixup, ema, early stopping")) is None
    assert supported(spec("ensemble of 3 with dropout, snapshot ensemble")) is None
    surface = RunSpec(recipe=Recipe(data=DataSpec(name="surface", surface="rosenbrock")), variant="s")
    assert "network" in supported(surface)


def test_a_resumed_run_uses_the_thread_count_it_had(tmp_path: Path) -> None:
    """On a CPU the last digits depend on how many threads share a sum: a run resumed in a process
    with another thread count (dllab resume, after a worker with one thread) takes the old one."""
    name = "dropout, momentum, cosine, augment"
    whole: list = []
    fin = train(spec(name), whole.append, run_id="w")  # one thread (the fixture)
    path = checkpoint_path(tmp_path, "r")
    train(spec(name), lambda e: None, StopAt(40), run_id="r", checkpoint=path)
    torch.set_num_threads(2)
    resumed = train(spec(name), lambda e: None, run_id="r", checkpoint=path, resume=True)
    assert torch.get_num_threads() == 1 and resumed.final == fin.final


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no checkpoint"):
        train(spec("adam, mixup, ema, early stopping"), lambda e: None, run_id="x",
              checkpoint=checkpoint_path(tmp_path, "x"), resume=True)


def test_dllab_resume_goes_on_in_the_store_and_refuses_what_it_cannot(tmp_path: Path, monkeypatch, capsys) -> None:
    from engine.runs.inline import run_inline
    from engine.runs.store import RunStore
    from tui_lab.cli import main

    name = "adam, mixup, ema, early stopping"
    run_inline([spec(name)], device="cpu", store=tmp_path / "whole")
    run_inline([spec(name)], None, StopAt(1 + 47), "cpu", tmp_path / "home")  # run_inline asks once first
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path / "home"))
    with RunStore(tmp_path / "home") as db:
        (row,) = db.list_runs()
        assert row.status == "cancelled" and checkpoint_path(tmp_path / "home", row.run_id).exists()
    assert main(["resume", row.run_id[:6]]) == 0
    assert "went on from step 47" in capsys.readouterr().out
    with RunStore(tmp_path / "whole") as a, RunStore(tmp_path / "home") as b:
        (whole,) = a.list_runs()
        (resumed,) = b.list_runs()
        sa, sb = a.series(whole.run_id), b.series(resumed.run_id)
        assert [(e.step, e.train_loss) for e in sb.steps] == [(e.step, e.train_loss) for e in sa.steps]
        assert [(e.step, e.metrics) for e in sb.evals] == [(e.step, e.metrics) for e in sa.evals]
        assert (resumed.status, resumed.final) == (whole.status, whole.final)
    assert main(["resume", row.run_id]) == 2  # it has ended now
    assert "nothing left to train" in capsys.readouterr().err
    assert main(["resume", "nosuchrun"]) == 2
