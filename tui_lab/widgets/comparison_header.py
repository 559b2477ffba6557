"""One line over the dashboard: which comparison, how far along, and the view's toggles."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tui_lab.data import fmt
from tui_lab.data.comparison import Comparison


class ComparisonHeader(Static):
    def show(self, c: Comparison | None, *, log: bool, smoothing: float, x_axis: str,
             elapsed: float | None = None) -> None:
        """``elapsed``: wall-clock seconds of a live comparison (default: the longest run's own time)."""
        if c is None:
            self.update(Content.from_markup("[$text-muted]No comparison yet[/]"))
            return
        form = "" if c.read_only else (" (quick)" if c.quick else " (full)")
        done, total = c.n_finished, len(c.runs)
        if c.read_only:
            state = "[$text-muted]read-only[/]"
        elif c.error:
            state = "[b $error]runner failed[/]"
        elif c.finished:
            state = "[b $success]finished[/]"
        elif any(r.status == "running" for r in c.runs):
            state = "[b $accent]running[/]"
        else:
            state = "[$text-muted]starting[/]"
        if elapsed is None:
            elapsed = max((r.wall_time or r.elapsed for r in c.runs), default=0.0)
        toggles = f"loss {'log' if log else 'linear'} · smooth {smoothing:g} · x {x_axis}"
        self.update(Content.from_markup(
            f"[b]$title[/][$text-muted]$form[/]  {state} $done/$total  $el  [$text-muted]$toggles[/]",
            title=c.title, form=form, done=str(done), total=str(total), el=fmt.duration(elapsed), toggles=toggles,
        ))
