"""Importance weighting: per-sample losses, the logistic domain classifier against sklearn, the weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.data import load_data
from engine.recipe.config import DataSpec, Recipe, RunSpec, TrainSpec
from engine.recipe.losses import build_loss
from engine.techniques.shift import (
    ImportanceWeights,
    build_importance_weights,
    fit_logistic,
    per_sample,
    weighted_loss,
)
from engine.training.loop import train


def _loss(name: str, task: str = "classification", n_classes: int = 3):
    return build_loss(TrainSpec(loss=name), task, n_classes)


@pytest.mark.parametrize("name", ["cross_entropy", "mse_onehot", "mse_softmax", "hinge"])
def test_per_sample_losses_average_to_the_batch_loss(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(7, 3, generator=g), torch.randint(0, 3, (7,), generator=g)
    fn = _loss(name)
    per = per_sample(fn, out, y)
    assert per.shape == (7,)
    assert per.mean().item() == pytest.approx(fn(out, y).item(), rel=1e-6)
    for i in range(7):
        assert per[i].item() == pytest.approx(fn(out[i : i + 1], y[i : i + 1]).item(), rel=1e-6)


def test_per_sample_cross_entropy_matches_torch_reduction_none() -> None:
    g = torch.Generator().manual_seed(1)
    out, y = torch.randn(9, 4, generator=g), torch.randint(0, 4, (9,), generator=g)
    ref = F.cross_entropy(out, y, reduction="none")
    assert torch.allclose(per_sample(_loss("cross_entropy", n_classes=4), out, y), ref, atol=1e-6)
    soft = torch.softmax(torch.randn(9, 4, generator=g), dim=1)  # mixup targets
    ref_soft = -(soft * F.log_softmax(out, dim=1)).sum(1)
    assert torch.allclose(per_sample(_loss("cross_entropy", n_classes=4), out, soft), ref_soft, atol=1e-6)


@pytest.mark.parametrize("name", ["mse", "l1", "smooth_l1"])
def test_per_sample_regression_losses(name: str) -> None:
    g = torch.Generator().manual_seed(2)
    out, y = torch.randn(6, 1, generator=g), torch.randn(6, generator=g)
    fn = _loss(name, "regression", 0)
    assert per_sample(fn, out, y).mean().item() == pytest.approx(fn(out, y).item(), rel=1e-6)


def test_weighted_loss_value_and_gradient() -> None:
    g = torch.Generator().manual_seed(3)
    out = torch.randn(5, 3, generator=g, requires_grad=True)
    y = torch.randint(0, 3, (5,), generator=g)
    w = torch.tensor([0.5, 2.0, 1.0, 0.0, 1.5])
    loss = weighted_loss(_loss("cross_entropy"), out, y, w)
    ref = (w * F.cross_entropy(out, y, reduction="none")).mean()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(loss, out)
    (ref_grad,) = torch.autograd.grad(ref, out)
    assert torch.allclose(grad, ref_grad, atol=1e-7)
    assert torch.all(grad[3] == 0)  # a zero weight removes the sample
    ones = weighted_loss(_loss("cross_entropy"), out, y, torch.ones(5))
    assert ones.item() == pytest.approx(_loss("cross_entropy")(out, y).item(), rel=1e-6)


def test_fit_logistic_matches_sklearn() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.3 + rng.logistic(size=300) > 0).astype(np.int64)
    for l2 in (1.0, 0.1):
        ref = LogisticRegression(C=1.0 / l2, tol=1e-10, max_iter=10_000).fit(x, y)
        a, b = fit_logistic(torch.from_numpy(x), torch.from_numpy(y), l2=l2)
        np.testing.assert_allclose(a.numpy(), ref.coef_[0], rtol=1e-4, atol=1e-5)
        assert float(b) == pytest.approx(float(ref.intercept_[0]), rel=1e-4, abs=1e-5)


def test_weights_recover_a_known_density_ratio() -> None:
    # p = N(0, I), q = N(mu, I): log q(x)/p(x) = mu·x - |mu|²/2, exactly logistic-linear
    g = torch.Generator().manual_seed(4)
    mu = torch.tensor([0.8, -0.4])
    x_train = torch.randn(2000, 2, generator=g)
    x_test = torch.randn(1000, 2, generator=g) + mu
    iw = ImportanceWeights(x_train, x_test, clip=1e9, l2=1e-3)
    true = torch.exp(x_train @ mu - mu.dot(mu) / 2)
    true = true / true.mean()
    assert iw.weights.mean().item() == pytest.approx(1.0, rel=1e-5)
    assert torch.corrcoef(torch.stack([iw.weights, true]))[0, 1] > 0.97
    assert torch.corrcoef(torch.stack([iw.weights.log(), true.log()]))[0, 1] > 0.995
    assert torch.allclose(iw.coef.float(), mu, atol=0.15)
    s = iw.summary
    assert 0.5 < s["iw_domain_acc"] < 0.75  # overlapping gaussians: hard to tell apart
    assert 0 < s["iw_ess_share"] < 1 and s["iw_clipped_share"] == 0.0


def test_clipping_caps_the_largest_weights_before_normalizing() -> None:
    g = torch.Generator().manual_seed(5)
    x_train = torch.randn(1000, 1, generator=g)
    x_test = torch.randn(500, 1, generator=g) + 2.0
    clipped = ImportanceWeights(x_train, x_test, clip=3.0)
    free = ImportanceWeights(x_train, x_test, clip=1e9)
    assert clipped.clipped_share > 0
    assert clipped.weights.mean().item() == pytest.approx(1.0, rel=1e-5)
    ratio_max = clipped.weights.max() / clipped.weights.min()
    assert ratio_max < free.weights.max() / free.weights.min()
    assert clipped.summary["iw_ess_share"] > free.summary["iw_ess_share"]


def test_empty_target_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="test split is empty"):
        ImportanceWeights(torch.randn(10, 2), torch.zeros(0, 2))


def test_build_reads_the_spec_and_the_shifted_splits() -> None:
    data = load_data(DataSpec(name="moons", shift=3.0), seed=0)
    assert build_importance_weights(TrainSpec(), data) is None
    iw = build_importance_weights(TrainSpec(importance_weighting=True, importance_clip=5.0), data)
    assert iw is not None and len(iw.weights) == len(data.x_train)
    assert iw.summary["iw_domain_acc"] > 0.75
    # training points on the test side of the shift get the larger weights
    d = torch.tensor([0.8, 0.6])
    proj = data.x_train @ d
    assert torch.corrcoef(torch.stack([iw.weights.log(), proj]))[0, 1] < -0.9


def _spec(**train) -> RunSpec:
    recipe = Recipe.model_validate({
        "data": {"name": "moons", "shift": 2.0, "n_samples": 400},
        "model": {"kind": "linear"},
        "train": {"optimizer": "adam", "lr": 1e-2, "batch_size": 40, "steps": 40, **train},
    })
    return RunSpec(recipe=recipe, variant="v")


def test_loop_trains_on_the_weighted_loss_and_reports_the_weights() -> None:
    plain = train(_spec(), lambda e: None)
    weighted = train(_spec(importance_weighting=True), lambda e: None)
    assert weighted.status == "done"
    assert weighted.final["test_acc"] != plain.final["test_acc"] or weighted.final["val_loss"] != plain.final["val_loss"]
    assert {"iw_domain_acc", "iw_ess_share", "iw_max_weight"} <= set(weighted.summary)
    assert "iw_domain_acc" not in plain.summary
    assert math.isfinite(weighted.final["train_loss"])
