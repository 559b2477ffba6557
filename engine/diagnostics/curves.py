"""Learning-curve diagnosis: read a run's curves the way the lecture notes teach.

Three regimes (CS231n / D2L): the training loss barely falls (*underfitting*: the model or the
optimization is too weak), train and validation fall together (*normal*), the validation loss
turns up while the training loss keeps falling (*overfitting*). Plus the failures: a loss that
became NaN (*diverged*) and one that never moved (*stalled*: LR far too low, dead or saturated
units). Each label comes with the evidence in numbers and the remedies the notes name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

REMEDIES = {
    "diverged": [
        "lower the learning rate",
        "clip gradients by norm",
        "add normalization (BatchNorm / LayerNorm)",
        "check the initialization scale",
    ],
    "stalled": [
        "raise the learning rate or use momentum / Adam",
        "check for dead ReLUs or saturated tanh/sigmoid units",
        "use Kaiming / Xavier initialization",
        "standardize the inputs",
    ],
    "underfitting": [
        "use a bigger model (wider or deeper)",
        "train longer",
        "tune the learning rate or switch optimizer",
        "reduce regularization (dropout, weight decay)",
    ],
    "overfitting": [
        "get more data or augment it",
        "add dropout or weight decay",
        "stop early (keep the best validation checkpoint)",
        "use a smaller model",
    ],
    "normal": [],
}


@dataclass(frozen=True)
class Diagnosis:
    label: str
    text: str
    remedies: list[str] = field(default_factory=list)


def _finite(xs: list[float]) -> bool:
    return all(isinstance(x, int | float) and math.isfinite(x) for x in xs)


def diagnose(evals: list[dict[str, float]], status: str = "done", reason: str = "") -> Diagnosis:
    """Label a run from its evaluations (dicts with step, epoch, train_loss, val_loss, ...). A run
    that was cancelled or failed is read as far as it got, and the text says so ("cancelled; so
    far: normal: ...")."""
    d = _diagnose(evals, status, reason)
    if status in ("cancelled", "interrupted", "failed") and not d.text.startswith("too few"):
        return Diagnosis(d.label, f"{status}; so far: {d.text}", d.remedies)
    return d


def _diagnose(evals: list[dict[str, float]], status: str, reason: str) -> Diagnosis:
    if status == "diverged":
        return Diagnosis("diverged", f"diverged: {reason or 'the loss became NaN or inf'}", REMEDIES["diverged"])
    if evals and not any("val_loss" in e for e in evals):  # no validation split (2-D surfaces, ...)
        return _training_only(evals, status)
    rows = [e for e in evals if _finite([e.get("train_loss", math.nan), e.get("val_loss", math.nan)])]
    if len(rows) < 3:
        return _too_few(len(rows), status)
    train = [e["train_loss"] for e in rows]
    val = [e["val_loss"] for e in rows]
    first, last = train[0], train[-1]
    drop = (first - last) / first if first > 0 else 0.0
    if drop < 0.05:
        return Diagnosis(
            "stalled",
            f"stalled: training loss only moved {first:.3g} → {last:.3g} ({drop:.0%})",
            REMEDIES["stalled"],
        )
    i_best = min(range(len(val)), key=val.__getitem__)
    rise = (val[-1] - val[i_best]) / max(val[i_best], 1e-12)
    train_fall = (train[i_best] - train[-1]) / max(train[i_best], 1e-12)
    if i_best < len(val) - 1 and rise > 0.10 and train_fall > 0.0:
        epoch = rows[i_best].get("epoch", rows[i_best].get("step", 0))
        return Diagnosis(
            "overfitting",
            f"overfitting from epoch {epoch:.0f}: val loss up {_pct(rise)} while train loss fell {_pct(train_fall)}",
            REMEDIES["overfitting"],
        )
    acc = rows[-1].get("train_acc")
    if acc is not None and acc < 0.9 and (val[-1] - train[-1]) < 0.1 * max(train[-1], 1e-12):
        return Diagnosis(
            "underfitting",
            f"underfitting: train accuracy {acc:.0%} and val loss ≈ train loss ({train[-1]:.3g})",
            REMEDIES["underfitting"],
        )
    gap = val[-1] - train[-1]
    return Diagnosis(
        "normal",
        f"normal: train loss {first:.3g} → {last:.3g}, val loss {val[-1]:.3g} (gap {gap:+.3g})",
    )


def _pct(x: float) -> str:
    """A share in whole percent, but never "100%" for less than all of it (a loss that fell 99.97%
    did not fall to zero)."""
    return ">99%" if 0.995 <= x < 1.0 else f"{x:.0%}"


def _too_few(n: int, status: str) -> Diagnosis:
    """Not enough evaluations to read: "yet" only while the run can still add some."""
    if status in ("running", "pending"):
        return Diagnosis("normal", "too few evaluations to read the curves yet")
    return Diagnosis("normal", f"too few evaluations to read the curves ({n}; the run has ended)")


def _training_only(evals: list[dict[str, float]], status: str = "done") -> Diagnosis:
    """Runs without a validation split: only how far the loss fell can be read."""
    losses = [e["train_loss"] for e in evals if _finite([e.get("train_loss", math.nan)])]
    if len(losses) < 2:
        return _too_few(len(losses), status)
    first, last = losses[0], losses[-1]
    if abs(first - last) <= 0.05 * max(abs(first), 1e-12):
        return Diagnosis("stalled", f"stalled: loss {first:.3g} → {last:.3g}", REMEDIES["stalled"])
    return Diagnosis("normal", f"loss {first:.3g} → {last:.3g} (no validation split)")
