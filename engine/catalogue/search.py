"""Hyperparameter search: grid and random search, log-scale sampling, coarse-to-fine rounds.

A search varies named fields of a run's recipe (``train.lr``, ``train.weight_decay``,
``model.dropout`` ...) over ranges, trains one run per point through the normal machinery
(RunSpecs, run in this process or by the Runner into the store), and ranks the points by a
score metric (``val_loss`` by default, lower is better; metrics without "loss" in their name are
maximized).

- **Ranges** are sampled in a unit cube: a field with ``scale = "log"`` maps u ∈ [0, 1] to
  ``low · (high / low)^u`` (equal steps per decade: learning rates and penalties), ``"linear"``
  to ``low + u · (high − low)``.
- **Grid**: ``k = floor(budget^(1/d))`` values per field (d fields), placed at the centres of k
  equal cells, ``u = (i + offset) / k`` with offset 0.5; a *random placement* draws each field's
  offset from U(0, 1) (the same grid shape, shifted). Budget beyond ``k^d`` is left unused (said
  in the result).
- **Random**: ``budget`` points, each coordinate drawn independently from U(0, 1).
- **Coarse-to-fine** (``refine = K``): the budget is split over K + 1 rounds; after each round
  every field's range is narrowed around the best point so far to a third of its width (in the
  unit cube; clipped to the original range), and the next round searches there.

Why random search usually wins (Bergstra & Bengio 2012): when one hyperparameter matters much
more than the others, a k×k grid tries only k distinct values of it, while k² random points try
k² distinct values. A grid wins when one of its few values happens to sit on the optimum.

``run_search`` does one search; ``run_search_preset`` runs a preset's ``[search]`` comparison
(each variant a search method, repeated over grid placements / random draws and seeds) and
checks its claims on the outcome, one :class:`RunOutcome` per variant and seed whose ``final``
holds ``best_score`` (the mean over repeats of each search's best score).
"""

from __future__ import annotations

import contextlib
import math
import random as _random
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, Literal

from pydantic import ValidationError

from engine.recipe.config import Recipe, RunSpec, close_fields, deep_merge, section_fields, section_spec
from engine.runs.outcomes import RunOutcome

Scale = Literal["log", "linear"]
Executor = Callable[[list[RunSpec]], list[RunOutcome]]
SECTIONS = ("data", "model", "train")
SHRINK = 1.0 / 3.0


def numeric_fields(section: str) -> list[str]:
    """The fields of a recipe section that hold a number (int or float, optional or not): what a
    search can vary, in the order the schema declares them (lr, momentum, … first for train)."""

    def numeric(annotation: Any) -> bool:
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is typing.Annotated:
            return numeric(args[0])
        if args:
            return any(numeric(a) for a in args if a is not type(None))
        return annotation in (int, float)

    return [name for name, info in section_spec(section).model_fields.items() if numeric(info.annotation)]


@dataclass(frozen=True)
class SearchField:
    """One searched field: ``path`` ("train.lr") over [low, high] on a log or linear scale."""

    path: str
    low: float
    high: float
    scale: Scale = "log"

    def __post_init__(self) -> None:
        section, _, name = self.path.partition(".")
        if section not in SECTIONS or not name:
            raise ValueError(f"a search field is section.name with section one of {', '.join(SECTIONS)}, "
                             f"got {self.path!r}")
        if name not in (fields := section_fields(section)):
            close = close_fields(name, fields)
            numeric = numeric_fields(section)
            shown = ", ".join(numeric[:12]) + (f", … ({len(numeric)} in all)" if len(numeric) > 12 else "")
            hint = f"did you mean {' or '.join(f'{section}.{c}' for c in close)}?" if close else (
                f"its numeric fields (what a search can vary): {shown}")
            raise ValueError(f"{self.path}: {section} has no field {name!r}; {hint}")
        if self.scale not in ("log", "linear"):
            raise ValueError(f"scale must be log or linear, got {self.scale!r}")
        if not self.low < self.high:
            raise ValueError(f"{self.path}: low ({self.low:g}) must be below high ({self.high:g})")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"{self.path}: a log scale needs low > 0, got {self.low:g}")

    @classmethod
    def parse(cls, text: str) -> SearchField:
        """``"train.lr=1e-4:1:log"`` (the scale is optional: log by default)."""
        path, sep, rng = text.partition("=")
        parts = rng.split(":")
        if not sep or len(parts) not in (2, 3):
            raise ValueError(f"a search field looks like train.lr=1e-4:1:log, got {text!r}")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"{path.strip()}: low and high must be numbers, got {rng!r}") from None
        scale = parts[2].strip() if len(parts) == 3 else "log"
        return cls(path.strip(), low, high, scale)  # type: ignore[arg-type]

    def value(self, u: float) -> float:
        """The field's value at unit coordinate u ∈ [0, 1]."""
        u = min(max(u, 0.0), 1.0)
        if self.scale == "log":
            return self.low * (self.high / self.low) ** u
        return self.low + u * (self.high - self.low)

    def unit(self, value: float) -> float:
        """The inverse of :meth:`value`."""
        if self.scale == "log":
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)

    def narrowed(self, center: float, width: float) -> SearchField:
        """The sub-range of unit width `width` around `center` (a value), inside this range."""
        c = self.unit(center)
        lo, hi = c - width / 2, c + width / 2
        if lo < 0:
            lo, hi = 0.0, min(1.0, hi - lo)
        if hi > 1:
            lo, hi = max(0.0, lo - (hi - 1)), 1.0
        return SearchField(self.path, self.value(lo), self.value(hi), self.scale)

    def describe(self) -> str:
        return f"{self.path} in [{self.low:.3g}, {self.high:.3g}] ({self.scale})"


