"""One comparison as the dashboard sees it: its runs, their full metric series, the verdict.

Events go in through :meth:`Comparison.add` (live from the runner, or replayed from the store:
the same path); every point is kept. The dashboard reads curves, table rows and the verdict out
of it at its own pace, redrawing when :attr:`Comparison.version` moved.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.catalogue.claims import ClaimResult, check_claims
from engine.catalogue.presets import LoadedPreset
from engine.diagnostics.curves import Diagnosis, diagnose
from engine.events import (
    FINAL_STATUSES,
    STOPPED,
    Diagnostics,
    EvalMetrics,
    Event,
    Message,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from engine.recipe.config import RunSpec
from engine.runs.outcomes import OutcomeCollector
from tui_lab.data import series as S
from tui_lab.data.fmt import clean


@dataclass(frozen=True)
class MetricInfo:
    key: str
    title: str
    source: str
    """``steps`` (StepMetrics, every log_every steps) or ``evals`` (EvalMetrics)."""
    is_loss: bool
    smooth: bool = False
    """Whether the smoothing setting applies: only to a noisy per-step series (the minibatch loss).
    An evaluation is measured on a whole split at a few points, and an EMA over four points drags
    the curve far from what was measured (0.92 drawn as 0.62); the learning rate is a schedule."""
    percent: bool = False
    """A fraction shown as a percentage (an accuracy: the plot's axis, like the table, reads 46%)."""


METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        MetricInfo("train_loss", "batch loss", "steps", True, smooth=True),  # minibatch losses, train mode
        MetricInfo("val_loss", "val loss", "evals", True),
        MetricInfo("val_acc", "val accuracy", "evals", False, percent=True),
        MetricInfo("lr", "learning rate", "steps", False),
    )
}

X_AXES = ("step", "epoch", "time")
SMOOTHING = (0.0, 0.6, 0.9)


def smoothing_applies(metric: str) -> bool:
    """Whether the plots smooth `metric` (see ``MetricInfo.smooth``); a metric not listed in
    METRICS is read from the evaluations, so it is never smoothed."""
    info = METRICS.get(metric)
    return info is not None and info.smooth


@dataclass
class Curve:
    """One line of a plot (a variant), with the min/max band across its seeds when it has several."""

    label: str
    color: int
    """Index of the variant, for its colour."""
    xs: list[float]
    ys: list[float]
    band: list[tuple[list[float], list[float]]] = field(default_factory=list)
    """The min and the max line over seeds (empty for one seed)."""


@dataclass
class RunView:
    """One run (a variant × seed): where it is, and every point it reported."""

    index: int
    variant: str
    seed: int
    label: str
    preset: str = ""
    run_id: str | None = None
    status: str = "pending"
    reason: str = ""
    device: str = ""
    n_params: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0
    step: int = 0
    epoch: float = 0.0
    elapsed: float = 0.0
    started: float | None = None
    """When the run started (wall clock, its RunStarted's time)."""
    speed: float | None = None
    wall_time: float | None = None
    steps: dict[str, list[float]] = field(
        default_factory=lambda: {"step": [], "epoch": [], "time": [], "train_loss": [], "lr": []}
    )
    evals: dict[str, list[float]] = field(default_factory=lambda: {"step": [], "epoch": [], "time": []})
    eval_metrics: list[dict[str, float]] = field(default_factory=list)
    best_val_acc: float | None = None
    best_val_loss: float | None = None
    final: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    layers_step: int | None = None
    diag_summary: dict[str, float] = field(default_factory=dict)
    diagnostics: list[Diagnostics] = field(default_factory=list)
    """Every Diagnostics event, in order (for views that show them over time)."""
    messages: list[Message] = field(default_factory=list)
    latest: dict[str, Any] = field(default_factory=dict)
    """The latest event of each other type (``Boundary``, ...), by type name, for extra views."""

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def progress(self) -> float:
        if self.status in ("done",):
            return 1.0
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def eta(self) -> float | None:
        if self.status != "running" or not self.speed or not self.total_steps:
            return None
        return max(0.0, (self.total_steps - self.step) / self.speed)

    @property
    def train_loss(self) -> float | None:
        if self.steps["train_loss"]:
            return self.steps["train_loss"][-1]
        return self.final.get("train_loss")

    def last_eval(self, key: str) -> float | None:
        if key in self.final:
            return self.final[key]
        for metrics in reversed(self.eval_metrics):
            if key in metrics:
                return metrics[key]
        return None

    def series(self, metric: str, x_axis: str) -> tuple[list[int], list[float], list[float]]:
        """(steps, xs, ys) of one metric against the chosen x axis."""
        info = METRICS.get(metric)
        if info is not None and info.source == "steps":
            cols = self.steps
            ys = cols[metric]
            return [int(s) for s in cols["step"]], list(cols[x_axis]), list(ys)
        pairs = [
            (int(s), x, m[metric])
            for s, x, m in zip(self.evals["step"], self.evals[x_axis], self.eval_metrics, strict=True)
            if metric in m
        ]
        return [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]


