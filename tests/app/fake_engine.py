"""A runner-shaped fake for the app tests: replays recorded events (a real quick run of the
``optimizers`` preset, ``data/optimizers_quick.json``) or synthesizes realistic ones for specs
the recording lacks (Builder recipes). Deterministic: fixed run ids, times and values."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import zlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from engine.events import (
    Diagnostics,
    EvalMetrics,
    Event,
    RunFinished,
    RunStarted,
    StepMetrics,
    from_dict,
)
from engine.recipe.config import RunSpec

DATA = Path(__file__).parent / "data"
T0 = 1_700_000_000.0


@cache
def recording(name: str = "optimizers_quick") -> dict[tuple[str, int], tuple[dict, ...]]:
    """(variant, seed) → the recorded events (as dicts) of one run."""
    data = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return {(r["variant"], r["seed"]): tuple(r["events"]) for r in data["runs"]}


def _unit(text: str) -> float:
    return (zlib.crc32(text.encode()) % 1000) / 1000.0


def synthesize(spec: RunSpec, run_id: str) -> list[Event]:
    """A plausible run: loss falling at a speed set by the variant's name, evals, diagnostics."""
    t = spec.recipe.train
    per_epoch = 24
    total = t.steps or (t.epochs or 5) * per_epoch
    log_every = min(t.log_every, max(1, total // 10))
    eval_every = max(1, total // 10)
    speed = 0.5 + 2.5 * _unit(spec.variant + str(spec.seed))
    floor = 0.2 + 0.6 * _unit(spec.variant[::-1])
    elapsed_per_step = 0.004

    def loss(step: int, wiggle: float = 0.0) -> float:
        return floor + 2.1 * math.exp(-speed * 3 * step / total) + wiggle

    events: list[Event] = [RunStarted(
        run_id=run_id, variant=spec.variant, seed=spec.seed, preset=spec.preset, comparison=spec.comparison,
        spec=spec.model_dump(mode="json"), device="cpu", n_params=30_310, total_steps=total,
        steps_per_epoch=per_epoch, time=T0,
    )]
    for step in range(1, total + 1):
        if step % log_every == 0 or step == total:
            wiggle = 0.04 * math.sin(step * 0.7 + speed)
            events.append(StepMetrics(run_id, step, step / per_epoch, loss(step, wiggle), t.lr,
                                      step * elapsed_per_step, 250.0, T0 + step * elapsed_per_step))
        if step % eval_every == 0 or step == total:
            tl, vl = loss(step), loss(step) * 1.15 + 0.05
            acc = max(0.1, min(0.99, 1.0 - vl / 2.6))
            events.append(EvalMetrics(run_id, step, step / per_epoch,
                                      {"train_loss": tl, "val_loss": vl, "train_acc": acc + 0.04, "val_acc": acc},
                                      step * elapsed_per_step, T0 + step * elapsed_per_step + 1e-4))
            layers = {
                f"block{i}": {"act_mean": 0.4, "act_std": 0.8 - 0.1 * i, "dead": 0.01 * i, "saturated": 0.0,
                              "grad_norm": 0.5, "update_ratio": 1e-3 * (1 + i), "weight_norm": 12.0 + i}
                for i in (1, 2)
            }
            events.append(Diagnostics(run_id, step, layers, {"dead_share": 0.015, "saturated_share": 0.0,
                                                             "weight_norm": 17.5},
                                      T0 + step * elapsed_per_step + 2e-4))
    last = next(e for e in reversed(events) if isinstance(e, EvalMetrics))
    events.append(RunFinished(run_id, "done", total, f"finished {total} steps", dict(last.metrics),
                              {"best_val_acc": last.metrics["val_acc"], "best_val_loss": last.metrics["val_loss"]},
                              total * elapsed_per_step, {"dead_share": 0.015}, T0 + total * elapsed_per_step + 1))
    return events


def replayed(spec: RunSpec, run_id: str, comparison: str) -> list[Event]:
    """The recorded run of this variant and seed (ids and preset rewritten), or a synthesized one."""
    rec = recording().get((spec.variant, spec.seed))
    if rec is None or spec.preset != "optimizers":
        events = synthesize(spec, run_id)
    else:
        events = [from_dict(dict(e)) for e in rec]
    out = []
    for e in events:
        changes: dict[str, Any] = {"run_id": run_id}
        if isinstance(e, RunStarted):
            changes.update(preset=spec.preset, comparison=comparison)
        out.append(dataclasses.replace(e, **changes))
    return out


class FakeRunner:
    """Runner-shaped: ``poll`` hands out events of all runs interleaved, ``batch`` at a time.

    ``hold_at`` (0..1) stops every run at that share of its events until :meth:`release`
    (a dashboard caught mid-training); ``cancel`` ends runs ``cancelled`` at the next poll.
    """

    instances: list[FakeRunner] = []

    def __init__(self, specs: Sequence[RunSpec], *, device: str = "auto", store: Any = None,
                 batch: int = 60, hold_at: float | None = None) -> None:
        self.specs = list(specs)
        self.device = device
        self.comparison = "fakecmp"
        self.run_ids = [f"r{i:02d}{''.join(ch for ch in s.variant.lower() if ch.isalnum())}"[:10]
                        for i, s in enumerate(self.specs)]
        self.queues = [replayed(s, rid, self.comparison) for s, rid in zip(self.specs, self.run_ids, strict=True)]
        self.limits = [len(q) if hold_at is None else max(1, int(len(q) * hold_at)) for q in self.queues]
        self.pos = [0] * len(self.specs)
        self.ended = [False] * len(self.specs)
        self.cancelled: set[int] = set()
        self.batch = batch
        self.started = False
        self.closed = False
        self.polls = 0
        self.emitted: list[Event] = []
        self._lock = threading.Lock()
        FakeRunner.instances.append(self)

    def start(self) -> None:
        self.started = True

    def release(self) -> None:
        with self._lock:
            self.limits = [len(q) for q in self.queues]

    def poll(self, timeout: float = 0.1) -> list[Event]:
        import time

        with self._lock:
            self.polls += 1
            out: list[Event] = []
            for i in sorted(self.cancelled):
                if not self.ended[i]:
                    out.append(RunFinished(self.run_ids[i], "cancelled", 0, f"cancelled at event {self.pos[i]}",
                                           {}, {}, 0.0, {}, T0 + 99))
                    self.ended[i] = True
            while len(out) < self.batch:
                moved = False
                for i, q in enumerate(self.queues):
                    if self.ended[i] or self.pos[i] >= self.limits[i]:
                        continue
                    event = q[self.pos[i]]
                    self.pos[i] += 1
                    out.append(event)
                    moved = True
                    if isinstance(event, RunFinished):
                        self.ended[i] = True
                    if len(out) >= self.batch:
                        break
                if not moved:
                    break
            self.emitted.extend(out)
        if not out:
            time.sleep(min(timeout, 0.02))
        return out

    def cancel(self, run_id: str | None = None) -> None:
        with self._lock:
            if run_id is None:
                self.cancelled |= set(range(len(self.specs)))
            else:
                if run_id not in self.run_ids:
                    raise KeyError(run_id)
                self.cancelled.add(self.run_ids.index(run_id))

    def close(self, timeout: float = 5.0) -> None:
        if not self.finished:
            self.cancel()
        self.closed = True

    @property
    def finished(self) -> bool:
        return all(self.ended)
