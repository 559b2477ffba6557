"""Running a comparison without the app: a live rich table while it trains, then the results."""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.catalogue.claims import ClaimResult, check_claims
from engine.catalogue.presets import LoadedPreset
from engine.diagnostics.curves import diagnose
from engine.events import STOPPED, Event
from engine.recipe.config import RunSpec
from engine.runs.comparison import new_run_id
from engine.runs.inline import run_inline
from engine.runs.outcomes import OutcomeCollector, RunOutcome
from engine.runs.runner import STOP_CODES, STOP_WORDS, Runner
from engine.runs.store import RunStore
from tui_lab.data import fmt
from tui_lab.tables import clip_name, fit_names, fits, longest

STATUS_STYLE = {
    "done": "green",
    "early-stopped": "cyan",
    "diverged": "red",
    "failed": "bold red",
    "cancelled": "yellow",
    "interrupted": "yellow",
    "running": "blue",
    "pending": "dim",
}


@dataclass
class ComparisonResult:
    preset: LoadedPreset
    quick: bool
    outcomes: list[RunOutcome]
    claims: list[ClaimResult]
    interrupted: bool = False
    wall_time: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    stopped_by: str | None = None
    """The signal that interrupted the comparison ("SIGHUP", "SIGTERM"; None: Ctrl+C or nothing)."""

    @property
    def any_failed(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes)

    @property
    def claims_hold(self) -> bool:
        return all(c.holds for c in self.claims)

    def as_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset.id,
            "title": self.preset.preset.title,
            "quick": self.quick,
            "interrupted": self.interrupted,
            "wall_time": self.wall_time,
            "runs": [
                {
                    "run_id": o.run_id,
                    "variant": o.variant,
                    "seed": o.seed,
                    "status": o.status,
                    "reason": o.reason,
                    "steps": o.step,
                    "wall_time": o.wall_time,
                    "final": o.final,
                    "best": o.best,
                    "summary": o.summary,
                    "diagnosis": diagnose(o.evals, o.status, o.reason).text,
                }
                for o in self.outcomes
            ],
            "claims": [c.as_dict() for c in self.claims],
        }


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        if math.isinf(x) or math.isnan(x):
            return str(x)
        return f"{x:.{digits}g}"
    return str(x)


class _Progress:
    """The live table: one row per run."""

    def __init__(self, specs: list[RunSpec], run_ids: list[str], collector: OutcomeCollector) -> None:
        self.rows = list(zip(run_ids, specs, strict=True))
        self.collector = collector
        self.speed: dict[str, float] = {}
        self.total: dict[str, int] = {}

    def note(self, event: Event) -> None:
        if hasattr(event, "steps_per_sec"):
            self.speed[event.run_id] = event.steps_per_sec  # type: ignore[union-attr]
        if hasattr(event, "total_steps"):
            self.total[event.run_id] = event.total_steps  # type: ignore[union-attr]

    def render(self, width: int | None = None) -> Table:
        """The table in `width` cells (unlimited when None): numbers are never cut, the variant
        names give way (cut in the middle, with an ellipsis), and "batch loss" takes two lines of
        header when the names would have to shorten for it."""
        rows = self._rows()
        names = {"variant": longest(spec.variant for spec, _, _ in rows)}
        if fits(whole := self._table(rows, "batch loss", names), width):
            return whole
        return fit_names(lambda lengths: self._table(rows, "batch\nloss", lengths), width, names, floor=8)

    def _rows(self) -> list[tuple[RunSpec, str, list[str]]]:
        """Each run's spec, status and cells (variant, seed, step, batch loss, val acc, status, steps/s)."""
        rows = []
        for run_id, spec in self.rows:
            o = self.collector.runs.get(run_id)
            loss = o.steps[-1]["train_loss"] if o and o.steps else None
            acc = o.evals[-1].get("val_acc") if o and o.evals else None
            status = o.status if o else "pending"
            total = self.total.get(run_id)
            if status == "pending" and total is not None:  # it has started (RunStarted said its length)
                status = "running"
            step = f"{o.step}/{total}" if o and total else "–"
            rows.append((spec, status, [spec.variant, str(spec.seed), step, _fmt(loss), fmt.pct(acc), status,
                                        _fmt(self.speed.get(run_id), 3)]))
        return rows

    @staticmethod
    def _table(rows: list[tuple[RunSpec, str, list[str]]], loss: str, lengths: dict[str, int]) -> Table:
        """The live table of `rows`, its loss column headed `loss`, the variant names cut to
        `lengths["variant"]` cells."""
        table = Table(expand=False, pad_edge=False)
        for col in ("variant", "seed", "step", loss, "val acc", "status", "steps/s"):
            table.add_column(col, justify="left" if col in ("variant", "status") else "right", no_wrap=True)
        for spec, status, cells in rows:
            table.add_row(Text(clip_name(spec.variant, lengths["variant"])), *cells[1:5],
                          Text(status, style=STATUS_STYLE.get(status, "")), cells[6])
        return table


