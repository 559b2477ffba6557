"""The run store: every run and its metric series in one SQLite file.

The worker process that trains a run writes it here as the run goes (one small transaction per
event), so a crash of the app loses nothing, and a dashboard can redraw or replay any run later
(:meth:`RunStore.series`, :meth:`RunStore.events`). The file lives at ``$DLLAB_HOME/runs.sqlite``
(default: the platform's user data directory). WAL mode lets one reader follow while several
worker processes write; each process opens its own connection, lazily.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.events import (
    EVENT_TYPES,
    FINAL_STATUSES,
    Boundary,
    Diagnostics,
    EvalMetrics,
    Event,
    Message,
    RunFinished,
    RunStarted,
    StepMetrics,
    from_dict,
    to_dict,
)
from engine.paths import default_home  # moved there; still importable from here

SCHEMA_VERSION = 2
FILENAME = "runs.sqlite"
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,
    comparison      TEXT NOT NULL DEFAULT '',
    preset          TEXT NOT NULL DEFAULT '',
    variant         TEXT NOT NULL DEFAULT '',
    seed            INTEGER,
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    device          TEXT NOT NULL DEFAULT '',
    n_params        INTEGER,
    total_steps     INTEGER,
    steps_per_epoch INTEGER,
    created         REAL NOT NULL,
    started         REAL,
    finished        REAL,
    wall_time       REAL,
    step            INTEGER NOT NULL DEFAULT 0,
    final           TEXT NOT NULL DEFAULT '{}',
    best            TEXT NOT NULL DEFAULT '{}',
    summary         TEXT NOT NULL DEFAULT '{}',
    spec            TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created);
CREATE INDEX IF NOT EXISTS runs_comparison ON runs (comparison);
CREATE TABLE IF NOT EXISTS step_metrics (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, train_loss REAL, lr REAL,
    elapsed REAL, steps_per_sec REAL, time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS step_metrics_run ON step_metrics (run_id, step);
CREATE TABLE IF NOT EXISTS eval_metrics (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, metrics TEXT NOT NULL,
    elapsed REAL, time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS eval_metrics_run ON eval_metrics (run_id, step);
CREATE TABLE IF NOT EXISTS diagnostics (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, layers TEXT NOT NULL, summary TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS diagnostics_run ON diagnostics (run_id, step);
CREATE TABLE IF NOT EXISTS messages (
    run_id TEXT NOT NULL, text TEXT NOT NULL, level TEXT NOT NULL, time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_run ON messages (run_id);
CREATE TABLE IF NOT EXISTS other_events (
    run_id TEXT NOT NULL, type TEXT NOT NULL, step INTEGER, data TEXT NOT NULL, time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS other_events_run ON other_events (run_id);
"""
_SERIES_TABLES = ("step_metrics", "eval_metrics", "diagnostics", "messages", "other_events")


class StoreError(RuntimeError):
    """A run store that cannot be used (not a database, a home that is a file, no write access), with
    a message fit to show a person: the file and what to do."""


_ELSEWHERE = "or set DLLAB_HOME to another folder"


def _store_problem(path: Path, exc: BaseException) -> str:
    """One line for a store that cannot be opened or written: the file, what is wrong, what to do."""
    words = str(exc).strip() or type(exc).__name__
    low = words.lower()
    if isinstance(exc, OSError) and exc.filename is not None and Path(exc.filename).is_file():
        return f"{exc.filename}: a file, not a folder: the run store cannot go in it; {_ELSEWHERE[3:]}"
    if path.is_dir():
        return f"{path}: a folder, where the run store's file should be; move it away {_ELSEWHERE}"
    if isinstance(exc, OSError):
        return f"{path}: cannot create the run store's folder ({exc.strerror or words}); {_ELSEWHERE}"
    if "not a database" in low or "malformed" in low:
        return f"{path}: not a dllab run store ({words}); move the file away {_ELSEWHERE}"
    if "readonly" in low or "read-only" in low:
        return f"{path}: the run store is read-only ({words}); make it and its folder writable {_ELSEWHERE}"
    if "unable to open" in low:
        return (f"{path}: cannot open the run store ({words}); check that its folder exists and is writable"
                f" {_ELSEWHERE}")
    return f"{path}: the run store cannot be used ({words}); {_ELSEWHERE}"


