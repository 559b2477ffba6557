"""The doctor: from a run's curves and its layers' signals to the causes they point at, with the
evidence, and the catalogue's remedies for each, in the notes' two-question frame.

:func:`examine` reads what a run stored: its status and reason, its final figures, its whole-run
summary (dead and saturated units, the update/weight ratio of each layer, the initial loss, the
activations' spread) and its recipe. Each rule below names a cause, not only a symptom, and says
which numbers made it; the causes an optimization problem has (the loss does not go down as it
should) come with optimization remedies, a generalization gap with generalization remedies. A
remedy is a change to the run's own recipe and the catalogue preset that shows why it works.

The rules, in the order they are reported (a cause in the recipe first, then the causes the
signals show, before the symptoms they explain):

* symmetric initial weights (``init`` zeros or constant): every unit of a layer learns the same;
* BatchNorm on batches of :data:`TINY_BATCH` samples or fewer: its statistics are noise;
* divergence: the run diverged, or its loss is not finite: the learning rate is too high here;
* dead ReLUs: at least :data:`DEAD` of the hidden units never fire;
* saturated units: at least :data:`SATURATED` of the tanh / sigmoid units sit at their limits;
* a vanishing signal: the first layer's update/weight ratio is under :data:`TINY_UPDATE` while the
  last's is at least :data:`VANISHING_SPREAD` times larger (the gradient fades on its way down);
* a learning rate too low: every layer's update/weight ratio is under :data:`TINY_UPDATE` and the
  training loss kept more than :data:`STALLED` of its initial value;
* an initial loss far from ln C (classification): the initial weights are scaled badly;
* overfitting: the training accuracy exceeds the validation accuracy by :data:`GAP` or more and the
  validation loss has risen :data:`VAL_RISE` above its best;
* underfitting: the training accuracy is under :data:`UNDERFIT_ACC` with none of the causes above.

The thresholds were set on seed 0 of the planted faults in ``tests/test_doctor.py`` and a healthy
Adam run; the test checks them on seeds 1 and 2.

The ablation (:func:`ablation_specs`, :func:`ablation_verdicts`; ``dllab doctor RUN --ablate``): the
run's own recipe and each remedy's change of it, over seeds; a remedy helped when its mean gain on
the loss its finding is about (training loss for an optimization finding, validation loss for a
generalization one) exceeds the spread over seeds; against a recipe that ran away, the gain is
counted from where it started. The test checks that the top remedy of four planted faults helps on
seeds 3 and 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DEAD = 0.5
SATURATED = 0.5
TINY_UPDATE = 1e-5
VANISHING_SPREAD = 100.0
STALLED = 0.9
INITIAL_LOSS_SLACK = 1.0
"""An initial loss further than this (nats) from ln C means the initial weights are scaled badly."""
TINY_BATCH = 4
HOT_LR = {"sgd": 1.0, "momentum": 0.5, "nesterov": 0.5, "adam": 0.05, "adamw": 0.05, "rmsprop": 0.05,
          "adagrad": 0.5}
"""Learning rates at or above which dead ReLUs are put down to the rate (the lab's spiral and mnist1d
nets train well at a tenth of these)."""
FIXED_SCALE_INITS = ("normal", "uniform", "constant", "sparse", "zeros")
"""Initializations whose scale ignores the layer's width: a vanishing signal is first theirs to fix."""
SOUND_LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 0.001, "adamw": 0.001, "rmsprop": 0.001,
            "adagrad": 0.05}
"""A rate each optimizer trains the lab's nets well at: what a rate that ran away is lowered to (or a
tenth of it, when that is lower)."""
GAP = 0.15
VAL_RISE = 0.1
"""Overfitting also needs the validation loss to have risen this share above its best (a gap alone
can be a hard set that the network still learns)."""
UNDERFIT_ACC = 0.7


@dataclass(frozen=True)
class Remedy:
    """A change to the run's recipe (``{"train.lr": 0.01}``), in words, with the preset that shows it."""

    text: str
    preset: str
    change: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    cause: str
    """A short id: ``lr-too-high``, ``dead-relus``, ..."""
    title: str
    evidence: str
    frame: str
    """``optimization`` (the loss does not go down as it should) or ``generalization``."""
    remedies: list[Remedy]


