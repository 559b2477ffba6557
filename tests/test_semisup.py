"""The unlabeled terms against direct formulas; ramp-up, batches, errors; the loop's call site."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.data import load_data
from engine.recipe.config import DataSpec, Recipe, RunSpec, TrainSpec
from engine.techniques.semisup import (
    UnlabeledTerm,
    build_unlabeled_term,
    consistency_term,
    entropy_term,
    pseudo_label_term,
)
from engine.training.loop import train


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_entropy_term_matches_the_formula_and_its_extremes() -> None:
    logits = torch.randn(6, 4, generator=gen())
    p = torch.softmax(logits, dim=1)
    ref = -(p * p.log()).sum(1).mean()
    assert entropy_term(logits).item() == pytest.approx(ref.item(), rel=1e-6)
    assert entropy_term(torch.zeros(3, 10)).item() == pytest.approx(math.log(10), rel=1e-6)
    assert entropy_term(torch.tensor([[50.0, 0.0, 0.0]])).item() < 1e-15


def test_pseudo_labels_use_only_confident_predictions_as_fixed_targets() -> None:
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.1, 0.0, 0.2], [0.0, 0.0, 5.0]], requires_grad=True)
    term = pseudo_label_term(logits, threshold=0.9)
    conf = torch.softmax(logits.detach(), 1).max(1).values
    assert conf[0] > 0.9 and conf[1] < 0.9 and conf[2] > 0.9
    ref = (F.cross_entropy(logits[0:1], torch.tensor([0])) + F.cross_entropy(logits[2:3], torch.tensor([2]))) / 3
    assert term.item() == pytest.approx(ref.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(term, logits)
    assert torch.all(grad[1] == 0)  # the unconfident row contributes nothing
    assert grad[0, 0] < 0  # the confident class is pushed up
    assert pseudo_label_term(torch.zeros(4, 3), threshold=0.5).item() == 0.0


def test_consistency_term_is_zero_without_noise_and_only_the_noisy_branch_gets_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(16, 2, generator=gen(1))
    assert consistency_term(model, x, 1e-12, gen(2)).item() < 1e-12
    term = consistency_term(model, x, 0.3, gen(2))
    term.backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    eps = torch.randn(x.shape, generator=gen(2))
    with torch.no_grad():
        target = torch.softmax(model(x), 1)
    ref = (torch.softmax(model(x + 0.3 * eps), 1) - target).pow(2).sum(1).mean()
    ref.backward()
    assert term.item() == pytest.approx(ref.item(), rel=1e-6)
    for g, p in zip(got, model.parameters(), strict=True):
        assert torch.allclose(g, p.grad, atol=1e-7)


def _term(kind="entropy", **kw) -> UnlabeledTerm:
    return UnlabeledTerm(kind, torch.randn(50, 2, generator=gen(3)), gen(4), **kw)


def test_ramp_up_is_linear_and_a_zero_weight_skips_the_forward_pass() -> None:
    term = _term(weight=2.0, rampup=100)
    assert [term.weight_at(s) for s in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]
    calls = []
    model = nn.Linear(2, 3)
    model.register_forward_hook(lambda *a: calls.append(1))
    assert term(model, 0) is None and not calls
    out = term(model, 50)
    assert out is not None and calls
    assert _term(weight=2.0).weight_at(0) == 2.0


def test_one_batch_per_step_drawn_from_the_terms_own_generator() -> None:
    term, twin = _term(batch_size=10), _term(batch_size=10)
    b0 = term.batch(0)
    assert torch.equal(b0, term.batch(0))  # an L-BFGS closure sees one batch
    b1 = term.batch(1)
    assert not torch.equal(b0, b1)
    assert torch.equal(twin.batch(0), b0) and torch.equal(twin.batch(1), b1)  # deterministic per seed
    assert len(_term(batch_size=0).batch(0)) == 50  # 0: the whole pool
    assert len(_term(batch_size=500).batch(0)) == 50


def test_unknown_term_and_missing_unlabeled_data_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown unlabeled term"):
        _term("vat")
    data = load_data(DataSpec(name="moons"), seed=0)
    with pytest.raises(ValueError, match="n_unlabeled"):
        build_unlabeled_term(TrainSpec(unlabeled_loss="entropy"), data)
    reg = load_data(DataSpec(name="regression_outliers", n_unlabeled=10), seed=0)
    with pytest.raises(ValueError, match="classification"):
        build_unlabeled_term(TrainSpec(unlabeled_loss="entropy"), reg)
    assert build_unlabeled_term(TrainSpec(), data) is None


def test_build_reads_the_spec() -> None:
    data = load_data(DataSpec(name="moons", n_unlabeled=500), seed=0)
    term = build_unlabeled_term(
        TrainSpec(unlabeled_loss="pseudo_label", unlabeled_weight=3.0, unlabeled_rampup=7, pseudo_threshold=0.8,
                  batch_size=64, unlabeled_noise=0.2), data)
    assert term is not None
    assert (term.kind, term.weight, term.rampup, term.threshold, term.batch_size, term.noise) == (
        "pseudo_label", 3.0, 7, 0.8, 64, 0.2)
    assert term.x is data.x_unlabeled


def _spec(**train) -> RunSpec:
    recipe = Recipe.model_validate({
        "data": {"name": "moons", "n_unlabeled": 590},
        "model": {"hidden": [16]},
        "train": {"optimizer": "adam", "lr": 1e-2, "batch_size": 10, "steps": 30, **train},
    })
    return RunSpec(recipe=recipe, variant="v")


@pytest.mark.parametrize("kind", ["entropy", "pseudo_label", "consistency"])
def test_loop_adds_the_term_without_touching_the_labelled_batches(kind: str) -> None:
    plain = train(_spec(), lambda e: None)
    ramped_off = train(_spec(unlabeled_loss=kind, unlabeled_rampup=10_000, unlabeled_weight=1e-9), lambda e: None)
    with_term = train(_spec(unlabeled_loss=kind, unlabeled_weight=5.0, pseudo_threshold=0.5), lambda e: None)
    assert with_term.status == "done"
    assert with_term.final["train_loss"] != plain.final["train_loss"]
    # a negligible weight leaves training (same batches, same init) practically unchanged
    assert ramped_off.final["train_loss"] == pytest.approx(plain.final["train_loss"], rel=1e-4)
