"""The live comparison: curves per metric (a line per variant), the runs' table, the verdict,
per-layer health of the highlighted run, and the preset's extra view. Redraws from a timer at a bounded rate, only
when the data or the view changed; every plotext call is inside the plot widgets."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Grid
from textual.content import Content
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from tui_lab.data.comparison import METRICS, SMOOTHING, X_AXES, Comparison, RunView
from tui_lab.engine_bridge import Session
from tui_lab.palette import faint, series_colors
from tui_lab.screens.views import build_view, update_view
from tui_lab.widgets.comparison_header import ComparisonHeader
from tui_lab.widgets.health_panel import WAITING, HealthPanel
from tui_lab.widgets.lab_footer import LabFooter
from tui_lab.widgets.metric_plot import MetricPlot, PlotData
from tui_lab.widgets.mode_bar import ModeBar
from tui_lab.widgets.variant_table import VariantTable
from tui_lab.widgets.verdict_panel import VerdictPanel

REDRAW_HZ = 4.0
PAGES = (("train_loss", "val_acc"), ("val_loss", "lr"))
"""Pairs of plots shown side by side when the terminal is too small for all four."""
FOOTER_KEEP = ("cancel_run", "cancel_all", "rerun", "back", "next_tab", "more_plots", "next_surface",
               "toggle_help", "toggle_seeds", "cycle_sort", "toggle_log", "cycle_x", "cycle_smoothing",
               "previous_surface")
"""The footer's keys by importance: at 80 columns the last ones give way (they still work; `?`
lists them)."""
VIEW_ACTIONS = ("next_surface", "previous_surface", "toggle_seeds")
"""Keys of the extra views (the surface view's), bound on the screen too: they work and show in the
footer whenever the view's tab is shown, not only once the view has the focus."""
COMPACT_HEIGHT = 34
COMPACT_WIDTH = 100


def run_spec(c: Comparison, run: RunView | None):
    """The RunSpec a run was made from (None: not known)."""
    if run is not None:
        for spec in c.specs:
            if spec.variant == run.variant and spec.seed == run.seed:
                return spec
    return None


def run_activation(c: Comparison, run: RunView | None) -> str:
    """The activation of a run's network (the health panel's histogram range), from its spec."""
    spec = run_spec(c, run)
    return spec.recipe.model.activation if spec is not None else "relu"


def has_layers(c: Comparison, run: RunView) -> bool:
    """Whether a run trains a network (a 2-D surface run moves a point: it has no layers)."""
    spec = run_spec(c, run)
    return spec is None or spec.recipe.data.name != "surface"


def layers_empty(c: Comparison, run: RunView) -> str:
    """What the Layers tab says while `run` has no diagnostics: that they will come, that the run has
    no layers (a surface run), or that none were recorded (it ended without any)."""
    if not has_layers(c, run):
        if not any(has_layers(c, r) for r in c.runs):
            return ("These runs move a point on a 2-D surface: they have no network layers to show (their "
                    "paths are on the Surface tab).")
        return "This run moves a point on a 2-D surface: it has no network layers to show."
    if run.finished:
        if c.finished and not any(r.diagnostics for r in c.runs):
            return "No diagnostics were recorded in these runs."
        if run.status in ("cancelled", "interrupted"):
            return f"This run was {run.status} before its first diagnostics."
        if run.status == "failed" and run.reason:
            return f"No diagnostics were recorded in this run: it failed ({run.reason})."
        return f"No diagnostics were recorded in this run (it ended {run.status})."
    return WAITING


def no_points(c: Comparison) -> str:
    """What a finished comparison's plot says when none of its runs reported its metric: why, when
    every run failed (an error, out of memory) before its first evaluation."""
    if c.runs and c.n_failed == len(c.runs):
        reasons = {r.reason for r in c.runs if r.reason}
        who = "the run" if len(c.runs) == 1 else f"all {len(c.runs)} runs"
        return f"no points: {who} failed" + (f": {reasons.pop()}" if len(reasons) == 1 else " (the Verdict says why)")
    return "not measured in these runs"


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("l", "toggle_log", "Log loss", tooltip="the loss plots on a log scale, or linear"),
        Binding("s", "cycle_smoothing", "Smooth", tooltip="smooth the batch loss: off, EMA 0.6, 0.9"),
        Binding("x", "cycle_x", "X axis", tooltip="plot against step, epoch or seconds"),
        Binding("m", "more_plots", "More plots", tooltip="the other two plots (when only two fit)"),
        Binding("t", "next_tab", "Next tab", tooltip="Curves, Verdict, Layers, and the preset's view"),
        Binding("v", "verdict", "Verdict", show=False, tooltip="the claims and each run's curves"),
        Binding("c", "cancel_run", "Cancel run", tooltip="the highlighted run"),
        Binding("C", "cancel_all", "Cancel all", tooltip="every run that has not ended"),
        Binding("r", "rerun", "Rerun", tooltip="the same runs again"),
        Binding("D", "doctor", "Doctor", tooltip="what the highlighted run's curves and layers point at"),
        Binding("]", "next_surface", "Next surface", tooltip="the next 2-D function"),
        Binding("[", "previous_surface", "Prev surface", tooltip="the previous 2-D function"),
        Binding("e", "toggle_seeds", "Every seed", tooltip="every seed's path, or the first seed's"),
        Binding("escape", "back", "Back", tooltip="to the History"),
        Binding("down", "run_cursor(1)", "Next run", show=False, tooltip="highlight it (c cancels it, Layers shows it)"),
        Binding("up", "run_cursor(-1)", "Previous run", show=False, tooltip="highlight it"),
    ]

    log_scale: var[bool] = var(False)
    """Loss plots on a log scale (the data are log-transformed here, not by plotext)."""
    smoothing: var[float] = var(0.0)
    """EMA weight applied to each series (0: raw points)."""
    x_axis: var[str] = var("step")
    page: var[int] = var(0)
    """Which pair of plots shows in the compact layout."""

    def __init__(self, session: Session | None = None, *, follow_live: bool = True) -> None:
        super().__init__()
        self.session = session
        self.follow_live = follow_live
        self._drawn = -1
        self._dirty = True
        self._frame = 0
        self._layer_run = 0
        self._recomposing = False
        self._binding_state: tuple[bool, bool] | None = None
        self._view_update = None
        self._health: tuple[RunView, int] | None = None
        """The run the health panel shows, and how many of its Diagnostics events it has been fed."""
        self._colors: list[Color] = []
        self._band_colors: list[Color] = []

    @property
    def comparison(self) -> Comparison | None:
        return self.session.comparison if self.session is not None else None

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ModeBar("dashboard" if self.follow_live else "history",
                      status="" if self.follow_live else "stored runs · escape goes back")
        yield ComparisonHeader(id="dash-header")
        c = self.comparison
        if c is None:
            yield Static(Content.from_markup(
                "[$text-muted]Nothing has run yet. Pick a technique in the Library ([b]1[/]) and press "
                "[b]enter[/] to run it quick, or open stored runs from the History ([b]4[/]).[/]"
            ), id="dash-empty")
        else:
            with TabbedContent(id="dash-tabs"):
                with TabPane("Curves", id="tab-curves"):
                    with Grid(id="plots"):
                        for key in METRICS:
                            yield MetricPlot(key, title=METRICS[key].title, id=f"plot-{key}")
                    yield VariantTable(id="variants")
                with TabPane("Verdict", id="tab-verdict"):
                    yield VerdictPanel(id="verdict")
                with TabPane("Layers", id="tab-layers"):
                    yield Static(id="layers-run")
                    yield HealthPanel(activation=run_activation(c, c.runs[0] if c.runs else None), id="layers")
                extra = build_view(c.view, c)
                if extra is not None:
                    title, view, self._view_update = extra
                    with TabPane(title, id="tab-view"):
                        view.id = "extra-view"
                        yield view
        yield LabFooter(keep=FOOTER_KEEP)

    def on_mount(self) -> None:
        self.set_interval(1 / REDRAW_HZ, self._tick)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._theme_changed())
        self._theme_changed()
        self._layout()

    def on_resize(self) -> None:
        self._layout()

    def _layout(self) -> None:
        compact = self.size.height < COMPACT_HEIGHT or self.size.width < COMPACT_WIDTH
        self.set_class(compact, "-compact")
        shown = set(PAGES[self.page % len(PAGES)]) if compact else set(METRICS)
        for key in METRICS:
            for plot in self.query(f"#plot-{key}"):
                plot.display = key in shown
        self._dirty = True

    def _theme_changed(self) -> None:
        c = self.comparison
        n = max(1, len(c.labels) if c is not None else 1)
        variables = self.app.theme_variables
        self._colors = series_colors(variables, n)
        background = Color.parse(variables.get("surface", variables.get("background", "black")))
        self._band_colors = [faint(col, background) for col in self._colors]
        self._dirty = True

    # -- following the live comparison ------------------------------------------------------

    async def adopt_live(self) -> None:
        """Show the app's live session if it is not the one shown (a new run or a rerun)."""
        live = self.app.bridge.live
        if self.follow_live and live is not None and live is not self.session and not self._recomposing:
            self._recomposing = True
            try:
                self.session = live
                self._drawn, self._dirty, self._layer_run, self._health = -1, True, 0, None
                await self.recompose()
            finally:
                self._recomposing = False
            self._theme_changed()
            self._layout()
            self.redraw()

    async def on_screen_resume(self) -> None:
        await self.adopt_live()
        self._dirty = True
        self.redraw()

    # -- drawing --------------------------------------------------------------------------

    async def _tick(self) -> None:
        if self.follow_live and self.app.bridge.live is not self.session:
            await self.adopt_live()
            return
        if not self.is_current or self._recomposing:
            return
        c = self.comparison
        animate = c is not None and self.session is not None and self.session.active and not self.app.frozen
        if animate:
            self._frame += 1  # the spinner and the clock move even when no event came
        if c is not None and (c.version != self._drawn or self._dirty):
            self.redraw()
        elif animate:
            with self.app.batch_update():
                self._draw_table(c)  # type: ignore[arg-type]
                self._draw_header(c)
        if c is not None:
            self._refresh_binding_state(c)

    def redraw(self) -> None:
        """Bring everything visible up to date with the comparison (the tick calls this)."""
        c = self.comparison
        if not self.is_mounted or self._recomposing or not self.query(ComparisonHeader):
            return
        with self.app.batch_update():
            self._draw_header(c)
            if c is None:
                return
            if len(self._colors) < len(c.labels):
                self._theme_changed()
            tab = self._active_tab()
            if tab == "tab-curves":
                self._draw_plots(c)
                self._draw_table(c)
            elif tab == "tab-verdict":
                self.query_one(VerdictPanel).show(c)
            elif tab == "tab-layers":
                self._draw_layers(c)
            elif tab == "tab-view":
                update_view(self.query_one("#extra-view"), self._view_update, c)
        self._drawn = c.version
        self._dirty = False
        self._refresh_binding_state(c)

    def _refresh_binding_state(self, c: Comparison) -> None:
        """Cancel / rerun come and go with the runs, the view's keys with its tab and what it
        shows: refresh the footer when that changes (also when the session ends after the last
        event, which no redraw follows)."""
        view = self._view_widget()
        surfaces = len(getattr(view, "surfaces", ())) if view is not None else 0
        state = (c.finished, self.session.active if self.session is not None else False, self._active_tab(), surfaces)
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def _view_widget(self):
        """The preset's extra view (surface, boundary, …), if it has one."""
        views = self.query("#extra-view")
        return views.first() if views else None

    def _active_tab(self) -> str:
        tabs = self.query(TabbedContent)
        return tabs.first().active if tabs else ""

    def _draw_header(self, c: Comparison | None) -> None:
        live = self.session is not None and c is not None and not c.read_only and not self.app.frozen
        self.query_one(ComparisonHeader).show(c, log=self.log_scale, smoothing=self.smoothing, x_axis=self.x_axis,
                                              elapsed=self.session.elapsed() if live else None)

    def _draw_table(self, c: Comparison) -> None:
        self.query_one(VariantTable).show(c, self._colors, 0 if self.app.frozen else self._frame)

    def _draw_plots(self, c: Comparison) -> None:
        for key, info in METRICS.items():
            plot = self.query_one(f"#plot-{key}", MetricPlot)
            if not plot.display:
                continue
            log = (self.log_scale and info.is_loss) or (key == "lr" and c.lr_spans_decades())
            empty = "waiting for the first points"
            if c.finished and not c.has_metric(key):
                empty = no_points(c)
            plot.show(PlotData(
                title=info.title, curves=c.curves(key, self.x_axis, self.smoothing, log), colors=self._colors,
                band_colors=self._band_colors, x_axis=self.x_axis, log=log, percent=info.percent and not log, empty=empty,
            ))

    def _draw_layers(self, c: Comparison) -> None:
        """Feed the health panel the highlighted run's new Diagnostics events (all of them, after a
        reset, when the highlighted run changed)."""
        run = c.runs[self._layer_run] if 0 <= self._layer_run < len(c.runs) else None
        panel = self.query_one(HealthPanel)
        if run is None:
            if self._health is not None:
                panel.reset()
                self._health = None
            self.query_one("#layers-run", Static).update(
                Content.from_markup("[$text-muted]No run to show yet.[/]"))
            return
        if self._health is None or self._health[0] is not run:
            panel.reset(activation=run_activation(c, run))
            fed = 0
        else:
            fed = self._health[1]
        for event in run.diagnostics[fed:]:
            panel.add_diagnostics(event)
        panel.show_empty(layers_empty(c, run))
        self._health = (run, len(run.diagnostics))
        self.query_one("#layers-run", Static).update(Content.from_markup(
            "[b]$n[/] [$text-muted]($k; ↑/↓ another run)[/]",
            n=c.run_title(run), k=f"{len(run.diagnostics)} measurement" + ("" if len(run.diagnostics) == 1 else "s")))

    # -- events ---------------------------------------------------------------------------

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._dirty = True
        self.redraw()
        self.refresh_bindings()  # the view's keys show while its tab does

    def on_variant_table_run_highlighted(self, event: VariantTable.RunHighlighted) -> None:
        if event.index != self._layer_run:
            self._layer_run = event.index
            if self._active_tab() == "tab-layers":  # a finished comparison would not redraw by itself
                self._dirty = True
                self.redraw()

    def watch_log_scale(self) -> None:
        self._dirty = True

    def watch_smoothing(self) -> None:
        self._dirty = True

    def watch_x_axis(self) -> None:
        self._dirty = True

    # -- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        c = self.comparison
        if action == "cancel_run" and not getattr(c, "trials_cancellable", True):
            return False  # a search's trials go together: C cancels the search
        if action in ("cancel_run", "cancel_all"):
            return c is not None and not c.read_only and not c.finished
        if action == "back":
            return not self.follow_live
        if action == "rerun":
            if c is None:
                return False
            return None if (not c.read_only and self.session is not None and self.session.active) else True
        if action in ("toggle_log", "cycle_smoothing", "cycle_x", "next_tab", "verdict"):
            return c is not None
        if action == "more_plots":
            return c is not None and self.has_class("-compact")
        if action in VIEW_ACTIONS:  # the view's own keys, from anywhere on its tab (the tab bar too)
            view = self._view_widget()
            if self._active_tab() != "tab-view" or not hasattr(view, f"action_{action}"):
                return False
            if action in ("next_surface", "previous_surface"):
                return len(getattr(view, "surfaces", ())) > 1
            return True
        return True

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self.redraw()

    def action_cycle_smoothing(self) -> None:
        i = SMOOTHING.index(self.smoothing) if self.smoothing in SMOOTHING else 0
        self.smoothing = SMOOTHING[(i + 1) % len(SMOOTHING)]
        self.redraw()

    def action_cycle_x(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self.redraw()

    def action_more_plots(self) -> None:
        self.page = (self.page + 1) % len(PAGES)
        self._layout()
        self.redraw()

    def action_next_tab(self) -> None:
        tabs = self.query(TabbedContent)
        if tabs:
            tc = tabs.first()
            ids = [pane.id for pane in tc.query(TabPane) if pane.id]
            if ids and tc.active in ids:
                tc.active = ids[(ids.index(tc.active) + 1) % len(ids)]

    def _view_action(self, action: str) -> None:
        view = self._view_widget()
        if view is not None and hasattr(view, f"action_{action}"):
            getattr(view, f"action_{action}")()

    def action_next_surface(self) -> None:
        self._view_action("next_surface")

    def action_previous_surface(self) -> None:
        self._view_action("previous_surface")

    def action_toggle_seeds(self) -> None:
        self._view_action("toggle_seeds")

    def action_verdict(self) -> None:
        tabs = self.query(TabbedContent)
        if tabs:
            tabs.first().active = "tab-verdict"

    def action_run_cursor(self, delta: int) -> None:
        """Up / down move the highlighted run (what `c` cancels) even when the table has no focus
        (a focused table, or another widget that uses the arrows, takes them first)."""
        tables = self.query(VariantTable)
        if tables:
            table = tables.first()
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + delta)))

    def _selected_run(self):
        c = self.comparison
        tables = self.query(VariantTable)
        if c is None or not tables:
            return None
        i = tables.first().selected_index()
        return c.runs[i] if i is not None and i < len(c.runs) else None

    def action_cancel_run(self) -> None:
        run = self._selected_run()
        if self.session is None or run is None:
            return
        if run.finished:
            self.notify(f"{run.label} has already ended ({run.status})", severity="warning", markup=False)
        elif run.run_id is None or not self.session.cancel(run.run_id):
            self.notify(f"{run.label} is not started yet: try again in a moment", severity="warning", markup=False)
        else:
            self.notify(f"cancelling {self.comparison.run_title(run)}", markup=False)  # type: ignore[union-attr]

    def action_doctor(self) -> None:
        """The doctor's findings for the highlighted run, once it has ended (read from the store)."""
        from tui_lab.screens.doctor import show_doctor

        run = self._selected_run()
        if run is None or run.run_id is None:
            return
        if not run.finished:
            self.notify(f"{run.label} is still running: the doctor reads a run that has ended", severity="warning",
                        markup=False)
            return
        try:
            row = self.app.store.get_run(run.run_id)
        except KeyError:
            self.notify("this run is not in the store", severity="warning")
            return
        show_doctor(self.app, [row])

    def action_cancel_all(self) -> None:
        if self.session is not None and self.session.cancel():
            self.notify("cancelling every run that has not ended")

    def action_rerun(self) -> None:
        c = self.comparison
        if c is None:
            return
        if not c.read_only and self.session is not None and self.session.active:
            self.notify("runs are still going: cancel them first (C) or wait", severity="warning")
            return
        self.app.rerun(c)

    def action_back(self) -> None:
        if not self.follow_live:
            self.app.pop_screen()
