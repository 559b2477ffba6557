"""The run store: round trips, lookups, WAL mode, concurrent writers."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.events import (
    Boundary,
    Diagnostics,
    EvalMetrics,
    Message,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from engine.runs.store import FILENAME, SCHEMA_VERSION, RunNotFound, RunStore, default_home

T0 = 1_700_000_000.0


def run_events(run_id: str, *, preset: str = "optimizers", comparison: str = "cmp1", t0: float = T0,
               status: str = "done") -> list:
    """One run's events with distinct, increasing times (the store orders a replay by time)."""
    return [
        RunStarted(run_id=run_id, variant="Adam", seed=1, preset=preset, comparison=comparison,
                   spec={"recipe": {"train": {"lr": 0.01, "steps": 20}}, "variant": "Adam",
                         "versions": {"torch": "2.13.0"}},
                   device="cpu", n_params=1234, total_steps=20, steps_per_epoch=10, time=t0),
        StepMetrics(run_id=run_id, step=10, epoch=1.0, train_loss=0.5, lr=0.01, elapsed=0.1,
                    steps_per_sec=100.0, time=t0 + 0.1),
        EvalMetrics(run_id=run_id, step=10, epoch=1.0, metrics={"val_loss": 0.6, "val_acc": 0.8},
                    elapsed=0.11, time=t0 + 0.11),
        Diagnostics(run_id=run_id, step=10, layers={"fc1": {"dead": 0.1, "grad_norm": 0.3}},
                    summary={"dead_share": 0.1}, time=t0 + 0.12),
        Message(run_id=run_id, text="lr warmup done", level="warning", time=t0 + 0.13),
        Boundary(run_id=run_id, step=10, x_range=[-1.0, 1.0], y_range=[-2.0, 2.0], grid=[[0, 1], [1, 1]],
                 points=[[0.5, -0.5, 1.0]], n_classes=2, time=t0 + 0.14),
        StepMetrics(run_id=run_id, step=20, epoch=2.0, train_loss=0.25, lr=0.005, elapsed=0.2,
                    steps_per_sec=110.0, time=t0 + 0.2),
        EvalMetrics(run_id=run_id, step=20, epoch=2.0, metrics={"val_loss": 0.4, "val_acc": 0.9},
                    elapsed=0.21, time=t0 + 0.21),
        RunFinished(run_id=run_id, status=status, step=20, reason="finished 20 steps",  # type: ignore[arg-type]
                    final={"val_loss": 0.4, "val_acc": 0.9}, best={"best_val_loss": 0.4, "best_step": 20},
                    wall_time=0.25, summary={"dead_share": 0.1}, time=t0 + 0.25),
    ]


@pytest.fixture
def store(tmp_path: Path):
    s = RunStore(tmp_path)
    yield s
    s.close()


def record_all(store: RunStore, events: list) -> None:
    for event in events:
        store.record(event)


def test_round_trip_of_every_event_type(store: RunStore):
    events = run_events("abc123def0")
    record_all(store, events)
    assert store.events("abc123def0") == events

    row = store.get_run("abc123def0")
    assert (row.status, row.reason, row.step, row.wall_time) == ("done", "finished 20 steps", 20, 0.25)
    assert (row.variant, row.seed, row.preset, row.comparison, row.device) == ("Adam", 1, "optimizers", "cmp1", "cpu")
    assert row.spec["versions"] == {"torch": "2.13.0"}
    assert row.final == {"val_loss": 0.4, "val_acc": 0.9} and row.best["best_step"] == 20
    assert row.summary == {"dead_share": 0.1}
    assert (row.started, row.finished, row.n_params, row.total_steps) == (T0, T0 + 0.25, 1234, 20)
    assert row.is_final


