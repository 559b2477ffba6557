"""The key help (``?``, F1, the palette's "Keys"): Textual's help panel laid over the screen's right
side, its key list grouped: the screen's own keys, the keys that work everywhere, then (dimmed) the
focused widget's generic keys.

It builds on Textual's ``BindingsTable``, which ``textual.widgets`` does not export: a Textual that
moves it makes this module fail to import, and the app then shows Textual's own help panel
(``DllabApp.action_show_help_panel``)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import HelpPanel, KeyPanel, Markdown
from textual.widgets._key_panel import BindingsTable

from tui_lab.widgets.lab_footer import APP_ORDER, help_title, lab_actions, widget_name


class KeyTable(BindingsTable):
    """The key help's table: the screen's own keys first (the lab's bindings on the screen and on
    the focused widget), then the keys that work everywhere (screens, help, quit, palette), then, dimmed
    under their own heading, the focused Textual widget's generic keys (a tree's or a table's cursor
    keys), which had filled the top of Textual's panel."""

    def render_bindings_table(self) -> Group:  # type: ignore[override]
        screen, app = self.screen, self.app
        groups: dict[str, dict[str, list]] = {"screen": {}, "app": {}, "widget": {}}
        widget_title = "Moving around"
        for namespace, binding, enabled, _tooltip in screen.active_bindings.values():
            if binding.system and binding.action != "command_palette":
                continue
            if namespace is app:
                group = "app"
            elif binding.action in lab_actions(namespace):
                group = "screen"
            else:  # a Textual widget's own keys (a tree's cursor), or the screen's focus and copy keys
                group = "widget"
                if namespace is not screen and widget_title == "Moving around":
                    widget_title = f"In the {widget_name(namespace)}"
            groups[group].setdefault(binding.action, []).append((binding, enabled))
        groups["app"] = dict(sorted(groups["app"].items(), key=lambda item: APP_ORDER.get(item[0].split("(")[0], 5)))

        key_style = self.get_component_rich_style("bindings-table--key")
        text_style = self.get_component_rich_style("bindings-table--description")
        header_style = self.get_component_rich_style("bindings-table--header")
        titles = {"screen": f"{help_title(screen)} keys", "app": "Everywhere", "widget": widget_title}
        tables = []
        for group in ("screen", "app", "widget"):  # a table each: a long key of one group (shift+tab)
            actions = groups[group]                  # does not push the others' descriptions right
            if not actions:
                continue
            table = Table(padding=(0, 1, 0, 0), show_header=False, box=None, show_edge=False,
                          title=titles[group], title_style=header_style, title_justify="left")
            table.add_column("", justify="right", no_wrap=True)
            table.add_column("")
            for entries in actions.values():
                binding, enabled = entries[0]
                keys = " ".join(dict.fromkeys(app.get_key_display(b) for b, _ in entries))
                text = Text(binding.description or binding.action.replace("_", " "), style=text_style)
                if binding.tooltip:
                    text.append(f": {binding.tooltip}", "dim")
                dim = "dim" if (group == "widget" or not enabled) else ""
                table.add_row(Text(keys, style=key_style), text, style=dim)
            tables.append(table)
        return Group(*(part for i, table in enumerate(tables) for part in ((Text(""), table) if i else (table,))))

    def render(self) -> Group:
        return self.render_bindings_table()


class KeyList(KeyPanel):
    """Textual's key panel drawing a `KeyTable`."""

    def compose(self) -> ComposeResult:
        yield KeyTable(shrink=True, expand=False)


class KeyHelp(HelpPanel):
    """Textual's help panel (``App.action_show_help_panel`` mounts it; ``?``, F1, the palette's "Keys"),
    laid over the screen's right side instead of splitting it off: the split squeezed the screen
    (the Dashboard's run table gave up columns, the footer its keys). It docks on the screen's
    ``_loading`` layer (above the screen's widgets, below its toasts), so it takes no room from
    them; the footer's row stays clear."""

    DEFAULT_CSS = """
    KeyHelp {
        split: initial;
        dock: right;
        layer: _loading;
        width: 45%;
        min-width: 34;
        max-width: 64;
        margin-bottom: 1;
    }
    """

    def compose(self) -> ComposeResult:
        yield Markdown(id="widget-help")
        yield KeyList(id="keys-help")