@dataclass(frozen=True)
class Report:
    findings: list[Finding]

    @property
    def healthy(self) -> bool:
        return not self.findings

    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]


def _layers(summary: dict[str, Any], prefix: str) -> dict[str, float]:
    """Per-layer figures of the whole-run summary (``update_ratio.block1`` → ``{"block1": …}``)."""
    out = {}
    for key, value in summary.items():
        if key.startswith(prefix + ".") and isinstance(value, int | float) and math.isfinite(value):
            out[key[len(prefix) + 1:]] = float(value)
    return out


def _order(names: list[str]) -> list[str]:
    """Layer names from the input to the head."""
    def key(name: str) -> tuple[int, int]:
        if name == "head":
            return (1, 0)
        digits = "".join(ch for ch in name if ch.isdigit())
        return (0, int(digits) if digits else 0)
    return sorted(names, key=key)


def examine(spec: dict[str, Any], status: str, final: dict[str, Any], summary: dict[str, Any],
            reason: str = "", n_classes: int | None = None, best: dict[str, Any] | None = None) -> Report:
    """What a stored run shows (see the module docstring). `spec` is its stored spec (a dict with
    ``recipe``), `final` its final figures, `summary` its whole-run summary, `n_classes` its
    classes (None: a regression, or not known), `best` its best figures (``best_val_loss``)."""
    recipe = spec.get("recipe", spec)
    model, train = recipe.get("model", {}), recipe.get("train", {})
    lr = float(train.get("lr", 0.01))
    activation = model.get("activation", "relu")
    found: list[Finding] = []

    def remedies(*items: tuple[str, str, dict[str, Any]]) -> list[Remedy]:
        return [Remedy(text, preset, change) for text, preset, change in items]

    if model.get("init") in ("zeros", "constant"):
        found.append(Finding(
            "symmetric-init", "Every weight starts equal, so every unit of a layer computes and learns the same "
                              "thing" + (" (and at zero, ReLUs output 0 and pass no gradient)" if activation == "relu"
                                         and model.get("init") == "zeros" else ""),
            f"init = {model.get('init')!r}" + (f"; dead_share {summary['dead_share']:.2f}"
                                               if isinstance(summary.get("dead_share"), int | float) else ""),
            "optimization",
            remedies(("random initial weights scaled to the layer (Kaiming for ReLU, Xavier for tanh)", "init",
                      {"model.init": "kaiming_normal" if activation == "relu" else "xavier_normal"}),)))
    batch = train.get("batch_size")
    if model.get("norm") == "batch" and isinstance(batch, int) and 0 < batch <= TINY_BATCH:
        found.append(Finding(
            "bn-tiny-batch", f"BatchNorm on batches of {batch}: its mean and variance are mostly noise",
            f"batch_size {batch} with norm = 'batch'", "optimization",
            remedies(("LayerNorm, which normalizes each sample on its own", "bn-batch-size", {"model.norm": "layer"}),
                     ("a batch of 32", "batch-size", {"train.batch_size": 32}))))
    train_loss = final.get("train_loss")
    sound = min(lr / 10, SOUND_LR.get(train.get("optimizer", "sgd"), lr / 10))
    if status == "diverged" or (isinstance(train_loss, float) and not math.isfinite(train_loss)):
        found.append(Finding(
            "lr-too-high", "The learning rate is too high for this network: the loss ran away",
            reason or f"the training loss is {train_loss}", "optimization",
            remedies((f"a much lower learning rate (lr {lr:g} → {sound:g})", "learning-rate", {"train.lr": sound}),
                     ("clip the gradient's norm at 1", "grad-clipping", {"train.clip_norm": 1.0}),
                     ("Adam at lr 0.001, which scales each step by the gradient's size", "optimizers",
                      {"train.optimizer": "adam", "train.lr": 0.001}))))
    dead = summary.get("dead_share")
    if activation == "relu" and isinstance(dead, int | float) and dead >= DEAD and not any(
            f.cause == "symmetric-init" for f in found):
        lower = (f"a lower learning rate (lr {lr:g} → {sound:g}): large steps knock units dead", "learning-rate",
                 {"train.lr": sound})
        leaky = ("leaky ReLU, whose negative side still passes a gradient", "activations",
                 {"model.activation": "leaky_relu"})
        kaiming = ("He (Kaiming) initialization, scaled for ReLU", "init", {"model.init": "kaiming_normal"})
        hot = lr >= HOT_LR.get(train.get("optimizer", "sgd"), 1.0)
        found.append(Finding(
            "dead-relus", (f"A learning rate too high (lr {lr:g}) knocked the ReLUs dead: " if hot else "Dead ReLUs: ")
            + f"{dead:.0%} of the hidden units never fire, so they pass no gradient",
            f"dead_share {dead:.2f} at the end (threshold {DEAD:.2f})", "optimization",
            remedies(lower, leaky, kaiming) if hot else remedies(leaky, lower, kaiming)))
    saturated = summary.get("saturated_share")
    if activation in ("tanh", "sigmoid") and isinstance(saturated, int | float) and saturated >= SATURATED:
        found.append(Finding(
            "saturated", f"Saturated units: {saturated:.0%} of the {activation} units sit at their limits, "
                         "where the gradient is close to zero",
            f"saturated_share {saturated:.2f} (threshold {SATURATED:.2f})", "optimization",
            remedies(("Xavier (Glorot) initialization, scaled for tanh and sigmoid", "init",
                      {"model.init": "xavier_normal"}),
                     ("BatchNorm before the activation", "normalization", {"model.norm": "batch"}),
                     ("ReLU, which does not saturate for positive inputs", "activations",
                      {"model.activation": "relu"}))))
    ratios = _layers(summary, "update_ratio")
    ordered = [ratios[name] for name in _order(list(ratios))]
    initial = summary.get("initial_train_loss")
    stalled = (isinstance(initial, int | float) and isinstance(train_loss, float) and math.isfinite(train_loss)
               and initial > 0 and train_loss > STALLED * initial)
    relu = ("ReLU instead of a squashing activation", "activations", {"model.activation": "relu"})
    scaled = ("an initialization scaled to the layer's width (Kaiming, with ReLU)", "init",
              {"model.init": "kaiming_normal", "model.activation": "relu"})
    if len(ordered) >= 2 and ordered[0] < TINY_UPDATE and ordered[-1] >= VANISHING_SPREAD * max(ordered[0], 1e-30):
        found.append(Finding(
            "vanishing", "A vanishing signal: the first layers barely learn while the last ones do",
            f"update/weight ratio {ordered[0]:.1e} in the first layer against {ordered[-1]:.1e} in the head "
            "(about 1e-3 is healthy)", "optimization",
            remedies(*((scaled, relu) if model.get("init") in FIXED_SCALE_INITS else (relu, scaled)),
                     ("BatchNorm, which rescales each layer's input", "normalization", {"model.norm": "batch"}),
                     ("skip connections, which carry the gradient past the layers", "skip-connections",
                      {"model.residual": True}))))
    elif ordered and max(ordered) < TINY_UPDATE and stalled and not any(
            f.cause in ("dead-relus", "symmetric-init") for f in found):  # those explain still weights themselves
        found.append(Finding(
            "lr-too-low", "The learning rate is too low: every layer's weights barely move",
            f"largest update/weight ratio {max(ordered):.1e} (about 1e-3 is healthy); the training loss kept "
            f"{train_loss / initial:.0%} of its initial value", "optimization",
            remedies((f"raise the learning rate ten times (lr {lr:g} → {lr * 10:g})", "learning-rate",
                      {"train.lr": lr * 10}),
                     ("Adam at lr 0.001", "optimizers", {"train.optimizer": "adam", "train.lr": 0.001}))))
    if isinstance(initial, int | float) and n_classes and n_classes > 1 and math.isfinite(initial):
        expected = math.log(n_classes)
        if abs(initial - expected) > max(INITIAL_LOSS_SLACK, 0.5 * expected):
            found.append(Finding(
                "initial-loss", "The initial loss is far from ln C: the initial weights are scaled badly",
                f"initial training loss {initial:.3g} against ln {n_classes} = {expected:.3g}", "optimization",
                remedies(("the default initialization (or Kaiming for ReLU)", "init", {"model.init": "default"}),
                         ("check the start of the run as the sanity checks do", "sanity-checks", {}))))
    gap = final.get("acc_gap")
    if gap is None and isinstance(final.get("train_acc"), float) and isinstance(final.get("val_acc"), float):
        gap = final["train_acc"] - final["val_acc"]
    val_loss, best_val = final.get("val_loss"), (best or {}).get("best_val_loss")
    rising = (isinstance(val_loss, int | float) and isinstance(best_val, int | float) and best_val > 0
              and val_loss >= (1 + VAL_RISE) * best_val)
    if (isinstance(gap, int | float) and math.isfinite(gap) and gap >= GAP and status != "diverged"
            and (best is None or rising)):
        found.append(Finding(
            "overfitting", "Overfitting: the network fits its training set far better than new data",
            f"training accuracy {final.get('train_acc', float('nan')):.1%} against {final.get('val_acc', float('nan')):.1%} "
            f"on validation (gap {gap:.1%}, threshold {GAP:.0%})"
            + (f"; the validation loss rose from {best_val:.3g} to {val_loss:.3g}" if rising else ""), "generalization",
            remedies(("weight decay 1e-3", "weight-decay", {"train.weight_decay": 1e-3}),
                     ("dropout 0.3", "dropout", {"model.dropout": 0.3}),
                     ("early stopping on the validation loss", "early-stopping", {"train.early_stopping": True}),
                     ("more training data, where you can get it", "more-data", {}))))
    train_acc = final.get("train_acc")
    optimization = any(f.frame == "optimization" for f in found)
    if not optimization and isinstance(train_acc, float) and train_acc < UNDERFIT_ACC and status != "cancelled":
        found.append(Finding(
            "underfitting", "Underfitting: the network does not fit even its training data",
            f"training accuracy {train_acc:.1%} (threshold {UNDERFIT_ACC:.0%})", "optimization",
            remedies(("a wider network (twice the units)", "capacity",
                      {"model.hidden": [2 * h for h in model.get("hidden", [100, 100])]}),
                     ("Adam at lr 0.001", "optimizers", {"train.optimizer": "adam", "train.lr": 0.001}),
                     ("train longer (twice the steps)", "learning-rate",
                      {"train.steps": 2 * int(train.get("steps") or 0)} if train.get("steps") else {}))))
    return Report(found)


