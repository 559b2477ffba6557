"""A technique's card: its frame (the step it changes, what it buys), summary, variants, claims,
and its explanation in Markdown."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Markdown, Static

from engine.catalogue.presets import LoadedPreset
from tui_lab.data.fmt import clean
from tui_lab.data.frame import BENEFIT_WORDS, STEP_WORDS


def hanging(lead: Content, body: Content, width: int | None) -> Content:
    """`lead` (a bullet, a label) and `body`, the lines `body` wraps to indented under its first
    (`width`: the cells across; None: one line, for the widget to wrap). Ends with a newline."""
    if width is None or width < lead.cell_length + 12:
        return lead + body + "\n"
    lines = [line.rstrip() for line in body.wrap(width - lead.cell_length)] or [Content("")]
    pad = Content(" " * lead.cell_length)
    return Content("\n").join([lead + lines[0], *(pad + line for line in lines[1:])]) + "\n"


def card(loaded: LoadedPreset, *, saved: bool = False, width: int | None = None) -> Content:
    """`saved`: a recipe saved from the Builder, which says so and where (it may share its id and title
    with the catalogue preset it was made from). `width`: the cells across, to indent the wrapped
    lines of a bullet or a labelled line under its first (None: left to the widget to wrap). The
    preset's text is shown through `clean` (no control characters; validation refuses them too)."""
    p = loaded.preset
    parts = [
        Content.from_markup("[b]$t[/]  [$text-muted]$id · $ch[/]\n", t=clean(p.title), id=clean(loaded.id),
                            ch=p.chapter),
        *([Content.from_markup("[$warning]your recipe[/] [$text-muted]$path[/]\n", path=clean(str(loaded.path)))]
          if saved else []),
        hanging(Content.from_markup("[$accent]step it changes[/] "), Content(STEP_WORDS.get(p.step, p.step)), width),
        hanging(Content.from_markup("[$accent]what it buys[/]    "), Content(BENEFIT_WORDS.get(p.benefit, p.benefit)),
                width),
        Content.from_markup("\n$s\n\n", s=clean(p.summary)),
        Content.from_markup("[b]Variants[/] [$text-muted]($n; seeds $s, quick $q)[/]\n", n=str(len(p.variants)),
                            s=",".join(map(str, p.seeds)), q=",".join(map(str, p.default_seeds(True)))),
    ]
    bullet = Content("  • ")
    for v in p.variants:
        desc = " [$text-muted]— $d[/]" if v.description else ""
        parts.append(hanging(bullet, Content.from_markup(f"$n{desc}", n=clean(v.name),
                                                         d=clean(v.description, lines=True)), width))
    if p.claims:
        parts.append(Content.from_markup("\n[b]Claims[/] [$text-muted](checked when a run ends)[/]\n"))
        for c in p.claims:
            parts.append(hanging(bullet, Content(clean(c.text)), width))
    keys = "\n[$text-muted]enter run quick · f run full · b open in Builder[/]"
    parts.append(Content.from_markup(keys))
    return Content("").join(parts)


class CardText(Static):
    """The card, laid out again when its width changes (the wrapped lines of its bullets are indented
    by hand: a Static wraps them to its left edge)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._card: tuple[LoadedPreset, bool] | None = None
        self._width = 0

    def show_card(self, loaded: LoadedPreset, *, saved: bool = False) -> None:
        self._card = (loaded, saved)
        self._layout()

    def _layout(self) -> None:
        if self._card is not None:
            self._width = self.content_size.width
            loaded, saved = self._card
            self.update(card(loaded, saved=saved, width=self._width or None))

    def show_text(self, content: Content) -> None:
        """A message instead of a card."""
        self._card = None
        self.update(content)

    def on_resize(self) -> None:
        if self._card is not None and self.content_size.width != self._width:
            self._layout()


EXPLAIN_DELAY = 0.25
"""Seconds the highlight must rest on a technique before its explanation is laid out."""


class PresetDetails(VerticalScroll):
    """Shows one preset; ``show(None)`` shows a hint instead."""

    def compose(self) -> ComposeResult:
        yield CardText(id="details-card")
        yield Markdown(id="details-explain")

    shown: LoadedPreset | None = None
    _timer = None

    def show(self, loaded: LoadedPreset | None, *, saved: bool = False) -> None:
        """`saved`: `loaded` is a recipe saved from the Builder (see `card`)."""
        if loaded is not None and self.shown is not None and loaded.path == self.shown.path:
            return  # the same card: Markdown is costly to lay out again
        self.shown = loaded
        head = self.query_one("#details-card", CardText)
        explain = self.query_one("#details-explain", Markdown)
        if loaded is None:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            head.show_text(Content.from_markup("[$text-muted]No technique matches the search.[/]"))
            explain.update("")
            return
        head.show_card(loaded, saved=saved)
        self.scroll_home(animate=False)
        # Markdown takes a while to lay out: wait until the cursor rests on a technique.
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(EXPLAIN_DELAY, lambda: self._explain(loaded))

    def _explain(self, loaded: LoadedPreset) -> None:
        self._timer = None
        if self.shown is loaded:
            self.query_one("#details-explain", Markdown).update(clean(loaded.preset.explain, lines=True))