def test_series_in_step_order_with_curves(store: RunStore):
    events = run_events("r1")
    # written out of step order: the series still come back in step order
    record_all(store, [events[0], events[6], events[1], events[7], events[2], events[3], events[4], events[5]])
    s = store.series("r1")
    assert [m.step for m in s.steps] == [10, 20]
    assert [m.step for m in s.evals] == [10, 20]
    assert s.step_curve("train_loss") == ([10, 20], [0.5, 0.25])
    assert s.eval_curve("val_acc") == ([10, 20], [0.8, 0.9])
    assert s.eval_curve("test_acc") == ([], [])
    assert s.eval_rows()[1] == {"step": 20, "epoch": 2.0, "elapsed": 0.21, "val_loss": 0.4, "val_acc": 0.9}
    assert s.diagnostics[0].layers == {"fc1": {"dead": 0.1, "grad_norm": 0.3}}
    assert s.messages[0].text == "lr warmup done" and s.messages[0].level == "warning"
    assert s.boundaries == [events[5]] and s.other == [events[5]]  # other types, kept as JSON
    # still running: the replay has no RunFinished, and the row knows the last step
    assert not isinstance(store.events("r1")[-1], RunFinished)
    assert store.get_run("r1").status == "running" and store.get_run("r1").step == 20


def test_nan_and_inf_survive(store: RunStore):
    store.record(run_events("r1")[0])
    store.record(StepMetrics(run_id="r1", step=1, epoch=0.1, train_loss=math.nan, lr=0.1, elapsed=0.0,
                             steps_per_sec=math.inf))
    store.record(EvalMetrics(run_id="r1", step=1, epoch=0.1, metrics={"val_loss": math.nan}, elapsed=0.0))
    s = store.series("r1")
    assert math.isnan(s.steps[0].train_loss) and s.steps[0].steps_per_sec == math.inf
    assert math.isnan(s.evals[0].metrics["val_loss"])


def test_prefix_lookup(store: RunStore):
    for run_id in ("abc111", "abd222", "x_y333"):
        store.record(run_events(run_id)[0])
    assert store.get_run("abc").run_id == "abc111"
    assert store.get_run("abd222").run_id == "abd222"
    with pytest.raises(KeyError, match="ambiguous.*abc111.*abd222|ambiguous.*abd222.*abc111"):
        store.get_run("ab")
    with pytest.raises(RunNotFound, match="no run matches 'zz'"):
        store.get_run("zz")
    with pytest.raises(KeyError, match="no run matches"):
        store.get_run("x%")  # LIKE wildcards are literal
    assert store.get_run("x_").run_id == "x_y333"
    with pytest.raises(KeyError):
        store.get_run("  ")


def test_list_runs_newest_first_and_filters(store: RunStore):
    record_all(store, run_events("r1", preset="optimizers", comparison="c1", t0=T0))
    record_all(store, run_events("r2", preset="init", comparison="c2", t0=T0 + 10, status="diverged"))
    store.record(run_events("r3", preset="init", comparison="c2", t0=T0 + 20)[0])
    assert [r.run_id for r in store.list_runs()] == ["r3", "r2", "r1"]
    assert [r.run_id for r in store.list_runs(preset="init")] == ["r3", "r2"]
    assert [r.run_id for r in store.list_runs(status="running")] == ["r3"]
    assert [r.run_id for r in store.list_runs(comparison="c2", status="diverged")] == ["r2"]
    assert [r.run_id for r in store.list_runs(limit=1)] == ["r3"]


def test_mark_and_pending(store: RunStore):
    store.add_pending("p1", {"variant": "SGD"}, variant="SGD", seed=0, preset="optimizers", comparison="c")
    assert store.get_run("p1").status == "pending"
    assert store.mark("p1", "cancelled", "cancelled before it started")
    row = store.get_run("p1")
    assert (row.status, row.reason, row.started, row.variant) == ("cancelled", "cancelled before it started", None, "SGD")
    assert store.events("p1") == [RunStore.finished_event(row)]  # never started: RunFinished only

    record_all(store, run_events("r1")[:3])
    assert store.mark("r1", "failed", "worker process died (exit code -9)")
    row = store.get_run("r1")
    assert (row.status, row.step) == ("failed", 10) and row.wall_time is not None and row.wall_time > 0
    assert not store.mark("r1", "cancelled", "too late")  # final already: unchanged
    assert store.get_run("r1").status == "failed"

    assert store.mark("ghost", "failed", "never seen")  # inserts a minimal row
    assert store.get_run("ghost").status == "failed"
    with pytest.raises(ValueError, match="final status"):
        store.mark("r1", "running", "no")


