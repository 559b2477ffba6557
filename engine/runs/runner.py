"""Run a comparison's RunSpecs in worker processes and forward their events.

Each worker is a ``spawn`` process that pulls units of runs one after another and executes each
with an ``emit`` that writes the event to the run store first and then sends it to the parent,
and a ``should_stop`` per run that reads a shared flag.

What can go wrong, and what the parent makes of it:

* the train function raises: the worker records ``RunFinished(status="failed")`` with the
  exception as the reason and goes on with the next run;
* a worker dies (segfault, ``os._exit``, killed): the parent notices, marks its run ``failed``
  ("worker process died (exit code -9)"), emits that RunFinished, starts a replacement worker if
  runs are left, and the other runs go on;
* Ctrl+C: workers ignore SIGINT; the parent's ``close()`` (call it from ``finally`` or use
  ``with``) cancels what is left, waits, then terminates stragglers; no worker outlives it, and a
  worker whose parent vanished stops its run and exits by itself.

The runner plans its work in units (``engine.batched.plan.work_units``: a batched group, or one
run); a worker claims a whole unit and hands it to the one executor
(``engine.runs.executor.run_unit``), which picks the trainer and keeps the books; a worker that
dies fails every unfinished run of its unit.

Nothing here imports torch at module level, so a worker can set its thread count first.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from pathlib import Path
from typing import Any

from engine.events import Event, RunFinished
from engine.recipe.config import RunSpec
from engine.runs import store as store_module
from engine.runs.comparison import NOT_STARTED, new_run_ids, register_pending, with_comparison
from engine.runs.executor import TrainFn, WorkUnit, failure_reason, run_unit
from engine.runs.store import RunStore, pid_alive

PENDING, CLAIMED, SKIPPED = 0, 1, 2
"""A run's state in the shared table: waiting, taken by a worker, or cancelled before it was taken."""
MAX_START_FAILURES = 3
"""Workers that die before taking a run, in a row, before the remaining runs are failed."""
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
class SignalStop(KeyboardInterrupt):
    """Raised by a command's SIGHUP or SIGTERM handler: stop as Ctrl+C does, but say that a signal,
    not a person, stopped the runs (``Runner.cancel(signal_name=...)``)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


STOP_CODES = {"SIGHUP": 2, "SIGTERM": 3}
"""The byte "stop every run" holds when a signal, not a person, stopped them (1: cancelled)."""
STOP_WORDS = {2: "the terminal closed (SIGHUP)", 3: "dllab was told to stop (SIGTERM)"}
_PARENT_SIGNALS = {signal.SIGINT} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())
"""Signals a worker ignores: they are meant for the process that drives the runs."""


def death_reason(exitcode: int | None) -> str:
    """Plain words for a worker process that ended while it had a run."""
    text = f"worker process died (exit code {exitcode})"
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return text
        hint = {"SIGKILL": ", often the system's out-of-memory killer", "SIGSEGV": ", a crash in native code"}
        text += f": {name}{hint.get(name, '')}"
    return text


# -- worker side -----------------------------------------------------------------------------


class _Table:
    """The shared run table: each run's state and stop flag, and which run each worker is on.

    Plain shared memory and one lock: ``should_stop`` reads a byte, and claiming a run is atomic, so
    a run cancelled while pending can never also start.
    """

    def __init__(self, ctx: Any, n_runs: int, n_slots: int, units: list[list[int]] | None = None):
        self.lock = ctx.Lock()
        self.state = ctx.RawArray("b", max(1, n_runs))
        self.stop = ctx.RawArray("b", max(1, n_runs))
        self.stop_all = ctx.RawArray("b", 1)  # one byte for "cancel everything": a group sees it at once
        self.current = ctx.RawArray("i", [-1] * max(1, n_slots))
        self.n_runs = n_runs
        # Batched groups (engine.batched): the unit each run belongs to, and the slot that took it.
        unit_of = list(range(max(1, n_runs)))
        for k, unit in enumerate(units or []):
            for i in unit:
                unit_of[i] = n_runs + k
        self.unit = ctx.RawArray("i", unit_of)
        self.owner = ctx.RawArray("i", [-1] * max(1, n_runs))

    def claim(self, slot: int) -> int | None:
        """Take the first pending run for worker ``slot`` (None when there is none left)."""
        with self.lock:
            for i in range(self.n_runs):
                if self.state[i] == PENDING:
                    self.state[i] = CLAIMED
                    self.current[slot] = i
                    return i
            self.current[slot] = -1
            return None

    def claim_unit(self, slot: int) -> list[int] | None:
        """Take the first pending run with the other pending runs of its unit (a batched group)."""
        with self.lock:
            for i in range(self.n_runs):
                if self.state[i] == PENDING:
                    taken = [j for j in range(self.n_runs) if self.unit[j] == self.unit[i] and self.state[j] == PENDING]
                    for j in taken:
                        self.state[j] = CLAIMED
                        self.owner[j] = slot
                    self.current[slot] = i
                    return taken
            self.current[slot] = -1
            return None

    def skip(self, i: int) -> bool:
        """Cancel a run that no worker has taken; False if one already has."""
        with self.lock:
            if self.state[i] == PENDING:
                self.state[i] = SKIPPED
                return True
            return False

    def pending(self) -> int:
        return sum(1 for i in range(self.n_runs) if self.state[i] == PENDING)


class _Sender:
    """Sends pickled events to the parent from a thread, so training never waits on the pipe."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dllab-sender", daemon=True)
        self._thread.start()

    def send(self, event: Event) -> None:
        self._queue.put(pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL))

    def _run(self) -> None:
        while (blob := self._queue.get()) is not None:
            try:
                self._conn.send_bytes(blob)
            except OSError:
                return  # the parent is gone; the store has everything

    def close(self, parent_alive: Callable[[], bool]) -> None:
        """Flush what is queued (while the parent lives to read it)."""
        self._queue.put(None)
        while self._thread.is_alive() and parent_alive():
            self._thread.join(0.2)
        with contextlib.suppress(OSError):
            self._conn.close()