class Comparison:
    """Runs of one comparison (or a set of stored runs opened together) and what they reported."""

    def __init__(
        self,
        title: str,
        *,
        loaded: LoadedPreset | None = None,
        quick: bool | None = False,
        seeds: list[int] | None = None,
        read_only: bool = False,
        device: str = "auto",
    ) -> None:
        self.title = clean(title)
        """What the header shows. The text a comparison takes in from the store or the runs (its
        title, run labels, reasons, messages) is shown, never obeyed: control characters removed
        (``fmt.clean``)."""
        self.loaded = loaded
        self.quick = quick
        """The preset's quick (True) or full (False) form; None: runs that are neither, or either
        (stored runs whose recipes match no single form of their preset, see `add_stored`)."""
        self.seeds = seeds
        self.read_only = read_only
        self.device = device
        self.specs: list[RunSpec] = []
        self.runs: list[RunView] = []
        self.by_id: dict[str, RunView] = {}
        self.labels: list[str] = []
        self.collector = OutcomeCollector()
        self.messages: list[Message] = []
        self.error = ""
        self.ablation: Any = None
        """The doctor's report when these runs are its ablation (``engine.diagnostics.doctor``): the
        Verdict then says which remedy helped."""
        self.version = 0
        self._claims_cache: tuple[int, list[ClaimResult]] | None = None

    # -- building -------------------------------------------------------------------------

    @property
    def view(self) -> str:
        return self.loaded.preset.view if self.loaded is not None else "curves"

    @property
    def preset_id(self) -> str:
        return self.loaded.id if self.loaded is not None else ""

    def _add_run(self, variant: str, seed: int, label: str, preset: str = "", run_id: str | None = None) -> RunView:
        label = clean(label)
        if label not in self.labels:
            self.labels.append(label)
        run = RunView(index=len(self.runs), variant=variant, seed=seed, label=label, preset=preset)
        self.runs.append(run)
        if run_id is not None:
            self._attach(run, run_id)
        return run

    def _attach(self, run: RunView, run_id: str) -> None:
        run.run_id = run_id
        self.by_id[run_id] = run
        self.collector.register(run_id, run.label, run.seed)

    def add_specs(self, specs: Sequence[RunSpec]) -> None:
        """The runs a live comparison will have, in the runner's order (ids come with attach)."""
        self.specs = list(specs)
        several = len({spec.preset for spec in specs}) > 1  # a rerun of a stored set of several presets
        for spec in specs:
            self._add_run(spec.variant, spec.seed, run_label(spec.preset, spec.variant, several), spec.preset)
            self.runs[-1].status = "starting"
        self.version += 1

    def attach(self, run_ids: Sequence[str]) -> None:
        """The runner's run ids, in the order of the specs."""
        for run, run_id in zip(self.runs, run_ids, strict=False):
            if run.run_id is None:
                self._attach(run, run_id)
                run.status = "pending"
        self.version += 1

    def add_stored(self, rows: Sequence[Any]) -> None:
        """Runs from the store (``RunRow``s): one line per variant, labelled so that runs of
        different presets or repeated runs of one variant and seed stay apart."""
        several = len({r.preset for r in rows}) > 1
        base = [run_label(r.preset, r.variant, several) for r in rows]
        keys = [(b, r.seed) for b, r in zip(base, rows, strict=True)]
        for b, r in zip(base, rows, strict=True):
            label = b if keys.count((b, r.seed)) == 1 else f"{b} #{r.run_id[:6]}"
            run = self._add_run(r.variant, r.seed if r.seed is not None else 0, label, r.preset, r.run_id)
            run.status = r.status if r.status in FINAL_STATUSES else "pending"
            run.total_steps = r.total_steps or 0
            spec = _spec_from_json(r.spec)
            if spec is not None:
                self.specs.append(spec)
        self.quick = stored_form(self.loaded, self.specs) if len(self.specs) == len(rows) else None
        self.version += 1

    # -- events ---------------------------------------------------------------------------

    def add_many(self, events: Iterable[Event]) -> None:
        for event in events:
            self.add(event)

    def add(self, event: Event) -> None:
        """Fold one event in. Every metric point is kept."""
        run = self.by_id.get(event.run_id)
        if run is None:
            if not isinstance(event, RunStarted):
                if isinstance(event, Message):
                    self.messages.append(dataclasses.replace(event, text=clean(event.text, lines=True)))
                    self.version += 1
                return
            run = self._match(event)
        self.version += 1
        if isinstance(event, RunStarted | StepMetrics | EvalMetrics | Diagnostics | RunFinished):
            self.collector.add(event)
        if isinstance(event, StepMetrics):
            cols = run.steps
            cols["step"].append(event.step)
            cols["epoch"].append(event.epoch)
            cols["time"].append(event.elapsed)
            cols["train_loss"].append(event.train_loss)
            cols["lr"].append(event.lr)
            run.step = max(run.step, event.step)
            run.epoch = event.epoch
            run.elapsed = event.elapsed
            run.speed = event.steps_per_sec
            if run.status in ("pending", "starting"):
                run.status = "running"
        elif isinstance(event, EvalMetrics):
            run.evals["step"].append(event.step)
            run.evals["epoch"].append(event.epoch)
            run.evals["time"].append(event.elapsed)
            run.eval_metrics.append(dict(event.metrics))
            run.step = max(run.step, event.step)
            run.elapsed = max(run.elapsed, event.elapsed)
            acc, loss = event.metrics.get("val_acc"), event.metrics.get("val_loss")
            if isinstance(acc, float) and math.isfinite(acc):
                run.best_val_acc = acc if run.best_val_acc is None else max(run.best_val_acc, acc)
            if isinstance(loss, float) and math.isfinite(loss):
                run.best_val_loss = loss if run.best_val_loss is None else min(run.best_val_loss, loss)
            if run.status in ("pending", "starting"):
                run.status = "running"
        elif isinstance(event, Diagnostics):
            run.diagnostics.append(event)
            for name, stats in event.layers.items():  # the latest value of each statistic
                run.layers.setdefault(name, {}).update(stats)
            run.layers_step = event.step
            run.diag_summary = dict(event.summary)
        elif isinstance(event, RunStarted):
            run.status = "running"
            run.started = event.time
            run.device = event.device
            run.n_params = event.n_params
            run.total_steps = event.total_steps
            run.steps_per_epoch = event.steps_per_epoch
            run.preset = event.preset or run.preset
        elif isinstance(event, RunFinished):
            run.status = event.status
            run.reason = clean(event.reason)
            run.step = max(run.step, event.step)
            run.final = dict(event.final)
            run.best = dict(event.best)
            run.summary = dict(event.summary)
            run.wall_time = event.wall_time
            run.speed = None
        elif isinstance(event, Message):
            event = dataclasses.replace(event, text=clean(event.text, lines=True))
            run.messages.append(event)
            self.messages.append(event)
        else:
            run.latest[type(event).__name__] = event

    def _match(self, event: RunStarted) -> RunView:
        """A RunStarted for a run id not attached yet: the first unattached run of that variant and
        seed, or a new run."""
        for run in self.runs:
            if run.run_id is None and run.variant == event.variant and run.seed == event.seed:
                self._attach(run, event.run_id)
                return run
        return self._add_run(event.variant, event.seed, event.variant, event.preset, event.run_id)

    def end_unfinished(self, status: str, reason: str) -> None:
        """Close runs the runner never ended (it failed to start, or it died)."""
        for run in self.runs:
            if not run.finished:
                run.status, run.reason = status, clean(reason)
                if run.run_id is not None:
                    self.collector.add(RunFinished(run.run_id, status, run.step, reason, {}, {}, 0.0))  # type: ignore[arg-type]
        self.version += 1

    # -- reading --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return bool(self.runs) and all(r.finished for r in self.runs)

    @property
    def n_finished(self) -> int:
        return sum(r.finished for r in self.runs)

    @property
    def n_cancelled(self) -> int:
        """Runs stopped from outside: cancelled, or interrupted (their process or terminal went away)."""
        return sum(r.status in STOPPED for r in self.runs)

    @property
    def n_failed(self) -> int:
        """Runs that failed (an error, out of memory, a worker that died): not diverged ones, which
        are an outcome of the comparison."""
        return sum(r.status == "failed" for r in self.runs)

    @property
    def all_cancelled(self) -> bool:
        """Every run was cancelled (nothing to read: the header and the toast say so)."""
        return bool(self.runs) and self.n_cancelled == len(self.runs)

    def claims_on_cancelled(self, claims: list[ClaimResult]) -> list[ClaimResult]:
        """Those of the checked `claims` (``claims()``) not checked because a run they compare was
        cancelled."""
        cancelled = {r.variant for r in self.runs if r.status in STOPPED}
        return [r for r in claims if r.problem and cancelled & set(r.claim.variants)]

    @property
    def multi_seed(self) -> bool:
        seeds: dict[str, set[int]] = {}
        for r in self.runs:
            seeds.setdefault(r.label, set()).add(r.seed)
        return any(len(s) > 1 for s in seeds.values())

    def color_of(self, run: RunView) -> int:
        return self.labels.index(run.label)

    def run_title(self, run: RunView) -> str:
        return f"{run.label} s{run.seed}" if self.multi_seed else run.label

    def has_metric(self, metric: str) -> bool:
        return any(run.series(metric, "step")[0] for run in self.runs)

    def curves(self, metric: str, x_axis: str = "step", smoothing: float = 0.0, log: bool = False) -> list[Curve]:
        """One curve per variant: its run's points, or the mean over its seeds with a min/max band.
        `smoothing` is the EMA weight for a metric it applies to (`smoothing_applies`)."""
        out: list[Curve] = []
        smoothing = smoothing if smoothing_applies(metric) else 0.0
        for i, label in enumerate(self.labels):
            runs = [r for r in self.runs if r.label == label]
            per_seed = []
            for r in runs:
                steps, xs, ys = r.series(metric, x_axis)
                if smoothing:
                    ys = S.ema(ys, smoothing)
                per_seed.append((steps, xs, ys))
            per_seed = [p for p in per_seed if p[0]]
            if not per_seed:
                continue
            if len(per_seed) == 1:
                _, xs, ys = per_seed[0]
                curve = Curve(label, i, *_shape(xs, ys, log))
            else:
                xs, mean, lo, hi = S.aggregate(per_seed)
                curve = Curve(label, i, *_shape(xs, mean, log))
                curve.band = [_shape(xs, lo, log), _shape(xs, hi, log)]
            if curve.xs:
                out.append(curve)
        return out

    def lr_spans_decades(self) -> bool:
        """Learning rates that differ by 10× or more (across variants or a schedule): drawn on a log scale."""
        values = [v for r in self.runs for v in r.steps["lr"] if S.is_finite(v) and v > 0]
        return bool(values) and max(values) >= 10 * min(values)

    def claims(self) -> list[ClaimResult]:
        """The preset's claims, measured (each says why it is not checked yet while runs go on)."""
        if self.loaded is None or not self.loaded.preset.claims:
            return []
        if self._claims_cache is None or self._claims_cache[0] != self.version:
            self._claims_cache = (self.version, check_claims(self.loaded.preset.claims, self.collector.outcomes()))
        return self._claims_cache[1]

    def ablation_lines(self) -> list[tuple[bool, str]]:
        """(helped, words) per remedy of a doctor's ablation, once every run has ended."""
        if self.ablation is None or not self.finished:
            return []
        from engine.diagnostics.doctor import ablation_verdicts

        return [(v.helped, v.text()) for v in ablation_verdicts(self.ablation, self.collector.outcomes())]

    def diagnoses(self) -> list[tuple[RunView, Diagnosis]]:
        """The plain-words reading of each finished run's curves."""
        out = []
        for run in self.runs:
            if run.finished and run.run_id is not None:
                outcome = self.collector.runs.get(run.run_id)
                evals = outcome.evals if outcome is not None else []
                out.append((run, diagnose(evals, run.status, run.reason)))
        return out

    def run_specs(self) -> list[RunSpec]:
        """The specs to run again (a live comparison's, or rebuilt from stored runs' spec JSON)."""
        return list(self.specs)


