"""The engine's tools, from the app: LR range test, sanity checks, gradient check, critical points,
hyperparameter search. One tab each: settings on the left, the result on the right; the work runs
in a thread worker (see ``tui_lab.widgets.tool_view``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import TabbedContent, TabPane, Tabs

from engine.catalogue.presets import LoadedPreset, PresetError
from tui_lab.screens.library import saved_presets
from tui_lab.widgets.lab_footer import LabFooter
from tui_lab.widgets.mode_bar import ModeBar
from tui_lab.widgets.tool_critical import CriticalView
from tui_lab.widgets.tool_gradcheck import GradcheckView
from tui_lab.widgets.tool_lr_find import LRFindView
from tui_lab.widgets.tool_sanity import SanityView
from tui_lab.widgets.tool_search import SearchToolView
from tui_lab.widgets.tool_view import ToolView

TOOLS = (
    ("lr", "LR range test", LRFindView),
    ("sanity", "Sanity checks", SanityView),
    ("gradcheck", "Gradient check", GradcheckView),
    ("critical", "Critical points", CriticalView),
    ("search", "Search", SearchToolView),
)
"""(id, tab title, view): the tab of tool ``id`` is ``tab-<id>``, its view ``view-<id>``."""
SHORT_HEIGHT = 30
"""Below this height the tools leave their one-paragraph help out (the settings need the rows)."""


class ToolsScreen(Screen):
    BINDINGS = [
        Binding("ctrl+r", "run_tool", "Run / stop"),
        Binding("a", "apply_lr", "Apply LR to recipe"),
        Binding("t", "next_tool", "Next tool"),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("down", "enter_settings", "Into the settings", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield ModeBar("tools")
        with TabbedContent(id="tools-tabs"):
            for tool, title, view in TOOLS:
                with TabPane(title, id=f"tab-{tool}"):
                    yield view(id=f"view-{tool}")
        yield LabFooter(keep=("run_tool", "apply_lr", "next_tool", "cycle_sort"))

    def __init__(self) -> None:
        super().__init__()
        self._catalogue: list[LoadedPreset] | None = None
        self._saved_key: tuple[tuple[str, float], ...] = ()

    def on_mount(self) -> None:
        self.set_class(self.size.height < SHORT_HEIGHT, "-short")
        self.reload()

    def on_resize(self) -> None:
        self.set_class(self.size.height < SHORT_HEIGHT, "-short")

    def on_screen_resume(self) -> None:
        self.reload()  # recipes saved from the Builder meanwhile

    def reload(self) -> None:
        """The catalogue (read once) and the saved recipes (again when the folder changed), into every
        tool's preset menu; a tool keeps the preset it has chosen."""
        if self._catalogue is None:
            try:
                self._catalogue = sorted(self.app.catalogue(), key=lambda p: p.id)
            except PresetError as exc:
                self._catalogue = []
                self.notify(str(exc), title="A built-in preset does not load", severity="error", timeout=10, markup=False)
        folder = self.app.presets_dir
        key = tuple(sorted((str(p), p.stat().st_mtime) for p in folder.glob("*.toml"))) if folder.is_dir() else ()
        first = not self._saved_key and not any(v.presets for v in self.query(ToolView))
        if key == self._saved_key and not first:
            return
        self._saved_key = key
        saved, _problems = saved_presets(folder)
        presets = [*self._catalogue, *saved]
        default = next((p for p in presets if p.id == "optimizers"), None)
        for view in self.query(ToolView):
            keep = view.loaded if view.presets else None
            view.set_presets(presets, keep or (default if not isinstance(view, GradcheckView) else None),
                             saved=[p.path for p in saved])

    # -- helpers ----------------------------------------------------------------------------

    def view(self, tool: str) -> ToolView:
        return self.query_one(f"#view-{tool}", ToolView)

    @property
    def active_tool(self) -> str:
        return self.query_one("#tools-tabs", TabbedContent).active.removeprefix("tab-")

    # -- actions ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply_lr":
            if not self.is_mounted or not self.query("#tools-tabs"):
                return False
            return self.active_tool == "lr" and self.view("lr").result_value is not None
        return True

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        self.call_after_refresh(self.keep_focus)

    def keep_focus(self) -> None:
        """The focus never stays lost: when the widget that had it went (its tool's tab hidden by `t`,
        a result it was in replaced), the tab bar takes it (←/→ switch tools, ↓ goes into the settings).
        With the focus nowhere, ↓, ↑ and enter did nothing until a click."""
        if self.is_current and (self.focused is None or self.focused not in self.focus_chain):
            self.query_one("#tools-tabs", TabbedContent).query_one(Tabs).focus()

    def on_tool_view_finished(self, event: ToolView.Finished) -> None:
        self.refresh_bindings()

    def on_tool_view_ended(self, event: ToolView.Ended) -> None:
        self.call_after_refresh(self.keep_focus)

    def action_run_tool(self) -> None:
        self.view(self.active_tool).run()

    def action_apply_lr(self) -> None:
        view = self.view("lr")
        if isinstance(view, LRFindView):
            view.apply()

    def action_next_tool(self) -> None:
        tabs = self.query_one("#tools-tabs", TabbedContent)
        ids = [f"tab-{tool}" for tool, _, _ in TOOLS]
        shown = self.view(self.active_tool)
        if self.focused is not None and shown in self.focused.ancestors:
            tabs.query_one(Tabs).focus()  # the focused setting is about to be hidden with its tool
        tabs.active = ids[(ids.index(tabs.active) + 1) % len(ids)] if tabs.active in ids else ids[0]

    def action_leave_field(self) -> None:
        self.query_one("#tools-tabs", TabbedContent).query_one("Tabs").focus()

    def action_enter_settings(self) -> None:
        """↓ on the tab bar (a field takes ↓ itself): into the shown tool's first setting."""
        if not isinstance(self.focused, Tabs):
            return
        view = self.view(self.active_tool)
        first = next((w for w in self.focus_chain if view in w.ancestors), None)
        if first is not None:
            first.focus()
