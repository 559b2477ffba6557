"""A preset with a ``[search]`` table, as the dashboard sees it: each variant is a whole search.

``engine.catalogue.search.run_search_preset`` runs one search per variant (and seed, and repeat); every
trial is an ordinary run whose events stream in like any other. Here the trials are grouped by
the search they belong to (their ``label`` is the preset's variant, their title the trial's name,
``random #3``), the curves show each search's best trial so far, and the verdict checks the
preset's claims on the searches' outcomes (``best_score``, ``best.<field>``), never on single
trials. Two events of our own come from the search's thread (``tui_lab.search_bridge``):
:class:`SearchDone` after each search, :class:`SearchFinished` at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.catalogue.claims import ClaimResult, check_claims
from engine.catalogue.presets import LoadedPreset
from engine.diagnostics.curves import Diagnosis, diagnose
from engine.events import RunStarted
from engine.runs.outcomes import RunOutcome
from tui_lab.data import series as S
from tui_lab.data.comparison import Comparison, Curve, RunView, smoothing_applies


@dataclass(frozen=True)
class SearchDone:
    """One search (a variant × seed × repeat) ended; `result` is its ``engine.catalogue.search.SearchResult``."""

    variant: str
    seed: int
    repeat: int
    result: Any
    run_id: str = ""


@dataclass(frozen=True)
class SearchFinished:
    """Every search ended: one outcome per variant and seed (what the claims are checked on)."""

    outcomes: list[RunOutcome] = field(default_factory=list)
    run_id: str = ""


def trial_number(name: str) -> str:
    """``random #3`` → ``#3`` (the part of a trial's name after its method)."""
    head, sep, tail = name.rpartition("#")
    return f"#{tail}" if sep else name


def expected_trials(loaded: LoadedPreset, seeds: list[int]) -> int:
    """How many runs the whole search comparison trains (a grid may use fewer than its budget)."""
    from engine.catalogue.search import grid_size

    total = 0
    for variant in loaded.preset.variants:
        s = loaded.preset.search_settings(variant)
        per_round = s.budget // (s.refine + 1)
        sizes = [s.budget - per_round * s.refine] + [per_round] * s.refine
        d = len(s.fields)
        runs = sum(grid_size(n, d) ** d if s.method == "grid" else n for n in sizes)
        total += runs * s.repeats * len(seeds)
    return total


