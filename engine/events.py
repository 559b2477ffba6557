"""Typed events a training run emits.

Small frozen dataclasses of plain Python values (no tensors), so they pickle across the
worker-process boundary and serialize to JSON for the store and ``--json`` output.
Every event names the run it belongs to by ``run_id``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pending", "running", "done", "early-stopped", "diverged", "failed", "cancelled", "interrupted"]
FINAL_STATUSES: frozenset[str] = frozenset({"done", "early-stopped", "diverged", "failed", "cancelled", "interrupted"})
STOPPED: frozenset[str] = frozenset({"cancelled", "interrupted"})
"""Runs stopped before their budget from outside: asked to (cancelled), or their process or terminal
went away (interrupted). Either can go on from a checkpoint (``dllab resume``)."""
ENDED: frozenset[str] = frozenset({"done", "early-stopped", "diverged"})
"""Final statuses of a run that has nothing left to train (the others can be resumed from a checkpoint)."""


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    variant: str
    seed: int
    preset: str
    comparison: str
    spec: dict[str, Any]
    """The resolved RunSpec (``model_dump(mode="json")``) plus library versions under "versions"."""
    device: str
    n_params: int
    total_steps: int
    steps_per_epoch: int
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class StepMetrics:
    """Training metrics averaged over the steps since the last read (one host sync)."""

    run_id: str
    step: int
    epoch: float
    train_loss: float
    lr: float
    elapsed: float
    """Seconds since the run started."""
    steps_per_sec: float
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class EvalMetrics:
    """Full-split evaluation: train/val (and test) loss and accuracy, plus extras (EMA, ...)."""

    run_id: str
    step: int
    epoch: float
    metrics: dict[str, float]
    """Keys such as train_loss, train_acc, val_loss, val_acc, test_loss, test_acc, ema_val_acc."""
    elapsed: float
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Diagnostics:
    """Per-layer health statistics, sampled every few evaluations."""

    run_id: str
    step: int
    layers: dict[str, dict[str, Any]]
    """layer name -> {"act_mean", "act_std", "saturated", "dead", "grad_norm", "update_ratio", ...}."""
    summary: dict[str, float] = field(default_factory=dict)
    """Whole-model figures such as dead_share, weight_norm, near_zero_share, grad_norm."""
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: Status
    step: int
    reason: str
    """Plain words: why it ended (e.g. "loss became nan at step 412")."""
    final: dict[str, float]
    """The last evaluation's metrics (after restoring the best weights, when that happened)."""
    best: dict[str, float]
    """best_val_loss, best_val_acc, best_step, best_epoch, ..."""
    wall_time: float
    summary: dict[str, Any] = field(default_factory=dict)
    """Final diagnostics (dead_share, weight_norm, ...) the claims may refer to."""
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Message:
    """A note for the person watching (a warning, a fallback taken)."""

    run_id: str
    text: str
    level: Literal["info", "warning", "error"] = "info"
    time: float = field(default_factory=_now)


@dataclass(frozen=True)
class Boundary:
    """The predicted class over a grid of the input plane (runs on 2-D classification data).

    Emitted with each diagnostics sample and at the end of the run, for the decision-boundary
    view (see ``engine.diagnostics.boundary``).
    """

    run_id: str
    step: int
    x_range: list[float]
    """[left, right] of the plane."""
    y_range: list[float]
    """[bottom, top] of the plane."""
    grid: list[list[int]]
    """Rows of predicted classes, row 0 at the top (largest y), column 0 at the left."""
    points: list[list[float]]
    """Training points as [x, y, class] (a subset of at most a few hundred)."""
    n_classes: int
    raw: bool = True
    """True: raw input coordinates; False: the model's (preprocessed) input coordinates."""
    time: float = field(default_factory=_now)


Event = RunStarted | StepMetrics | EvalMetrics | Diagnostics | RunFinished | Message | Boundary
EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (RunStarted, StepMetrics, EvalMetrics, Diagnostics, RunFinished, Message, Boundary)
}


def to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with the event's type under "type"."""
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def from_dict(data: dict[str, Any]) -> Event:
    data = dict(data)
    cls = EVENT_TYPES[data.pop("type")]
    return cls(**data)