def run_comparison(
    loaded: LoadedPreset,
    *,
    quick: bool = False,
    seeds: list[int] | None = None,
    device: str = "auto",
    workers: int | None = None,
    store: str | None = None,
    console: Console | None = None,
    live: bool = True,
    fast: str = "",
    batch: bool = True,
) -> ComparisonResult:
    """Run every variant × seed of a preset in worker processes and check its claims. `fast`:
    opt-in fast paths for batched groups (``engine.batched.accel.FastPaths``, e.g. "cuda_graphs");
    `batch=False` trains every run on its own."""
    specs = loaded.expand(quick=quick, seeds=seeds)
    collector = OutcomeCollector()
    console = console or Console(stderr=True)
    t0 = time.perf_counter()
    interrupted = False
    signal_name: str | None = None
    if workers == 0:  # in this process, one run after another (debugging, profiling)
        run_ids = [new_run_id() for _ in specs]
        for run_id, spec in zip(run_ids, specs, strict=True):
            collector.register(run_id, spec.variant, spec.seed)
        try:
            run_inline(specs, emit=collector.add, device=device, store=store, fast=fast, batch=batch,
                       run_ids=run_ids)
        except KeyboardInterrupt as exc:
            interrupted, signal_name = True, getattr(exc, "signal_name", None)
            _settle_from_store(collector, store)
        return _result(loaded, quick, collector, interrupted, t0, signal_name)
    runner = Runner(specs, device=device, workers=workers, store=store, fast=fast, batch=batch)
    for run_id, spec in zip(runner.run_ids, specs, strict=True):
        collector.register(run_id, spec.variant, spec.seed)
    progress = _Progress(specs, runner.run_ids, collector)
    try:
        runner.start()
        # drawn at each refresh (4 a second, and once more at the end), not at each of the dozens of
        # events a second: fitting the table to the terminal measures it, a few milliseconds each time
        view = Live(get_renderable=lambda: progress.render(console.width), console=console,
                    refresh_per_second=4) if live else None
        with view or nullcontext():
            for event in runner.events():
                collector.add(event)
                progress.note(event)
    except KeyboardInterrupt as exc:  # Ctrl+C, or a signal (SignalStop): the runs stop and say which
        interrupted, signal_name = True, getattr(exc, "signal_name", None)
        runner.cancel(signal_name=signal_name)
    finally:
        runner.close()
    if interrupted:
        # close() cancelled the runs and waited for their last events (a cancelled run's last
        # evaluation and its RunFinished, or the store's row for one it had to stop): they are the
        # figures the store keeps, so they are the ones to print
        for event in runner.poll(0):
            collector.add(event)
    return _result(loaded, quick, collector, interrupted, t0, signal_name)


def _settle_from_store(collector: OutcomeCollector, store: str | None) -> None:
    """Runs without a final event (an interrupted `--workers 0` comparison): the store's ending."""
    unfinished = [o for o in collector.outcomes() if not o.finished]
    if not unfinished:
        return
    with RunStore(store) as db:
        for o in unfinished:
            try:
                collector.add(RunStore.finished_event(db.get_run(o.run_id)))
            except KeyError:  # never registered (interrupted before the store had it)
                continue


def _result(loaded: LoadedPreset, quick: bool, collector: OutcomeCollector, interrupted: bool,
            t0: float, signal_name: str | None = None) -> ComparisonResult:
    if interrupted:
        for o in collector.outcomes():
            if not o.finished:
                o.status, o.reason = (("interrupted", STOP_WORDS[STOP_CODES[signal_name]]) if signal_name
                                      else ("cancelled", "interrupted (Ctrl+C)"))
    outcomes = collector.outcomes()
    claims = check_claims(loaded.preset.claims, outcomes)
    return ComparisonResult(loaded, quick, outcomes, claims, interrupted, time.perf_counter() - t0,
                            stopped_by=signal_name)