class SearchComparison(Comparison):
    """The runs of a search preset: trials grouped by search; claims on the search outcomes."""

    trials_cancellable = False
    """The search's thread decides which trials come next: cancel the whole search (C), not one trial."""

    def __init__(self, title: str, *, loaded: LoadedPreset, quick: bool = False, seeds: list[int] | None = None,
                 device: str = "auto") -> None:
        super().__init__(title, loaded=loaded, quick=quick, seeds=seeds, device=device)
        preset = loaded.preset
        if preset.search is None:
            raise ValueError(f"{loaded.id} has no [search] table")
        self.search_seeds = list(seeds if seeds is not None else preset.default_seeds(quick))
        self.settings = {v.name: preset.search_settings(v) for v in preset.variants}
        self.fields = [f.field for f in preset.search.fields]
        self.field_scales = {f.field: f.scale for f in preset.search.fields}
        self.score = preset.search.score
        self.expected = expected_trials(loaded, self.search_seeds)
        self.results: dict[tuple[str, int], list[Any]] = {}
        """Each finished search's SearchResult, by (variant, seed)."""
        self.outcomes: list[RunOutcome] | None = None
        self.search_ended = False
        self.trial_names: dict[str, str] = {}
        self.trial_params: dict[str, dict[str, float]] = {}
        for name in (v.name for v in preset.variants):
            self.labels.append(name)  # colours in the preset's order, before any trial starts
        self.specs = loaded.expand(quick=quick, seeds=self.search_seeds)
        """The searches' base specs (one per variant and seed), what "r" reruns from."""

    # -- events ---------------------------------------------------------------------------

    @property
    def view(self) -> str:
        return "search"

    def add(self, event: Any) -> None:
        if isinstance(event, SearchDone):
            self.results.setdefault((event.variant, event.seed), []).append(event.result)
            self.version += 1
            return
        if isinstance(event, SearchFinished):
            self.outcomes = list(event.outcomes)
            self.search_ended = True
            self.version += 1
            return
        if isinstance(event, RunStarted) and event.run_id not in self.by_id:
            spec = event.spec or {}
            self.trial_names[event.run_id] = str(spec.get("variant", event.variant))
            recipe = spec.get("recipe", {})
            params: dict[str, float] = {}
            for path in self.fields:
                section, _, name = path.partition(".")
                value = recipe.get(section, {}).get(name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    params[path] = float(value)
            self.trial_params[event.run_id] = params
        super().add(event)

    def end_unfinished(self, status: str, reason: str) -> None:
        self.search_ended = True
        super().end_unfinished(status, reason)

    # -- reading --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.search_ended and all(r.finished for r in self.runs)

    def run_title(self, run: RunView) -> str:
        name = self.trial_names.get(run.run_id or "", "")
        seed = f" s{run.seed}" if len(self.search_seeds) > 1 else ""
        return f"{run.label} {trial_number(name)}{seed}" if name else f"{run.label}{seed}"

    def trial_score(self, run: RunView) -> float:
        """The run's score as its search ranks it (NaN while it runs or when it failed)."""
        if run.run_id is None or not run.finished or run.status in ("failed", "cancelled", "interrupted"):
            return math.nan
        outcome = self.collector.runs.get(run.run_id)
        settings = self.settings.get(run.label)
        if outcome is None or settings is None:
            return math.nan
        try:
            value = float(outcome.value(settings.score, settings.at))
        except (KeyError, TypeError, ValueError):
            return math.nan
        return value if math.isfinite(value) else (math.inf if self.minimize(run.label) else -math.inf)

    def minimize(self, variant: str) -> bool:
        from engine.catalogue.search import lower_is_better

        settings = self.settings.get(variant)
        if settings is None or settings.mode is None:
            return lower_is_better(settings.score if settings is not None else self.score)
        return settings.mode == "min"

    def best_run(self, label: str) -> RunView | None:
        """The best finished trial of a search so far (else its latest trial with points)."""
        runs = [r for r in self.runs if r.label == label]
        scored = [(self.trial_score(r), r) for r in runs]
        scored = [(s, r) for s, r in scored if not math.isnan(s)]
        if scored:
            pick = min if self.minimize(label) else max
            return pick(scored, key=lambda sr: sr[0])[1]
        started = [r for r in runs if r.steps["step"] or r.evals["step"]]
        return started[-1] if started else None

    def curves(self, metric: str, x_axis: str = "step", smoothing: float = 0.0, log: bool = False) -> list[Curve]:
        """One curve per search: its best trial so far (a mean over trials of different learning
        rates would describe no run at all)."""
        out: list[Curve] = []
        for i, label in enumerate(self.labels):
            run = self.best_run(label)
            if run is None:
                continue
            steps, xs, ys = run.series(metric, x_axis)
            if not steps:
                continue
            if smoothing and smoothing_applies(metric):
                ys = S.ema(ys, smoothing)
            px, py = S.log10_series(xs, ys) if log else S.finite_points(xs, ys)
            if px:
                out.append(Curve(label, i, px, py))
        return out

    def claims(self) -> list[ClaimResult]:
        """The preset's claims on the searches' outcomes (each says why it waits until every search ended)."""
        if self.loaded is None or not self.loaded.preset.claims:
            return []
        if self._claims_cache is None or self._claims_cache[0] != self.version:
            self._claims_cache = (self.version, check_claims(self.loaded.preset.claims, self.outcomes or []))
        return self._claims_cache[1]

    def diagnoses(self) -> list[tuple[RunView, Diagnosis]]:
        """The curve reading of each search's best trial (not of every trial: most of a search's
        runs are meant to be bad)."""
        out = []
        for label in self.labels:
            run = self.best_run(label)
            if run is not None and run.finished and run.run_id is not None:
                outcome = self.collector.runs.get(run.run_id)
                out.append((run, diagnose(outcome.evals if outcome is not None else [], run.status, run.reason)))
        return out

    def scatter(self, path: str) -> list[tuple[str, list[float], list[float]]]:
        """(search, field values, scores) of every finished trial, one series per search."""
        out = []
        for label in self.labels:
            xs, ys = [], []
            for run in self.runs:
                if run.label != label or run.run_id is None:
                    continue
                x = self.trial_params.get(run.run_id, {}).get(path)
                y = self.trial_score(run)
                if x is not None and math.isfinite(y):
                    xs.append(x)
                    ys.append(y)
            out.append((label, xs, ys))
        return out

    def summary_rows(self) -> list[dict[str, Any]]:
        """Per search variant and seed: trials done, the best score and where it was found
        (from the finished searches when there are; live from the finished trials before)."""
        rows = []
        for label in self.labels:
            for seed in self.search_seeds:
                trials = [r for r in self.runs if r.label == label and r.seed == seed]
                done = [r for r in trials if r.finished]
                results = self.results.get((label, seed), [])
                row: dict[str, Any] = {"variant": label, "seed": seed, "done": len(done), "started": len(trials),
                                       "searches": len(results)}
                outcome = next((o for o in self.outcomes or [] if o.variant == label and o.seed == seed), None)
                if outcome is not None:
                    row["best"] = outcome.final.get("best_score", math.nan)
                    row["params"] = {f: outcome.final.get(f"best.{f}", math.nan) for f in self.fields}
                else:
                    scored = [(self.trial_score(r), r) for r in done]
                    scored = [(s, r) for s, r in scored if not math.isnan(s)]
                    if scored:
                        pick = min if self.minimize(label) else max
                        s, r = pick(scored, key=lambda sr: sr[0])
                        row["best"] = s
                        row["params"] = dict(self.trial_params.get(r.run_id or "", {}))
                rows.append(row)
        return rows