OWNER_KIND = "the process that started it"
"""How a run's driving process is named when it is gone (the runs service names itself)."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def owner_id() -> str:
    """This process as the driver of runs: ``kind|pid|boot id|host`` (a reboot makes every pid stale)."""
    return f"{OWNER_KIND}|{os.getpid()}|{_boot_id()}|{socket.gethostname()}"


def orphan_reason(owner: str) -> str | None:
    """Why a run driven by `owner` can no longer be going (None: it may be, or it is not ours to say)."""
    try:
        kind, pid_text, boot, host = owner.split("|")
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None  # another machine's run: its own commands settle it
    if boot and boot != _boot_id():
        return f"the machine restarted while {kind} (pid {pid}) ran it"
    return None if pid_alive(pid) else f"{kind} (pid {pid}) stopped without ending it (killed or crashed)"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (someone else's process counts: it is alive, not ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunNotFound(KeyError):
    """No run, or more than one, matches an id prefix."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "run not found"


@dataclass(frozen=True)
class RunRow:
    """One run as stored: identity, status, timings and the final / best / summary figures."""

    run_id: str
    comparison: str
    preset: str
    variant: str
    seed: int | None
    status: str
    reason: str
    device: str
    created: float
    started: float | None
    finished: float | None
    wall_time: float | None
    step: int
    final: dict[str, Any]
    best: dict[str, Any]
    summary: dict[str, Any]
    spec: dict[str, Any]
    n_params: int | None = None
    total_steps: int | None = None
    steps_per_epoch: int | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass
