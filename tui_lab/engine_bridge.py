"""Between the engine's Runner and the app: thread workers that drain runners into messages.

The engine trains in its worker processes; here a Textual thread worker per comparison calls
``runner.poll()`` and posts each batch of events to the app as one :class:`EngineBridge.Events`
message (every event, none dropped or merged). The app folds them into the comparison on the UI
thread; the dashboard redraws from it at its own bounded rate. Stored runs replay through the
same path (:class:`StoreReplay` is runner-shaped), so a reopened run is drawn by the same code as
a live one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from textual.message import Message
from textual.worker import Worker, WorkerState, get_current_worker

from engine.events import Event
from engine.recipe.config import RunSpec
from tui_lab.data.comparison import Comparison

POLL_S = 0.1
"""How long one poll waits for the first event: also how soon a cancel or a quit is seen."""
CLOSE_S = 5.0
"""How long a finished or cancelled runner may take to wind its workers down before they are
terminated (the runner's own default)."""
QUIT_CLOSE_S = 2.0
"""The same when the person quits: a worker busy loading data does not see a cancel until its
first step, and nobody should wait long for an app to close."""


class RunnerLike(Protocol):
    """What the app needs of ``engine.runs.runner.Runner`` (tests pass a fake with the same shape)."""

    run_ids: list[str]

    def start(self) -> None: ...
    def poll(self, timeout: float = 0.1) -> list[Event]: ...
    def cancel(self, run_id: str | None = None) -> None: ...
    def close(self, timeout: float = 5.0) -> None: ...

    @property
    def finished(self) -> bool: ...


RunnerFactory = Callable[..., RunnerLike]
"""``factory(specs, device=..., store=...) -> runner``; called in the worker thread."""


def ensure_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with the real stderr.

    The tracker hands ``sys.stderr.fileno()`` to its process; inside a Textual app ``sys.stderr``
    is a capture object whose ``fileno()`` is -1, and spawning fails with "bad value(s) in
    fds_to_keep". Started once here (before the app, or with stderr swapped back for a moment),
    later runners find it running.
    """
    from multiprocessing import resource_tracker

    saved = sys.stderr
    try:
        if sys.__stderr__ is not None:
            sys.stderr = sys.__stderr__
        resource_tracker.ensure_running()
    finally:
        sys.stderr = saved


def interactive_sizing(specs: Sequence[RunSpec], device: str) -> tuple[int | None, int | None]:
    """Workers and threads for a person watching: on a CPU one core stays with the app (2 cores:
    one worker with one thread), one thread per worker; on a GPU the runner decides (None, None)."""
    from engine.runs.device import cpu_cores, resolve_device, threads_per_worker

    dev = resolve_device(device)
    if dev.type != "cpu":
        return None, None
    workers = max(1, min(len(specs), cpu_cores() - 1))
    return workers, threads_per_worker(workers, dev, interactive=True)


def local_runner(specs: Sequence[RunSpec], *, device: str = "auto", store: Any = None) -> RunnerLike:
    """The engine's Runner in this process's own workers, sized for a person watching: the runs
    end with the app."""
    from engine.runs.runner import Runner

    ensure_resource_tracker()
    workers, threads = interactive_sizing(specs, device)
    return Runner(list(specs), device=device, workers=workers, threads=threads, store=store)


def interactive_runner(specs: Sequence[RunSpec], *, device: str = "auto", store: Any = None) -> RunnerLike:
    """The app's runner: the comparison goes to the runs service (``engine.runs.service``), so it
    outlives the app and its terminal, and the app follows it through the store; where the service
    cannot start (or the store is not a file of a home), it runs in the app's own workers.

    Called in the drain thread, so importing torch (for the device) never blocks the UI."""
    from engine.runs.client import ServiceError, ServiceRunner
    from engine.runs.store import RunStore

    if isinstance(store, RunStore) and os.environ.get("DLLAB_SERVICE", "on") != "off":
        workers, threads = interactive_sizing(specs, device)
        try:
            return ServiceRunner(list(specs), home=store.path.parent, store=store, device=device, workers=workers,
                                 threads=threads)
        except ServiceError as exc:  # noted in the service's log (the terminal is the app's now)
            with contextlib.suppress(OSError), open(store.path.parent / "service.log", "a") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} app: {exc}; its runs train in the app's own workers\n")
    return local_runner(specs, device=device, store=store)


class StoreReplay:
    """Stored runs, runner-shaped: the first poll returns every stored event of every run."""

    def __init__(self, store: Any, run_ids: Sequence[str]) -> None:
        self.store = store
        self.run_ids = list(run_ids)
        self._done = False

    def start(self) -> None:
        pass

    def poll(self, timeout: float = 0.1) -> list[Event]:
        if self._done:
            return []
        self._done = True
        events: list[Event] = []
        for run_id in self.run_ids:
            events.extend(self.store.events(run_id))
        return events

    def cancel(self, run_id: str | None = None) -> None:
        pass

    def close(self, timeout: float = 5.0) -> None:
        self._done = True

    @property
    def finished(self) -> bool:
        return self._done


class Session:
    """One comparison being run (or replayed): its data, its runner and the worker draining it."""

    _ids = itertools.count(1)

    def __init__(self, comparison: Comparison, make_runner: Callable[[], RunnerLike], *,
                 detached: bool = False) -> None:
        self.id = next(self._ids)
        self.detached = detached
        """The runs belong to the runs service: this session only follows them (quitting leaves them going)."""
        self.comparison = comparison
        self.make_runner = make_runner
        self.runner: RunnerLike | None = None
        self.worker: Worker | None = None
        self.stop = threading.Event()
        """Set to end the session: the runner is cancelled and closed (a quit, a replaced run)."""
        self.cancel_all_requested = False
        self.error = ""
        self.ended = False
        self.started_at = time.monotonic()
        self.started_wall = time.time()
        self.ended_at: float | None = None
        self.finished_at: float | None = None
        """When the comparison's last run ended (as its event arrived): the clock stops there, not
        when the runner has closed its workers seconds later."""
        self.close_timeout = CLOSE_S

    def elapsed(self) -> float:
        """Seconds since the session started until its last run ended (or the session did): what
        the person waited for the runs. A comparison followed after it began (`dllab attach`,
        History) counts from its first run's start, not from when this session joined it."""
        end = next((t for t in (self.finished_at, self.ended_at) if t is not None), time.monotonic())
        starts = [r.started for r in self.comparison.runs if r.started]
        before = max(0.0, self.started_wall - min(starts)) if starts else 0.0
        return end - self.started_at + before

    @property
    def active(self) -> bool:
        return not self.ended

    def cancel(self, run_id: str | None = None) -> bool:
        """Cancel one run or all; False when there is nothing to cancel yet."""
        if self.ended:
            return False
        if self.runner is None:
            if run_id is None:
                self.cancel_all_requested = True
                return True
            return False
        try:
            self.runner.cancel(run_id)
        except KeyError:
            return False
        return True

    def drain(self, post: Callable[[Message], Any], poll_s: float = POLL_S) -> None:
        """The worker's body: build and start the runner, forward its events, close it."""
        worker = get_current_worker()
        error = ""
        runner: RunnerLike | None = None
        try:
            runner = self.make_runner()
            self.runner = runner
            self.detached = self.detached or bool(getattr(runner, "detached", False))
            post(EngineBridge.Attached(self.id, list(runner.run_ids)))
            if self.stop.is_set():
                return
            runner.start()
            if self.cancel_all_requested:
                runner.cancel()
            while not (self.stop.is_set() or worker.is_cancelled):
                events = runner.poll(timeout=poll_s)
                if events:
                    post(EngineBridge.Events(self.id, events))
                elif runner.finished:
                    break
        except Exception as exc:  # noqa: BLE001 - shown to the person, never a crash of the app
            error = f"{type(exc).__name__}: {exc}"
        finally:
            if runner is not None:
                try:
                    runner.close(timeout=self.close_timeout)
                    rest = runner.poll(timeout=0)
                    if rest:
                        post(EngineBridge.Events(self.id, rest))
                except Exception as exc:  # noqa: BLE001
                    error = error or f"closing the runner: {type(exc).__name__}: {exc}"
            post(EngineBridge.Stopped(self.id, error))


class EngineBridge:
    """The app's sessions: starts their workers and folds their messages into comparisons."""

    class Attached(Message):
        """The runner exists: its run ids, in the order of the specs."""

        def __init__(self, session_id: int, run_ids: list[str]) -> None:
            super().__init__()
            self.session_id = session_id
            self.run_ids = run_ids

    class Events(Message):
        """A batch of events from one poll (never merged with another: every point counts)."""

        def __init__(self, session_id: int, events: list[Event]) -> None:
            super().__init__()
            self.session_id = session_id
            self.events = events

    class Stopped(Message):
        """The runner is closed (error: why it could not run, if it could not)."""

        def __init__(self, session_id: int, error: str = "") -> None:
            super().__init__()
            self.session_id = session_id
            self.error = error

    def __init__(self, app: Any, runner_factory: RunnerFactory | None = None, store: Any = None) -> None:
        self.app = app
        self.runner_factory = runner_factory or interactive_runner
        self.store = store
        self.sessions: dict[int, Session] = {}
        self.live: Session | None = None

    # -- starting -------------------------------------------------------------------------

    def _launch(self, session: Session) -> Session:
        self.sessions[session.id] = session
        session.worker = self.app.run_worker(
            lambda: session.drain(self.app.post_message),
            name=f"session-{session.id}",
            group=f"session-{session.id}",
            description=session.comparison.title,
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )
        return session

    def start(self, comparison: Comparison, specs: Sequence[RunSpec]) -> Session:
        """Run specs live; the session becomes the live one (the dashboard follows it)."""
        comparison.add_specs(specs)
        store = self.store
        session = Session(
            comparison, lambda: self.runner_factory(list(specs), device=comparison.device, store=store)
        )
        self.live = session
        return self._launch(session)

    def start_runner(self, comparison: Comparison, make_runner: Callable[[], RunnerLike]) -> Session:
        """Run live whatever runner-shaped object ``make_runner()`` builds (in the worker thread):
        for comparisons whose runs are not known up front (a search preset's trials)."""
        session = Session(comparison, make_runner)
        self.live = session
        return self._launch(session)

    def follow(self, comparison: Comparison, rows: Sequence[Any], store: Any,
               cancel: Callable[[str | None], Any] | None) -> Session:
        """Follow runs the runs service trains (``engine.runs.follow``): their curves from the store,
        then live; `cancel` reaches the service. Several apps may follow one comparison."""
        comparison.add_stored(rows)
        ids = [r.run_id for r in rows]
        from engine.runs.follow import StoreFollower

        session = Session(comparison, lambda: StoreFollower(store, ids, cancel), detached=True)
        self.live = session
        return self._launch(session)

    def replay(self, comparison: Comparison, rows: Sequence[Any], store: Any) -> Session:
        """Open stored runs (read-only) through the same path as live events."""
        comparison.add_stored(rows)
        ids = [r.run_id for r in rows]
        return self._launch(Session(comparison, lambda: StoreReplay(store, ids)))

    # -- messages -------------------------------------------------------------------------

    def apply(self, message: Message) -> Session | None:
        """Fold a bridge message into its comparison (on the UI thread)."""
        session = self.sessions.get(getattr(message, "session_id", -1))
        if session is None:
            return None
        if isinstance(message, EngineBridge.Attached):
            session.comparison.attach(message.run_ids)
        elif isinstance(message, EngineBridge.Events):
            session.comparison.add_many(message.events)
            if session.finished_at is None and session.comparison.finished:
                session.finished_at = time.monotonic()
        elif isinstance(message, EngineBridge.Stopped):
            session.ended = True
            session.ended_at = time.monotonic()
            session.error = message.error
            if message.error:
                session.comparison.error = message.error
                session.comparison.end_unfinished("failed", message.error)
            elif not session.comparison.finished:
                session.comparison.end_unfinished("cancelled", "the runner stopped before this run ended")
        return session

    # -- stopping -------------------------------------------------------------------------

    @property
    def detached_going(self) -> list[Session]:
        """Sessions following runs that the runs service trains, not ended yet."""
        return [s for s in self.sessions.values()
                if s.active and s.detached and not s.comparison.read_only and not s.comparison.finished]

    @property
    def busy(self) -> bool:
        """Live runs are going (replays, and runs the runs service trains, do not count)."""
        return any(s.active and not s.comparison.read_only and not s.detached for s in self.sessions.values())

    def cancel(self, session: Session, run_id: str | None = None) -> bool:
        return session.cancel(run_id)

    async def shutdown(self, timeout: float = 10.0) -> None:
        """End every session: runners cancelled and closed, workers finished (or the timeout)."""
        workers = []
        for session in self.sessions.values():
            session.close_timeout = min(session.close_timeout, QUIT_CLOSE_S)
            session.stop.set()
            if session.worker is not None:
                workers.append(session.worker)
        deadline = time.monotonic() + timeout
        while any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in workers):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)

    def interrupt(self, signal_name: str) -> None:
        """The app was signalled (SIGHUP: its terminal closed; SIGTERM): runs its own workers train
        stop ``interrupted``, naming the signal; runs the runs service trains go on."""
        for session in self.sessions.values():
            runner = session.runner
            if runner is not None and not session.detached and hasattr(runner, "interrupt"):
                with contextlib.suppress(Exception):
                    runner.interrupt(signal_name)

    def stop_all(self) -> None:
        """Tell every drain thread to cancel and close its runner (the app is going away)."""
        for session in self.sessions.values():
            session.close_timeout = min(session.close_timeout, QUIT_CLOSE_S)
            session.stop.set()

    def close_now(self) -> None:
        """Blocking last resort after the app's loop ended: close any runner left open (closing
        twice is harmless; by then the drain threads have finished)."""
        self.stop_all()
        for session in self.sessions.values():
            if session.runner is not None:
                try:
                    session.runner.close(timeout=QUIT_CLOSE_S)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