def _limit_threads(threads: int) -> None:
    """Before torch is imported: its thread pools size themselves from these."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)


def _parent_watch(parent_pid: int) -> Callable[[], bool]:
    """Whether the process that drives this worker's runs is alive: a spawned worker is its child
    (its parent changes when it dies); a worker forked from a warm forkserver is the server's
    child, so it asks the system about the driving process itself."""
    if os.getppid() == parent_pid:
        return lambda: os.getppid() == parent_pid

    return lambda: pid_alive(parent_pid)


def _worker_main(slot: int, specs: list[RunSpec], run_ids: list[str], device: str, store_path: str,
                 train_fn: str | TrainFn | None, threads: int, table: _Table, conn: Connection,
                 parent_pid: int, fast: str = "", resume: str = "", driver: str = "the process that started it"
                 ) -> None:
    """A worker process: take units from the table and hand each to the executor, until none is
    left (or the parent is gone)."""
    # Ctrl+C is the parent's to handle; a terminal's hangup ends the parent, and the worker then
    # notices it is orphaned and closes its runs' books (a hangup would leave them "running").
    for sig in _PARENT_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)  # blocked by the parent while spawning
    _limit_threads(threads)

    parent_alive = _parent_watch(parent_pid)

    sender = _Sender(conn)
    store = RunStore(store_path)
    try:
        if train_fn is None:  # dllab's trainers: torch, with this worker's share of the cores
            import torch

            torch.set_num_threads(threads)
        stop, stop_all = table.stop, table.stop_all

        def interrupted() -> str | None:  # why the runs stopped, when nobody asked them to
            if not parent_alive():
                return f"{driver} (pid {parent_pid}) stopped without ending it (killed or crashed)"
            return STOP_WORDS.get(stop_all[0])
        while parent_alive() and (unit := table.claim_unit(slot)) is not None:
            def should_stop(i: int) -> bool:
                return stop[i] != 0 or stop_all[0] != 0 or not parent_alive()

            work = WorkUnit(tuple(specs[i] for i in unit), tuple(run_ids[i] for i in unit), fast, train_fn, resume)
            run_unit(work, sender.send, [lambda i=i: should_stop(i) for i in unit], device=device, store=store,
                     interrupted=interrupted)
        if not parent_alive():  # orphaned: close the books on what nobody will run
            while (i := table.claim(slot)) is not None:
                store.mark(run_ids[i], "interrupted",
                           f"{driver} (pid {parent_pid}) stopped before it started (killed or crashed)")
    finally:
        sender.close(parent_alive)
        store.close()


# -- parent side -----------------------------------------------------------------------------


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Block SIGINT (and SIGHUP) in this thread: a child spawned meanwhile starts with them blocked
    too, so Ctrl+C cannot kill it before it has set itself to ignore them."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl+C for a moment (main thread only): while stragglers are being killed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.default_int_handler)


WARM_MODULES = ["torch", "engine.training.loop", "engine.batched.train", "engine.runs.executor"]
"""What a warm worker has imported before it is asked for (torch's import is most of a cold start)."""


def warm_context() -> Any:
    """A ``forkserver`` context whose server has imported torch and the trainers: a worker forked
    from it starts in milliseconds instead of the seconds a fresh interpreter takes to import torch.
    The server imports only (no tensor work), so its children start their own thread pools. The
    server is started now, so the first comparison does not wait for it."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(WARM_MODULES)
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return ctx


@dataclass
class _Worker:
    slot: int
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection | None


_OPEN: set[Runner] = set()
"""Started runners not closed yet: held (not weakly) so that exit closes every one of them."""
_atexit_registered = False


def _close_open_runners() -> None:
    for runner in list(_OPEN):
        with contextlib.suppress(Exception):
            runner.close(timeout=2.0)


class Runner:
    """Runs RunSpecs in worker processes; forwards their events; survives crashes; cancels.

    Use it as a context manager (or call ``close()`` in a ``finally``)::

        with Runner(specs) as runner:
            for event in runner.events():
                ...
    """

    def __init__(self, specs: list[RunSpec], *, device: str = "auto", workers: int | None = None,
                 store: RunStore | str | Path | None = None, train_fn: str | TrainFn | None = None,
                 threads: int | None = None, comparison: str | None = None, batch: bool = True,
                 fast: str = "", run_ids: list[str] | None = None, context: Any = None, resume: str = ""):
        """`batch`: runs that share an architecture train together as one batched model
        (``engine.batched``; others run solo). `fast`: opt-in fast paths, e.g. ``"bf16,compile"``
        (``engine.batched.accel.FastPaths``). `train_fn`: ``"module:function"`` with the solo
        loop's signature instead of dllab's trainers (no batching, no fast paths). `run_ids`: the
        runs' ids, chosen by the caller (a client of the runs service knows them before it submits).
        `context`: the multiprocessing context workers start from (default ``spawn``; the runs service
        passes a ``forkserver`` that has imported torch already: :func:`warm_context`). `resume`: the
        runs go on from a checkpoint (``engine.runs.resume.reopen`` gives them, their store rows
        reopened): ``"run"`` one run from its own, ``"group"`` a batched group's runs from theirs.
        """
        from engine.runs.device import cpu_cores, resolve_device, threads_per_worker

        self.comparison, self.specs = with_comparison(list(specs), comparison)
        self.run_ids: list[str] = list(run_ids) if run_ids is not None else new_run_ids(len(self.specs))
        if len(set(self.run_ids)) != len(self.specs):
            raise ValueError(f"{len(self.specs)} runs need as many distinct run ids, got {len(run_ids or [])}")
        self._index = {run_id: i for i, run_id in enumerate(self.run_ids)}
        n = len(self.specs)

        dev = resolve_device(device)
        self.device = str(dev)
        cores = cpu_cores()
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1 (got {workers}); "
                             "engine.runs.inline.run_inline() trains in this process")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 (got {threads})")
        gpus = 0
        if dev.type == "cuda":
            import torch

            gpus = torch.cuda.device_count() if dev.index is None else 1
        if workers is None:
            if dev.type == "cuda":
                workers = gpus
            elif dev.type == "mps":
                workers = 1
            else:
                workers = cores // threads if threads else cores
        default_fn = train_fn is None
        self.fast = fast if default_fn else ""
        if self.fast:
            from engine.batched.accel import FastPaths

            FastPaths.parse(self.fast)  # a bad name is an error here, not in every worker
        from engine.batched.plan import (
            work_units,  # imports torch: not in a worker before its threads are set
        )

        if resume:  # the unit the checkpoint was taken of: one run, or its whole group
            self.units = [list(range(n))]
            if resume == "run" and n != 1:
                raise ValueError("a run resumed from its own checkpoint goes on alone")
        else:
            self.units = work_units(self.specs, workers, batch=batch and default_fn)
        self.workers = max(1, min(workers, len(self.units)))
        self.threads = threads or threads_per_worker(self.workers, dev)
        self._slot_devices = [
            f"cuda:{slot % gpus}" if dev.type == "cuda" and dev.index is None else self.device
            for slot in range(self.workers)
        ]

        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.train_fn = train_fn
        self._ctx = context or multiprocessing.get_context("spawn")
        self.resume = resume
        self._table = _Table(self._ctx, n, self.workers, [u for u in self.units if len(u) > 1])
        self._lock = threading.RLock()
        self._workers: dict[int, _Worker] = {}
        self._processes: list[Any] = []  # every worker ever started
        self._out: list[Event] = []
        self._final: dict[int, RunFinished] = {}
        self._started_runs: set[int] = set()
        self._start_failures = 0
        self._cancel_all = False
        self._started = False
        self._closing = False
        self._closed = False

    def __repr__(self) -> str:
        return (f"Runner({len(self.specs)} runs, device={self.device!r}, workers={self.workers},"
                f" threads={self.threads}, finished={len(self._final)}/{len(self.specs)})")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Register the runs as pending in the store and start the workers."""
        global _atexit_registered
        with self._lock:
            if self._started or self._closed:
                return
            self.store.check(write=True)  # a store that cannot be written: a StoreError, nothing started
            self._started = True
            if not _atexit_registered:  # registered after multiprocessing's own hook, so it runs first
                atexit.register(_close_open_runners)
                _atexit_registered = True
            _OPEN.add(self)
            register_pending(self.store, self.specs, self.run_ids, self.comparison, self.device)
            for slot in range(min(self.workers, self._table.pending())):
                self._spawn(slot)

    def _spawn(self, slot: int) -> None:
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=_worker_main, name=f"dllab-worker-{slot}", daemon=False,
            args=(slot, self.specs, self.run_ids, self._slot_devices[slot], str(self.store.path),
                  self.train_fn, self.threads, self._table, writer, os.getpid(), self.fast, self.resume,
                  store_module.OWNER_KIND),
        )
        with _signals_blocked():
            try:
                process.start()
            except BaseException:
                reader.close()
                raise
            finally:
                writer.close()  # the worker holds the only writer: its death reads as EOF here
            self._processes.append(process)
            self._workers[slot] = _Worker(slot, process, reader)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel what is left, wait up to ``timeout`` for the workers, then terminate stragglers.

        Safe to call twice and from a ``finally`` after Ctrl+C; a second Ctrl+C while waiting skips
        straight to terminating. Afterwards no worker is alive and every run has a final status.
        """
        with self._lock:
            if self._closed:
                return
            self._closing = True
        try:
            if self._started and not self.finished:
                self.cancel()
            deadline = time.monotonic() + timeout
            while self._workers and time.monotonic() < deadline:
                self._pump(min(0.1, max(0.0, deadline - time.monotonic())))
        finally:
            with _sigint_ignored():
                self._stop_workers()
                with self._lock:
                    for i in range(len(self.specs) if self._started else 0):
                        if i not in self._final:
                            self._table.stop[i] = 1
                            self._finalize(i, "cancelled", "cancelled: the runner was closed")
                    self._closed = True
                    _OPEN.discard(self)
                    self.store.close()

    def _stop_workers(self) -> None:
        """Terminate (then kill) workers still alive, and collect what they left behind."""
        live = [w.process for w in self._workers.values() if w.process.is_alive()]
        for process in live:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in live:
            process.join(1.0)
            if process.is_alive():
                with contextlib.suppress(Exception):
                    process.kill()
                process.join(1.0)
        deadline = time.monotonic() + 1.0
        while self._workers and time.monotonic() < deadline:
            self._pump(0.05)
        for worker in self._workers.values():  # pragma: no cover - unkillable (D state)
            if worker.conn is not None:
                worker.conn.close()

    def __enter__(self) -> Runner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- control --------------------------------------------------------------------------

    def interrupt(self, signal_name: str) -> None:
        """Stop every run because the process was signalled ("SIGHUP", "SIGTERM"): they end
        ``interrupted``, naming the signal (checkpointed, so ``dllab resume`` goes on)."""
        self.cancel(signal_name=signal_name)

    def cancel(self, run_id: str | None = None, *, signal_name: str | None = None) -> None:
        """Stop one run (or all): a running one ends ``cancelled`` at its next step, a pending one
        is marked ``cancelled`` now and never starts. `signal_name` ("SIGHUP", "SIGTERM"): nobody
        asked, the process was told to stop; every run ends ``interrupted``, saying so."""
        with self._lock:
            if run_id is None:
                self._cancel_all = True
                # a signal's code stays when close() cancels what is left after it
                self._table.stop_all[0] = max(self._table.stop_all[0], STOP_CODES.get(signal_name or "", 1))
                indices = range(len(self.specs))
            else:
                if run_id not in self._index:
                    raise KeyError(f"no run {run_id!r} in this runner (runs: {', '.join(self.run_ids)})")
                indices = [self._index[run_id]]
            for i in indices:
                if i in self._final:
                    continue
                self._table.stop[i] = 1
                if self._table.skip(i):
                    self._finalize(i, "cancelled", NOT_STARTED)

    @property
    def finished(self) -> bool:
        """Every run has its final event."""
        return len(self._final) == len(self.specs)

    def status(self, run_id: str) -> str:
        """``pending``, ``running`` or the run's final status, as the parent has seen it."""
        i = self._index[run_id]
        if i in self._final:
            return self._final[i].status
        return "running" if i in self._started_runs else "pending"

    def results(self) -> dict[str, RunFinished]:
        """The RunFinished of every run that has ended, by run id."""
        return {self.run_ids[i]: event for i, event in sorted(self._final.items())}

    @property
    def pids(self) -> list[int]:
        """Process ids of every worker started so far (alive or not)."""
        return [p.pid for p in self._processes if p.pid is not None]

    # -- events ---------------------------------------------------------------------------

    def poll(self, timeout: float = 0.1) -> list[Event]:
        """The events that arrived, waiting up to ``timeout`` seconds for the first one."""
        if not self._started:
            self.start()
        with self._lock:
            if self._closed or self._out:
                timeout = 0.0
        if not self._closed:
            self._pump(timeout)
        with self._lock:
            out, self._out = self._out, []
        return out

    def events(self) -> Iterator[Event]:
        """Every event as it comes; ends once every run has its final event."""
        while True:
            batch = self.poll(0.5)
            yield from batch
            if not batch and (self.finished or self._closed):
                return

    def _pump(self, timeout: float) -> None:
        """Read what the workers sent (waiting up to ``timeout``); handle workers that exited."""
        with self._lock:
            waitables: list[Any] = [w.conn for w in self._workers.values() if w.conn is not None]
            waitables += [w.process.sentinel for w in self._workers.values()]
        if not waitables:
            if timeout > 0 and not self.finished:
                time.sleep(timeout)
            return
        wait_ready(waitables, timeout)
        with self._lock:
            for worker in list(self._workers.values()):
                self._drain(worker)
                if worker.process.exitcode is not None:
                    self._drain(worker)  # everything it wrote before it died, up to EOF
                    self._on_exit(worker)

    def _drain(self, worker: _Worker, limit: int = 10_000) -> None:
        conn = worker.conn
        if conn is None:
            return
        try:
            for _ in range(limit):
                if not conn.poll():
                    return
                self._accept(pickle.loads(conn.recv_bytes()))
        except (EOFError, OSError):
            conn.close()
            worker.conn = None

    def _accept(self, event: Event) -> None:
        i = self._index.get(event.run_id)
        if i is None or i in self._final:
            return  # not ours, or after the run's end (already decided by the parent)
        if isinstance(event, RunFinished):
            self._final[i] = event
        else:
            self._started_runs.add(i)
        self._out.append(event)

    def _on_exit(self, worker: _Worker) -> None:
        del self._workers[worker.slot]
        if worker.conn is not None:
            worker.conn.close()
        code = worker.process.exitcode
        worker.process.join(0)  # reap
        i = self._table.current[worker.slot]
        self._table.current[worker.slot] = -1
        held: list[int] = []  # the run it was on, and the rest of its batched group (engine.batched)
        if i >= 0:
            held = [i] + [j for j in range(len(self.specs))
                          if j != i and self._table.owner[j] == worker.slot and self._table.state[j] == CLAIMED]
        for j in held:
            if j in self._final:
                continue
            if self._table.stop[j]:
                self._finalize(j, "cancelled", f"cancelled; the worker process was stopped (exit code {code})")
            else:
                self._finalize(j, "failed", death_reason(code))
        if i < 0 and code != 0:
            self._start_failures += 1
        elif i >= 0:
            self._start_failures = 0
        if self._closing or self._cancel_all or not self._table.pending():
            return
        if self._start_failures >= MAX_START_FAILURES:
            reason = f"worker processes could not start (exit code {code}); see the output above"
            for j in range(len(self.specs)):
                if self._table.skip(j):
                    self._finalize(j, "failed", reason)
            return
        self._spawn(worker.slot)

    def _finalize(self, i: int, status: str, reason: str) -> None:
        """End run ``i`` from the parent's side: the store's final row becomes its RunFinished."""
        run_id = self.run_ids[i]
        try:
            self.store.mark(run_id, status, reason)
            row = self.store.get_run(run_id)
            event = RunStore.finished_event(row)
        except Exception as exc:  # noqa: BLE001 - the event must reach the UI even if the store fails
            event = RunFinished(run_id, status, 0, f"{reason} (store: {failure_reason(exc, 'store')})",  # type: ignore[arg-type]
                                {}, {}, 0.0)
        self._final[i] = event
        self._out.append(event)