def run_label(preset: str | None, variant: str, several_presets: bool) -> str:
    """A run's line in a comparison: its variant, as "preset:variant" when the runs come from
    several presets (stored runs opened together, and a rerun of them)."""
    return f"{preset}:{variant}" if several_presets else variant


def finish_note(c: Comparison) -> tuple[str, str]:
    """The toast when a live comparison's runs have all ended: (title, message). A cancelled run
    is not an outcome: when every run was cancelled the comparison reads "cancelled", claims not
    checked (not "0/4 claims hold"); when some were, it says how many, and that the claims which
    compare them were not checked."""
    claims = c.claims()
    n, cancelled = len(c.runs), c.n_cancelled
    kinds = {r.status for r in c.runs if r.status in STOPPED}
    word = kinds.pop() if len(kinds) == 1 else "stopped"  # cancelled, interrupted, or some of each
    if c.all_cancelled:
        runs = f"all {n} runs" if n > 1 else "the run"
        unchecked = " — claims not checked" if claims else ""
        return f"{c.title}: {word}", f"{runs} {word}{unchecked} · r runs {'them' if n > 1 else 'it'} again"
    parts = []
    if cancelled:
        parts.append(f"{cancelled} of {n} runs {word}")
    if claims:
        held, unchecked = sum(r.holds for r in claims), sum(bool(r.problem) for r in claims)
        on_cancelled = len(c.claims_on_cancelled(claims))
        if not cancelled:
            parts.append(f"{held}/{len(claims)} claims hold")
        elif len(claims) > unchecked:
            parts.append(f"{held}/{len(claims) - unchecked} checked claims hold")
        if on_cancelled:
            needs = "it needs" if on_cancelled == 1 else "they need"
            parts.append(f"{on_cancelled} not checked: {needs} the {word} run{'s' if cancelled > 1 else ''}")
        if unchecked > on_cancelled:
            parts.append(f"{unchecked - on_cancelled} {'more ' if on_cancelled else ''}not checked")
    failed = [r for r in c.runs if r.status == "failed"]
    if failed:
        why = f": {failed[0].reason}" if failed[0].reason else ""
        parts.append(f"{'the run' if n == 1 else f'{len(failed)} of {n} runs'} failed{why}")
    if diverged := sum(r.status == "diverged" for r in c.runs):
        parts.append(f"{diverged} diverged")
    parts.append("the numbers: the Dashboard's Verdict tab (v)")
    title = f"{c.title}: " + ("failed" if len(failed) == n else "finished") + (f", {cancelled} {word}" if cancelled else "")
    return title, " · ".join(parts)


