"""Which runs of a comparison can train together as one batched model, and which run solo.

The rule is a whitelist. Every field of a recipe has one of three roles here:

* **free**: may differ between the members of a group (learning rate, optimizer and its
  hyperparameters, schedule, penalties, clipping, seed, initial-weight scheme, ...);
* **shared**: must be equal within a group (the architecture, the data but for its seed and the
  settings in ``DATA_FREE``, the step budget and the evaluation cadence);
* anything **not listed** (including every field added to the config after this module was
  written) must keep its default value, or the run trains solo.

Some listed fields also carry a check (a whitelisted optimizer, no mixup, ...);
a run that fails one trains solo with the check's words as the reason (see ``why_solo``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from engine.models.layers import pieces
from engine.recipe.config import RunSpec

BATCHED_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
BATCHED_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "maxout")
MAX_GROUP = 64
"""At most this many runs per batched model (a bigger set is split into several groups)."""

Check = Callable[[Any], str | None]
"""A field check: None when the value is fine, else why it is not (plain words)."""


def _one_of(allowed: Sequence[Any], what: str) -> Check:
    return lambda v: None if v in allowed else f"{what} {v!r} is not batched (batched: {', '.join(map(str, allowed))})"


def _equals(value: Any, what: str) -> Check:
    return lambda v: None if v == value else f"{what} is not batched"


# role: "free" (may differ within a group) or "shared" (equal within a group); optional check.
TRAIN_FIELDS: dict[str, tuple[str, Check | None]] = {
    "optimizer": ("free", _one_of(BATCHED_OPTIMIZERS, "optimizer")),
    "lr": ("free", None),
    "momentum": ("free", None),
    "dampening": ("free", None),
    "beta1": ("free", None),
    "beta2": ("free", None),
    "alpha": ("free", None),
    "eps": ("free", None),
    "rmsprop_momentum": ("free", None),
    "adagrad_lr_decay": ("free", None),
    "amsgrad": ("free", None),
    "weight_decay": ("free", None),
    "lbfgs_history": ("free", None),  # only read by L-BFGS, which is not batched
    "lbfgs_max_iter": ("free", None),
    "lbfgs_line_search": ("free", None),
    "schedule": ("free", None),
    "step_size": ("free", None),
    "gamma": ("free", None),
    "decay": ("free", None),
    "min_lr": ("free", None),
    "plateau_patience": ("free", None),
    "warmup_steps": ("free", None),
    "batch_size": ("shared", None),
    "steps": ("shared", None),
    "epochs": ("shared", None),
    "loss": ("free", None),  # each member's own (losses.member_loss; the data decide the task)
    "hinge_margin": ("free", None),
    "smooth_l1_beta": ("free", None),
    "l1": ("free", None),
    "l2": ("free", None),
    "clip_norm": ("free", None),
    "clip_value": ("free", None),
    "early_stopping": ("free", None),  # a member stops on its own (train.py), its best weights restored
    "patience": ("free", None),
    "restore_best": ("free", None),
    "ema": ("free", None),  # each member's own average of its row (train.py)
    "augment": ("free", None),  # each member's own augmenter and stream (train.py)
    "augment_noise": ("free", None),
    "augment_scale": ("free", None),
    "augment_shift": ("free", None),
    "augment_cutout": ("free", None),
    "mixup": ("free", _equals(0.0, "mixup")),
    "seed": ("free", None),
    "eval_every": ("shared", None),
    "log_every": ("shared", None),
    "diagnostics_every": ("shared", None),
    "diverge_threshold": ("free", None),
}

MODEL_FIELDS: dict[str, tuple[str, Check | None]] = {
    "kind": ("shared", _one_of(("mlp", "linear"), "model kind")),
    "hidden": ("shared", None),
    "depth": ("shared", None),
    "width": ("shared", None),
    "channels": ("free", None),  # CNN only
    "kernel_size": ("free", None),
    "stride": ("free", None),
    "padding": ("free", None),
    "activation": ("free", _one_of(BATCHED_ACTIVATIONS, "activation")),  # stacked.member_activation
    "leaky_slope": ("free", None),
    "maxout_pieces": ("free", None),  # the layer widths it makes are in the group key
    "norm": ("shared", None),  # BatchNorm and LayerNorm per member (stacked.StackedNorm)
    "dropout": ("free", None),  # each member's own rate and random stream (stacked.MemberDropout)
    "input_dropout": ("free", None),
    "dropconnect": ("free", None),  # each member's own rate and stream, like dropout
    "residual": ("free", None),  # per member: the skip has no parameters (stacked.StackedMLP.skip)
    "init": ("free", None),  # every member is initialized by the solo model builder
    "init_std": ("free", None),
    "init_value": ("free", None),
    "init_gain": ("free", None),
    "sparse_fraction": ("free", None),
    "bias_init": ("free", None),
}

RUNSPEC_FREE = ("variant", "preset", "comparison")

PCA_PREPROCESS = ("pca", "pca_whiten")
DATA_FREE = ("preprocess", "whiten_eps", "noise", "outlier_fraction", "scale_features", "shift")
"""Data settings members of a group may differ in (besides the seed): they change the numbers, not
the shapes of the splits; each member gets its own dataset. (The batched trainer still checks the
shapes once loaded; a group it cannot stack trains solo, run by run.)"""


def _unknown_fields(model: BaseModel, known: Sequence[str], where: str) -> str | None:
    """A field this module does not know about that is set away from its default."""
    for name, info in type(model).model_fields.items():
        if name in known:
            continue
        default = info.get_default(call_default_factory=True)
        if getattr(model, name) != default:
            return f"{where}.{name} is not supported by the batched trainer"
    return None


def why_solo(spec: RunSpec) -> str | None:
    """None when `spec` can train in a batched group, else the reason it trains solo."""
    r = spec.recipe
    for section, fields in (("train", TRAIN_FIELDS), ("model", MODEL_FIELDS)):
        part = getattr(r, section)
        for name, (_, check) in fields.items():
            if check is not None and (reason := check(getattr(part, name))):
                return reason
        if reason := _unknown_fields(part, list(fields), section):
            return reason
    for model, known, where in (
        (r, ("data", "model", "train"), "recipe"),
        (spec, ("recipe", *RUNSPEC_FREE), "run"),
    ):
        if reason := _unknown_fields(model, known, where):
            return reason
    try:  # settings the solo loop would reject: let it reject them, with its own message
        from engine.recipe.optim import optimizer_kwargs
        from engine.recipe.schedules import LRSchedule

        optimizer_kwargs(r.train)
        LRSchedule(r.train, 1)
    except ValueError as exc:
        return f"invalid settings ({exc})"
    return None


def group_key(spec: RunSpec) -> str:
    """Runs with equal keys (and no reason to train solo) can share one batched model."""
    r = spec.recipe
    data = r.data.model_dump(mode="json")
    shared: dict[str, Any] = {"data": {k: v for k, v in data.items() if k not in DATA_FREE}}
    shared["pca_shape"] = r.data.preprocess in PCA_PREPROCESS  # PCA flattens samples to (components,)
    for section, fields in (("train", TRAIN_FIELDS), ("model", MODEL_FIELDS)):
        part = getattr(r, section)
        shared[section] = {n: getattr(part, n) for n, (role, _) in fields.items() if role == "shared"}
    shared["hidden_sizes"] = r.model.hidden_sizes
    shared["pieces"] = pieces(r.model)  # Maxout's linear layers are wider: other parameter shapes
    return json.dumps(shared, sort_keys=True, default=str)


def plan(specs: Sequence[RunSpec], max_group: int = MAX_GROUP) -> list[list[int]]:
    """Indices of `specs` grouped for training: each list of two or more trains batched.

    Every index appears exactly once; singletons train solo (unsupported features, or nothing
    to batch with). Groups keep the specs' order, and come in the order of their first member.
    """
    groups: dict[str, list[int]] = {}
    out: list[list[int]] = []
    for i, spec in enumerate(specs):
        if why_solo(spec) is not None:
            out.append([i])
            continue
        key = group_key(spec)
        group = groups.get(key)
        if group is None or len(group) >= max_group:
            group = groups[key] = []
            out.append(group)
        group.append(i)
    return out


def work_units(specs: Sequence[RunSpec], workers: int = 1, *, batch: bool = True) -> list[list[int]]:
    """Lists of spec indices, each trained by one call of the executor: a batched group, or one run.

    Groups are split in halves (never below two members a part) while there are fewer units than
    workers, or a group holds more runs than a worker's even share of all the runs (a dropout
    comparison of 9 batched runs and 3 solo ones on two workers: 5 + 4 + the 3 solo, not one
    worker with the 9 and the other with 3): on a 2-core CPU, two workers training four variants
    each beat one worker training eight, since the batched model's matrix products already use
    the whole core. Units come biggest first. `batch=False`: every run is a unit of its own.
    """
    if not batch:
        return [[i] for i in range(len(specs))]
    units = plan(specs)
    workers = max(1, workers)
    share = -(-len(specs) // workers)  # the runs each worker would train, shared out evenly
    while len(units) < workers or (workers > 1 and max(map(len, units)) > share):
        biggest = max(units, key=len)
        if len(biggest) < 4:
            break
        k = units.index(biggest)
        half = len(biggest) // 2
        units[k : k + 1] = [biggest[:half], biggest[half:]]
    # biggest first: a worker that takes a big group early leaves the small units to the others
    return sorted(units, key=len, reverse=True)


__all__ = [
    "BATCHED_ACTIVATIONS",
    "BATCHED_OPTIMIZERS",
    "MAX_GROUP",
    "group_key",
    "plan",
    "why_solo",
    "work_units",
]
