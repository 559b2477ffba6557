"""The frame every tool of the Tools screen shares: its settings on the left (a preset and a variant
where it applies, the tool's own numbers), its result on the right, and the work run in a Textual
thread worker (never on the UI thread; torch gets one thread there), with a status line.

A tool subclasses :class:`ToolView` and fills in ``settings()`` (widgets), ``result()`` (widgets),
``collect()`` (read and check the settings on the UI thread: a dict, or ValueError with what is
wrong), ``work(params)`` (the engine call, in the thread; its return value goes to ``show``) and
``show(result)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from engine.catalogue.presets import LoadedPreset
from tui_lab.data import fmt
from tui_lab.widgets.catalogue_tree import YOURS


def field_row(label: str, widget: Widget, tip: str = "") -> Horizontal:
    """One settings row: a short label and its widget."""
    if tip:
        widget.tooltip = tip
    return Horizontal(Label(label, classes="tool-label"), widget, classes="field-row tool-row")


def number(text: str, what: str, *, kind: type = float, low: float | None = None, high: float | None = None,
           positive: bool = False) -> Any:
    """A number typed in a settings box, checked (ValueError naming the setting)."""
    wanted = "a whole number" if kind is int else "a number"
    if not text.strip():
        raise ValueError(f"{what}: empty; type {wanted}")
    try:
        value = kind(text.strip())
    except ValueError:
        raise ValueError(f"{what}: {text.strip()!r} is not {wanted}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {text.strip()}")
    if positive and value <= 0:
        raise ValueError(f"{what} must be above 0, got {value:g}")
    if low is not None and value < low:
        raise ValueError(f"{what} must be at least {low:g}, got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{what} must be at most {high:g}, got {value:g}")
    return value


class ToolView(Horizontal):
    """Settings | result, and one job at a time (``run`` again while it runs: stop it)."""

    tool = "tool"
    """Id prefix of the view's widgets (``lr``, ``sanity``, ...)."""
    help = ""
    uses_preset = True
    uses_quick = True

    class Finished(Message):
        """A tool's job ended with a result (already shown)."""

        def __init__(self, view: ToolView, result: Any) -> None:
            super().__init__()
            self.view = view
            self.result = result

    class Ended(Message):
        """A tool's job ended, whatever the outcome (done, failed, stopped): the screen keeps the focus
        somewhere (a result the focus was in may have been replaced)."""

        def __init__(self, view: ToolView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="tool-view")
        self.presets: list[LoadedPreset] = []
        self.saved: frozenset[Path] = frozenset()
        """The paths of the presets that are recipes saved from the Builder."""
        self.worker: Worker | None = None
        self.started: float | None = None
        self.result_value: Any = None
        self.elapsed: float | None = None

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="tool-settings") as settings:
            settings.can_focus = False  # tab goes straight to the first setting
            if self.help:
                yield Static(Content.from_markup("[$text-muted]$h[/]", h=self.help), classes="tool-help")
            if self.uses_preset:
                yield field_row("preset", Select([], allow_blank=True, compact=True, id=f"{self.tool}-preset"),
                                "a catalogue preset or a saved recipe")
                yield field_row("variant", Select([], allow_blank=True, compact=True, id=f"{self.tool}-variant"),
                                "the variant whose recipe the tool works on")
            if self.uses_quick:
                yield field_row("form", Select([("quick", "quick"), ("full", "full")], value="quick", allow_blank=False,
                                               compact=True, id=f"{self.tool}-form"),
                                "the preset's quick form (short runs) or its full form")
            yield from self.settings()
            with Horizontal(classes="button-row"):
                yield Button("Run", id=f"{self.tool}-run", variant="primary", compact=True)
                yield from self.buttons()
            yield Static("", id=f"{self.tool}-status", classes="tool-status")
        with Vertical(classes="tool-result", id=f"{self.tool}-result"):
            yield from self.result()

    def settings(self) -> Iterable[Widget]:
        return ()

    def buttons(self) -> Iterable[Widget]:
        return ()

    def result(self) -> Iterable[Widget]:
        return ()

    def on_mount(self) -> None:
        self.set_status("[$text-muted]ctrl+r (or Run) starts it[/]")
        if not getattr(self.app, "frozen", False):
            self.set_interval(0.5, self._tick)

    # -- presets --------------------------------------------------------------------------

    def set_presets(self, presets: list[LoadedPreset], selected: LoadedPreset | None = None, *,
                    saved: Collection[Path] = ()) -> None:
        """The presets to choose from (values are their paths); `selected` (or the first) is picked.
        `saved`: the paths of the recipes saved from the Builder, marked in the menu."""
        if not self.uses_preset:
            return
        self.saved = frozenset(saved)
        self.presets = [p for p in presets if self.accepts(p)]
        select = self.query_one(f"#{self.tool}-preset", Select)
        options = self.preset_options()
        with self.prevent(Select.Changed):
            select.set_options(options)
        pick = selected if selected is not None and self.accepts(selected) else None
        value = str(pick.path) if pick is not None else (options[0][1] if options else Select.NULL)
        if pick is not None and value not in [v for _, v in options]:
            self.presets.insert(0, pick)
            with self.prevent(Select.Changed):
                select.set_options(self.preset_options())
        with self.prevent(Select.Changed):
            select.value = value
        self.preset_changed()

    def accepts(self, loaded: LoadedPreset) -> bool:
        """Whether the tool can work on this preset (all by default)."""
        return True

    def preset_options(self) -> list[tuple[str | Text, str]]:
        """(label, path) per preset; labels as Text: a str prompt is read as markup (and the id is a file's
        name: `fmt.clean`). A saved recipe is marked: the menu does not group them, and one may have a
        catalogue preset's id."""
        return [(Text(fmt.clean(p.id) + (YOURS if p.path in self.saved else "")), str(p.path)) for p in self.presets]

    @property
    def loaded(self) -> LoadedPreset | None:
        if not self.uses_preset:
            return None
        value = self.query_one(f"#{self.tool}-preset", Select).value
        return next((p for p in self.presets if str(p.path) == value), None)

    def variant_options(self, loaded: LoadedPreset) -> list[tuple[str | Text, str]]:
        """(label, name) per variant: a user's names may hold brackets, so the labels are Text (and shown
        through `fmt.clean`, as every name from a file)."""
        return [(Text(fmt.clean(v.name)), v.name) for v in loaded.preset.variants]

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == f"{self.tool}-preset":
            event.stop()
            self.preset_changed()

    def preset_changed(self) -> None:
        """Fill the variant menu from the chosen preset (first variant selected)."""
        loaded = self.loaded
        variant = self.query_one(f"#{self.tool}-variant", Select)
        options = self.variant_options(loaded) if loaded is not None else []
        with self.prevent(Select.Changed):
            variant.set_options(options)
            if options:
                variant.value = options[0][1]

    def set_variant(self, name: str) -> None:
        select = self.query_one(f"#{self.tool}-variant", Select)
        with self.prevent(Select.Changed):
            select.value = name

    def choice(self, wid: str) -> Any:
        value = self.query_one(f"#{self.tool}-{wid}", Select).value
        return None if value is Select.NULL else value

    def text(self, wid: str) -> str:
        return self.query_one(f"#{self.tool}-{wid}", Input).value

    def common(self) -> dict[str, Any]:
        """The preset, variant and quick settings (ValueError when no preset is chosen)."""
        out: dict[str, Any] = {"device": getattr(self.app, "device", "cpu")}
        if self.uses_preset:
            loaded = self.loaded
            if loaded is None:
                raise ValueError("choose a preset first")
            out.update(loaded=loaded, variant=self.choice("variant"))
        if self.uses_quick:
            out["quick"] = self.choice("form") != "full"
        return out

    # -- running ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def collect(self) -> dict[str, Any]:
        return self.common()

    def work(self, params: dict[str, Any]) -> Any:  # pragma: no cover - every tool has its own
        raise NotImplementedError

    def show(self, result: Any) -> None:  # pragma: no cover
        pass

    def run(self) -> None:
        """Start the tool (or stop the running job: its result is then dropped)."""
        if self.running:
            assert self.worker is not None
            self.worker.cancel()
            self.stopped()
            return
        try:
            params = self.collect()
        except ValueError as exc:
            self.set_status("[b $error]✘[/] $e", e=str(exc))
            return
        self.started = time.monotonic()
        self.elapsed = None
        self.worker = self.run_worker(partial(self._work, params), name=f"tool-{self.tool}", group=f"tool-{self.tool}",
                                      description=self.tool, thread=True, exclusive=True, exit_on_error=False)
        self.query_one(f"#{self.tool}-run", Button).label = "Stop"
        self.set_status("[$accent]running…[/]")

    def _work(self, params: dict[str, Any]) -> Any:
        import torch

        torch.set_num_threads(1)  # one core stays with the app (and the engine's runs)
        return self.work(params)

    def stopped(self) -> None:
        self.worker = None
        self.query_one(f"#{self.tool}-run", Button).label = "Run"
        self.set_status("[$warning]stopped[/] [$text-muted](what it had not finished is dropped)[/]")

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.worker:
            return
        event.stop()
        state = event.state
        if state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        self.elapsed = time.monotonic() - (self.started or time.monotonic())
        self.post_message(self.Ended(self))
        if state == WorkerState.CANCELLED:
            self.stopped()
            return
        self.query_one(f"#{self.tool}-run", Button).label = "Run"
        took = "" if getattr(self.app, "frozen", False) else f" in {fmt.duration(self.elapsed)}"
        if state == WorkerState.SUCCESS:
            self.result_value = event.worker.result
            try:
                self.show(event.worker.result)
            except Exception as exc:  # noqa: BLE001 - a result we cannot draw is a message, not a crash
                self.set_status("[b $error]✘ could not show the result:[/] $e", e=f"{type(exc).__name__}: {exc}")
                return
            self.set_status(f"[b $success]✔ done{took}[/]")
            self.post_message(self.Finished(self, event.worker.result))
        elif state == WorkerState.ERROR:
            error = event.worker.error
            self.set_status("[b $error]✘[/] $e", e=f"{error}" if isinstance(error, ValueError)
                            else f"{type(error).__name__}: {error}")
        self.worker = None

    def _tick(self) -> None:
        if self.running and self.started is not None:
            self.set_status("[$accent]running… $t[/] [$text-muted](ctrl+r stops)[/]",
                            t=fmt.duration(time.monotonic() - self.started))

    def set_status(self, markup: str, **values: str) -> None:
        self.query_one(f"#{self.tool}-status", Static).update(Content.from_markup(markup, **values))

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        if event.button.id == f"{self.tool}-run":
            event.stop()
            self.run()
