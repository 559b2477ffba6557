"""Running a comparison without the app: a live rich table while it trains, then the results."""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.claims import ClaimResult, check_claims
from engine.config import RunSpec
from engine.diagnostics.curves import diagnose
from engine.events import Event
from engine.outcomes import OutcomeCollector, RunOutcome
from engine.presets import LoadedPreset
from engine.runner import Runner, run_inline
from tui_lab.data import fmt

STATUS_STYLE = {
    "done": "green",
    "early-stopped": "cyan",
    "diverged": "red",
    "failed": "bold red",
    "cancelled": "yellow",
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
        names give way (with an ellipsis), and "batch loss" takes two lines of header when the
        names would have to shorten for it."""
        rows: list[tuple[RunSpec, str, list[str]]] = []
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
        cols = ["variant", "seed", "step", "batch loss", "val acc", "status", "steps/s"]

        def widths() -> list[int]:
            return [max([max(len(line) for line in col.split("\n")), *(len(r[k]) for _, _, r in rows)])
                    for k, col in enumerate(cols)]

        def room() -> int | None:  # the variant's: the rest, its padding and borders (3 a column, less the edges)
            return None if width is None else width - sum(widths()[1:]) - 3 * len(cols) + 1

        need = widths()[0]
        if (r := room()) is not None and r < need:
            cols[3] = "batch\nloss"
        r = room()
        table = Table(expand=False, pad_edge=False)
        for k, col in enumerate(cols):
            if col == "variant":
                table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=min(8, need),
                                 max_width=None if r is None else max(min(8, need), min(need, r)))
                continue
            left = col == "status"
            table.add_column(col, justify="left" if left else "right", no_wrap=True, min_width=widths()[k])
        for spec, status, cells in rows:
            table.add_row(Text(spec.variant), *cells[1:5], Text(status, style=STATUS_STYLE.get(status, "")), cells[6])
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
    if workers == 0:  # in this process, one run after another (debugging, profiling)
        try:
            run_inline(specs, emit=collector.add, device=device, store=store, fast=fast, batch=batch)
        except KeyboardInterrupt:
            interrupted = True
        return _result(loaded, quick, collector, interrupted, t0)
    runner = Runner(specs, device=device, workers=workers, store=store, fast=fast, batch=batch)
    for run_id, spec in zip(runner.run_ids, specs, strict=True):
        collector.register(run_id, spec.variant, spec.seed)
    progress = _Progress(specs, runner.run_ids, collector)
    try:
        runner.start()
        view = Live(progress.render(console.width), console=console, refresh_per_second=4) if live else None
        with view or nullcontext():
            for event in runner.events():
                collector.add(event)
                progress.note(event)
                if view is not None:
                    view.update(progress.render(console.width))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        runner.close()
    return _result(loaded, quick, collector, interrupted, t0)


def _result(loaded: LoadedPreset, quick: bool, collector: OutcomeCollector, interrupted: bool,
            t0: float) -> ComparisonResult:
    if interrupted:
        for o in collector.outcomes():
            if not o.finished:
                o.status, o.reason = "cancelled", "interrupted (Ctrl+C)"
    outcomes = collector.outcomes()
    claims = check_claims(loaded.preset.claims, outcomes)
    return ComparisonResult(loaded, quick, outcomes, claims, interrupted, time.perf_counter() - t0)


def results_table(result: ComparisonResult, width: int | None = None) -> Table:
    """One row per run. Numbers are never cut: in a narrow terminal (`width` under 90) the
    minimum training loss goes (the final one stays) and the variant names give way."""
    from rich import box

    table = Table(title=escape(f"{result.preset.preset.title}{' (quick)' if result.quick else ''}"), box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    def last(o: Any, key: str) -> Any:
        """The final figure, or for a run stopped without one (Ctrl+C) its last evaluation's."""
        if key in o.final:
            return o.final[key]
        return o.evals[-1].get(key) if o.evals else None

    rows = [
        [o.variant, str(o.seed), o.status, _fmt(last(o, "train_loss")), _fmt(o.best.get("min_train_loss")),
         _fmt(last(o, "val_loss")), fmt.pct(last(o, "val_acc")), _fmt(o.best.get("best_epoch"), 3),
         f"{o.wall_time:.1f}"]
        for o in result.outcomes
    ]
    cols = ["variant", "seed", "status", "train loss", "min train", "val loss", "val acc", "best ep", "wall s"]
    if width is not None and width < 90:
        rows = [r[:4] + r[5:] for r in rows]
        cols.remove("min train")
    widths = [max([len(col)] + [len(r[k]) for r in rows]) for k, col in enumerate(cols)]
    room = None if width is None else max(8, width - sum(widths[1:]) - 2 * len(cols))  # 2: the gaps
    for k, col in enumerate(cols):
        if col == "variant":
            table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=min(8, widths[0]),
                             max_width=None if room is None else min(widths[0], room))
            continue
        table.add_column(col, justify="left" if col == "status" else "right", no_wrap=True, min_width=widths[k])
    for o, r in zip(result.outcomes, rows, strict=True):
        table.add_row(Text(r[0]), r[1], Text(o.status, style=STATUS_STYLE.get(o.status, "")), *r[3:])
    return table


def claims_view(claims: list[ClaimResult]) -> Group:
    lines = []
    for c in claims:
        if c.holds:
            mark = Text("✔ holds  ", style="green")
        elif c.problem:  # a run it needs was cancelled or failed, or a metric is missing
            mark = Text("? not checked  ", style="yellow")
        else:
            mark = Text("✘ fails  ", style="red")
        lines.append(Text.assemble(mark, (c.claim.text, "bold")))
        lines.append(Text("    " + c.describe(), style="dim"))
    return Group(*lines)


def print_result(result: ComparisonResult, console: Console, as_json: bool = False) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
        return
    console.print(results_table(result, console.width))
    for o in result.outcomes:
        if o.status in ("failed", "diverged", "cancelled"):
            console.print(f"[bold]{escape(o.variant)}[/] (seed {o.seed}): {o.status}: {escape(o.reason)}")
    diagnoses = {(o.variant, o.seed): diagnose(o.evals, o.status, o.reason) for o in result.outcomes}
    console.print("[bold]Curves[/]")
    for (variant, seed), d in diagnoses.items():
        console.print(f"  {escape(variant)} (seed {seed}): {escape(d.text)}")
    if result.claims:
        console.print("[bold]Claims[/]")
        console.print(claims_view(result.claims))
    console.print(f"[dim]{len(result.outcomes)} runs in {result.wall_time:.1f} s[/]")
