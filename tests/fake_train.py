"""A fake train function for runner and store tests: no torch, behaviour chosen by the variant name.

* ``crash...``    emits a few steps, then ``os._exit(3)`` (a worker dying under the runner)
* ``raise...``    emits a few steps, then raises RuntimeError
* ``slow...``     steps every 10 ms until ``should_stop()`` (then ``cancelled``)
* ``stubborn...`` like slow but ignores ``should_stop()`` (a worker that must be terminated)
* anything else   ``spec.recipe.train.steps`` steps (default 20), evaluations every 10, ``done``

Importable as ``fake_train:train`` once ``tests/`` is on ``sys.path``.
"""

from __future__ import annotations

import os
import sys
import time

from engine.events import Diagnostics, EvalMetrics, RunFinished, RunStarted, StepMetrics
from engine.recipe.config import RunSpec

LIMIT_S = 60.0
"""Slow runs end by themselves after this long, so a broken cancel fails a test instead of hanging it."""


def train(spec: RunSpec, emit, should_stop, *, device: str, run_id: str) -> RunFinished:
    t0 = time.time()
    kind = spec.variant
    steps = spec.recipe.train.steps or 20
    emit(RunStarted(
        run_id=run_id, variant=spec.variant, seed=spec.seed, preset=spec.preset,
        comparison=spec.comparison, spec={**spec.model_dump(mode="json"), "versions": {"python": sys.version}},
        device=device, n_params=1234, total_steps=steps, steps_per_epoch=10,
    ))
    step = 0
    last: dict[str, float] = {}

    def finish(status: str, reason: str) -> RunFinished:
        event = RunFinished(
            run_id=run_id, status=status, step=step, reason=reason, final=dict(last),  # type: ignore[arg-type]
            best={"best_val_loss": last.get("val_loss", 1.0), "best_step": step},
            wall_time=time.time() - t0, summary={"pid": os.getpid()},
        )
        emit(event)
        return event

    while True:
        if kind.startswith(("slow", "stubborn")):
            if time.time() - t0 > LIMIT_S:
                return finish("done", "time limit of the fake run")
            time.sleep(0.01)
        elif step >= steps:
            return finish("done", f"finished {steps} steps")
        if should_stop() and not kind.startswith("stubborn"):
            return finish("cancelled", f"cancelled at step {step}")
        step += 1
        if step % 5 == 0 or not kind.startswith(("slow", "stubborn")):
            emit(StepMetrics(run_id=run_id, step=step, epoch=step / 10, train_loss=1.0 / step, lr=0.1,
                             elapsed=time.time() - t0, steps_per_sec=100.0))
        if step == 3 and kind.startswith("crash"):
            os._exit(3)
        if step == 3 and kind.startswith("raise"):
            raise RuntimeError(f"boom at step {step}")
        if step % 10 == 0:
            last = {"train_loss": 1.0 / step, "val_loss": 1.5 / step, "val_acc": 1 - 1.0 / step}
            emit(EvalMetrics(run_id=run_id, step=step, epoch=step / 10, metrics=dict(last),
                             elapsed=time.time() - t0))
            emit(Diagnostics(run_id=run_id, step=step, layers={"fc1": {"dead": 0.0, "grad_norm": 0.5}},
                             summary={"dead_share": 0.0}))