def grid_size(budget: int, n_fields: int) -> int:
    """Values per field of the largest full grid within `budget` points."""
    if budget < 1 or n_fields < 1:
        raise ValueError("budget and the number of fields must be at least 1")
    k = max(1, int(math.floor(budget ** (1.0 / n_fields) + 1e-9)))
    while (k + 1) ** n_fields <= budget:
        k += 1
    return k


def grid_points(fields: list[SearchField], budget: int,
                offsets: list[float] | None = None) -> list[dict[str, float]]:
    """A full grid of ``grid_size(budget, d)^d`` points; `offsets` per field in [0, 1) (0.5: centred)."""
    k = grid_size(budget, len(fields))
    offsets = offsets if offsets is not None else [0.5] * len(fields)
    if len(offsets) != len(fields):
        raise ValueError(f"{len(offsets)} grid offsets for {len(fields)} fields")
    axes = [[f.value((i + o) / k) for i in range(k)] for f, o in zip(fields, offsets, strict=True)]
    points: list[dict[str, float]] = [{}]
    for f, axis in zip(fields, axes, strict=True):
        points = [{**p, f.path: v} for p in points for v in axis]
    return points


def random_points(fields: list[SearchField], n: int, rng: _random.Random) -> list[dict[str, float]]:
    """`n` points with every coordinate uniform on its (log or linear) scale."""
    return [{f.path: f.value(rng.random()) for f in fields} for _ in range(n)]


def apply_point(spec: RunSpec, point: dict[str, float], variant: str | None = None) -> RunSpec:
    """`spec` with the point's fields set (validated like a preset's variant)."""
    raw = spec.recipe.model_dump(mode="json")
    for path, value in point.items():
        section, _, name = path.partition(".")
        raw = deep_merge(raw, {section: {name: value}})
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"search point {point} is not a valid recipe: {loc}: {first['msg']}") from None
    return spec.model_copy(update={"recipe": recipe, "variant": variant or spec.variant})


def lower_is_better(metric: str) -> bool:
    return "loss" in metric or metric.endswith("gap") or metric.endswith("error")


@dataclass
class Trial:
    index: int
    round: int
    params: dict[str, float]
    spec: RunSpec
    run_id: str = ""
    status: str = "pending"
    score: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class SearchResult:
    method: str
    fields: list[SearchField]
    score: str
    minimize: bool
    trials: list[Trial]
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> Trial | None:
        done = [t for t in self.trials if not math.isnan(t.score)]
        if not done:
            return None
        return min(done, key=lambda t: t.score) if self.minimize else max(done, key=lambda t: t.score)

    @property
    def best_score(self) -> float:
        b = self.best
        return b.score if b is not None else (math.inf if self.minimize else -math.inf)

    def ranked(self, by: str | None = None, descending: bool | None = None) -> list[Trial]:
        """Trials sorted by the score (best first) or by a field / metric name."""
        key = by or "score"

        def get(t: Trial) -> float:
            if key == "score":
                v = t.score
            elif key in t.params:
                v = t.params[key]
            else:
                v = t.metrics.get(key, math.nan)
            return math.inf if math.isnan(v) else v

        if descending is None:
            descending = key == "score" and not self.minimize
        return sorted(self.trials, key=get, reverse=descending)

    def scatter(self, path: str) -> list[tuple[float, float]]:
        """(field value, score) of every finished trial: score against one hyperparameter."""
        return [(t.params[path], t.score) for t in self.trials if path in t.params and math.isfinite(t.score)]

    def as_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "method": self.method, "score": self.score, "minimize": self.minimize, "notes": self.notes,
            "fields": [f.__dict__ for f in self.fields],
            "best": None if best is None else {"index": best.index, "params": best.params, "score": best.score},
            "trials": [{"index": t.index, "round": t.round, "params": t.params, "run_id": t.run_id,
                        "status": t.status, "score": t.score, "metrics": t.metrics} for t in self.trials],
        }


