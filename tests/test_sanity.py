"""Sanity checks before training, and the run figures they and the presets read (RunStats)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.checks.sanity import (
    check_initial_loss,
    check_overfit_tiny,
    check_penalty_raises_loss,
    expected_initial_loss,
    overfit_spec,
    run_sanity,
)
from engine.diagnostics.run_stats import RunStats
from engine.events import EvalMetrics
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.training.loop import train


def _spec(model: dict | None = None, data: dict | None = None, **train_kw) -> RunSpec:
    return RunSpec(recipe=Recipe(
        data=DataSpec(**{"name": "digits", "preprocess": "standardize", **(data or {})}),
        model=ModelSpec(**{"hidden": [32], **(model or {})}),
        train=TrainSpec(**{"optimizer": "sgd", "lr": 0.1, "steps": 30, **train_kw}),
    ), variant="v")


def test_expected_initial_losses():
    assert expected_initial_loss(TrainSpec(), 10)[0] == pytest.approx(math.log(10))
    assert expected_initial_loss(TrainSpec(loss="hinge", hinge_margin=1.0), 10)[0] == pytest.approx(9.0)
    assert expected_initial_loss(TrainSpec(loss="mse_onehot"), 10) is None


def test_initial_loss_passes_for_small_weights_and_fails_for_large_ones():
    ok = check_initial_loss(_spec())
    assert ok.passed, ok.message
    assert abs(ok.measured["initial_loss"] - math.log(10)) < 0.1 * math.log(10)
    big = check_initial_loss(_spec(model={"init": "normal", "init_std": 1.0}))
    assert big.passed is False
    assert big.measured["initial_loss"] > 3.0
    assert "too big" in big.advice and "logit std" in big.advice


def test_a_unit_scale_output_layer_is_a_warning_and_large_logits_a_fault():
    """Kaiming's ReLU gain on the output layer (most of the catalogue) starts above ln C with unit-scale
    logits: a warning that says why; N(0, 1) weights give logits of spread ~7: a fault."""
    kaiming = check_initial_loss(_spec(model={"init": "kaiming_normal", "hidden": [100, 100]}))
    assert kaiming.passed is False and kaiming.mild and kaiming.status == "warn" and not kaiming.failed
    assert kaiming.measured["initial_loss"] > 1.1 * math.log(10) and kaiming.measured["logit_std"] <= 2.0
    assert "Kaiming's ReLU gain on the output layer" in kaiming.advice and "not a fault" in kaiming.advice
    big = check_initial_loss(_spec(model={"init": "normal", "init_std": 1.0}))
    assert big.status == "FAIL" and big.failed and not big.mild


def test_initial_loss_without_a_reference_is_skipped():
    skipped = check_initial_loss(_spec(loss="mse_onehot"))
    assert skipped.passed is None and skipped.status == "skipped"


def test_penalty_raises_the_objective_unless_the_weights_are_zero():
    ok = check_penalty_raises_loss(_spec())
    assert ok.passed
    objs = ok.measured["objectives"]
    assert objs == sorted(objs) and objs[-1] > objs[0]
    zero = check_penalty_raises_loss(_spec(model={"init": "zeros"}))
    assert zero.passed is False  # a penalty on all-zero weights is 0: the check says so, and why
    assert "starts at exactly 0" in zero.advice and "added to the loss" not in zero.advice
    assert "added to the loss" not in ok.advice


def test_overfit_spec_switches_regularization_off():
    spec = _spec(model={"dropout": 0.5}, l2=0.1, weight_decay=0.1, mixup=0.4, ema=0.9, early_stopping=True)
    tiny = overfit_spec(spec, n_samples=20, steps=50)
    r = tiny.recipe
    assert r.data.n_train == 20 and r.model.dropout == 0
    assert (r.train.l2, r.train.weight_decay, r.train.mixup, r.train.ema) == (0.0, 0.0, 0.0, None)
    assert r.train.optimizer == "adam" and r.train.batch_size == 0 and r.train.steps == 50
    assert not r.train.early_stopping


def test_twenty_samples_are_overfit_and_a_frozen_net_is_caught():
    ok = check_overfit_tiny(_spec(), steps=150)
    assert ok.passed, ok.message
    assert ok.measured["train_loss"] < 0.05
    broken = check_overfit_tiny(_spec(model={"init": "zeros", "hidden": [32, 32]}, ), steps=60)
    assert broken.passed is False and broken.advice


def test_run_sanity_gives_three_named_checks():
    checks = run_sanity(_spec(), overfit_steps=100)
    assert [c.name for c in checks] == ["initial loss", "penalty raises the loss", "overfit a tiny subset"]


# -- RunStats: the summary figures ----------------------------------------------------------


def test_loss_noise_is_the_std_of_step_to_step_changes():
    model = torch.nn.Linear(2, 2)
    stats = RunStats(model, TrainSpec(), steps_per_epoch=10)
    losses = [1.0, 3.0, 2.0, 5.0, 4.0, 4.5]
    stats.on_window(losses[:3], 3)
    stats.on_window(losses[3:], 6)  # windows are joined: the change 2.0 → 5.0 counts
    diffs = torch.tensor([b - a for a, b in zip(losses, losses[1:], strict=False)])
    assert stats.loss_noise == pytest.approx(float(diffs.std(unbiased=False)))
    stats.on_window([math.nan, 7.0, 7.5], 9)  # a non-finite loss breaks the chain, it is not a change
    assert stats._n == 6


def test_run_summary_has_initial_loss_objective_noise_and_timing():
    spec = _spec(l2=0.01, steps=40, eval_every=10, log_every=5)
    events: list = []
    finished = train(spec, events.append)
    s = finished.summary
    first = next(e for e in events if isinstance(e, EvalMetrics))
    assert first.step == 0 and s["initial_train_loss"] == pytest.approx(first.metrics["train_loss"])
    assert s["initial_penalty"] > 0
    assert s["initial_objective"] == pytest.approx(s["initial_train_loss"] + s["initial_penalty"])
    assert s["final_objective"] == pytest.approx(finished.final["train_loss"] + s["final_penalty"])
    assert s["loss_noise"] > 0
    assert 0 < s["train_seconds"] < finished.wall_time
    per_epoch = math.ceil(1079 / 100)  # digits: 1079 of the 1797 samples train, batch 100
    assert s["sec_per_epoch"] == pytest.approx(s["sec_per_step"] * per_epoch)
    assert 0 < s["mean_val_acc"] <= 1
