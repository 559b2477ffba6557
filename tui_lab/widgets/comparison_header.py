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
        form = "" if c.read_only or c.quick is None else (" (quick)" if c.quick else " (full)")
        if elapsed is None:
            elapsed = max((r.wall_time or r.elapsed for r in c.runs), default=0.0)
        toggles = f"{'log' if log else 'linear'} · smooth {smoothing:g} · x {x_axis}"
        line = Content.from_markup(
            f"[b]$title[/][$text-muted]$form[/]  {progress(c)}  $el  [$text-muted]loss $toggles[/]",
            title=c.title, form=form, el=fmt.duration(elapsed), toggles=toggles,
        )
        if self.size.width and line.cell_length > self.size.width:  # 80 columns: the toggles' last words
            line = line[:-len(f"loss {toggles}")] + Content.from_markup("[$text-muted]$t[/]", t=toggles)
        self.update(line)


def progress(c: Comparison) -> str:
    """The comparison's state and how many of its runs have ended (Content markup).

    The runs training are counted apart from the ended ones: "running 0/7" read as "none of 7
    running" while a batched group trained (its members end together)."""
    done, total = c.n_finished, len(c.runs)
    if c.finished and not c.read_only and not c.error:
        return f"[b $success]finished[/] {done}/{total}"
    running = sum(r.status == "running" for r in c.runs)
    if c.read_only:
        state = "[$text-muted]read-only[/]"
    elif c.error:
        state = "[b $error]runner failed[/]"
    elif running:
        state = f"[b $accent]{running} running[/]"
    else:
        state = "[$text-muted]starting[/]"
    return f"{state} · {done}/{total} ended"