class RunSeries:
    """A run's metric series in step order, as the event objects the loop emitted."""

    run_id: str
    steps: list[StepMetrics] = field(default_factory=list)
    evals: list[EvalMetrics] = field(default_factory=list)
    diagnostics: list[Diagnostics] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    other: list[Event] = field(default_factory=list)
    """Every other event type (Boundary, ...), in time order."""
    marks: dict[str, int] = field(default_factory=dict)
    """The last row number read from each table (``RunStore.series(after=marks)`` reads on from there)."""

    def in_time_order(self) -> list[Event]:
        """Every event, as they were emitted: by time (a stable sort: at equal times, steps, then
        evaluations, diagnostics, messages, the rest)."""
        body: list[Event] = [*self.steps, *self.evals, *self.diagnostics, *self.messages, *self.other]
        body.sort(key=lambda e: e.time)
        return body

    @property
    def boundaries(self) -> list[Boundary]:
        return [e for e in self.other if isinstance(e, Boundary)]

    def step_curve(self, name: str) -> tuple[list[int], list[float]]:
        """(steps, values) of a StepMetrics field: ``train_loss``, ``lr``, ``steps_per_sec``, ..."""
        return [m.step for m in self.steps], [getattr(m, name) for m in self.steps]

    def eval_rows(self) -> list[dict[str, float]]:
        """One flat dict per evaluation (step, epoch, elapsed and every metric): tables, JSON export."""
        return [{"step": e.step, "epoch": e.epoch, "elapsed": e.elapsed, **e.metrics} for e in self.evals]

    def eval_curve(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one evaluation metric (``val_acc``, ...), where it was measured."""
        pairs = [(m.step, m.metrics[key]) for m in self.evals if key in m.metrics]
        return [s for s, _ in pairs], [v for _, v in pairs]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def _real(value: float | None) -> float:
    """SQLite stores NaN as NULL: read it back as NaN."""
    return math.nan if value is None else value


class RunStore:
    """Runs and their series in one SQLite file (WAL). Safe to share between threads of one process."""

    def __init__(self, path: str | Path | None = None):
        if path is None:  # the home is a folder: a file in its place is a StoreError, never the store
            path = default_home().expanduser() / FILENAME
        else:
            path = Path(path).expanduser()
            if path.is_dir() or (not path.suffix and not path.exists()):
                path = path / FILENAME
        self.path = path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # -- connection -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """SQLite's and the file system's errors about the store itself as a StoreError (what a
        person can fix: the file, its folder, its permissions); other errors pass unchanged."""
        try:
            yield
        except StoreError:
            raise
        except (sqlite3.OperationalError, OSError) as exc:
            raise StoreError(_store_problem(self.path, exc)) from exc
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # IntegrityError and the like: a bug, not the file
                raise
            raise StoreError(_store_problem(self.path, exc)) from exc

    def check(self, *, write: bool = False) -> None:
        """Open the store now (creating it if need be), and with `write` make sure it can be written:
        a StoreError before any work starts, rather than in the middle of it. Writes nothing."""
        with self._lock, self._guarded():
            conn = self._connect()
            if write:
                conn.execute("BEGIN IMMEDIATE")
                try:  # a read-only file opens and reads; setting a value (to itself) is refused
                    conn.execute(f"PRAGMA user_version = {int(conn.execute('PRAGMA user_version').fetchone()[0])}")
                finally:
                    conn.execute("ROLLBACK")

    def _connect(self) -> sqlite3.Connection:
        """The process's connection, opened on first use (and again in a forked child)."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        with self._guarded():
            return self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: could not switch the run store to WAL mode ({mode}); {_ELSEWHERE}")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable against process crashes; fast commits
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer dllab (store schema v{version}; this one reads"
                f" v{SCHEMA_VERSION}): upgrade dllab or set DLLAB_HOME to another folder"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version = 1
            if version == 1:  # v2: which process drives each run (settle_orphans)
                conn.execute("ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
                version = 2
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _write(self, statements: Iterable[tuple[str, tuple]]) -> None:
        with self._lock, self._guarded():
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock, self._guarded():
            conn = self._connect()
            cursor = conn.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Write one event: RunStarted (re)writes the run's row, RunFinished closes it, the rest append."""
        if isinstance(event, RunStarted):
            self._write([(
                "INSERT INTO runs (run_id, comparison, preset, variant, seed, status, device, n_params,"
                " total_steps, steps_per_epoch, created, started, spec)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET comparison = excluded.comparison,"
                " preset = excluded.preset, variant = excluded.variant, seed = excluded.seed,"
                " status = 'running', reason = '', device = excluded.device, n_params = excluded.n_params,"
                " total_steps = excluded.total_steps, steps_per_epoch = excluded.steps_per_epoch,"
                " started = excluded.started, spec = excluded.spec",
                (event.run_id, event.comparison, event.preset, event.variant, event.seed, event.device,
                 event.n_params, event.total_steps, event.steps_per_epoch, time.time(), event.time,
                 _dumps(event.spec)),
            )])
        elif isinstance(event, StepMetrics):
            self._write([
                ("INSERT INTO step_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (event.run_id, event.step, event.epoch, event.train_loss, event.lr, event.elapsed,
                  event.steps_per_sec, event.time)),
                self._advance(event.run_id, event.step),
            ])
        elif isinstance(event, EvalMetrics):
            self._write([
                ("INSERT INTO eval_metrics VALUES (?, ?, ?, ?, ?, ?)",
                 (event.run_id, event.step, event.epoch, _dumps(event.metrics), event.elapsed, event.time)),
                self._advance(event.run_id, event.step),
            ])
        elif isinstance(event, Diagnostics):
            self._write([(
                "INSERT INTO diagnostics VALUES (?, ?, ?, ?, ?)",
                (event.run_id, event.step, _dumps(event.layers), _dumps(event.summary), event.time),
            )])
        elif isinstance(event, Message):
            self._write([(
                "INSERT INTO messages VALUES (?, ?, ?, ?)", (event.run_id, event.text, event.level, event.time)
            )])
        elif isinstance(event, RunFinished):
            self._write([
                ("INSERT OR IGNORE INTO runs (run_id, status, created) VALUES (?, ?, ?)",
                 (event.run_id, event.status, event.time)),
                ("UPDATE runs SET status = ?, reason = ?, step = ?, final = ?, best = ?, summary = ?,"
                 " wall_time = ?, finished = ? WHERE run_id = ?",
                 (event.status, event.reason, event.step, _dumps(event.final), _dumps(event.best),
                  _dumps(event.summary), event.wall_time, event.time, event.run_id)),
            ])
        elif EVENT_TYPES.get(type(event).__name__) is type(event):  # Boundary and later types, as JSON
            self._write([(
                "INSERT INTO other_events VALUES (?, ?, ?, ?, ?)",
                (event.run_id, type(event).__name__, getattr(event, "step", None), _dumps(to_dict(event)),
                 event.time),
            )])
        else:
            raise TypeError(f"not an event: {event!r}")

    @staticmethod
    def _advance(run_id: str, step: int) -> tuple[str, tuple]:
        return "UPDATE runs SET step = ? WHERE run_id = ? AND step < ?", (step, run_id, step)

    def add_pending(self, run_id: str, spec: dict[str, Any], *, variant: str = "", seed: int | None = None,
                    preset: str = "", comparison: str = "", device: str = "") -> None:
        """Register a run that is queued but not started (status ``pending``), owned by this process."""
        self._write([(
            "INSERT OR IGNORE INTO runs (run_id, comparison, preset, variant, seed, status, device, created,"
            " spec, owner) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (run_id, comparison, preset, variant, seed, device, time.time(), _dumps(spec), owner_id()),
        )])

    def settle_orphans(self) -> int:
        """Runs still pending or running whose driving process is gone (killed, its machine
        restarted) end ``interrupted`` with a reason that says so; returns how many. Called when a
        command or the app opens the store, so nothing stays "running" forever."""
        rows = self._query("SELECT run_id, owner FROM runs WHERE status IN ('pending', 'running') AND owner != ''")
        settled = 0
        for row in rows:
            if (reason := orphan_reason(row["owner"])) is not None:
                from engine.training.checkpoint import resume_hint

                settled += self.mark(row["run_id"], "interrupted", reason + resume_hint(self.path.parent, row["run_id"]))
        return settled

    def mark(self, run_id: str, status: str, reason: str) -> bool:
        """Give a run that has no final status yet this one (a dead or cancelled worker's run).

        Inserts a minimal row for a run that never started. Returns False, changing nothing, when the
        run already ended.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final status: {status!r} (use one of {sorted(FINAL_STATUSES)})")
        now = time.time()
        with self._lock, self._guarded():
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT status, started FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO runs (run_id, status, reason, created, finished, wall_time)"
                        " VALUES (?, ?, ?, ?, ?, 0.0)", (run_id, status, reason, now, now))
                elif row[0] in FINAL_STATUSES:
                    conn.execute("COMMIT")
                    return False
                else:
                    wall = now - row[1] if row[1] is not None else 0.0
                    conn.execute(
                        "UPDATE runs SET status = ?, reason = ?, finished = ?, wall_time = ? WHERE run_id = ?",
                        (status, reason, now, wall, run_id))
                conn.execute("COMMIT")
                return True
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def delete(self, run_ids: list[str]) -> int:
        """Delete runs and their series; returns how many runs there were."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return 0
        with self._lock, self._guarded():
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                marks = ",".join("?" * len(ids))
                for table in _SERIES_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
                count = conn.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", ids).rowcount
                conn.execute("COMMIT")
                return count
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def reopen(self, run_id: str, after: float, step: int) -> None:
        """A run that goes on from a checkpoint (``dllab resume``): what was recorded after `after`
        (the wall-clock time of the checkpoint) goes, and the run is running again at `step`."""
        with self._lock, self._guarded():
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in _SERIES_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE run_id = ? AND time > ?", (run_id, after))
                conn.execute(
                    "UPDATE runs SET status = 'running', reason = '', finished = NULL, wall_time = NULL, step = ?,"
                    " final = '{}', best = '{}', summary = '{}', owner = ? WHERE run_id = ?",
                    (step, owner_id(), run_id))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def _row(r: sqlite3.Row) -> RunRow:
        return RunRow(
            run_id=r["run_id"], comparison=r["comparison"], preset=r["preset"], variant=r["variant"],
            seed=r["seed"], status=r["status"], reason=r["reason"], device=r["device"], created=r["created"],
            started=r["started"], finished=r["finished"], wall_time=r["wall_time"], step=r["step"],
            final=_loads(r["final"]), best=_loads(r["best"]), summary=_loads(r["summary"]),
            spec=_loads(r["spec"]), n_params=r["n_params"], total_steps=r["total_steps"],
            steps_per_epoch=r["steps_per_epoch"],
        )

    def list_runs(self, *, preset: str | None = None, status: str | None = None,
                  comparison: str | None = None, limit: int | None = None) -> list[RunRow]:
        """Runs, newest first, optionally filtered."""
        where, params = [], []
        for column, value in (("preset", preset), ("status", status), ("comparison", comparison)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [self._row(r) for r in self._query(sql, tuple(params))]

    def get_run(self, run_id_or_prefix: str) -> RunRow:
        """The run with this id, or the only one whose id starts with it."""
        key = run_id_or_prefix.strip()
        if not key:
            raise RunNotFound("give a run id (or the start of one)")
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (key,))
        if not rows:
            escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._query(
                "SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY created DESC LIMIT 6",
                (escaped + "%",))
        if not rows:
            raise RunNotFound(f"no run matches {key!r} in {self.path}")
        if len(rows) > 1:
            shown = ", ".join(r["run_id"] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise RunNotFound(f"{key!r} is ambiguous: it matches runs {shown}; give more characters")
        return self._row(rows[0])

    def series(self, run_id: str, after: Mapping[str, int] | None = None) -> RunSeries:
        """Everything a dashboard draws for one run, in step order. `after`: only the rows added
        since an earlier read (its ``marks``: the last row number it read in each table), so a
        follower reads what is new, not the whole run again at every poll."""
        after = after or {}
        out = RunSeries(run_id)

        def rows(table: str, order: str, columns: str = "*") -> list[sqlite3.Row]:
            seen = after.get(table, 0)
            got = self._query(f"SELECT rowid AS row_number, {columns} FROM {table} WHERE run_id = ? AND rowid > ?"
                              f" ORDER BY {order}", (run_id, seen))
            out.marks[table] = max([seen, *(r["row_number"] for r in got)])
            return got

        for r in rows("step_metrics", "step, rowid"):
            out.steps.append(StepMetrics(
                run_id=run_id, step=r["step"], epoch=_real(r["epoch"]), train_loss=_real(r["train_loss"]),
                lr=_real(r["lr"]), elapsed=_real(r["elapsed"]), steps_per_sec=_real(r["steps_per_sec"]),
                time=r["time"]))
        for r in rows("eval_metrics", "step, rowid"):
            out.evals.append(EvalMetrics(
                run_id=run_id, step=r["step"], epoch=_real(r["epoch"]), metrics=_loads(r["metrics"]),
                elapsed=_real(r["elapsed"]), time=r["time"]))
        for r in rows("diagnostics", "step, rowid"):
            out.diagnostics.append(Diagnostics(
                run_id=run_id, step=r["step"], layers=_loads(r["layers"]), summary=_loads(r["summary"]),
                time=r["time"]))
        for r in rows("messages", "time, rowid"):
            out.messages.append(Message(run_id=run_id, text=r["text"], level=r["level"], time=r["time"]))
        for r in rows("other_events", "time, rowid", "type, data"):
            if r["type"] in EVENT_TYPES:  # a type this version does not know is left out
                out.other.append(from_dict(json.loads(r["data"])))
        return out

    def events(self, run_id: str) -> list[Event]:
        """The run's event stream rebuilt from the store: RunStarted, the series in time order, RunFinished.

        A dashboard replays a stored run through the same code as a live one. A run still going ends
        without RunFinished; one cancelled before it started has only RunFinished.
        """
        run = self.get_run(run_id)
        out: list[Event] = []
        if run.started is not None:
            out.append(self.started_event(run))
        out.extend(self.series(run.run_id).in_time_order())
        if run.is_final:
            out.append(self.finished_event(run))
        return out

    @staticmethod
    def started_event(run: RunRow) -> RunStarted:
        """The RunStarted event that a started row stands for."""
        return RunStarted(
            run_id=run.run_id, variant=run.variant, seed=run.seed if run.seed is not None else 0,
            preset=run.preset, comparison=run.comparison, spec=run.spec, device=run.device,
            n_params=run.n_params or 0, total_steps=run.total_steps or 0,
            steps_per_epoch=run.steps_per_epoch or 0, time=run.started or run.created)

    @staticmethod
    def finished_event(run: RunRow) -> RunFinished:
        """The RunFinished event that a final row stands for."""
        return RunFinished(
            run_id=run.run_id, status=run.status, step=run.step, reason=run.reason,  # type: ignore[arg-type]
            final=run.final, best=run.best, wall_time=run.wall_time or 0.0, summary=run.summary,
            time=run.finished if run.finished is not None else run.created)