def examine_stored(row: Any) -> Report:
    """:func:`examine` on a stored run (``engine.runs.store.RunRow``): its classes from its data's
    facts (a regression, or data that can no longer be described, has none)."""
    from engine.data.base import DatasetError
    from engine.data.facts import describe
    from engine.recipe.config import DataSpec

    n_classes = None
    try:
        facts = describe(DataSpec.model_validate(row.spec.get("recipe", {}).get("data", {})))
        n_classes = facts.n_classes if facts.task == "classification" else None
    except (DatasetError, ValueError):
        pass
    return examine(row.spec, row.status, row.final, row.summary, row.reason, n_classes, row.best)


# -- the ablation: the run's own recipe against each remedy, over seeds ----------------------------

BASELINE = "your recipe"


def remedy_label(remedy: Remedy) -> str:
    """A variant's name for a remedy: its changes, short (``lr 0.005``, ``optimizer adam, lr 0.001``)."""
    parts = []
    for key, value in remedy.change.items():
        name = key.split(".", 1)[-1]
        parts.append(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}")
    return ", ".join(parts)[:40]


def ablation_specs(spec: dict[str, Any], report: Report, seeds: list[int]) -> list[Any]:
    """The ablation of a stored run: its own recipe (:data:`BASELINE`) and, for each distinct
    remedy the findings propose that changes the recipe, the recipe with that change, each over
    `seeds`. Remedies whose change does not make a valid recipe are left out."""
    from pydantic import ValidationError

    from engine.recipe.config import RunSpec

    base = RunSpec.from_stored(spec)
    variants: list[tuple[str, Any]] = [(BASELINE, base)]
    seen: set[str] = set()
    for finding in report.findings:
        for remedy in finding.remedies:
            label = remedy_label(remedy)
            if not remedy.change or label in seen:
                continue
            recipe = base.recipe.model_dump(mode="json")
            for key, value in remedy.change.items():
                section, name = key.split(".", 1)
                recipe[section][name] = value
            try:
                variants.append((label, base.model_copy(update={"recipe": type(base.recipe).model_validate(recipe)})))
            except ValidationError:
                continue
            seen.add(label)
    out = []
    for label, variant in variants:
        for seed in seeds:
            train = variant.recipe.train.model_copy(update={"seed": seed})
            recipe = variant.recipe.model_copy(update={"train": train})
            out.append(variant.model_copy(update={"recipe": recipe, "variant": label, "preset": "doctor",
                                                  "comparison": ""}))
    return out


