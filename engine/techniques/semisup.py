"""Semi-supervised learning: a loss term on unlabeled inputs, added to the supervised loss.

``DataSpec.n_unlabeled`` moves training samples into ``DataSplits.x_unlabeled`` (their labels are
dropped). Each step draws a batch of them from this module's own generator (so the labelled
batches stay the same as in a purely supervised run) and adds ``λ(step) · term`` to the loss:

``entropy``       entropy minimization (Grandvalet & Bengio, 2005):
                  ``mean_i H(p_i) = −mean_i Σ_c p_ic log p_ic`` with p = softmax(f(x_u)); pushes the
                  decision boundary away from where unlabeled inputs are dense.
``pseudo_label``  pseudo-labels (Lee, 2013): the model's own argmax class, taken as a target
                  (no gradient through the choice) where its confidence max_c p_ic ≥ threshold;
                  ``mean_i [conf_i ≥ τ] · CE(f(x_i), argmax_c p_ic)`` over the whole batch, so the
                  term grows as more predictions become confident.

λ ramps up linearly from 0 to ``unlabeled_weight`` over ``unlabeled_rampup`` steps: early on the
model's guesses on unlabeled inputs are poor, and rewarding confidence then only locks them in.
Both terms rest on the cluster (low-density separation) assumption: points in one dense region
share a class. Where it fails, the term confidently confirms the model's own mistakes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.data import DataSplits
from engine.recipe.config import TrainSpec

TERMS = ("entropy", "pseudo_label", "consistency")
UNLABELED_SEED_OFFSET = 32452843
"""Added to the run's seed for the unlabeled-batch generator."""


def entropy_term(logits: Tensor) -> Tensor:
    """Mean prediction entropy (nats) of a batch of logits."""
    logp = F.log_softmax(logits.float(), dim=1)
    return -(logp.exp() * logp).sum(dim=1).mean()


def consistency_term(model: nn.Module, x: Tensor, noise: float, generator: torch.Generator) -> Tensor:
    """Mean squared difference of the predicted probabilities for x and for x + noise·ε.

    The prediction on the clean input is the target (no gradient through it), as in the Π-model
    and virtual adversarial training; only the perturbed branch is pushed towards it.
    """
    eps = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
    with torch.no_grad():
        target = F.softmax(model(x).float(), dim=1)
    noisy = F.softmax(model(x + noise * eps).float(), dim=1)
    return (noisy - target).pow(2).sum(dim=1).mean()


def pseudo_label_term(logits: Tensor, threshold: float) -> Tensor:
    """Mean over the batch of the CE against the model's own confident argmax (0 for the others)."""
    logits = logits.float()
    with torch.no_grad():
        conf, labels = F.softmax(logits, dim=1).max(dim=1)
        mask = (conf >= threshold).to(logits.dtype)
    return (F.cross_entropy(logits, labels, reduction="none") * mask).mean()


class UnlabeledTerm:
    """``term(model, step)``: the weighted unlabeled loss of one step's unlabeled batch."""

    def __init__(
        self,
        kind: str,
        x_unlabeled: Tensor,
        generator: torch.Generator,
        *,
        weight: float = 1.0,
        rampup: int = 0,
        threshold: float = 0.95,
        batch_size: int = 100,
        noise: float = 0.1,
    ) -> None:
        if kind not in TERMS:
            raise ValueError(f"unknown unlabeled term {kind!r}; choose from {', '.join(TERMS)}")
        if len(x_unlabeled) == 0:
            raise ValueError("the unlabeled pool is empty")
        self.kind, self.x, self.generator = kind, x_unlabeled, generator
        self.weight, self.rampup, self.threshold, self.noise = weight, rampup, threshold, noise
        self.batch_size = min(batch_size, len(x_unlabeled)) if batch_size > 0 else len(x_unlabeled)
        self._step: int | None = None
        self._idx: Tensor | None = None

    def weight_at(self, step: int) -> float:
        """λ at `step`: linear ramp from 0 to ``weight`` over ``rampup`` steps."""
        if self.rampup <= 0:
            return self.weight
        return self.weight * min(1.0, step / self.rampup)

    def batch(self, step: int) -> Tensor:
        """This step's unlabeled batch (drawn once per step, so an L-BFGS closure sees one batch)."""
        if self._step != step or self._idx is None:
            self._idx = torch.randint(len(self.x), (self.batch_size,), generator=self.generator,
                                      device=self.generator.device).to(self.x.device)
            self._step = step
        return self.x[self._idx]

    def __call__(self, model: nn.Module, step: int) -> Tensor | None:
        """λ(step) · term on this step's batch; None while λ is 0 (no forward pass is spent)."""
        lam = self.weight_at(step)
        if lam == 0.0:
            return None
        x = self.batch(step)
        if self.kind == "consistency":
            return lam * consistency_term(model, x, self.noise, self.generator)
        logits = model(x)
        term = entropy_term(logits) if self.kind == "entropy" else pseudo_label_term(logits, self.threshold)
        return lam * term


def build_unlabeled_term(spec: TrainSpec, data: DataSplits) -> UnlabeledTerm | None:
    """The run's unlabeled term, or None when ``spec.unlabeled_loss`` is "none"."""
    if spec.unlabeled_loss == "none":
        return None
    if data.task != "classification":
        raise ValueError(f"unlabeled_loss={spec.unlabeled_loss!r} needs a classification task, not {data.task}")
    if data.x_unlabeled is None or len(data.x_unlabeled) == 0:
        raise ValueError(f"unlabeled_loss={spec.unlabeled_loss!r} needs unlabeled data: set data.n_unlabeled")
    dev = data.x_unlabeled.device
    generator = torch.Generator(device=dev).manual_seed(spec.seed + UNLABELED_SEED_OFFSET)
    bs = spec.unlabeled_batch_size if spec.unlabeled_batch_size is not None else spec.batch_size
    return UnlabeledTerm(spec.unlabeled_loss, data.x_unlabeled, generator, weight=spec.unlabeled_weight,
                         rampup=spec.unlabeled_rampup, threshold=spec.pseudo_threshold, batch_size=bs,
                         noise=spec.unlabeled_noise)
