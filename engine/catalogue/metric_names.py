"""The metric names a run can report: what a claim's ``metric`` or a search's score may name.

A metric is looked up by ``RunOutcome.value`` in the run's final evaluation, its summary and its
best figures (or its evaluations, for ``at`` other than "final"). No single registry declares those
names: each part of the engine that measures something adds its own keys. They are gathered here,
by source, so that a misspelled metric is an error when a preset loads or a search starts instead
of a "not recorded" after training. A new figure in one of these places must be added here too
(``tests/test_search.py`` checks the names a real run reports against this list).

Which names a run reports depends on its kind (``run_kind``): a classification or regression
network, a point on a 2-D surface, a gradient check, or a whole search (a ``[search]`` preset's
outcome). Even within a kind not every run reports every name (EMA, ensembles, BatchNorm,
pretraining, importance weighting add theirs only when on), so the lists are the names that *can*
exist for the kind. Names with a dot are families whose second part is a layer, a parameter
tensor or a searched field, known only once the model is built: any suffix is accepted.
"""

from __future__ import annotations

import difflib
from typing import Any

KINDS = ("classification", "regression", "surface", "gradcheck", "search")
TEXT_METRICS = frozenset({"status", "diagnosis"})
"""Compared with == / != only (``RunOutcome.value``): not a score."""
_EVERY_RUN = TEXT_METRICS | {"wall_time", "step", "n_params", "epoch"}  # RunOutcome: the run, its evaluations
_SPLITS = ("train", "val", "test")  # test: the final evaluation only


def _network(classify: bool) -> frozenset[str]:
    acc = ["acc"] if classify else []
    # engine.training.loop.run_eval and engine.training.metrics.extra_metrics (batch statistics: BatchNorm networks,
    # val and test splits only)
    per_split = ["loss", *acc] + ([] if classify else ["mae", "mse"])
    names = {f"{split}_{m}" for split in _SPLITS for m in per_split}
    names |= {f"{split}_{m}_{what}" for split in ("val", "test") for m in ["loss", *acc]
              for what in ("batch_stats", "mode_gap")}
    # EMA weights (engine.training.loop), ensemble members and checkpoint ensembles (engine.techniques.ensembles)
    for prefix in ("ema", "ensemble", "members", "ckpt_ensemble"):
        names |= {f"{prefix}_{split}_{m}" for split in _SPLITS for m in ["loss", *acc]}
    names |= {"gap", "lr", "epoch", "steps", *(["acc_gap"] if classify else [])}
    # the best evaluation (engine.training.loop.record_eval)
    names |= {"best_val_loss", "best_step", "best_epoch", "min_train_loss"}
    names |= {"best_val_acc", "best_val_acc_at_best_loss"} if classify else set()
    # engine.diagnostics.run_stats
    names |= {"final_penalty", "final_objective", "initial_train_loss", "initial_val_loss", "initial_penalty",
              "initial_objective", "loss_noise", "train_seconds", "sec_per_step", "sec_per_epoch", "lr_found"}
    names |= {"initial_train_acc", "initial_val_acc", "mean_val_acc"} if classify else set()
    # engine.techniques.pretrain (its own task is classification whatever the run's), engine.techniques.shift
    names |= {"pretrain_loss", "pretrain_acc", "pretrain_steps", "pretrain_pool"}
    names |= {"iw_domain_acc", "iw_ess_share", "iw_max_weight", "iw_min_weight", "iw_clipped_share"}
    # engine.diagnostics.health.model_summary
    names |= {"weight_norm", "near_zero_share", "dead_share", "max_dead_share", "saturated_share",
              "zero_grad_share", "max_zero_grad_share", "last_act_std", "first_act_std", "min_unit_spread",
              "near_zero_share_first"}
    return frozenset(names | _EVERY_RUN)


# engine.surfaces.trainer: the final point, the path's summary, saddle escapes and the best step
_SURFACE = frozenset(_EVERY_RUN | {
    "loss", "train_loss", "dist_to_min", "x", "y", "final_x", "final_y", "lr", "epoch", "steps", "min_dist",
    "travel", "zigzag", "zigzag_x", "zigzag_y", "overshoot_x", "overshoot_y", "overshoot", "steps_to_escape",
    "grad_norm", "hess_min_eig", "hess_max_eig", "lr_hit_share", "start_hit_share", "start_mean_loss",
    "escape_at", "escape_loss", "escape_from_loss", "escape_eig", "min_train_loss", "best_step",
})
# engine.checks.gradcheck.GradCheckResult.metrics
_GRADCHECK = frozenset(_EVERY_RUN | {
    "train_loss", "max_rel_error", "max_entry_rel_error", "n_tensors", "n_pass", "n_warn", "n_fail", "gradcheck_h",
})
# engine.catalogue.search._search_outcome
_SEARCH = frozenset(_EVERY_RUN | {"best_score", "best_score_worst", "best_score_best", "trials", "searches"})