def inline_executor(device: str = "cpu") -> Executor:
    """Train the specs in this process, nothing stored (tests, preset checks)."""
    from engine.runs.inline import run_outcomes

    return lambda specs: run_outcomes(specs, device=device)


def stored_inline_executor(*, device: str = "cpu", store: Any = None,
                           on_event: Callable[[Any], None] | None = None,
                           should_stop: Callable[[], bool] | None = None, comparison: str | None = None) -> Executor:
    """Train the specs in this process (batched where they can be), writing every run to the run
    store; `should_stop()` cancels the runs (checked every step), `comparison` groups them."""
    from engine.runs.comparison import NOT_STARTED
    from engine.runs.inline import run_outcomes
    from engine.runs.store import RunStore

    def execute(specs: list[RunSpec]) -> list[RunOutcome]:
        with contextlib.ExitStack() as stack:  # one store for the runs and the cleanup after a stop
            db = store if isinstance(store, RunStore) else stack.enter_context(RunStore(store))
            outcomes = run_outcomes(specs, device=device, store=db, on_event=on_event, should_stop=should_stop,
                                    comparison=comparison)
            if should_stop is not None and should_stop():
                _forget_unstarted(db, [o.run_id for o in outcomes if o.reason == NOT_STARTED])
        return outcomes

    return execute


def _forget_unstarted(store: Any, run_ids: list[str]) -> None:
    """A stopped search keeps only the trials that trained: the ones it never began leave the
    store (hundreds of empty "cancelled" rows in History otherwise)."""
    if run_ids:
        store.delete(run_ids)


def runner_executor(*, device: str = "auto", workers: int | None = None, store: Any = None,
                    on_event: Callable[[Any], None] | None = None, comparison: str | None = None) -> Executor:
    """Train the specs in worker processes; every run lands in the run store."""
    from engine.runs.outcomes import OutcomeCollector
    from engine.runs.runner import Runner

    def execute(specs: list[RunSpec]) -> list[RunOutcome]:
        collector = OutcomeCollector()
        with Runner(specs, device=device, workers=workers, store=store, comparison=comparison) as runner:
            for run_id, spec in zip(runner.run_ids, specs, strict=True):
                collector.register(run_id, spec.variant, spec.seed)
            runner.start()
            for event in runner.events():
                collector.add(event)
                if on_event is not None:
                    on_event(event)
            order = list(runner.run_ids)
        return [collector.runs[r] for r in order]

    return execute


def _score(outcome: RunOutcome, metric: str, at: str, minimize: bool) -> float:
    if outcome.status in ("failed", "cancelled", "interrupted", "pending", "running"):
        return math.nan
    try:
        value = float(outcome.value(metric, at))
    except KeyError:
        return math.nan
    if math.isnan(value):
        return math.inf if minimize else -math.inf
    return value


def run_search(
    base: RunSpec,
    fields: list[SearchField],
    *,
    budget: int,
    method: Literal["grid", "random"] = "random",
    refine: int = 0,
    score: str = "val_loss",
    at: str = "final",
    minimize: bool | None = None,
    seed: int = 0,
    grid_offsets: list[float] | None = None,
    executor: Executor | None = None,
    on_round: Callable[[int, list[Trial]], None] | None = None,
    label: str | None = None,
) -> SearchResult:
    """One search over `fields` from the recipe of `base` (every trial keeps base's run seed).

    Trials are named ``"<label> #<k>"`` (label: the method, or the preset variant the search is).

    `seed` drives the random points and random grid placements; `grid_offsets` fixes the grid's
    placement (default centred). The budget is the total number of runs over all rounds.
    """
    if not fields:
        raise ValueError("a search needs at least one field")
    if method not in ("grid", "random"):
        raise ValueError(f"method must be grid or random, got {method!r}")
    if refine < 0 or budget < refine + 1:
        raise ValueError(f"a budget of {budget} cannot cover {refine + 1} rounds")
    paths = [f.path for f in fields]
    if len(set(paths)) != len(paths):
        raise ValueError(f"a field is searched twice: {paths}")
    minimize = lower_is_better(score) if minimize is None else minimize
    execute = executor or inline_executor()
    rng = _random.Random(seed)
    per_round = budget // (refine + 1)
    sizes = [budget - per_round * refine] + [per_round] * refine
    result = SearchResult(method, list(fields), score, minimize, [])
    current = list(fields)
    for rnd, n in enumerate(sizes):
        if method == "grid":
            offsets = grid_offsets if rnd == 0 and grid_offsets is not None else None
            points = grid_points(current, n, offsets)
            if len(points) < n:
                result.notes.append(f"round {rnd + 1}: a full grid of {len(points)} points uses "
                                    f"{len(points)} of the {n} runs")
        else:
            points = random_points(current, n, rng)
        start = len(result.trials)
        trials = [Trial(start + i, rnd, p, apply_point(base, p, f"{label or method} #{start + i + 1}"))
                  for i, p in enumerate(points)]
        for trial, outcome in zip(trials, execute([t.spec for t in trials]), strict=True):
            trial.run_id, trial.status = outcome.run_id, outcome.status
            trial.score = _score(outcome, score, at, minimize)
            trial.metrics = {k: v for k, v in {**outcome.summary, **outcome.best, **outcome.final}.items()
                             if isinstance(v, int | float)}
        result.trials.extend(trials)
        if on_round is not None:
            on_round(rnd, trials)
        best = result.best
        if rnd < refine and best is not None:
            width = SHRINK ** (rnd + 1)
            current = [f.narrowed(best.params[f.path], width) for f in fields]
    return result


