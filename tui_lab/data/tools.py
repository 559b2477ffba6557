"""Pure helpers of the Tools screen (no Textual): log axes, the LR finder's "apply to recipe",
reading search fields typed as text, and a search's trials as table rows."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from typing import Any

from tui_lab.data.draft import Draft


def log_x(points: Iterable[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """(log10 x, y) of the points whose x is positive and both finite (plots log-transform the data
    themselves; plotext's log scale breaks on repeated builds)."""
    xs, ys = [], []
    for x, y in points:
        if isinstance(x, int | float) and isinstance(y, int | float) and math.isfinite(x) and math.isfinite(y) and x > 0:
            xs.append(math.log10(x))
            ys.append(float(y))
    return xs, ys


def round_lr(lr: float, digits: int = 3) -> float:
    """A learning rate to `digits` significant digits (the suggestion is a rule of thumb: 0.123, not
    0.12307458...)."""
    return float(f"{lr:.{digits}g}")


def draft_with_lr(draft: Draft, variant: str, lr: float, *, lr_find: bool | None = None) -> Draft:
    """A copy of the Builder's draft with ``train.lr = lr`` in `variant`'s own override (so it wins
    over the base and the quick form; a quick-form lr of that variant is replaced too). `lr_find`
    (when not None) is written beside it: ``False`` switches an automatic LR finder off so the rate
    is used as it is. KeyError when the draft has no such variant."""
    new = copy.deepcopy(draft)
    for v in new.variants:
        if v.name != variant:
            continue
        train = v.overrides.setdefault("train", {})
        train["lr"] = lr
        if lr_find is not None:
            train["lr_find"] = lr_find
        quick_train = v.quick.get("train", {})
        if "lr" in quick_train:
            quick_train["lr"] = lr
        return new
    raise KeyError(variant)


def parse_fields(text: str) -> list[Any]:
    """``train.lr=1e-4:1:log; model.dropout=0:0.5:linear`` → SearchFields (``;`` or new lines
    between fields; the scale is log unless given). ValueError with the engine's message."""
    from engine.catalogue.search import SearchField

    parts = [p.strip() for chunk in text.splitlines() for p in chunk.split(";")]
    fields = [SearchField.parse(p) for p in parts if p]
    if not fields:
        raise ValueError("give at least one field, e.g. train.lr=1e-4:1:log")
    paths = [f.path for f in fields]
    if len(set(paths)) != len(paths):
        raise ValueError(f"a field is given twice: {', '.join(paths)}")
    return fields


def trial_sort_key(trial: Any, key: str) -> float:
    """A trial's value for sorting by ``score``, ``#``, ``round`` or a field path (missing and NaN
    last)."""
    if key == "score":
        v = trial.score
    elif key == "#":
        v = float(trial.index)
    elif key == "round":
        v = float(trial.round)
    else:
        v = trial.params.get(key, math.nan)
    return math.inf if not isinstance(v, int | float) or math.isnan(v) else float(v)


def sorted_trials(trials: Sequence[Any], key: str = "score", *, descending: bool = False) -> list[Any]:
    """Trials sorted by `key` (NaN scores stay last either way)."""
    finite = [t for t in trials if math.isfinite(trial_sort_key(t, key))]
    rest = [t for t in trials if not math.isfinite(trial_sort_key(t, key))]
    return sorted(finite, key=lambda t: trial_sort_key(t, key), reverse=descending) + rest
