"""Extra dashboard tabs chosen by a preset's ``view`` (boundary, surface, regression), and the
Search tab of a search preset.

The extension point for views another widget draws. ``VIEWS[view] = (title, factory, update)``:
the dashboard builds ``factory(comparison)`` in a tab called ``title`` and, on each redraw tick
when the comparison changed (at most ~4 Hz), calls ``update(widget, comparison)``, or
``widget.update_view(comparison)`` when ``update`` is None. Widgets are imported when first
needed; one that fails to import leaves a placeholder saying so instead of breaking the dashboard.
Register another view with :func:`register_view`.

The widget reads what it needs from the comparison: ``comparison.runs`` (each a ``RunView`` with
its series, ``eval_metrics``, ``layers`` and ``latest[event type]``, e.g. ``latest["Boundary"]``),
``comparison.specs``, ``comparison.run_title(run)``, ``comparison.color_of(run)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from textual.widget import Widget

from tui_lab.data.comparison import Comparison
from tui_lab.widgets.view_placeholder import ViewPlaceholder


class ExtraView(Protocol):
    def update_view(self, comparison: Comparison) -> None: ...


ViewFactory = Callable[[Comparison], Widget]
ViewUpdate = Callable[[Any, Comparison], None]


def _boundary(comparison: Comparison) -> Widget:
    from tui_lab.widgets.decision_boundary import DecisionBoundary

    return DecisionBoundary()


def feed_boundary(view: Any, comparison: Comparison) -> None:
    """Each variant's latest Boundary event (its first seed) into the decision-boundary panels."""
    shown: set[str] = set()
    seeds: dict[str, set[int]] = {}
    for run in comparison.runs:
        seeds.setdefault(run.label, set()).add(run.seed)
        event = run.latest.get("Boundary")
        if event is None or run.label in shown:
            continue
        shown.add(run.label)
        view.show_event(run.label, event)
    if any(len(s) > 1 for s in seeds.values()):
        view.set_note("each variant's first seed")


def _surface(comparison: Comparison) -> Widget:
    from tui_lab.widgets.surface_plot import SurfacePlot

    return SurfacePlot()


def _search(comparison: Comparison) -> Widget:
    from tui_lab.widgets.search_board import SearchBoard

    return SearchBoard()


VIEWS: dict[str, tuple[str, ViewFactory, ViewUpdate | None]] = {
    "boundary": ("Boundary", _boundary, feed_boundary),
    "surface": ("Surface", _surface, None),
    "search": ("Search", _search, None),
}
"""``search`` is not a preset's ``view``: a preset with a ``[search]`` table runs as a
``SearchComparison``, whose view it is."""


def register_view(view: str, title: str, factory: ViewFactory, update: ViewUpdate | None = None) -> None:
    """Draw presets whose ``view`` is ``view`` with ``factory(comparison)`` in a tab ``title``."""
    VIEWS[view] = (title, factory, update)


def build_view(view: str, comparison: Comparison) -> tuple[str, Widget, ViewUpdate | None] | None:
    """The tab title, widget and updater for a preset's view (None: curves only)."""
    if view not in VIEWS:
        return None
    title, factory, update = VIEWS[view]
    try:
        return title, factory(comparison), update
    except Exception as exc:  # noqa: BLE001 - a broken view must not take the dashboard down
        placeholder = ViewPlaceholder(view)
        placeholder.problem = f"{type(exc).__name__}: {exc}"
        return title, placeholder, None


def update_view(widget: Any, update: ViewUpdate | None, comparison: Comparison) -> None:
    if update is not None:
        update(widget, comparison)
    elif hasattr(widget, "update_view"):
        widget.update_view(comparison)