# -- a preset's [search] comparison ---------------------------------------------------------


def search_fields(spec: Any) -> list[SearchField]:
    """SearchFields from a preset's ``[search]`` table (``engine.catalogue.presets.SearchSpec``)."""
    return [SearchField(f.field, f.low, f.high, f.scale) for f in spec.fields]


def run_search_preset(loaded: Any, *, quick: bool = True, seeds: list[int] | None = None,
                      executor: Executor | None = None,
                      progress: Callable[[str, int, int, SearchResult], None] | None = None,
                      ) -> tuple[list[RunOutcome], dict[tuple[str, int], list[SearchResult]]]:
    """Run every variant of a preset with a ``[search]`` table as a search, per seed and repeat.

    Returns one RunOutcome per variant and seed (``final``: ``best_score``, ``best_score_worst``,
    ``best_score_best``, ``trials``, and ``best.<field>``, the geometric (log fields) or arithmetic
    mean over repeats of the best point) and the individual search results.
    """
    preset = loaded.preset
    if preset.search is None:
        raise ValueError(f"{loaded.id} has no [search] table")
    seeds = seeds if seeds is not None else preset.default_seeds(quick)
    outcomes: list[RunOutcome] = []
    results: dict[tuple[str, int], list[SearchResult]] = {}
    for variant in preset.variants:
        settings = preset.search_settings(variant)
        fields = search_fields(settings)
        base_specs = {s.seed: s for s in loaded.expand(quick=quick, seeds=seeds) if s.variant == variant.name}
        for seed in seeds:
            runs: list[SearchResult] = []
            for rep in range(settings.repeats):
                rng = _random.Random(_mix(seed, rep))
                offsets = settings.grid_offsets
                if settings.method == "grid" and offsets is None and settings.placement == "random":
                    offsets = [rng.random() for _ in fields]
                res = run_search(
                    base_specs[seed], fields, budget=settings.budget, method=settings.method,
                    refine=settings.refine, score=settings.score, at=settings.at,
                    minimize=None if settings.mode is None else settings.mode == "min",
                    seed=_mix(seed, rep, 1), grid_offsets=offsets, executor=executor, label=variant.name,
                )
                runs.append(res)
                if progress is not None:
                    progress(variant.name, seed, rep, res)
            results[(variant.name, seed)] = runs
            outcomes.append(_search_outcome(variant.name, seed, runs, fields))
    return outcomes, results


def _mix(*parts: int) -> int:
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (p + 0x9E3779B9)) * 1099511628211) % 2**61
    return h


def _search_outcome(variant: str, seed: int, runs: list[SearchResult], fields: list[SearchField]) -> RunOutcome:
    scores = [r.best_score for r in runs]
    minimize = runs[0].minimize
    final: dict[str, float] = {
        "best_score": fmean(scores),
        "best_score_worst": max(scores) if minimize else min(scores),
        "best_score_best": min(scores) if minimize else max(scores),
        "trials": float(sum(len(r.trials) for r in runs)),
        "searches": float(len(runs)),
    }
    for f in fields:
        values = [r.best.params[f.path] for r in runs if r.best is not None]
        if values:
            if f.scale == "log":
                final[f"best.{f.path}"] = math.exp(fmean(math.log(v) for v in values))
            else:
                final[f"best.{f.path}"] = fmean(values)
    status = "done" if all(r.best is not None for r in runs) else "failed"
    return RunOutcome(run_id=f"search-{variant}-{seed}", variant=variant, seed=seed, status=status,
                      reason=f"{len(runs)} searches of {runs[0].method}", final=final)
