"""Sanity checks before a long training run (CS231n's list), each a pass/fail with numbers and advice.

1. **Initial loss**: with small random weights a classifier's outputs are nearly uniform, so
   its first loss is predictable: ``ln C`` for softmax cross-entropy over C classes (2.303 for
   10), ``(C − 1) · margin`` for the multiclass hinge (SVM) loss. A loss well above it means the
   initial logits are large (weights initialized too big, or inputs not normalized); a loss well
   below it before any training means something leaks (labels in the inputs, a wrong loss).
2. **Regularization raises the loss**: the training objective at the initial weights must grow
   when an L2 penalty is added, and grow with its strength. If it does not, the penalty is not
   wired into the objective.
3. **Overfit a tiny subset**: with regularization off, a network must drive the loss on 20
   training samples to nearly zero (full-batch Adam, a few hundred steps). If it cannot even
   memorize 20 samples, something is broken (inputs and labels mismatched, a wrong loss, a
   frozen layer, a far too small or large learning rate), and a long run would be wasted.

``run_sanity(spec)`` runs the three on a run's recipe and returns :class:`SanityCheck` results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.recipe.config import ModelSpec, RunSpec, TrainSpec

INITIAL_LOSS_TOLERANCE = 0.10
"""Relative distance from the expected initial loss that still passes."""
UNIT_LOGIT_STD = 2.0
"""An initial loss above the expected one with logits of at most this spread is a warning, not a
failure: the output layer starts at unit scale (Kaiming's ReLU gain on it gives a logit std of
about 1.4 and a first loss near 3.2 for 10 classes), which the first steps shrink. Most of the
catalogue starts that way; a spread of 7 (N(0, 1) weights) or 600 (raw inputs) is a real fault."""
PENALTY_STRENGTHS = (0.0, 1e-3, 1e-2, 1e-1)
OVERFIT_SAMPLES = 20
OVERFIT_STEPS = 300
OVERFIT_LR = 1e-2
OVERFIT_LOSS = 0.05
"""The tiny subset counts as overfit when its training loss ends below this."""


@dataclass(frozen=True)
class SanityCheck:
    name: str
    passed: bool | None
    """None: the check does not apply (e.g. no reference initial loss for this loss function)."""
    message: str
    advice: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    mild: bool = False
    """Not passed, but a warning rather than a fault (`failed` is False; `status` "warn")."""

    @property
    def status(self) -> str:
        if self.passed is None:
            return "skipped"
        return "pass" if self.passed else ("warn" if self.mild else "FAIL")

    @property
    def failed(self) -> bool:
        """A fault to fix before a long run (a warning is not one)."""
        return self.passed is False and not self.mild


def expected_initial_loss(train: TrainSpec, n_classes: int) -> tuple[float, str] | None:
    """(value, formula) of the loss of near-uniform outputs, for losses that have one."""
    if train.loss == "cross_entropy":
        return math.log(n_classes), f"ln C = ln {n_classes}"
    if train.loss == "hinge":
        return (n_classes - 1) * train.hinge_margin, f"(C − 1) · margin = {n_classes - 1} · {train.hinge_margin:g}"
    return None


def _build(spec: RunSpec, device: torch.device, data: Any = None):
    from engine.data import load_data
    from engine.models import build_model
    from engine.recipe.losses import build_loss

    r, t = spec.recipe, spec.recipe.train
    data = (data or load_data(r.data, seed=t.seed, device=device)).to(device)
    n_out = data.n_classes if data.task == "classification" else 1
    torch.manual_seed(t.seed)
    model = build_model(r.model, data.input_shape, n_out).to(device)
    return data, model, build_loss(t, data.task, data.n_classes)


@torch.no_grad()
def _loss(model, loss_fn, x, y) -> float:
    was = model.training
    model.eval()
    value = float(loss_fn(model(x), y))
    model.train(was)
    return value


def check_initial_loss(spec: RunSpec, *, device: str | torch.device = "cpu", data: Any = None,
                       tolerance: float = INITIAL_LOSS_TOLERANCE) -> SanityCheck:
    data, model, loss_fn = _build(spec, torch.device(device), data)
    loss = _loss(model, loss_fn, data.x_train, data.y_train)
    with torch.no_grad():
        model.eval()
        logit_std = float(model(data.x_train[:512]).std())
    measured: dict[str, Any] = {"initial_loss": loss, "logit_std": logit_std}
    if data.task != "classification":
        return SanityCheck("initial loss", None, f"initial loss {loss:.4g} (regression: no reference value)",
                           measured=measured)
    expected = expected_initial_loss(spec.recipe.train, data.n_classes)
    if expected is None:
        return SanityCheck("initial loss", None,
                           f"initial loss {loss:.4g} ({spec.recipe.train.loss}: no reference value)", measured=measured)
    value, formula = expected
    measured.update(expected=value, relative_error=abs(loss - value) / value)
    ok = abs(loss - value) <= tolerance * value
    msg = f"initial loss {loss:.4f}, expected {formula} = {value:.4f} (±{tolerance:.0%}); logit std {logit_std:.3g}"
    mild = not ok and loss > value and logit_std <= UNIT_LOGIT_STD
    if ok:
        advice = ""
    elif mild:
        advice = (f"the first loss is above {formula} because the output layer starts at unit scale (logit std "
                  f"{logit_std:.2g}): Kaiming's ReLU gain on the output layer does this. The first steps shrink "
                  "it, so it is a warning, not a fault (most of the catalogue starts this way); PyTorch's default "
                  "init (small output weights) or a smaller init_gain starts at the expected value")
    elif loss > value:
        advice = (f"the initial outputs are far from uniform (logit std {logit_std:.2g}, ideally near 0): the "
                  "weights start too big (init scale, init_gain; Kaiming's ReLU gain on the output layer does "
                  "this) or the inputs are not normalized; a smaller output-layer init or standardized inputs "
                  "bring the first loss back to the expected value")
    else:
        advice = ("the loss is below chance before any training: check the loss function and that the "
                  "labels cannot be read off the inputs (a leak)")
    return SanityCheck("initial loss", ok, msg, advice, measured, mild=mild)


def check_penalty_raises_loss(spec: RunSpec, *, device: str | torch.device = "cpu", data: Any = None,
                              strengths: tuple[float, ...] = PENALTY_STRENGTHS) -> SanityCheck:
    from engine.recipe.regularize import penalty

    data, model, loss_fn = _build(spec, torch.device(device), data)
    data_loss = _loss(model, loss_fn, data.x_train, data.y_train)
    objectives = []
    with torch.no_grad():
        for lam in strengths:
            pen = penalty(model, 0.0, lam)
            objectives.append(data_loss + (float(pen) if pen is not None else 0.0))
    rises = all(b > a for a, b in zip(objectives, objectives[1:], strict=False))
    pairs = ", ".join(f"λ={lam:g}: {obj:.4f}" for lam, obj in zip(strengths, objectives, strict=True))
    msg = f"objective at the initial weights with an L2 penalty: {pairs}"
    with torch.no_grad():
        zero = all(not p.any() for p in model.parameters() if p.dim() > 1)  # the weights (biases aside)
    if rises:
        advice = ""
    elif zero:
        advice = ("every weight starts at exactly 0 (the init), so an L2 penalty is 0 whatever its strength: "
                  "this check needs weights away from zero; the zero init itself is the thing to look at")
    else:
        advice = ("the penalty does not reach the objective: check that it is added to the loss that is "
                  "back-propagated, and that the model has weights it applies to")
    return SanityCheck("penalty raises the loss", rises, msg, advice,
                       {"strengths": list(strengths), "objectives": objectives})


def overfit_spec(spec: RunSpec, n_samples: int = OVERFIT_SAMPLES, steps: int = OVERFIT_STEPS,
                 lr: float = OVERFIT_LR) -> RunSpec:
    """The run's recipe on `n_samples` training samples, regularization off, full-batch Adam."""
    r = spec.recipe
    train_off = {"optimizer": "adam", "lr": lr, "batch_size": 0, "steps": steps, "epochs": None,
                 "weight_decay": 0.0, "l1": 0.0, "l2": 0.0, "mixup": 0.0, "ema": None, "early_stopping": False,
                 "schedule": "constant", "warmup_steps": 0, "clip_norm": None, "clip_value": None,
                 "augment": [], "unlabeled_loss": "none", "importance_weighting": False, "lr_find": False,
                 "pretrain": None, "checkpoint_ensemble": 0, "eval_every": max(1, steps // 10),
                 "diagnostics_every": steps}
    train_off = {k: v for k, v in train_off.items() if k in TrainSpec.model_fields}
    model_off = {k: 0.0 for k in ("dropout", "input_dropout", "dropconnect") if k in ModelSpec.model_fields}
    data = r.data.model_copy(update={"n_train": n_samples, "train_fraction": 1.0})
    recipe = r.model_copy(update={"data": data, "model": r.model.model_copy(update=model_off),
                                  "train": TrainSpec.model_validate({**r.train.model_dump(), **train_off})})
    return spec.model_copy(update={"recipe": recipe, "variant": f"{spec.variant} (overfit {n_samples})"})


def check_overfit_tiny(spec: RunSpec, *, device: str | torch.device = "cpu", n_samples: int = OVERFIT_SAMPLES,
                       steps: int = OVERFIT_STEPS, lr: float = OVERFIT_LR,
                       threshold: float = OVERFIT_LOSS) -> SanityCheck:
    from engine.training.loop import train

    tiny = overfit_spec(spec, n_samples, steps, lr)
    finished = train(tiny, lambda event: None, device=device)
    loss = finished.final.get("train_loss", math.inf)
    acc = finished.final.get("train_acc")
    measured = {"train_loss": loss, "train_acc": acc, "status": finished.status, "steps": finished.step,
                "samples": n_samples}
    ok = finished.status == "done" and loss < threshold
    acc_text = f", train accuracy {acc:.0%}" if acc is not None else ""
    msg = (f"{n_samples} samples, no regularization, full-batch Adam lr {lr:g} for {steps} steps: "
           f"training loss {loss:.4g}{acc_text} (pass below {threshold:g}); {finished.status}")
    advice = "" if ok else (
        "the network cannot memorize a handful of samples: look for a bug before training longer "
        "(inputs and labels out of step, a wrong loss, frozen or disconnected layers), or a model too "
        "small or an activation that kills the gradient (saturated or dead units)")
    return SanityCheck("overfit a tiny subset", ok, msg, advice, measured)


def run_sanity(spec: RunSpec, *, device: str | torch.device = "cpu", overfit_steps: int = OVERFIT_STEPS,
               n_samples: int = OVERFIT_SAMPLES) -> list[SanityCheck]:
    """The three checks on `spec`'s recipe, in order."""
    from engine.data import load_data
    from engine.diagnostics.lr_find import needs_network

    needs_network(spec, "the sanity checks")
    dev = torch.device(device)
    data = load_data(spec.recipe.data, seed=spec.recipe.train.seed, device=dev)
    return [
        check_initial_loss(spec, device=dev, data=data),
        check_penalty_raises_loss(spec, device=dev, data=data),
        check_overfit_tiny(spec, device=dev, n_samples=n_samples, steps=overfit_steps),
    ]
