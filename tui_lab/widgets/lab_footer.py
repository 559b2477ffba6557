"""The footer of every screen: Textual's, but the keys that matter most stay when the line is short;
and the key help (``?`` or F1) that lists them all.

Textual's footer lists the active keys left to right and cuts the line at the terminal's edge, so at
80 columns the last keys (often ``^q Quit``, or ``c Cancel run`` on a busy Dashboard) were lost. Each
screen names its keys in order of importance (``keep``); when they do not all fit, the footer leaves
out the keys that cannot be used now (shown dimmed), then the keys not named, then the named ones from
the least important, until the rest fit (``^q Quit`` always stays; ``? Keys``, unless the screen
names it, goes after the unnamed keys and before the named ones). The keys left out still work;
``?`` or F1 (`KeyHelp`, also the command palette's "Keys") lists them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from textual.compose import compose
from textual.dom import DOMNode
from textual.widget import Widget
from textual.widgets import Footer

try:
    from textual.widgets._footer import FooterKey
except ImportError:  # a Textual that moved it: the plain footer (every key, cut at the edge)
    FooterKey = None  # type: ignore[assignment,misc]

# FooterKey is not exported by textual.widgets; `key_width` counts the cells its CSS gives it (textual 8).
PALETTE = "-command-palette"
HELP = "toggle_help"
"""The key help's action: the footer keeps it after the screen's named keys (where the screen does
not name it): it lists the keys left out."""


def key_width(key: FooterKey, compact: bool) -> int:
    """Cells one key takes in the footer (its CSS: padding around the key and after the description)."""
    key_cells, text = cell_len(key.key_display), cell_len(key.description)
    if key.has_class(PALETTE):  # always compact, with a border on the left and one cell of padding
        return 1 + key_cells + (1 + text if text else 0) + (0 if compact else 1)
    if compact:
        return key_cells + (1 + text if text else 0) + 1
    return key_cells + 2 + (text + 1 if text else 0)


def widget_width(widget: Widget, compact: bool) -> int:
    if isinstance(widget, FooterKey):
        return key_width(widget, compact)
    return 0  # a key group's parts (Binding.Group, not used here): never left out, not counted


class LabFooter(Footer):
    """A footer that keeps the screen's most important keys when the line is too short for all."""

    def __init__(self, keep: Iterable[str] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.keep = tuple(keep)
        """The actions of the keys to keep, most important first (``quit`` is always kept)."""
        self.left_out: list[str] = []
        """The actions whose keys did not fit at the last build (tests read this)."""
        self._built_for = -1

    def _rank(self, widget: Widget) -> tuple[int, int]:
        """The smaller, the sooner left out: disabled keys, then unnamed ones, then the named from last."""
        if not isinstance(widget, FooterKey):
            return (3, 0)
        if widget.action == "quit":
            return (3, 0)
        if widget.has_class("-disabled"):
            return (0, 0)
        if widget.action == HELP and HELP not in self.keep:
            return (2, -len(self.keep))
        if widget.action not in self.keep:
            return (1, 0)
        return (2, -self.keep.index(widget.action))

    def compose(self):
        if FooterKey is None:
            yield from super().compose()
            return
        widgets = compose(self, super().compose())
        width = self.size.width or self.app.size.width
        self._built_for = width
        total = sum(widget_width(w, self.compact) for w in widgets)
        drop: set[int] = set()
        # the rightmost of equal rank goes first
        order = sorted(range(len(widgets)), key=lambda i: (self._rank(widgets[i]), -i))
        for i in order:
            if total <= width:
                break
            w = widgets[i]
            if not isinstance(w, FooterKey) or w.has_class(PALETTE) or w.action == "quit":
                continue
            drop.add(i)
            total -= widget_width(w, self.compact)
        self.left_out = [w.action for i, w in enumerate(widgets) if i in drop and isinstance(w, FooterKey)]
        yield from (w for i, w in enumerate(widgets) if i not in drop)

    def on_resize(self) -> None:
        if self._bindings_ready and self.size.width != self._built_for:
            self.call_after_refresh(self.recompose)


# -- the key help --------------------------------------------------------------------------------

WIDGET_NAMES = {"Tree": "list", "DataTable": "table", "Tabs": "tab bar", "Input": "text box",
                "TextArea": "text box", "Select": "menu", "SelectionList": "list", "OptionList": "list",
                "ListView": "list", "Switch": "switch", "Button": "button", "Checkbox": "switch"}
"""What the key help calls a focused Textual widget whose own keys it lists last."""


APP_ORDER = {"show_mode": 0, "toggle_help": 1, "hide_help": 2, "command_palette": 3, "quit": 4}
"""The order of the keys that work everywhere in the key help."""


def lab_actions(node: DOMNode) -> set[str]:
    """The actions this lab's own classes bind on `node` (not those a Textual widget it extends
    brings: the catalogue's tree keeps Tree's cursor keys, which are not the Library's)."""
    out: set[str] = set()
    for cls in type(node).__mro__:
        if cls.__module__.startswith("tui_lab"):
            for binding in cls.__dict__.get("BINDINGS", ()):
                out.add(binding.action if hasattr(binding, "action") else binding[1])
    return out


def help_title(screen: DOMNode) -> str:
    """The key help's first heading: the screen's name ("Dashboard" for DashboardScreen)."""
    name = type(screen).__name__
    return name[: -len("Screen")] if name.endswith("Screen") and name != "Screen" else name


def widget_name(node: DOMNode) -> str:
    for cls in type(node).__mro__:
        if cls.__name__ in WIDGET_NAMES:
            return WIDGET_NAMES[cls.__name__]
    return type(node).__name__.lower()


