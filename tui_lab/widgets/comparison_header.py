"""One line over the dashboard: which comparison, how far along, and the view's toggles."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
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
        settings = [("log" if log else "linear"), f"smooth {smoothing:g}", f"x {x_axis}"]
        self.update(header_line(c.title, form, progress(c), fmt.duration(elapsed), settings, self.size.width))


def header_line(title: str, form: str, state: str, elapsed: str, settings: list[str], width: int) -> Content:
    """The header in `width` cells (no limit when 0), giving way in whole pieces: the settings go
    from the last ("x step", then "smooth 0.6", then the scale; each first without the word "loss"
    that names what the scale applies to), then the title shortens with an ellipsis (its form, the
    state and the time stay whole). `state` is Content markup (`progress`)."""
    head = Content.from_markup(f"[b]$title[/][$text-muted]$form[/]  {state}  $el", title=title, form=form, el=elapsed)
    tails = [tail for n in range(len(settings), 0, -1) for tail in (f"loss {' · '.join(settings[:n])}",
                                                                     " · ".join(settings[:n]))]
    for tail in tails:
        line = head + Content.from_markup("  [$text-muted]$t[/]", t=tail)
        if not width or line.cell_length <= width:
            return line
    room = width - (head.cell_length - cell_len(title))
    if room >= 2:
        short = Text(title)
        short.truncate(room, overflow="ellipsis")
        return Content.from_markup(f"[b]$title[/][$text-muted]$form[/]  {state}  $el", title=short.plain,
                                   form=form, el=elapsed)
    return head.truncate(width, ellipsis=True)


def progress(c: Comparison) -> str:
    """The comparison's state and how many of its runs have ended (Content markup).

    The runs training are counted apart from the ended ones: "running 0/7" read as "none of 7
    running" while a batched group trained (its members end together). Cancelled runs are not
    finished ones: "cancelled 4/4" when all were, "finished 5/7 · 2 cancelled" when some were;
    nor are failed ones (an error, out of memory): "failed 1/1", "finished 3/4 · 1 failed". While
    none trains, "starting" before any has ended, then "1 waiting · 4/5 ended" (it read "starting")."""
    done, total = c.n_finished, len(c.runs)
    if c.finished and not c.read_only and not c.error:
        cancelled, failed = c.n_cancelled, c.n_failed
        if cancelled == total:
            return f"[b $warning]cancelled[/] {cancelled}/{total}"
        if failed == total:
            return f"[b $error]failed[/] {failed}/{total}"
        parts = [f"[b $success]finished[/] {done - cancelled - failed}/{total}"]
        if failed:
            parts.append(f"[$error]{failed} failed[/]")
        if cancelled:
            parts.append(f"[$warning]{cancelled} cancelled[/]")
        return " · ".join(parts)
    running = sum(r.status == "running" for r in c.runs)
    waiting = total - done - running  # runs no worker has taken yet
    if c.read_only:
        state = "[$text-muted]read-only[/]"
    elif c.error:
        state = "[b $error]runner failed[/]"
    elif running:
        state = f"[b $accent]{running} running[/]"
    elif done:  # some ended, the rest wait for a worker: not "starting"
        state = f"[$text-muted]{waiting} waiting[/]"
    else:
        state = "[$text-muted]starting[/]"
    return f"{state} · {done}/{total} ended"
