"""The LR range test: sweep, smoothing, stop rule, suggestion rule, restored state, loop hook."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from engine.diagnostics.lr_find import (
    apply_suggestion,
    find_lr,
    lr_range_test,
    lr_schedule,
    smooth,
    suggest_lr,
)
from engine.events import StepMetrics
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.training.loop import train


def test_sweep_is_exponential_from_min_to_max():
    rates = lr_schedule(1e-4, 1.0, 5)
    assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(1.0)
    assert np.allclose(np.diff(np.log10(rates)), 1.0)
    with pytest.raises(ValueError):
        lr_schedule(1.0, 1e-3, 10)
    with pytest.raises(ValueError):
        lr_schedule(1e-3, 1.0, 1)


def test_smoothing_is_a_bias_corrected_ema():
    assert smooth([3.0] * 5, 0.9) == pytest.approx([3.0] * 5)  # no start-up bias towards 0
    losses = [1.0, 2.0, 4.0]
    beta = 0.5
    a1 = 0.5 * 1.0
    a2 = 0.5 * a1 + 0.5 * 2.0
    a3 = 0.5 * a2 + 0.5 * 4.0
    expected = [a1 / (1 - 0.5), a2 / (1 - 0.25), a3 / (1 - 0.125)]
    assert smooth(losses, beta) == pytest.approx(expected)


def _valley(n: int = 100, noise: float = 0.0, seed: int = 0) -> tuple[list[float], list[float]]:
    """A synthetic range-test curve on 1e-5..10: flat, a fall centred at 1e-2, a rise after 1."""
    lrs = lr_schedule(1e-5, 10.0, n)
    rng = np.random.default_rng(seed)
    x = np.log10(lrs)
    s = 2.3 - 1.0 / (1 + np.exp(-3 * (x + 2))) + np.where(x > 0, 3 * x**2, 0.0)
    return lrs, list(s + noise * rng.standard_normal(n))


def test_suggestion_is_a_tenth_of_the_minimum_and_steepest_is_on_the_fall():
    lrs, curve = _valley()
    suggestion, steepest, at_min = suggest_lr(lrs, curve)
    assert 0.3 < at_min < 2.0  # the valley's floor ends where the rise starts, at lr 1
    assert suggestion == pytest.approx(at_min / 10)
    assert steepest is not None and 3e-3 < steepest < 3e-2  # the sigmoid's steepest point is 1e-2
    s2, _, _ = suggest_lr(lrs, curve, rule="steepest")
    assert s2 == steepest
    with pytest.raises(ValueError):
        suggest_lr(lrs, curve, rule="magic")


def test_an_early_spike_does_not_become_the_minimum():
    lrs, curve = _valley()
    curve[2] = 0.1  # a lucky first batch: lower than anything later
    _, _, at_min = suggest_lr(lrs, curve)
    assert at_min > 0.1


def test_a_curve_that_never_falls_falls_back_to_min_over_ten():
    lrs = lr_schedule(1e-5, 1.0, 50)
    curve = [2.0 + 0.1 * i for i in range(50)]
    suggestion, steepest, at_min = suggest_lr(lrs, curve)
    assert steepest is None
    assert suggestion == pytest.approx(at_min / 10)


def _regression_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    w = torch.randn(8, 1, generator=g)
    y = x @ w + 0.1 * torch.randn(256, 1, generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    return model, nn.MSELoss(), x, y


def test_stops_at_divergence_and_restores_model_optimizer_and_rng():
    model, loss_fn, x, y = _regression_problem()
    spec = TrainSpec(optimizer="adam", lr=1e-3, batch_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):  # give the optimizer some state to restore
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt_before = {i: {k: v.clone() for k, v in s.items() if torch.is_tensor(v)}
                  for i, s in optimizer.state_dict()["state"].items()}
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    result = lr_range_test(model, loss_fn, x, y, spec, optimizer=optimizer, lr_min=1e-5, lr_max=100.0, steps=100)
    assert "diverged" in result.stopped or "became" in result.stopped
    assert len(result.lrs) < 100
    assert result.lrs == pytest.approx(lr_schedule(1e-5, 100.0, 100)[: len(result.lrs)])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    for i, s in optimizer.state_dict()["state"].items():
        for k, v in opt_before[i].items():
            assert torch.equal(s[k], v)
    assert optimizer.param_groups[0]["lr"] == 1e-3
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert 1e-5 <= result.suggestion <= result.minimum / 10 + 1e-12
    assert len(result.curve()) == len(result.lrs)
    shown = result.display_curve()
    top = 1.2 * max(result.smoothed[: max(1, len(result.smoothed) // 10)])
    assert all(math.isfinite(y) and y <= top + 1e-9 for _, y in shown)


def test_lbfgs_is_refused():
    model, loss_fn, x, y = _regression_problem()
    with pytest.raises(ValueError, match="L-BFGS"):
        lr_range_test(model, loss_fn, x, y, TrainSpec(optimizer="lbfgs"))


def _digits_spec(**train) -> RunSpec:
    return RunSpec(recipe=Recipe(data=DataSpec(name="digits", preprocess="standardize"),
                                 model=ModelSpec(hidden=[32]),
                                 train=TrainSpec(optimizer="sgd", batch_size=64, **train)), variant="v")


def test_find_lr_on_a_recipe_and_apply_the_suggestion():
    spec = _digits_spec(lr=0.5, steps=50)
    result = find_lr(spec, steps=60)
    # plain SGD on standardized digits trains at rates around 0.05-1: the suggestion is there
    assert 0.01 < result.suggestion < 2.0
    applied = apply_suggestion(spec, result)
    assert applied.recipe.train.lr == pytest.approx(result.suggestion)
    assert applied.recipe.train.steps == 50 and applied.variant == "v"
    recipe = apply_suggestion(spec.recipe, 0.123)
    assert isinstance(recipe, Recipe) and recipe.train.lr == 0.123


def test_loop_with_lr_find_trains_at_the_suggestion():
    spec = _digits_spec(lr=0.5, steps=20, lr_find=True, log_every=5)
    events: list = []
    finished = train(spec, events.append)
    found = finished.summary["lr_found"]
    assert found != 0.5 and math.isfinite(found)
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert steps and all(e.lr == pytest.approx(found) for e in steps)
    same = find_lr(_digits_spec(lr=0.5, steps=20), steps=100)
    assert found == pytest.approx(same.suggestion)  # the hook runs the same test on the same init
    plain = train(_digits_spec(lr=found, steps=20, log_every=5), lambda e: None)
    assert plain.final["train_loss"] == pytest.approx(finished.final["train_loss"], rel=1e-5)


# --- a sweep too coarse to read: the steepest reading agrees with the curve, and a warning --------

def test_a_two_point_sweep_that_fell_does_not_say_the_loss_never_fell():
    from engine.diagnostics.lr_find import steepest_note

    lrs, curve = [1e-5, 10.0], [3.354, 3.278]  # the tester's `--steps 2`: the smoothed loss fell
    _, steepest, _ = suggest_lr(lrs, curve)
    assert steepest is None
    note = steepest_note(lrs, curve)
    assert "never fell" not in note and note.startswith("too few points to read a slope: the loss fell")
    assert steepest_note(lr_schedule(1e-5, 1.0, 50), [2.0 + 0.1 * i for i in range(50)]) == "the loss never fell"
    lrs, curve = _valley()
    assert steepest_note(lrs, curve) == ""  # a steepest descent is read: nothing to explain


def test_a_coarse_sweep_carries_a_warning():
    from engine.diagnostics.lr_find import sweep_warning

    assert sweep_warning(1e-5, 10.0, 100) == "" and sweep_warning(1e-5, 10.0, 20, n_read=20) == ""
    assert "only 2 steps" in sweep_warning(1e-5, 10.0, 2)
    assert "only 19 steps" in sweep_warning(1e-5, 10.0, 19)
    wide = sweep_warning(1e-5, 1e300, 100)
    assert "each step jumps 3.08 decades" in wide and "only" not in wide
    assert "stopped after 4 of its 100 steps" in sweep_warning(1e-5, 10.0, 100, n_read=4)


def test_the_range_test_with_two_steps_warns_and_explains_its_missing_steepest():
    model, loss_fn, x, y = _regression_problem()
    result = lr_range_test(model, loss_fn, x, y, TrainSpec(optimizer="sgd", batch_size=0), lr_min=0.05,
                           lr_max=0.2, steps=2)  # full batch: the loss falls from the first step to the second
    assert result.steepest is None and result.smoothed[1] < result.smoothed[0]  # it fell, over 2 points
    assert "never fell" not in result.steepest_text() and "too few points" in result.steepest_text()
    assert "too coarse to read: only 2 steps" in result.warning
    assert result.as_dict()["warning"] == result.warning
    assert result.best_loss == result.smoothed[result.lrs.index(result.minimum)]  # the same point of the curve
    model, loss_fn, x, y = _regression_problem()
    fine = lr_range_test(model, loss_fn, x, y, TrainSpec(optimizer="sgd", batch_size=32), lr_min=1e-4,
                         lr_max=0.3, steps=60)
    assert fine.warning == "" and fine.steepest is not None and fine.steepest_note == ""


def test_lr_find_command_warns_next_to_the_suggestion(capsys):
    from tui_lab.cli import main

    assert main(["lr-find", "optimizers", "--quick", "--steps", "2"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "never fell" not in text and "steepest descent at none (too few points" in text
    assert "suggested lr" in text and "warning: too coarse to read: only 2 steps" in text
    assert "apply it" not in text
