"""The Textual lab: composes the four screens, routes the engine's messages, binds the keys.

``dllab`` opens it on the Library; ``dllab open PRESET`` opens the Dashboard on that comparison
and starts it. Tests build ``DllabApp(runner_factory=FakeRunner, store=..., frozen=True)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding

from engine.catalogue.presets import LoadedPreset, PresetError, load_preset
from engine.catalogue.presets import catalogue as engine_catalogue
from engine.recipe.config import RunSpec
from engine.runs.store import RunStore, default_home
from tui_lab.data.comparison import Comparison
from tui_lab.engine_bridge import EngineBridge, RunnerFactory
from tui_lab.screens.builder import BuilderScreen, editable_path
from tui_lab.screens.confirm import OTHER, ConfirmScreen
from tui_lab.screens.dashboard import DashboardScreen
from tui_lab.screens.history import HistoryScreen
from tui_lab.screens.library import LibraryScreen
from tui_lab.screens.tools import ToolsScreen


class DllabApp(App):
    """dllab: pick a technique, watch its variants train side by side."""

    TITLE = "dllab"
    CSS_PATH = "app.tcss"
    MODES = {
        "library": LibraryScreen,
        "builder": BuilderScreen,
        "dashboard": DashboardScreen,
        "history": HistoryScreen,
        "tools": ToolsScreen,
    }
    BINDINGS = [
        Binding("1", "show_mode('library')", "Library", show=False),
        Binding("2", "show_mode('builder')", "Builder", show=False),
        Binding("3", "show_mode('dashboard')", "Dashboard", show=False),
        Binding("4", "show_mode('history')", "History", show=False),
        Binding("5", "show_mode('tools')", "Tools", show=False),
        Binding("question_mark,f1", "toggle_help", "Keys", key_display="?", tooltip="show or hide this list"),
        Binding("escape", "hide_help", "Close this list", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        *,
        runner_factory: RunnerFactory | None = None,
        store: RunStore | None = None,
        presets_dir: Path | None = None,
        open_preset: LoadedPreset | None = None,
        quick: bool = False,
        seeds: list[int] | None = None,
        device: str = "auto",
        frozen: bool = False,
        catalogue: Callable[[], list[LoadedPreset]] | None = None,
        mode: str = "library",
        search_executor: Callable[..., Any] | None = None,
        follow: str | None = None,
    ) -> None:
        super().__init__()
        self.catalogue = catalogue or engine_catalogue
        """The Library's presets (tests pin a fixed set)."""
        self.store = store if store is not None else RunStore()
        self.presets_dir = presets_dir if presets_dir is not None else default_home() / "presets"
        self.bridge = EngineBridge(self, runner_factory, store=self.store)
        self.device = device
        self.frozen = frozen
        """Tests: no spinner animation (deterministic snapshots)."""
        self._open = (open_preset, quick, seeds)
        self._follow = follow
        self.catch_signals = False
        """SIGTERM and SIGHUP end the app as quitting does (``run_app`` sets it; tests leave the
        test process's signals alone)."""
        self._stopping_for: str | None = None
        """The signal the app is going away for (SIGTERM, SIGHUP), once one came."""
        """A comparison to open at start and follow to its end (``dllab attach``)."""
        self._first_mode = mode if mode in self.MODES else "library"
        self.pending_draft: tuple[Any, Path | None] | None = None
        self.builder_screen: Any = None
        """The Builder, once it has been shown (it is asked before its recipe is replaced)."""
        self.saved_changed = False
        self.pending_variant: str | None = None
        """The Builder shows this variant when it takes the pending draft."""
        self.search_executor = search_executor
        """How a search preset's trials train (``tui_lab.search_bridge.ExecutorFactory``; None: the
        engine's in-process executor, in the search's thread). Tests pass a fake."""

    def on_mount(self) -> None:
        if self.catch_signals:
            self._catch_signals()
        loaded, quick, seeds = self._open
        if self._follow is not None:
            self.switch_mode("dashboard")
            self.follow_comparison(self._follow)
        elif loaded is not None:
            self.switch_mode("dashboard")
            self.start_preset(loaded, quick=quick, seeds=seeds, confirm=False)
        else:
            self.switch_mode(self._first_mode)

    def on_unmount(self) -> None:
        self.bridge.stop_all()  # drain threads close their runners; the loop waits for them

    def _catch_signals(self) -> None:
        """SIGTERM and SIGHUP (a closed terminal, `kill`) end the app as quitting does: runs that
        the runs service trains go on, its own workers' runs stop ``interrupted`` (checkpointed),
        and the terminal is given back as it was (no alternate screen or mouse mode left on)."""
        loop = asyncio.get_running_loop()
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                    loop.add_signal_handler(getattr(signal, name), self._signalled, name)

    def _signalled(self, name: str) -> None:
        if self._stopping_for is not None:
            return
        self._stopping_for = name
        self.bridge.interrupt(name)
        code = 128 + getattr(signal, name)
        if name == "SIGHUP":
            # The terminal is gone: there is nothing to give back, and Textual's input thread can spin
            # on the dead terminal and hold the exit up for ever (at full CPU: seen in tmux). Close the
            # runners (the service's runs go on) and leave at once.
            threading.Thread(target=self._leave_now, args=(code,), name="dllab-hangup", daemon=True).start()
            return
        threading.Timer(HARD_EXIT_S, os._exit, args=(code,)).start()  # a clean exit that hangs is cut short

        async def leave() -> None:
            await self.bridge.shutdown()
            self.exit(return_code=code)

        self.run_worker(leave(), exclusive=True, group="signal-exit")

    def _leave_now(self, code: int) -> None:
        try:
            self.bridge.close_now()
        finally:
            os._exit(code)

    def notify(self, message: str, *, title: str = "", **kwargs: Any) -> None:
        """Every toast (the screens' and widgets' too): its text may quote a preset file, the store
        or a run's error, so its control characters are removed (``fmt.clean``), never obeyed."""
        from tui_lab.data.fmt import clean

        super().notify(clean(message, lines=True), title=clean(title), **kwargs)

    # -- key help -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "hide_help":  # escape closes the key help, and does what it did when none is shown
            return bool(self.screen_stack) and bool(self.screen.query("HelpPanel"))
        return True

    def action_show_help_panel(self) -> None:
        """The key help of the current screen (``KeyHelp``: Textual's help panel over the screen's right side)."""
        try:
            from tui_lab.widgets.key_help import KeyHelp
        except ImportError:  # a Textual without the private table it builds on: Textual's own panel
            super().action_show_help_panel()
            return
        if not self.screen.query("HelpPanel"):
            self.screen.mount(KeyHelp())

    def action_toggle_help(self) -> None:
        """``?`` / F1: show the key help, or close it."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_hide_help(self) -> None:
        self.action_hide_help_panel()

    # -- screens --------------------------------------------------------------------------

    def action_show_mode(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)
        elif len(self.screen_stack) > 1 and mode == "history":
            self.pop_screen()

    def open_in_builder(self, loaded: LoadedPreset | None, draft: Any = None, *, replace: bool = False) -> None:
        """The Builder on a preset (or a new recipe); `draft`: that preset's draft, changed. When
        the Builder holds unsaved changes it asks first (`replace`: already asked)."""
        from tui_lab.data.draft import Draft

        builder = self.builder_screen
        if not replace and builder is not None and builder.has_unsaved_changes():
            title = builder.draft.meta.get("title") or "the recipe"
            new = loaded.preset.title if loaded is not None else "a new recipe"

            def answered(yes: bool | None) -> None:
                if yes:
                    self.open_in_builder(loaded, draft, replace=True)
                else:
                    self.pending_variant = None
                    self.notify("The Builder keeps your changes (ctrl+s saves them).", title="Not replaced")

            self.push_screen(ConfirmScreen(
                f"The Builder has unsaved changes to {title}. Replace them with {new}?",
                yes="Replace them", no="Keep my changes"), answered)
            return

        if loaded is None:
            self.pending_draft = (draft or Draft.new(), None)
        else:
            self.pending_draft = (draft or Draft.from_preset(loaded.preset), editable_path(loaded))
        if self.current_mode == "builder":
            screen = self.screen
            if isinstance(screen, BuilderScreen):
                screen.on_screen_resume()
        else:
            self.switch_mode("builder")

    # -- comparisons ----------------------------------------------------------------------

    def start_preset(self, loaded: LoadedPreset, *, quick: bool = True, seeds: list[int] | None = None,
                     confirm: bool = True) -> None:
        """Run a preset (expanded here, so a bad preset is a message, not a failed worker)."""
        if loaded.preset.search is not None:  # each variant is a whole search: see start_search
            self.start_search(loaded, quick=quick, seeds=seeds, confirm=confirm)
            return
        try:
            specs = loaded.expand(quick=quick, seeds=seeds)
        except PresetError as exc:
            self.notify(str(exc), title="Cannot run", severity="error", timeout=10, markup=False)
            return
        from engine.catalogue.preflight import preflight

        if problems := preflight(specs, device=self.device):  # known before any worker starts
            self.notify("\n".join(problems), title="Cannot run", severity="error", timeout=15, markup=False)
            return
        title = loaded.preset.title
        comparison = Comparison(title, loaded=loaded, quick=quick, seeds=seeds, device=self.device)
        self.start_specs(comparison, specs, confirm=confirm)

    def start_ablation(self, row: Any, report: Any, seeds: list[int] | None = None) -> None:
        """The doctor's ablation of a stored run: its recipe and each remedy over seeds, run as a
        comparison; the Verdict says which remedy helped (``engine.diagnostics.doctor``)."""
        from engine.diagnostics.doctor import ablation_specs

        specs = ablation_specs(row.spec, report, seeds or [0, 1, 2])
        comparison = Comparison(f"Doctor: {row.preset} / {row.variant}", device=self.device)
        comparison.ablation = report
        self.start_specs(comparison, specs)

    def start_search(self, loaded: LoadedPreset, *, quick: bool = True, seeds: list[int] | None = None,
                     confirm: bool = True) -> None:
        """Run a preset with a ``[search]`` table: ``engine.catalogue.search.run_search_preset`` in the session's
        worker (``SearchRunner``); its trials stream into the dashboard, the verdict checks the
        claims on the searches' outcomes."""
        from tui_lab.data.search_comparison import SearchComparison
        from tui_lab.search_bridge import SearchRunner

        try:
            comparison = SearchComparison(loaded.preset.title, loaded=loaded, quick=quick, seeds=seeds,
                                          device=self.device)
        except (PresetError, ValueError) as exc:
            self.notify(str(exc), title="Cannot run", severity="error", timeout=10, markup=False)
            return
        store, device, factory = self.store, self.device, self.search_executor

        def make_runner() -> SearchRunner:
            return SearchRunner(loaded, quick=quick, seeds=comparison.search_seeds, device=device, store=store,
                                executor_factory=factory)

        self.start_specs(comparison, [], confirm=confirm, make_runner=make_runner)

    def start_specs(self, comparison: Comparison, specs: list[RunSpec], *, confirm: bool = True,
                    make_runner: Callable[[], Any] | None = None) -> None:
        """Start a live comparison, after asking to cancel one that is still going (`make_runner`:
        a runner-shaped object to drain instead of the runner of `specs`)."""
        live = self.bridge.live
        if confirm and live is not None and live.active:

            def answered(yes: bool | None) -> None:
                if yes:
                    live.cancel()
                    self._launch(comparison, specs, make_runner)

            self.push_screen(ConfirmScreen(
                f"{live.comparison.title} is still running. Cancel it and start {comparison.title}?",
                yes="Cancel it and start", no="Keep it running"), answered)
            return
        self._launch(comparison, specs, make_runner)

    def _launch(self, comparison: Comparison, specs: list[RunSpec], make_runner: Callable[[], Any] | None = None) -> None:
        if make_runner is not None:
            self.bridge.start_runner(comparison, make_runner)
        else:
            self.bridge.start(comparison, specs)
        if self.current_mode != "dashboard":
            self.switch_mode("dashboard")
        else:
            screen = self.screen
            if isinstance(screen, DashboardScreen):
                self.call_later(screen.adopt_live)

    def rerun(self, comparison: Comparison) -> None:
        from tui_lab.data.search_comparison import SearchComparison

        if isinstance(comparison, SearchComparison) and comparison.loaded is not None:
            self.start_search(comparison.loaded, quick=comparison.quick, seeds=comparison.seeds)
            return
        specs = [s.model_copy(update={"comparison": ""}) for s in comparison.run_specs()]
        if not specs:
            self.notify("nothing to run again: the stored runs have no readable spec", severity="warning")
            return
        # a stored set's title names stored runs: the fresh ones are a rerun of them
        title = f"rerun of {comparison.title}" if comparison.read_only else comparison.title
        fresh = Comparison(title, loaded=comparison.loaded, quick=comparison.quick,
                           seeds=comparison.seeds, device=self.device)
        self.start_specs(fresh, specs)

    def follow_comparison(self, comparison_id: str) -> None:
        """The Dashboard on a stored comparison, followed to its end: the runs service trains it
        (``dllab attach``), or it has ended and replays whole."""
        rows = sorted(self.store.list_runs(comparison=comparison_id), key=lambda r: (r.created, r.run_id))
        if not rows:
            self.notify(f"no stored runs of comparison {comparison_id}", severity="warning", markup=False)
            return
        loaded = self._stored_preset(rows)
        title = f"{loaded.preset.title if loaded else self._stored_title(rows, None)} · followed ({comparison_id})"
        comparison = Comparison(title, loaded=loaded, device=self.device)
        self.bridge.follow(comparison, rows, self.store, self._service_cancel(comparison_id))

    def _service_cancel(self, comparison_id: str) -> Callable[[str | None], Any]:
        def cancel(run_id: str | None) -> None:
            from engine.runs.client import running_service

            client = running_service(self.store.path.parent)
            if client is not None:
                client.cancel(run_id or comparison_id)

        return cancel

    def resume_runs(self, rows: list[Any]) -> None:
        """Stopped runs go on from their checkpoints in the runs service; the Dashboard follows
        their comparison. A run that cannot (no checkpoint, finished, going) says why."""
        from engine.runs.client import ServiceError, connect
        from engine.runs.resume import resumable

        home = self.store.path.parent
        reasons = {r.run_id: resumable(r, home) for r in rows}
        problems = [why for why in reasons.values() if why is not None]
        chosen = [r for r in rows if reasons[r.run_id] is None]
        if problems:
            self.notify("\n".join(problems[:4]), title="Cannot resume", severity="warning", timeout=10,
                        markup=False)
        if not chosen:
            return
        going: set[str] = set()
        try:
            client = connect(home)
            for row in chosen:
                if row.run_id not in going:  # a batched group goes on as a whole from any of its runs
                    going.update(client.resume(row.run_id).get("run_ids", []))
        except ServiceError as exc:
            self.notify(str(exc), title="Cannot resume", severity="error", timeout=10, markup=False)
            return
        self.switch_mode("dashboard")
        self.follow_comparison(chosen[0].comparison)

    def live_in_service(self, rows: list[Any]) -> str | None:
        """The comparison of `rows` when the runs service is training it now, else None."""
        comparisons = {r.comparison for r in rows if not r.is_final and r.comparison}
        if len(comparisons) != 1:
            return None
        from engine.runs.client import ServiceError, running_service

        try:
            client = running_service(self.store.path.parent)
            live = {c["comparison"] for c in client.ps()} if client is not None else set()
        except ServiceError:
            return None
        return next(iter(comparisons)) if comparisons <= live else None

    @staticmethod
    def _stored_preset(rows: list[Any]) -> LoadedPreset | None:
        presets = sorted({r.preset for r in rows if r.preset})
        if len(presets) == 1:
            try:
                return load_preset(presets[0])
            except PresetError:
                return None
        return None

    @staticmethod
    def _stored_title(rows: list[Any], loaded: LoadedPreset | None) -> str:
        """"Dropout · 4 stored runs", or the presets' ids when the runs are not of one loadable preset."""
        if loaded is not None:
            return f"{loaded.preset.title} · {len(rows)} stored run{'s' if len(rows) != 1 else ''}"
        presets = sorted({r.preset for r in rows if r.preset})
        return f"{len(rows)} stored runs of {', '.join(presets) or 'unknown presets'}"

    def open_stored(self, rows: list[Any]) -> None:
        """Open stored runs together in a read-only dashboard (pushed over the History); runs the
        runs service trains now are followed live instead."""
        if (live := self.live_in_service(rows)) is not None:
            self.switch_mode("dashboard")
            self.follow_comparison(live)
            return
        loaded = self._stored_preset(rows)
        comparison = Comparison(self._stored_title(rows, loaded), loaded=loaded, read_only=True)
        session = self.bridge.replay(comparison, rows, self.store)
        self.push_screen(DashboardScreen(session, follow_live=False))

    def active_run_ids(self) -> set[str]:
        """Runs of live sessions that have not ended (not to be deleted from under the runner)."""
        out: set[str] = set()
        for session in self.bridge.sessions.values():
            if session.active and not session.comparison.read_only:
                out |= {r.run_id for r in session.comparison.runs if r.run_id and not r.finished}
        return out

    # -- engine messages --------------------------------------------------------------------

    def on_engine_bridge_attached(self, message: EngineBridge.Attached) -> None:
        self.bridge.apply(message)

    def on_engine_bridge_events(self, message: EngineBridge.Events) -> None:
        self.bridge.apply(message)

    def on_engine_bridge_stopped(self, message: EngineBridge.Stopped) -> None:
        session = self.bridge.apply(message)
        if session is None or session.comparison.read_only:
            return
        c = session.comparison
        if message.error:
            self.notify(message.error, title=f"{c.title}: the runner failed", severity="error", timeout=15,
                        markup=False)
            return
        from tui_lab.data.comparison import finish_note

        title, note = finish_note(c)
        self.notify(note, title=title, timeout=8, markup=False,
                    severity="warning" if c.all_cancelled else "information")

    # -- quitting -------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit, asking first (one question for both reasons) while runs go or the Builder holds
        unsaved changes; with unsaved changes the question offers "Save and quit" too."""
        builder = self.builder_screen
        unsaved = builder is not None and builder.has_unsaved_changes()
        busy = self.bridge.busy
        if not unsaved and not busy:
            if self.bridge.detached_going:
                self._ask_keep_or_cancel()
                return
            await self._shutdown_and_exit()
            return

        async def answered(answer: bool | str | None) -> None:
            # not saved (not valid, not writable: show why, stay; or it asks before replacing a file)
            if answer == OTHER and not builder.save(then=self._shutdown_and_exit):
                if self.current_mode != "builder":
                    self.switch_mode("builder")
                return
            if answer:
                await self._shutdown_and_exit()

        if not unsaved:
            self.push_screen(ConfirmScreen("Runs are still going. Cancel them and quit? (What they measured so far "
                                           "stays in the store.)", yes="Cancel runs and quit", no="Keep running"),
                             answered)
            return
        title = builder.draft.meta.get("title") or "the recipe"
        if busy:
            question = (f"Runs are still going, and the Builder has unsaved changes to {title}. Cancel the runs "
                        "and quit without saving? (What the runs measured so far stays in the store.)")
        else:
            question = f"The Builder has unsaved changes to {title}. Quit without saving them?"
        self.push_screen(ConfirmScreen(question, yes="Discard", no="Stay", other="Save and quit"), answered)

    def _ask_keep_or_cancel(self) -> None:
        """Quitting while the runs service trains this app's runs: they keep going unless asked."""
        going = self.bridge.detached_going

        async def answered(answer: bool | str | None) -> None:
            if answer == OTHER:
                for session in going:
                    session.cancel()
                self.notify("cancelling the runs…", timeout=3)
            if answer:
                await self._shutdown_and_exit()

        n = sum(len([r for r in s.comparison.runs if not r.finished]) for s in going)
        self.push_screen(ConfirmScreen(
            f"{n} run{'s are' if n != 1 else ' is'} still going in the background runs service. Keep "
            f"{'them' if n != 1 else 'it'} running after you quit (`dllab attach` follows again), or cancel?",
            yes="Keep running", no="Stay", other="Cancel them"), answered)

    async def _shutdown_and_exit(self) -> None:
        if self.bridge.busy:
            self.notify("cancelling the runs…", timeout=3)
        await self.bridge.shutdown()
        self.exit()


HARD_EXIT_S = 15.0
"""After SIGTERM the app leaves cleanly (the terminal given back); if that has not happened by
then, it leaves without (a runner that will not close, a terminal that does not answer)."""


def run_app(open_preset: str | None = None, quick: bool = False, seeds: list[int] | None = None,
            device: str = "auto", follow: str | None = None) -> int:
    """Open the lab (on a comparison, started at once, with ``open_preset``). Returns the exit code."""
    from tui_lab.engine_bridge import ensure_resource_tracker

    loaded = load_preset(open_preset) if open_preset else None  # a bad preset: PresetError, exit 2
    with RunStore() as store:
        store.check(write=True)  # a store that cannot be used: StoreError, exit 2, before the screen is taken
        store.settle_orphans()  # runs whose process is gone end with the reason, not "running" for ever
    ensure_resource_tracker()  # while sys.stderr is still the terminal (see its docstring)
    app = DllabApp(open_preset=loaded, quick=quick, seeds=seeds, device=device, follow=follow)
    app.catch_signals = True
    try:
        app.run()
    finally:
        app.bridge.close_now()
    return app.return_code or 0
