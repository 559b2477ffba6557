"""What a finished run measured, gathered from its events (live or replayed from the store)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.diagnostics.curves import diagnose
from engine.events import EvalMetrics, Event, RunFinished, RunStarted, StepMetrics


@dataclass
class RunOutcome:
    run_id: str
    variant: str
    seed: int
    status: str = "running"
    reason: str = ""
    step: int = 0
    wall_time: float = 0.0
    final: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    evals: list[dict[str, float]] = field(default_factory=list)
    """Each evaluation: its metrics plus step and epoch."""
    steps: list[dict[str, float]] = field(default_factory=list)
    n_params: int = 0
    """The model's parameter count (from RunStarted): the claim metric ``n_params``."""

    @property
    def finished(self) -> bool:
        return self.status not in ("running", "pending")

    def value(self, metric: str, at: str = "final") -> float | str:
        """A metric of this run at a point: final, best (min for losses, max otherwise), min, max, last.

        Two text metrics: ``status`` and ``diagnosis`` (the learning-curve label the app shows for
        the run: underfitting / stalled / normal / overfitting / diverged, whatever ``at`` says).
        """
        if metric == "status":
            return self.status
        if metric == "diagnosis":
            return diagnose(self.evals, self.status, self.reason).label
        if metric in ("wall_time", "step", "n_params"):
            return float(getattr(self, metric))
        if at == "final":
            for source in (self.final, self.summary, self.best):
                if metric in source:
                    return _number(source[metric])
            raise KeyError(metric)
        series = [e[metric] for e in self.evals if metric in e and not _is_nan(e[metric])]
        if not series:
            if metric in self.final:
                series = [self.final[metric]]
            else:
                raise KeyError(metric)
        if at == "last":
            return _number(series[-1])
        lower_is_better = "loss" in metric or metric.endswith("gap")
        if at == "best":
            at = "min" if lower_is_better else "max"
        return float(min(series) if at == "min" else max(series))


def _is_nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _number(x: Any) -> float:
    return float("inf") if x is None or _is_nan(x) else float(x)


class OutcomeCollector:
    """Folds a stream of events into RunOutcomes, one per run, in the order runs started."""

    def __init__(self) -> None:
        self.runs: dict[str, RunOutcome] = {}

    def add(self, event: Event) -> RunOutcome | None:
        run = self.runs.get(event.run_id)
        if isinstance(event, RunStarted):
            run = self.runs.setdefault(
                event.run_id, RunOutcome(event.run_id, event.variant, event.seed)
            )
            run.n_params = event.n_params
        if run is None:
            return None
        if isinstance(event, StepMetrics):
            run.steps.append(
                {"step": event.step, "epoch": event.epoch, "train_loss": event.train_loss, "lr": event.lr}
            )
            run.step = event.step
        elif isinstance(event, EvalMetrics):
            run.evals.append({"step": event.step, "epoch": event.epoch, **event.metrics})
        elif isinstance(event, RunFinished):
            run.status, run.reason, run.step = event.status, event.reason, event.step
            run.final, run.best, run.summary = dict(event.final), dict(event.best), dict(event.summary)
            run.wall_time = event.wall_time
        return run

    def register(self, run_id: str, variant: str, seed: int) -> RunOutcome:
        """Known before it starts (so a run that never started still has an outcome)."""
        return self.runs.setdefault(run_id, RunOutcome(run_id, variant, seed, status="pending"))

    def outcomes(self) -> list[RunOutcome]:
        return list(self.runs.values())
