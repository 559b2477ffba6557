"""A technique's card: its frame (the step it changes, what it buys), summary, variants, claims,
and its explanation in Markdown."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Markdown, Static

from engine.presets import LoadedPreset

STEP_WORDS = {
    "data": "1 · data",
    "loss": "1 · loss",
    "architecture": "2 · architecture (the set of functions)",
    "optimization": "3 · optimization",
    "all": "all steps",
}
BENEFIT_WORDS = {
    "optimization": "better optimization (lower training loss)",
    "generalization": "better generalization (smaller train/val gap)",
    "both": "better optimization and generalization",
}


def card(loaded: LoadedPreset, *, saved: bool = False) -> Content:
    """`saved`: a recipe saved from the Builder, which says so and where (it may share its id and title
    with the catalogue preset it was made from)."""
    p = loaded.preset
    parts = [
        Content.from_markup("[b]$t[/]  [$text-muted]$id · $ch[/]\n", t=p.title, id=loaded.id, ch=p.chapter),
        *([Content.from_markup("[$warning]your recipe[/] [$text-muted]$path[/]\n", path=str(loaded.path))]
          if saved else []),
        Content.from_markup("[$accent]step it changes[/] $s\n", s=STEP_WORDS.get(p.step, p.step)),
        Content.from_markup("[$accent]what it buys[/]    $b\n\n", b=BENEFIT_WORDS.get(p.benefit, p.benefit)),
        Content.from_markup("$s\n\n", s=p.summary),
        Content.from_markup("[b]Variants[/] [$text-muted]($n; seeds $s, quick $q)[/]\n", n=str(len(p.variants)),
                            s=",".join(map(str, p.seeds)), q=",".join(map(str, p.default_seeds(True)))),
    ]
    for v in p.variants:
        desc = " [$text-muted]— $d[/]" if v.description else ""
        parts.append(Content.from_markup(f"  • $n{desc}\n", n=v.name, d=v.description))
    if p.claims:
        parts.append(Content.from_markup("\n[b]Claims[/] [$text-muted](checked when a run ends)[/]\n"))
        for c in p.claims:
            parts.append(Content.from_markup("  • $t\n", t=c.text))
    keys = "\n[$text-muted]enter run quick · f run full · b open in Builder[/]"
    parts.append(Content.from_markup(keys))
    return Content("").join(parts)


EXPLAIN_DELAY = 0.25
"""Seconds the highlight must rest on a technique before its explanation is laid out."""


class PresetDetails(VerticalScroll):
    """Shows one preset; ``show(None)`` shows a hint instead."""

    def compose(self) -> ComposeResult:
        yield Static(id="details-card")
        yield Markdown(id="details-explain")

    shown: LoadedPreset | None = None
    _timer = None

    def show(self, loaded: LoadedPreset | None, *, saved: bool = False) -> None:
        """`saved`: `loaded` is a recipe saved from the Builder (see `card`)."""
        if loaded is not None and self.shown is not None and loaded.path == self.shown.path:
            return  # the same card: Markdown is costly to lay out again
        self.shown = loaded
        head = self.query_one("#details-card", Static)
        explain = self.query_one("#details-explain", Markdown)
        if loaded is None:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            head.update(Content.from_markup("[$text-muted]No technique matches the search.[/]"))
            explain.update("")
            return
        head.update(card(loaded, saved=saved))
        self.scroll_home(animate=False)
        # Markdown takes a while to lay out: wait until the cursor rests on a technique.
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(EXPLAIN_DELAY, lambda: self._explain(loaded))

    def _explain(self, loaded: LoadedPreset) -> None:
        self._timer = None
        if self.shown is loaded:
            self.query_one("#details-explain", Markdown).update(loaded.preset.explain)
