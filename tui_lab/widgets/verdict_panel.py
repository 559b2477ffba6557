"""What the comparison showed: each claim holding or not, with its numbers, and the plain-words
reading of every run's curves with the remedies for what went wrong."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from tui_lab.data.comparison import Comparison
from tui_lab.data.fmt import clean

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


def hanging(content: Content, indent: int | Content, width: int | None) -> Content:
    """`content` as lines of at most `width` cells, each after `indent` spaces (or the first after
    the given prefix, the rest under its end), and a newline: a claim's text or evidence, or a
    run's reason, that wraps stays in its column instead of running on at the left edge. Without
    a width (not laid out yet) one line, for the terminal to wrap."""
    first = indent if isinstance(indent, Content) else Content(" " * indent)
    pad = Content(" " * first.cell_length)
    if not width or width <= first.cell_length + 8:
        return first + content + "\n"
    lines = content.wrap(width - first.cell_length)
    return Content("").join((first if i == 0 else pad) + line + "\n" for i, line in enumerate(lines))


def verdict_content(c: Comparison, width: int | None = None) -> Content:
    """The panel's text (Content markup on theme variables), wrapped with hanging indents to `width`."""
    parts: list[Content] = []
    claims = c.claims()
    done = c.finished
    if c.error:
        parts.append(Content.from_markup("[b $error]The runner could not run:[/] $e\n\n", e=clean(c.error, lines=True)))
    if c.ablation is not None:
        parts.append(Content.from_markup("[b]The doctor's ablation[/] [$text-muted]your recipe and each remedy over "
                                         "seeds; a remedy helped when it gains more than the spread over seeds[/]\n"))
        if not done:
            parts.append(Content.from_markup(f"[$text-muted]… read when every run has ended: {c.n_finished}/"
                                             f"{len(c.runs)}[/]\n"))
        for helped, words in c.ablation_lines():
            mark = Content.from_markup("[b $success]✔ helped[/] " if helped else "[b $text-muted]· no[/] ")
            parts.append(hanging(Content(clean(words)), mark, width))
        parts.append(Content("\n"))
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
            parts.append(hanging(Content(r.claim.text), mark, width))
            if done:
                parts.append(hanging(Content.from_markup("[$text-muted]$d[/]", d=r.describe()), 4, width))
        parts.append(Content("\n"))
    elif c.ablation is not None:
        pass
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
        parts.append(hanging(Content.from_markup(f"[{style}]$text[/]", text=d.text),
                             Content.from_markup("[b]$name[/] ", name=name + ":"), width))
        if run.status in ("failed", "cancelled", "interrupted") and run.reason:
            parts.append(hanging(Content.from_markup("[$text-muted]$r[/]", r=run.reason), 4, width))
        if d.remedies:
            remedies.setdefault(d.label, ([], d.remedies))[0].append(name)
    if remedies:
        parts.append(Content.from_markup("\n[b]What to try[/]\n"))
        for label, (names, tips) in remedies.items():
            style = _LABEL_STYLE.get(label, "$text")
            parts.append(Content.from_markup(f"[{style}]$label[/] [$text-muted]($names)[/]:\n", label=label,
                                             names=", ".join(names)))
            parts.append(hanging(Content("; ".join(tips)), 4, width))
    warnings = [m for m in c.messages if m.level in ("warning", "error")]
    if warnings:
        parts.append(Content.from_markup("\n[b]Messages[/]\n"))
        for m in warnings[-8:]:
            first = m.text.strip().splitlines()[-1] if m.text.strip() else ""
            parts.append(Content.from_markup("  [$warning]$t[/]\n", t=first[:200]))
    return Content("").join(parts)


class _VerdictText(Static):
    """The panel's text, wrapped to its own width: drawn again when that changes (the terminal was
    resized, or the panel's scroll bar came or went)."""

    comparison: Comparison | None = None

    def draw(self) -> None:
        if self.comparison is not None:
            self.update(verdict_content(self.comparison, self.content_region.width or None))

    def on_resize(self) -> None:
        self.draw()


class VerdictPanel(VerticalScroll):
    """Claims and curve diagnoses; ``show`` re-renders from the comparison."""

    def compose(self):
        yield _VerdictText(id="verdict-text")

    def show(self, comparison: Comparison) -> None:
        text = self.query_one("#verdict-text", _VerdictText)
        text.comparison = comparison
        text.draw()