_NAMES: dict[str, frozenset[str]] = {
    "classification": _network(classify=True),
    "regression": _network(classify=False),
    "surface": _SURFACE,
    "gradcheck": _GRADCHECK,
    "search": _SEARCH,
}
_LAYER_FAMILIES = ("dead.", "act_std.", "saturated.", "weight_norm.", "update_ratio.", "zero_grad.")  # per layer
FAMILIES: dict[str, tuple[str, ...]] = {
    "classification": _LAYER_FAMILIES,
    "regression": _LAYER_FAMILIES,
    "surface": (),
    "gradcheck": ("rel_error.",),  # per parameter tensor
    "search": ("best.",),  # the best point's value of each searched field
}


def metric_names(kind: str | None = None) -> frozenset[str]:
    """The exact names a run of `kind` (one of KINDS; None: any kind) can report, families aside."""
    if kind is None:
        return frozenset().union(*_NAMES.values())
    return _NAMES[kind]


def _families(kind: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for k in ([kind] if kind else KINDS) for p in FAMILIES[k]))


def is_metric(name: str, kind: str | None = None) -> bool:
    """Whether a run of `kind` (None: any kind) can report `name`."""
    if name in metric_names(kind):
        return True
    return any(name.startswith(prefix) and len(name) > len(prefix) for prefix in _families(kind))


def valid_metrics(kind: str | None = None, *, numeric: bool = False) -> list[str]:
    """Every valid name, sorted, families written as ``dead.<name>``; `numeric`: no text metrics."""
    names = metric_names(kind) - (TEXT_METRICS if numeric else frozenset())
    return sorted(names) + [f"{prefix}<name>" for prefix in _families(kind)]


USUAL = ("val_loss", "val_acc", "train_loss", "best_val_loss", "best_val_acc", "val_mae", "gap", "best_score",
         "dist_to_min", "max_rel_error")
"""The names most searches and claims use: shown for a name too unlike any other to have close ones."""


def close_metrics(name: str, kind: str | None = None, n: int = 3) -> list[str]:
    """The valid names nearest to a misspelled one (difflib), best first."""
    return difflib.get_close_matches(name, sorted(metric_names(kind)), n=n)


def unknown_metric(name: str, kind: str | None = None, *, numeric: bool = False) -> str | None:
    """None when a run of `kind` can report `name` (a number, with `numeric`), else a short reason.

    The reason names a few valid names, not all of them: there are about a hundred, and a line
    that long hides the one the person meant."""
    if numeric and name in TEXT_METRICS:
        return f"{name!r} is text, not a number"
    if is_metric(name, kind):
        return None
    valid = valid_metrics(kind, numeric=numeric)
    close = [m for m in close_metrics(name, kind, n=6) if m in valid]
    hint = (f"closest: {', '.join(close)}" if close
            else f"e.g. {', '.join([m for m in USUAL if m in valid][:6])}")
    return (f"unknown metric {name!r}: no {kind + ' ' if kind else ''}run reports it; "
            f"{len(valid)} metric names exist; {hint}")


def run_kind(spec: Any) -> str:
    """The kind of run a RunSpec (or Recipe) trains: see ``engine.runs.dispatch`` and the dataset's task.

    Imports ``engine.data`` (and so torch) for the toy sets' tasks."""
    recipe = getattr(spec, "recipe", spec)
    if recipe.data.name == "surface":
        return "surface"
    if getattr(recipe.train, "gradcheck", False):
        return "gradcheck"
    from engine.data.toy import TOY_SETS

    toy = TOY_SETS.get(recipe.data.name)
    return toy.task if toy is not None else "classification"  # the file and image sets are all classified


PERCENT_FAMILIES = ("dead", "saturated", "zero_grad")
"""Per-layer families whose figures are shares of units."""


def is_fraction(name: str) -> bool:
    """Whether metric `name` is a share of samples or units in [0, 1] (an accuracy, a dead or
    saturated share, or a difference of two such), which people read in percent: 0.705 is "70.5%",
    and a margin of 0.15 on it "15 points"."""
    base, _, _ = name.partition(".")
    return (base.endswith("acc") or "_acc_" in base or base == "acc_gap" or base.endswith("_share")
            or (base in PERCENT_FAMILIES and base != name))