@dataclass(frozen=True)
class Verdict:
    """One remedy's effect on the metric the finding is about, against the spread over seeds."""

    variant: str
    metric: str
    baseline: float
    value: float
    spread: float
    """The larger of the two variants' ranges over seeds: a gain smaller than this is noise."""
    ran_away: bool = False
    """Your recipe did not finish: `baseline` is where it started (its initial loss)."""

    @property
    def gain(self) -> float:
        return self.baseline - self.value  # the metrics read are losses: lower is better

    @property
    def helped(self) -> bool:
        return math.isfinite(self.value) and math.isfinite(self.gain) and self.gain > self.spread

    def text(self) -> str:
        if not math.isfinite(self.value):
            return f"{self.variant}: did not finish with a finite {self.metric}"
        if self.ran_away:
            word = "helped" if self.helped else "did not help"
            return (f"{self.variant}: {self.metric} {self.value:.4g}, where your recipe ran away from its start at "
                    f"{self.baseline:.4g} (spread {self.spread:.3g}): {word}")
        word = "helped" if self.helped else ("did not help" if self.gain <= 0 else "within the spread over seeds")
        return (f"{self.variant}: {self.metric} {self.value:.4g} against {self.baseline:.4g} "
                f"({self.gain:+.4g}; spread {self.spread:.3g}): {word}")


