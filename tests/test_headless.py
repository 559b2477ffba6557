"""`dllab run` (tui_lab.headless) after Ctrl+C: what it prints is what the store keeps."""

from __future__ import annotations

import functools
import io
import sys
import time
from pathlib import Path

from rich.console import Console
from tiny_presets import tiny_preset

import tui_lab.headless as headless
from engine.catalogue.presets import parse_preset
from engine.events import EvalMetrics, RunFinished, RunStarted, StepMetrics
from engine.recipe.config import RunSpec
from engine.runs.runner import Runner
from engine.runs.store import RunStore

SLOW = tiny_preset("""
[base.train]
steps = 100000

[[variants]]
name = "a"

[[variants]]
name = "b"
""", n_samples=50)


def train_until_stopped(spec: RunSpec, emit, should_stop, *, device: str, run_id: str) -> RunFinished:
    """As the real loop does when it is cancelled: a last evaluation at the step it stopped, whose
    figures are the run's final ones (and differ from the evaluation before it)."""
    t0 = time.time()
    emit(RunStarted(run_id=run_id, variant=spec.variant, seed=spec.seed, preset=spec.preset,
                    comparison=spec.comparison, spec={**spec.model_dump(mode="json"), "versions": {"python": sys.version}},
                    device=device, n_params=10, total_steps=100000, steps_per_epoch=10))
    step = 0

    def evaluate() -> dict[str, float]:
        metrics = {"train_loss": 1.0 / (step + 1), "val_loss": 2.0 / (step + 1), "val_acc": 1 - 1.0 / (step + 2)}
        emit(EvalMetrics(run_id=run_id, step=step, epoch=step / 10, metrics=metrics, elapsed=time.time() - t0))
        return metrics

    while not should_stop() and time.time() - t0 < 60:
        time.sleep(0.005)
        step += 1
        emit(StepMetrics(run_id=run_id, step=step, epoch=step / 10, train_loss=1.0 / step, lr=0.1,
                         elapsed=time.time() - t0, steps_per_sec=200.0))
        if step % 10 == 0:
            evaluate()
    time.sleep(0.2)  # the last evaluation takes a while: the wall time is not the last event's
    step += 3
    final = evaluate()
    event = RunFinished(run_id=run_id, status="cancelled", step=step, reason=f"cancelled at step {step}",
                        final=final, best={"best_step": step}, wall_time=time.time() - t0)
    emit(event)
    return event


def ctrl_c_once_every_run_has_evaluated(monkeypatch) -> None:
    """Ctrl+C as the comparison's event loop reads an event, once every run has an evaluation."""
    note = headless._Progress.note
    pressed = []

    def note_then_interrupt(self, event):
        note(self, event)
        if not pressed and all(o.evals for o in self.collector.outcomes()):
            pressed.append(True)
            raise KeyboardInterrupt

    monkeypatch.setattr(headless._Progress, "note", note_then_interrupt)


def test_after_ctrl_c_the_printed_results_are_the_stores(tmp_path, monkeypatch):
    """Ctrl+C: the runs end with a last evaluation and their wall time, in the store and as events
    sent while the runner closes. The table printed after it showed the evaluation before (one
    behind) and a wall time of 0.0 for every run: it must show what `dllab runs` shows."""
    monkeypatch.setattr(headless, "Runner", functools.partial(Runner, train_fn="test_headless:train_until_stopped"))
    ctrl_c_once_every_run_has_evaluated(monkeypatch)
    loaded = parse_preset(SLOW, Path("slow.toml"))
    result = headless.run_comparison(loaded, device="cpu", workers=2, store=str(tmp_path), live=False)
    assert result.interrupted and len(result.outcomes) == 2
    with RunStore(tmp_path) as store:
        rows = {o.run_id: store.get_run(o.run_id) for o in result.outcomes}
    for o in result.outcomes:
        row = rows[o.run_id]
        assert row.status == o.status == "cancelled"
        assert (o.reason, o.step, o.final, o.wall_time) == (row.reason, row.step, row.final, row.wall_time)
        assert o.wall_time > 0.2 and o.evals[-1]["step"] == row.step  # the last evaluation is in
    console = Console(file=io.StringIO(), width=120)
    headless.print_result(result, console)
    printed = console.file.getvalue()
    for o in result.outcomes:
        row = rows[o.run_id]
        line = next(line for line in printed.splitlines() if line.lstrip().startswith(f"{o.variant} "))
        assert headless._fmt(row.final["train_loss"]) in line.split(), (line, row.final)
        assert line.split()[-1] == f"{row.wall_time:.1f}" != "0.0", line
    assert "interrupted" in printed or "cancelled" in printed


def test_after_ctrl_c_in_process_every_run_is_in_the_results(tmp_path, monkeypatch):
    """`--workers 0`: the runs Ctrl+C stopped before they began are in the results too, as the store
    has them (cancelled before they started), not left out."""
    loaded = parse_preset(SLOW.replace("steps = 100000", "steps = 100000\nsolo = true"), Path("slow.toml"))
    add = headless.OutcomeCollector.add
    pressed = []

    def add_then_interrupt(self, event):
        run = add(self, event)
        if not pressed and isinstance(event, StepMetrics) and event.step >= 3:
            pressed.append(True)
            raise KeyboardInterrupt
        return run

    monkeypatch.setattr(headless.OutcomeCollector, "add", add_then_interrupt)
    result = headless.run_comparison(loaded, device="cpu", workers=0, store=str(tmp_path), live=False)
    assert result.interrupted and [o.variant for o in result.outcomes] == ["a", "b"]
    with RunStore(tmp_path) as store:
        for o in result.outcomes:
            row = store.get_run(o.run_id)
            assert (o.status, o.reason) == (row.status, row.reason), (o, row)
    assert [o.status for o in result.outcomes] == ["cancelled", "cancelled"]
    assert result.outcomes[1].reason == "interrupted before it started"
