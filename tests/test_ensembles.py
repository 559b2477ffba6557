"""Ensembles: averaged predictions against a direct computation, members that leave the loop's model
alone, checkpoint snapshots, the metric names the loop emits, and claims that compare two metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.catalogue.claims import check_claim
from engine.catalogue.presets import Claim
from engine.events import EvalMetrics
from engine.recipe.config import Recipe, RunSpec
from engine.recipe.losses import cross_entropy
from engine.runs.outcomes import RunOutcome
from engine.techniques.ensembles import Checkpoints, ensemble_scores
from engine.training.loop import train


def _linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(4, 3)


def test_ensemble_scores_average_probabilities() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 4, generator=g), torch.randint(0, 3, (30,), generator=g)
    nets = [_linear(s) for s in range(3)]
    scores = ensemble_scores(nets, cross_entropy, x, y, classify=True, members=True)
    with torch.no_grad():
        probs = torch.stack([F.softmax(n(x), 1) for n in nets]).mean(0)
        own = [(n(x).argmax(1) == y).float().mean() for n in nets]
        own_loss = [F.cross_entropy(n(x), y) for n in nets]
    assert scores["acc"].item() == pytest.approx((probs.argmax(1) == y).float().mean().item())
    assert scores["loss"].item() == pytest.approx(F.nll_loss(probs.log(), y).item(), rel=1e-5)
    assert scores["members_acc"].item() == pytest.approx(torch.stack(own).mean().item())
    assert scores["members_loss"].item() == pytest.approx(torch.stack(own_loss).mean().item(), rel=1e-5)


def test_an_ensemble_of_one_model_is_that_model() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
    net = _linear(3)
    scores = ensemble_scores([net, net], cross_entropy, x, y, classify=True)
    with torch.no_grad():
        assert scores["loss"].item() == pytest.approx(F.cross_entropy(net(x), y).item(), rel=1e-5)
        assert scores["acc"].item() == pytest.approx((net(x).argmax(1) == y).float().mean().item())


def test_regression_ensembles_average_the_outputs() -> None:
    x, y = torch.randn(10, 4), torch.randn(10)
    nets = [nn.Linear(4, 1) for _ in range(2)]
    mse = lambda o, t: F.mse_loss(o.reshape(t.shape), t)  # noqa: E731
    scores = ensemble_scores(nets, mse, x, y, classify=False, members=True)
    with torch.no_grad():
        mean = (nets[0](x) + nets[1](x)) / 2
    assert scores["loss"].item() == pytest.approx(mse(mean, y).item(), rel=1e-5)
    assert "acc" not in scores and "members_loss" in scores


def test_checkpoints_keep_the_last_k_snapshots_every_few_evaluations() -> None:
    net = nn.Linear(2, 2)
    ck = Checkpoints(k=2, every=2)
    outputs = {}
    x = torch.randn(5, 2)
    for step in (0, 10, 20, 20, 30, 40, 50, 60):
        with torch.no_grad():
            net.weight.add_(1.0)
            outputs[step] = net(x).clone()
        ck.observe(net, step)
    # step 0 and a repeated step are skipped; evals 10, 20, 30, 40, 50, 60 → snapshots at 20, 40, 60
    assert list(ck.steps) == [40, 60]
    preds = ck.predictors(net)
    assert torch.allclose(preds[0](x), outputs[40]) and torch.allclose(preds[1](x), outputs[60])


def _spec(model=None, **train_fields) -> RunSpec:
    recipe = Recipe.model_validate({
        "data": {"name": "digits", "preprocess": "standardize", "n_train": 200},
        "model": {"hidden": [32], "dropout": 0.2, **(model or {})},
        "train": {"optimizer": "momentum", "lr": 0.05, "batch_size": 20, "steps": 40, "eval_every": 10,
                  **train_fields},
    })
    return RunSpec(recipe=recipe, variant="v")


def _evals(spec: RunSpec) -> tuple[list[dict[str, float]], object]:
    events: list = []
    fin = train(spec, events.append)
    return [e.metrics for e in events if isinstance(e, EvalMetrics)], fin


def test_members_train_beside_the_loops_model_without_changing_it() -> None:
    single, fin1 = _evals(_spec())
    ens, fin3 = _evals(_spec(model={"ensemble": 3}))
    # member 0 is the loop's model: same init, batches and dropout masks as the single run
    assert [e["val_loss"] for e in ens] == [e["val_loss"] for e in single]
    assert fin3.final["val_acc"] == fin1.final["val_acc"]
    for key in ("ensemble_val_acc", "ensemble_val_loss", "members_val_acc", "ensemble_train_acc"):
        assert key in ens[-1]
    assert {"ensemble_test_acc", "members_test_acc"} <= set(fin3.final)
    # the other members are different networks
    assert fin3.final["members_val_loss"] != fin3.final["val_loss"]
    assert "ensemble_val_acc" not in single[-1]


def test_checkpoint_ensemble_and_ema_are_reported_side_by_side() -> None:
    evals, fin = _evals(_spec(checkpoint_ensemble=3, ema=0.9))
    assert "ckpt_ensemble_val_acc" not in evals[0]  # no snapshot at step 0
    assert {"ckpt_ensemble_val_acc", "ckpt_ensemble_val_loss", "ema_val_acc"} <= set(evals[-1])
    assert {"ckpt_ensemble_test_acc", "ema_test_acc"} <= set(fin.final)
    plain, _ = _evals(_spec())
    assert [e["val_loss"] for e in evals] == [e["val_loss"] for e in plain]  # evaluation only


def test_members_refuse_terms_they_do_not_train_with() -> None:
    spec = _spec(model={"ensemble": 2}, importance_weighting=True)
    with pytest.raises(ValueError, match="ensemble members"):
        train(spec, lambda e: None)


def _outcome(variant: str, seed: int, **final: float) -> RunOutcome:
    return RunOutcome(f"{variant}{seed}", variant, seed, status="done", final=final)


def test_claims_can_compare_two_metrics_of_one_or_two_variants() -> None:
    outcomes = [_outcome("ens", 0, ensemble_val_acc=0.6, val_acc=0.5, members_val_acc=0.52),
                _outcome("single", 0, val_acc=0.5, ema_val_acc=0.55)]
    same = Claim(text="t", metric="ensemble_val_acc", left="ens", op=">", right="ens",
                 right_metric="members_val_acc", margin=0.1)
    result = check_claim(same, outcomes)
    assert result.holds and "members_val_acc" in result.describe()
    across = Claim(text="t", metric="ensemble_val_acc", left="ens", op=">", right="single", right_metric="val_acc",
                   margin=0.25)
    assert not check_claim(across, outcomes).holds  # 0.6 is not above 1.25 × 0.5
    missing = Claim(text="t", metric="ema_val_acc", left="single", op=">", right="ens", right_metric="ema_val_acc")
    assert "ema_val_acc" in check_claim(missing, outcomes).problem
    plain = Claim(text="t", metric="val_acc", left="ens", op="==", right="single")
    assert check_claim(plain, outcomes).holds and math.isclose(check_claim(plain, outcomes).checks[0].right_value, 0.5)