def test_delete(store: RunStore):
    record_all(store, run_events("r1"))
    record_all(store, run_events("r2"))
    assert store.delete(["r1", "r1", "nope"]) == 1
    assert [r.run_id for r in store.list_runs()] == ["r2"]
    assert store.series("r1").steps == [] and store.series("r1").messages == []
    assert len(store.series("r2").steps) == 2
    assert store.delete([]) == 0


def test_wal_mode_schema_version_and_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path / "home"))
    assert default_home() == tmp_path / "home"
    s = RunStore()
    assert s.path == tmp_path / "home" / FILENAME
    s.record(run_events("r1")[0])
    s.close()
    with sqlite3.connect(s.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    assert RunStore(tmp_path / "file.db").path == tmp_path / "file.db"
    with pytest.raises(RuntimeError, match="newer dllab"):
        RunStore(s.path).list_runs()


WRITER = textwrap.dedent("""
    import sys
    from engine.events import RunFinished, RunStarted, StepMetrics
    from engine.runs.store import RunStore
    path, run_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = RunStore(path)
    store.record(RunStarted(run_id=run_id, variant=run_id, seed=0, preset="p", comparison="c", spec={},
                            device="cpu", n_params=1, total_steps=n, steps_per_epoch=1))
    for step in range(1, n + 1):
        store.record(StepMetrics(run_id=run_id, step=step, epoch=float(step), train_loss=1.0 / step, lr=0.1,
                                 elapsed=0.0, steps_per_sec=1.0))
        if step % 50 == 0:
            store.list_runs()
    store.record(RunFinished(run_id=run_id, status="done", step=n, reason="ok", final={}, best={},
                             wall_time=0.0))
    store.close()
""")


def test_concurrent_writer_processes(tmp_path: Path):
    """Several processes create and write one fresh store at once: nothing lost, nothing corrupt."""
    path = tmp_path / "shared"  # does not exist yet: the writers race to create the schema too
    n_procs, n_steps = 4, 400
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{k}", str(n_steps)],
                              stderr=subprocess.PIPE, text=True) for k in range(n_procs)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    store = RunStore(path)
    assert sorted(r.run_id for r in store.list_runs(status="done")) == [f"w{k}" for k in range(n_procs)]
    for k in range(n_procs):
        assert [m.step for m in store.series(f"w{k}").steps] == list(range(1, n_steps + 1))
        assert store.get_run(f"w{k}").step == n_steps
    store.close()
    with sqlite3.connect(path / FILENAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_one_store_shared_by_threads(store: RunStore):
    import threading

    def write(run_id: str) -> None:
        record_all(store, run_events(run_id))

    threads = [threading.Thread(target=write, args=(f"t{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list_runs(status="done")) == 4


def test_a_follower_reads_only_what_is_new_and_ends_with_the_stored_stream(store: RunStore):
    """A follower's first poll is the run so far; each later poll reads only the rows written
    since (``series(after=marks)``), and what it returned in all is the stored event stream."""
    from engine.runs.follow import StoreFollower

    events = run_events("r1")
    follower = StoreFollower(store, ["r1"])
    assert follower.poll(0) == []  # not registered yet
    got: list = []
    record_all(store, events[:4])
    got += follower.poll(0)
    assert [type(e).__name__ for e in got] == ["RunStarted", "StepMetrics", "EvalMetrics", "Diagnostics"]
    marks = store.series("r1").marks
    assert store.series("r1", after=marks).steps == [] and follower.poll(0) == []  # nothing new: nothing read
    record_all(store, events[4:7])
    new = store.series("r1", after=marks)
    assert [(e.step, e.train_loss) for e in new.steps] == [(20, 0.25)] and len(new.messages) == 1
    got += follower.poll(0)
    assert not follower.finished
    record_all(store, events[7:])
    got += follower.poll(0)
    assert follower.finished and got == store.events("r1")