def results_table(result: ComparisonResult, width: int | None = None) -> Table:
    """One row per run. Numbers are never cut: in a narrow terminal (`width` under 90) the
    minimum training loss goes (the final one stays) and the variant names give way (cut in the
    middle, with an ellipsis)."""
    rows = [_result_cells(o) for o in result.outcomes]
    cols = ["variant", "seed", "status", "train loss", "min train", "val loss", "val acc", "best step", "wall s"]
    if width is not None and width < 90:
        rows = [r[:4] + r[5:] for r in rows]
        cols.remove("min train")
    title = escape(fmt.clean(f"{result.preset.preset.title}{' (quick)' if result.quick else ''}"))

    def build(lengths: dict[str, int]) -> Table:
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for col in cols:
            table.add_column(col, justify="left" if col in ("variant", "status") else "right", no_wrap=True)
        for o, r in zip(result.outcomes, rows, strict=True):
            table.add_row(Text(clip_name(r[0], lengths["variant"])), r[1],
                          Text(o.status, style=STATUS_STYLE.get(o.status, "")), *r[3:])
        return table

    return fit_names(build, width, {"variant": longest(r[0] for r in rows)}, floor=8)


def _result_cells(o: RunOutcome) -> list[str]:
    """A run's row of the results table: variant, seed, status, train loss, min train, val loss,
    val acc, best step (of the lowest val loss), wall s."""
    def last(key: str) -> Any:
        """The final figure, or for a run stopped without one (Ctrl+C) its last evaluation's."""
        if key in o.final:
            return o.final[key]
        return o.evals[-1].get(key) if o.evals else None

    return [o.variant, str(o.seed), o.status, _fmt(last("train_loss")), _fmt(o.best.get("min_train_loss")),
            _fmt(last("val_loss")), fmt.pct(last("val_acc")), _step(o.best.get("best_step")), f"{o.wall_time:.1f}"]


def _step(x: object) -> str:
    """A step count as a whole number ("–" when unknown)."""
    return f"{x:.0f}" if isinstance(x, int | float) and math.isfinite(x) else "–"


def claims_view(claims: list[ClaimResult]) -> Group:
    lines = []
    for c in claims:
        if c.holds:
            mark = Text("✔ holds  ", style="green")
        elif c.problem:  # a run it needs was cancelled or failed, or a metric is missing
            mark = Text("? not checked  ", style="yellow")
        else:
            mark = Text("✘ fails  ", style="red")
        lines.append(Text.assemble(mark, (fmt.clean(c.claim.text), "bold")))
        lines.append(Text("    " + fmt.clean(c.describe()), style="dim"))
    return Group(*lines)


def print_result(result: ComparisonResult, console: Console, as_json: bool = False) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
        return
    console.print(results_table(result, console.width))
    for o in result.outcomes:
        if o.status in ("failed", "diverged", *STOPPED):
            console.print(f"[bold]{escape(fmt.clean(o.variant))}[/] (seed {o.seed}): {o.status}: "
                          f"{escape(fmt.clean(o.reason))}")
    # the curves of the runs that ended on their own (a cancelled or failed run's line is above)
    diagnoses = {(o.variant, o.seed): diagnose(o.evals, o.status, o.reason) for o in result.outcomes
                 if o.status != "failed" and o.status not in STOPPED}
    if diagnoses:
        console.print("[bold]Curves[/]")
    for (variant, seed), d in diagnoses.items():
        console.print(f"  {escape(fmt.clean(variant))} (seed {seed}): {escape(fmt.clean(d.text))}")
    if result.claims and result.interrupted and all(c.problem for c in result.claims):
        console.print(f"[bold]Claims[/] [yellow]not checked[/]: the comparison was interrupted "
                      f"({len(result.claims)} claim{'s' if len(result.claims) != 1 else ''})")
    elif result.claims:
        console.print("[bold]Claims[/]")
        console.print(claims_view(result.claims))
    n = len(result.outcomes)
    console.print(f"[dim]{n} run{'s' if n != 1 else ''} in {result.wall_time:.1f} s[/]")
