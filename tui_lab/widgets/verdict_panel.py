"""What the comparison showed: each claim holding or not, with its numbers, and the plain-words
reading of every run's curves with the remedies for what went wrong."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from tui_lab.data.comparison import Comparison

_LABEL_STYLE = {
    "normal": "$success",
    "overfitting": "$warning",
    "underfitting": "$warning",
    "stalled": "$warning",
    "diverged": "$error",
}


CURVES_NOTE = "(read from the evaluations, in eval mode: the first → the last)"
"""What the numbers of a curve reading are: the train and val losses measured at the evaluations (on
the training and validation splits, in eval mode), not the Dashboard's batch loss nor the History's
final train loss (eval), which after early stopping is that of the restored best weights."""


def verdict_content(c: Comparison) -> Content:
    """The panel's text (Content markup on theme variables)."""
    parts: list[Content] = []
    claims = c.claims()
    done = c.finished
    if c.error:
        parts.append(Content.from_markup("[b $error]The runner could not run:[/] $e\n\n", e=c.error))
    if claims:
        head = "Claims" if done else f"Claims (checked when every run has ended: {c.n_finished}/{len(c.runs)})"
        note = ""
        if done and c.all_cancelled:
            note = " · not checked: every run was cancelled (r runs them again)"
        elif done and c.n_cancelled:
            k = c.n_cancelled
            note = (f" · {k} run{'s' if k > 1 else ''} cancelled: a claim that compares "
                    f"{'them' if k > 1 else 'it'} is not checked")
        parts.append(Content.from_markup("[b]$h[/][$warning]$n[/]\n", h=head, n=note))
        for r in claims:
            if not done:
                mark = Content.from_markup("[$text-muted]… waiting[/] ")
            elif r.problem:
                mark = Content.from_markup("[b $warning]– not checked[/] ")
            elif r.holds:
                mark = Content.from_markup("[b $success]✔ holds[/] ")
            else:
                mark = Content.from_markup("[b $error]✘ fails[/] ")
            parts.append(mark + Content(r.claim.text) + "\n")
            if done:
                parts.append(Content.from_markup("    [$text-muted]$d[/]\n", d=r.describe()))
        parts.append(Content("\n"))
    elif c.loaded is None:
        parts.append(Content.from_markup("[$text-muted]No claims: these runs come from the store or a recipe without any.[/]\n\n"))
    else:
        parts.append(Content.from_markup("[$text-muted]This preset states no claims.[/]\n\n"))
    parts.append(Content.from_markup("[b]Curves[/] [$text-muted]$n[/]\n", n=CURVES_NOTE))
    diagnoses = c.diagnoses()
    if not diagnoses:
        parts.append(Content.from_markup("[$text-muted]Each run's curves are read when it ends.[/]\n"))
    remedies: dict[str, tuple[list[str], list[str]]] = {}
    for run, d in diagnoses:
        style = _LABEL_STYLE.get(d.label, "$text")
        name = c.run_title(run)
        parts.append(Content.from_markup(f"[b]$name[/] [{style}]$text[/]\n", name=name + ":", text=d.text))
        if run.status in ("failed", "cancelled") and run.reason:
            parts.append(Content.from_markup("    [$text-muted]$r[/]\n", r=run.reason))
        if d.remedies:
            remedies.setdefault(d.label, ([], d.remedies))[0].append(name)
    if remedies:
        parts.append(Content.from_markup("\n[b]What to try[/]\n"))
        for label, (names, tips) in remedies.items():
            style = _LABEL_STYLE.get(label, "$text")
            parts.append(Content.from_markup(
                f"[{style}]$label[/] [$text-muted]($names)[/]: $tips\n", label=label, names=", ".join(names),
                tips="; ".join(tips)))
    warnings = [m for m in c.messages if m.level in ("warning", "error")]
    if warnings:
        parts.append(Content.from_markup("\n[b]Messages[/]\n"))
        for m in warnings[-8:]:
            first = m.text.strip().splitlines()[-1] if m.text.strip() else ""
            parts.append(Content.from_markup("  [$warning]$t[/]\n", t=first[:200]))
    return Content("").join(parts)


class VerdictPanel(VerticalScroll):
    """Claims and curve diagnoses; ``show`` re-renders from the comparison."""

    def compose(self):
        yield Static(id="verdict-text")

    def show(self, comparison: Comparison) -> None:
        self.query_one("#verdict-text", Static).update(verdict_content(comparison))
