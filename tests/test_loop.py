"""The training loop: events, statuses, fairness, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch

from engine.events import Diagnostics, EvalMetrics, RunFinished, RunStarted, StepMetrics
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.training.loop import train


def spec(variant="v", data=None, model=None, **train_kw) -> RunSpec:
    train_kw.setdefault("steps", 40)
    return RunSpec(
        recipe=Recipe(
            data=DataSpec(**(data or {"name": "moons", "n_samples": 400})),
            model=ModelSpec(**(model or {"hidden": [16, 16]})),
            train=TrainSpec(**train_kw),
        ),
        variant=variant,
    )


def run(s: RunSpec, **kw):
    events = []
    finished = train(s, events.append, **kw)
    return events, finished


def test_event_sequence_and_final_metrics():
    events, fin = run(spec(log_every=10, eval_every=20))
    assert isinstance(events[0], RunStarted) and events[-1] is fin and isinstance(fin, RunFinished)
    assert fin.status == "done" and fin.step == 40
    steps = [e.step for e in events if isinstance(e, StepMetrics)]
    assert steps == [10, 20, 30, 40]
    evals = [e.step for e in events if isinstance(e, EvalMetrics)]
    assert evals == [0, 20, 40]
    assert any(isinstance(e, Diagnostics) for e in events)
    for key in ("train_loss", "val_loss", "val_acc", "test_acc", "gap", "acc_gap"):
        assert key in fin.final
    assert events[0].spec["versions"]["torch"] == torch.__version__.split("+")[0] or events[0].spec["versions"]["torch"]
    assert {"best_val_loss", "best_step", "best_val_acc"} <= set(fin.best)


def test_same_seed_same_numbers_and_fair_initial_weights():
    _, a = run(spec(optimizer="sgd"))
    _, b = run(spec(optimizer="sgd"))
    assert a.final == {**b.final}
    # two variants differing only in optimizer start from identical weights and batches
    ev_sgd, _ = run(spec(optimizer="sgd", steps=1, eval_every=1))
    ev_adam, _ = run(spec(optimizer="adam", lr=1e-3, steps=1, eval_every=1))
    first = lambda evs: next(e for e in evs if isinstance(e, EvalMetrics)).metrics  # noqa: E731
    assert first(ev_sgd)["train_loss"] == first(ev_adam)["train_loss"]
    _, c = run(spec(optimizer="sgd", seed=1))
    assert c.final["train_loss"] != a.final["train_loss"]


def test_nan_loss_ends_as_diverged_at_a_step():
    events, fin = run(spec(optimizer="sgd", lr=1e4, steps=200, log_every=5,
                           model={"hidden": [64, 64], "init": "normal", "init_std": 3.0}))
    assert fin.status == "diverged"
    assert "step" in fin.reason and fin.step <= 200
    assert math.isinf(fin.final["train_loss"])


def test_cancel_and_early_stop_restore_best():
    calls = {"n": 0}

    def stop_after_a_while() -> bool:
        calls["n"] += 1
        return calls["n"] > 15

    _, fin = run(spec(steps=1000), should_stop=stop_after_a_while)
    assert fin.status == "cancelled" and fin.step < 1000
    events, fin = run(spec(
        data={"name": "spiral", "n_samples": 300, "noise": 0.6}, model={"hidden": [256, 256]},
        optimizer="adam", lr=3e-3, batch_size=16, steps=3000, eval_every=25,
        early_stopping=True, patience=4,
    ))
    assert fin.status == "early-stopped"
    # the restored weights are the best ones: final val loss equals the best evaluation's
    assert fin.final["val_loss"] == pytest.approx(fin.best["best_val_loss"], rel=1e-5)


def test_penalty_clipping_ema_mixup_schedule_run():
    _, fin = run(spec(optimizer="momentum", l1=1e-4, l2=1e-3, clip_norm=1.0, clip_value=0.5, ema=0.9,
                      mixup=0.2, schedule="cosine", warmup_steps=5, steps=30))
    assert fin.status == "done"
    assert "ema_val_acc" in fin.final


def test_lbfgs_full_batch_and_regression():
    _, fin = run(spec(optimizer="lbfgs", lr=1.0, batch_size=0, steps=5))
    assert fin.status == "done"
    _, fin = run(spec(data={"name": "regression_outliers", "n_samples": 300}, loss="smooth_l1",
                      optimizer="adam", lr=1e-2))
    assert fin.status == "done" and "val_acc" not in fin.final


@pytest.mark.slow
def test_mnist1d_mlp_reaches_the_published_band():
    """mnist1d paper: MLP 40-100-100-10 with Adam reaches test accuracy in the 60s."""
    s = spec(data={"name": "mnist1d"}, model={"hidden": [100, 100]}, optimizer="adam", lr=1e-2,
             batch_size=100, steps=6000, log_every=100)
    _, fin = run(s)
    assert 0.60 <= fin.final["test_acc"] < 0.72, fin.final


def test_batchnorm_with_a_one_sample_tail_batch_trains():
    # 301 training samples at batch 2 leave one sample at the end of each epoch
    _, fin = run(spec(data={"name": "moons", "n_samples": 503, "val_fraction": 0.2, "test_fraction": 0.2},
                      model={"hidden": [8], "norm": "batch"}, batch_size=2, steps=400))
    assert fin.status == "done", fin.reason


def test_diagnostics_report_the_steps_gradient_when_the_optimizer_changes_it(monkeypatch) -> None:
    """torch's foreach SGD (the default on CUDA) adds the Nesterov momentum into p.grad in place;
    the Diagnostics must still show the gradient the step took (as with the CPU's default)."""
    import engine.training.loop

    s = spec(optimizer="nesterov", lr=0.05, steps=30, eval_every=10)
    plain, _ = run(s)
    real = engine.training.loop.build_optimizer

    def foreach(params, t):
        opt = real(params, t)
        for group in opt.param_groups:
            group["foreach"] = True
        return opt

    monkeypatch.setattr(engine.training.loop, "build_optimizer", foreach)
    forced, _ = run(s)
    grads = [[v["grad_norm"] for v in e.layers.values() if "grad_norm" in v]
             for e in (plain, forced) for e in e if isinstance(e, Diagnostics) and e.step > 0]
    assert len(grads) == 2 and len(grads[0]) == 3
    assert grads[1] == pytest.approx(grads[0], rel=1e-5)