def ablation_verdicts(report: Report, outcomes: list[Any]) -> list[Verdict]:
    """Each remedy variant against the baseline: the final training loss for optimization findings,
    the validation loss for a generalization one (the frame of the first finding); a remedy helped
    only when its mean gain is larger than the spread over seeds of either variant."""
    metric = "val_loss" if report.findings and report.findings[0].frame == "generalization" else "train_loss"
    by_variant: dict[str, list[float]] = {}
    for o in outcomes:
        try:
            value = float(o.value(metric))
        except (KeyError, TypeError, ValueError):
            value = math.nan
        by_variant.setdefault(o.variant, []).append(value if o.status in ("done", "early-stopped") else math.nan)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values and all(math.isfinite(v) for v in values) else math.nan

    def spread(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return max(finite) - min(finite) if len(finite) > 1 else 0.0

    base = by_variant.get(BASELINE, [])
    b = mean(base)
    if not math.isfinite(b):  # your recipe ran away: a remedy must at least end below where it started
        starts = [float(o.summary.get(f"initial_{metric}", math.nan)) for o in outcomes if o.variant == BASELINE]
        b, ran_away = mean(starts), True
    else:
        ran_away = False
    out = []
    for variant, values in by_variant.items():
        if variant == BASELINE:
            continue
        out.append(Verdict(variant, metric, b if math.isfinite(b) else math.inf, mean(values),
                           max(0.0 if ran_away else spread(base), spread(values)), ran_away))
    return out
