"""Covariate-shift correction by importance weights from a logistic-regression domain classifier.

Under covariate shift the inputs are drawn differently for training (p) and test (q) while the
labelling rule p(y|x) stays the same. The test risk is then a reweighted training risk:

    E_q[ℓ(f(x), y)] = E_p[w(x) · ℓ(f(x), y)],   w(x) = q(x) / p(x).

The density ratio comes from a classifier that tells the two kinds of inputs apart: label
training inputs 0 and (unlabelled) test-distribution inputs 1 and fit a logistic regression
h(x) = σ(a·x + b). By Bayes' rule

    q(x) / p(x) = [P(1|x) / P(0|x)] · (n_train / n_test) = exp(a·x + b) · n_train / n_test.

The weights are clipped at ``importance_clip`` (a few huge weights would otherwise dominate every
batch they fall in) and normalized to mean 1 over the training split, so the weighted loss keeps
the scale of the plain one. This is the standard, transductive setting: the classifier sees the
test inputs (never their labels).

``weighted_loss`` turns any batch-mean loss of ``engine.recipe.losses`` into per-sample losses with
``torch.func.vmap`` (each sample as a batch of one), so no loss is written twice.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from engine.data import DataSplits
from engine.recipe.config import TrainSpec
from engine.recipe.losses import LossFn


def per_sample(loss_fn: LossFn, output: Tensor, target: Tensor) -> Tensor:
    """The loss of each sample, ``(N,)``: `loss_fn` applied to batches of one, vectorized."""
    return torch.func.vmap(lambda o, t: loss_fn(o.unsqueeze(0), t.unsqueeze(0)))(output, target)


def weighted_loss(loss_fn: LossFn, output: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """``mean_i(w_i · ℓ_i)``: with weights of mean 1 over the data, an unbiased estimate of the weighted risk."""
    return (weights.to(output.device, torch.float32) * per_sample(loss_fn, output, target)).mean()


def fit_logistic(x: Tensor, y: Tensor, l2: float = 1.0, max_iter: int = 200) -> tuple[Tensor, Tensor]:
    """L2-penalized logistic regression by L-BFGS in float64: minimizes
    ``sum_i softplus(-s_i (a·x_i + b)) + (l2 / 2)·|a|²`` with s_i = ±1 (sklearn's objective with C = 1/l2).

    Returns (a, b) as float64 tensors on x's device.
    """
    x = x.flatten(1).to(torch.float64)
    s = y.to(torch.float64) * 2.0 - 1.0
    a = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10,
                            tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-s * (x @ a + b)).sum() + 0.5 * l2 * a.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return a.detach(), b.detach()


class ImportanceWeights:
    """Per-sample weights of the training split, and the weighted loss of a batch of it."""

    def __init__(self, x_train: Tensor, x_target: Tensor, clip: float = 10.0, l2: float = 1.0) -> None:
        if len(x_target) == 0:
            raise ValueError("importance weighting needs test-distribution inputs, but the test split is empty")
        n_train, n_target = len(x_train), len(x_target)
        # a small float64 problem, solved once on the CPU (MPS has no float64); weights go back to the device
        x = torch.cat([x_train.flatten(1), x_target.flatten(1)]).cpu()
        domain = torch.cat([torch.zeros(n_train), torch.ones(n_target)])
        a, b = fit_logistic(x, domain, l2)
        logits = x.to(torch.float64) @ a + b
        self.domain_acc = float(((logits > 0).to(torch.float64) == domain.to(torch.float64)).double().mean())
        ratio = torch.exp(logits[:n_train]) * (n_train / n_target)  # q(x) / p(x)
        self.raw = ratio
        clipped = ratio.clamp(max=clip)
        self.clipped_share = float((ratio > clip).double().mean())
        w = clipped / clipped.mean()
        self.weights_cpu = w  # float64, for the summary
        self.weights = w.to(x_train.device, torch.float32)
        self.coef, self.intercept = a, b

    def loss(self, loss_fn: LossFn, output: Tensor, target: Tensor, idx: Tensor) -> Tensor:
        """The weighted loss of the training samples ``idx`` (a batch) given the model's ``output``."""
        return weighted_loss(loss_fn, output, target, self.weights[idx])

    @property
    def summary(self) -> dict[str, float]:
        """Figures for the run's summary: how separable the domains are and how uneven the weights."""
        w = self.weights_cpu
        ess = float(w.sum() ** 2 / w.pow(2).sum()) / len(w)
        return {
            "iw_domain_acc": self.domain_acc,
            "iw_ess_share": ess,
            "iw_max_weight": float(w.max()),
            "iw_min_weight": float(w.min()),
            "iw_clipped_share": self.clipped_share,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary, "coef": self.coef.tolist(), "intercept": float(self.intercept)}


def build_importance_weights(spec: TrainSpec, data: DataSplits) -> ImportanceWeights | None:
    """The weights for this run (from the training and test inputs), or None when weighting is off."""
    if not spec.importance_weighting:
        return None
    return ImportanceWeights(data.x_train, data.x_test, clip=spec.importance_clip)