def stored_form(loaded: LoadedPreset | None, specs: Sequence[RunSpec]) -> bool | None:
    """Whether stored runs are the quick (True) or the full (False) form of `loaded`: each run's
    recipe is compared with what the preset expands its variant and seed to. None when that cannot be
    told: no preset, a variant or recipe it no longer has (edited since), a mix of the two forms, or
    a preset whose two forms are the same recipes. A rerun says which form it runs from this."""
    if loaded is None or not specs:
        return None
    seeds = sorted({s.seed for s in specs})
    forms = []
    for quick in (True, False):
        try:
            expanded = {(s.variant, s.seed): s.key() for s in loaded.expand(quick=quick, seeds=seeds)}
        except ValueError:  # a PresetError: the preset no longer expands
            return None
        if all(expanded.get((s.variant, s.seed)) == s.key() for s in specs):
            forms.append(quick)
    return forms[0] if len(forms) == 1 else None


def stored_forms(rows: Sequence[Any], load: Callable[[str], LoadedPreset] | None = None) -> dict[str, bool | None]:
    """Each stored run's form (``RunRow``s, by run id): quick (True), full (False), or None where
    `stored_form` could not tell it (no preset, one edited since, a search's trial, a preset whose
    forms are the same recipes). Each preset is loaded (`load`, default ``load_preset``) and expanded
    once for all its runs."""
    if load is None:
        from engine.catalogue.presets import load_preset as load
    by_preset: dict[str, list[tuple[str, RunSpec]]] = {}
    out: dict[str, bool | None] = {}
    for r in rows:
        out[r.run_id] = None
        spec = _spec_from_json(r.spec) if isinstance(r.spec, dict) else None
        if spec is not None and r.preset:
            by_preset.setdefault(r.preset, []).append((r.run_id, spec))
    for preset, runs in by_preset.items():
        try:
            loaded = load(preset)
            seeds = sorted({spec.seed for _, spec in runs})
            expanded = [{(s.variant, s.seed): s.key() for s in loaded.expand(quick=quick, seeds=seeds)}
                        for quick in (True, False)]
        except Exception:  # noqa: BLE001 - a preset gone, edited or unreadable: its runs' form is unknown
            continue
        for run_id, spec in runs:
            key = spec.key()
            forms = [quick for quick, keys in zip((True, False), expanded, strict=True)
                     if keys.get((spec.variant, spec.seed)) == key]
            out[run_id] = forms[0] if len(forms) == 1 else None
    return out


def _spec_from_json(data: dict[str, Any]) -> RunSpec | None:
    """The RunSpec a stored run was made from, or None when it no longer validates."""
    try:
        return RunSpec.from_stored(data)
    except ValueError:
        return None


def _shape(xs: Sequence[float], ys: Sequence[float], log: bool) -> tuple[list[float], list[float]]:
    return S.log10_series(xs, ys) if log else S.finite_points(xs, ys)
