"""The runner: worker processes, crashes, exceptions, cancel, close, Ctrl+C; and device choice.

Spawning is the slow part, so each scenario runs one Runner (module fixtures) and several tests
read its outcome. The train function is ``tests/fake_train.py`` (no torch).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from engine.events import EvalMetrics, Message, RunFinished, RunStarted, StepMetrics
from engine.recipe.config import DataSpec, Recipe, RunSpec, TrainSpec
from engine.runs.device import cpu_cores, describe, resolve_device, threads_per_worker
from engine.runs.executor import failure_reason
from engine.runs.inline import run_inline
from engine.runs.runner import Runner, death_reason
from engine.runs.store import RunStore

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # spawned workers inherit sys.path, so they import it too
FAKE = "fake_train:train"
DEADLINE_S = 30.0


def spec(variant: str, steps: int = 20) -> RunSpec:
    return RunSpec(recipe=Recipe(data=DataSpec(name="xor"), train=TrainSpec(steps=steps)), variant=variant,
                   preset="fake")


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def by_run(events: list) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for event in events:
        out[event.run_id].append(event)
    return out


def assert_no_workers_left(runner: Runner) -> None:
    ours = {p.pid for p in multiprocessing.active_children() if p.name.startswith("dllab-worker")}
    assert not ours & set(runner.pids)
    assert not [pid for pid in runner.pids if alive(pid)]


def assert_store_settled(store: RunStore, runner: Runner) -> None:
    rows = {r.run_id: r for r in store.list_runs(comparison=runner.comparison)}
    assert set(rows) == set(runner.run_ids)
    assert all(r.is_final for r in rows.values()), {r.run_id: r.status for r in rows.values()}


# -- a crash, an exception and two good runs, one worker (so a replacement must start) ----------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    store_dir = tmp_path_factory.mktemp("mixed")
    specs = [spec("crash"), spec("ok-a"), spec("raise"), spec("ok-b", steps=30)]
    runner = Runner(specs, workers=1, store=store_dir, train_fn=FAKE, device="cpu", comparison="mix")
    with runner:
        events = []
        t0 = time.monotonic()
        for event in runner.events():
            events.append(event)
            assert time.monotonic() - t0 < DEADLINE_S
    store = RunStore(store_dir)
    yield runner, events, store
    store.close()


def test_every_run_ends_with_its_status(mixed):
    runner, events, store = mixed
    crash, ok_a, boom, ok_b = runner.run_ids
    final = {e.run_id: e for e in events if isinstance(e, RunFinished)}
    assert {k: v.status for k, v in final.items()} == {crash: "failed", ok_a: "done", boom: "failed", ok_b: "done"}
    assert final[crash].reason == "worker process died (exit code 3)"
    assert final[boom].reason == "RuntimeError: boom at step 3"
    assert runner.finished and runner.results() == {e.run_id: e for e in final.values()}
    assert all(runner.status(r) == final[r].status for r in runner.run_ids)
    assert len(runner.pids) == 2  # the crashed worker was replaced


def test_events_of_each_run_in_order(mixed):
    runner, events, _ = mixed
    runs = by_run(events)
    for run_id, steps in ((runner.run_ids[1], 20), (runner.run_ids[3], 30)):
        seq = runs[run_id]
        assert isinstance(seq[0], RunStarted) and isinstance(seq[-1], RunFinished)
        assert sum(isinstance(e, RunFinished) for e in seq) == 1
        step_nums = [e.step for e in seq if isinstance(e, StepMetrics)]
        assert step_nums == list(range(1, steps + 1))
        assert [e.step for e in seq if isinstance(e, EvalMetrics)] == list(range(10, steps + 1, 10))
        assert seq[0].comparison == "mix" and seq[0].device == "cpu"
        assert seq[-1].final["val_loss"] == pytest.approx(1.5 / steps)
    # the crashed run: whatever got through, it ends with exactly one RunFinished
    assert [type(e) for e in runs[runner.run_ids[0]]][-1] is RunFinished


def test_exception_reported_with_traceback(mixed):
    runner, events, store = mixed
    boom = runner.run_ids[2]
    messages = [e for e in by_run(events)[boom] if isinstance(e, Message)]
    assert messages and messages[0].level == "error" and "RuntimeError: boom at step 3" in messages[0].text
    assert store.series(boom).messages[0].text == messages[0].text


def test_store_matches_the_stream(mixed):
    runner, events, store = mixed
    assert_store_settled(store, runner)
    crash, ok_a, boom, ok_b = runner.run_ids
    assert store.get_run(crash).status == "failed" and store.get_run(crash).step >= 2  # written before dying
    assert store.get_run(ok_b).final == runner.results()[ok_b].final
    assert store.events(ok_a) == by_run(events)[ok_a]  # a stored run replays as it streamed
    assert store.get_run(ok_a).spec["versions"]["python"]


def test_no_workers_left_after_close(mixed):
    runner, _, _ = mixed
    assert_no_workers_left(runner)


# -- cancel one running, one pending, then all; two workers -------------------------------------


@pytest.fixture(scope="module")
def cancelled(tmp_path_factory):
    store_dir = tmp_path_factory.mktemp("cancel")
    specs = [spec("slow-a"), spec("ok-b"), spec("slow-c"), spec("slow-d"), spec("ok-e"), spec("ok-f")]
    runner = Runner(specs, workers=2, store=store_dir, train_fn=FAKE, device="cpu")
    a, b, c, d, e, f = runner.run_ids
    events: list = []
    notes: dict[str, object] = {}
    with runner:
        t0 = time.monotonic()
        for event in runner.events():
            events.append(event)
            assert time.monotonic() - t0 < DEADLINE_S
            started = {x.run_id for x in events if isinstance(x, RunStarted)}
            ended = {x.run_id for x in events if isinstance(x, RunFinished)}
            if a in started and "a" not in notes:
                notes["a"] = True
                runner.cancel(a)
                runner.cancel(f)  # pending: ends at once, never starts
                notes["f_status"] = runner.status(f)
            if {b} <= ended and {c, d} <= started and "c" not in notes:
                notes["c"] = True
                runner.cancel(c)
            if e in ended and "all" not in notes:
                notes["all"] = True
                notes["d_running"] = runner.status(d)
                runner.cancel()
    store = RunStore(store_dir)
    yield runner, events, notes, store
    store.close()


def test_cancel_one_run_others_finish(cancelled):
    runner, events, notes, _ = cancelled
    a, b, c, d, e, f = runner.run_ids
    final = {x.run_id: x for x in events if isinstance(x, RunFinished)}
    assert {k: final[k].status for k in runner.run_ids} == {
        a: "cancelled", b: "done", c: "cancelled", d: "cancelled", e: "done", f: "cancelled"}
    assert final[a].reason.startswith("cancelled at step")
    assert notes["d_running"] == "running"
    assert final[d].reason.startswith("cancelled at step")  # cancel-all stopped the running one


def test_cancel_pending_never_starts(cancelled):
    runner, events, notes, store = cancelled
    f = runner.run_ids[5]
    assert notes["f_status"] == "cancelled"
    assert [type(x) for x in by_run(events)[f]] == [RunFinished]
    assert by_run(events)[f][0].reason == "cancelled before it started"
    row = store.get_run(f)
    assert (row.status, row.started) == ("cancelled", None)


def test_cancel_leaves_store_settled_and_no_workers(cancelled):
    runner, _, _, store = cancelled
    assert_store_settled(store, runner)
    assert not store.list_runs(status="running") and not store.list_runs(status="pending")
    assert_no_workers_left(runner)
    with pytest.raises(KeyError, match="no run"):
        runner.cancel("nope")


# -- close(): a run that ignores should_stop is terminated -------------------------------------


def test_close_terminates_a_stubborn_worker(tmp_path: Path):
    runner = Runner([spec("stubborn"), spec("ok")], workers=1, store=tmp_path, train_fn=FAKE, device="cpu")
    stubborn, ok = runner.run_ids
    try:
        t0 = time.monotonic()
        while runner.status(stubborn) != "running":
            runner.poll(0.2)
            assert time.monotonic() - t0 < DEADLINE_S
    finally:
        t1 = time.monotonic()
        runner.close(timeout=0.5)
    assert time.monotonic() - t1 < 5
    results = runner.results()
    assert results[stubborn].status == "cancelled" and "worker process was stopped" in results[stubborn].reason
    assert results[ok].status == "cancelled"
    assert_no_workers_left(runner)
    with RunStore(tmp_path) as store:
        assert_store_settled(store, runner)
    runner.close()  # twice is fine


def test_unloadable_train_fn_fails_each_run(tmp_path: Path):
    with Runner([spec("a"), spec("b")], workers=1, store=tmp_path, train_fn="no_such_module:train",
                device="cpu") as runner:
        finals = [e for e in runner.events() if isinstance(e, RunFinished)]
    assert [e.status for e in finals] == ["failed", "failed"]
    assert "could not load train function 'no_such_module:train'" in finals[0].reason
    assert_no_workers_left(runner)


# -- Ctrl+C on a script that drives a Runner ---------------------------------------------------

SCRIPT = textwrap.dedent("""
    import faulthandler, json, signal, sys
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for a stack dump if it hangs
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even from a background job
    from engine.recipe.config import DataSpec, Recipe, RunSpec
    from engine.events import RunStarted
    from engine.runs.runner import Runner

    if __name__ == "__main__":
        specs = [RunSpec(recipe=Recipe(data=DataSpec(name="xor")), variant=f"slow-{k}") for k in range(3)]
        runner = Runner(specs, workers=2, store=sys.argv[1], train_fn="fake_train:train", device="cpu")
        try:
            started = 0
            for event in runner.events():
                if isinstance(event, RunStarted):
                    started += 1
                    if started == 2:
                        print(json.dumps({"pids": runner.pids, "run_ids": runner.run_ids}), flush=True)
        except KeyboardInterrupt:
            runner.close()
            sys.exit(130)
        finally:
            runner.close()
""")


def test_ctrl_c_cancels_everything_and_leaves_no_orphans(tmp_path: Path):
    script = tmp_path / "drive.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "store")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], DEADLINE_S)
        assert ready, "the script did not start its runs"
        info = json.loads(proc.stdout.readline())
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C does: the whole process group
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGUSR1)
            time.sleep(1)
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"no exit after Ctrl+C; its stacks:\n{proc.communicate()[1]}") from None
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert elapsed < 5, f"took {elapsed:.1f} s to exit"
    assert "Traceback" not in err.replace("KeyboardInterrupt", ""), err  # workers ignored SIGINT
    assert len(info["pids"]) == 2 and not [pid for pid in info["pids"] if alive(pid)]
    with RunStore(tmp_path / "store") as store:
        rows = {r.run_id: r for r in store.list_runs()}
    assert {rows[r].status for r in info["run_ids"]} == {"cancelled"}
    assert sorted(rows[r].started is None for r in info["run_ids"]) == [False, False, True]


def test_workers_of_a_killed_parent_stop_by_themselves(tmp_path: Path):
    """SIGKILL leaves the parent no chance to clean up: the workers notice and close the books."""
    script = tmp_path / "drive.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "store")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], DEADLINE_S)
        assert ready, "the script did not start its runs"
        info = json.loads(proc.stdout.readline())
        proc.kill()
        proc.wait()
        t0 = time.monotonic()
        while [pid for pid in info["pids"] if alive(pid)] and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        assert not [pid for pid in info["pids"] if alive(pid)], "orphaned workers kept running"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    with RunStore(tmp_path / "store") as store:
        rows = {r.run_id: r for r in store.list_runs()}
    assert {rows[r].status for r in info["run_ids"]} == {"interrupted"}
    reasons = sorted(rows[r].reason.split(": ", 1)[-1] for r in info["run_ids"])
    gone = f"the process that started it (pid {proc.pid}) stopped"
    assert reasons == [f"{gone} before it started (killed or crashed)",
                       f"{gone} without ending it (killed or crashed)", f"{gone} without ending it (killed or crashed)"]


# -- nothing outlives the process that ran the runs ---------------------------------------------

REAPER = textwrap.dedent("""
    import ctypes, json, os, signal, subprocess, sys
    # A subreaper: whatever the command leaves behind (a process still running, or one that ended but
    # that its parent never waited for) becomes this process's child instead of init's, so it shows.
    if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        sys.exit(3)
    with open(sys.argv[1], "w") as err:
        rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err).returncode
    me, left = os.getpid(), {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline") as f:
                cmdline = f.read().replace(chr(0), " ").strip()
        except OSError:
            continue
        if int(fields[1]) == me:
            left[int(name)] = f"{fields[0]} {cmdline}"
    print(json.dumps({"rc": rc, "left": list(left.values())}), flush=True)
    for pid in left:  # leave nothing behind either
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
""")

SCRIPT_EXIT = textwrap.dedent("""
    import sys
    from engine.recipe.config import DataSpec, Recipe, RunSpec
    from engine.runs.runner import Runner
    from tui_lab.cli import stop_resource_tracker_at_exit

    if __name__ == "__main__":
        stop_resource_tracker_at_exit()  # what `dllab` does first
        specs = [RunSpec(recipe=Recipe(data=DataSpec(name="xor")), variant=f"ok-{k}") for k in range(2)]
        with Runner(specs, workers=2, store=sys.argv[1], train_fn="fake_train:train", device="cpu") as runner:
            assert [e.status for e in runner.events() if type(e).__name__ == "RunFinished"] == ["done"] * 2
""")


def left_behind(tmp_path: Path, command: list[str]) -> dict:
    """Run `command` under a subreaper; its exit code and the processes it left (state, command line)."""
    reaper = tmp_path / "reaper.py"
    reaper.write_text(REAPER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    out = subprocess.run([sys.executable, str(reaper), str(tmp_path / "stderr.txt"), *command], env=env,
                         capture_output=True, text=True, timeout=120)
    if out.returncode == 3:
        pytest.skip("no PR_SET_CHILD_SUBREAPER here")
    assert out.returncode == 0, out.stderr
    return {**json.loads(out.stdout), "stderr": (tmp_path / "stderr.txt").read_text()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a subreaper (prctl) is Linux's")
def test_nothing_the_runner_started_outlives_the_process(tmp_path: Path):
    """multiprocessing's resource tracker, started with the spawned workers, is stopped and reaped at
    exit: left alone it would end only after the process, an orphan (a zombie under init for a moment)."""
    script = tmp_path / "drive.py"
    script.write_text(SCRIPT_EXIT)
    out = left_behind(tmp_path, [sys.executable, str(script), str(tmp_path / "store")])
    assert out["rc"] == 0, out["stderr"]
    assert out["left"] == [], out["left"]
    assert "leaked" not in out["stderr"], out["stderr"]  # the tracker ended with nothing to clean up


@pytest.mark.slow  # three processes import torch: ~10 s of CPU; CI runs it
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a subreaper (prctl) is Linux's")
def test_nothing_outlives_dllab_run(tmp_path: Path):
    from tiny_presets import tiny_preset

    preset = tmp_path / "tiny.toml"
    preset.write_text(tiny_preset('[base.model]\nhidden = [8]\n[base.train]\nsteps = 20\n'
                                  '[[variants]]\nname = "a"\n[[variants]]\nname = "b"\n[variants.train]\nlr = 0.01\n',
                                  n_samples=100))
    dllab = Path(sys.executable).with_name("dllab")
    out = left_behind(tmp_path, [str(dllab), "run", str(preset), "--quick", "--workers", "2", "--solo"])
    assert out["rc"] == 0, out["stderr"]
    assert out["left"] == [], out["left"]


# -- the real training loop through a worker ----------------------------------------------------


@pytest.mark.slow  # imports torch and the data stack in a worker: ~6 s of CPU; CI runs it
def test_real_loop_through_a_worker_replays_from_the_store(tmp_path: Path):
    real = RunSpec(recipe=Recipe(data=DataSpec(name="moons"), train=TrainSpec(steps=40, optimizer="adam")),
                   variant="Adam", preset="smoke")
    with Runner([real], workers=1, store=tmp_path, device="cpu") as runner:
        events = list(runner.events())
    (run_id,) = runner.run_ids
    assert isinstance(events[0], RunStarted) and events[0].spec["versions"]
    assert events[-1].status == "done" and runner.threads == cpu_cores()
    with RunStore(tmp_path) as store:
        assert store.events(run_id) == events  # a stored run replays exactly as it streamed
        assert store.get_run(run_id).final == events[-1].final
    assert_no_workers_left(runner)


# -- in-process runs ---------------------------------------------------------------------------


def test_run_inline(tmp_path: Path):
    events: list = []
    results = run_inline([spec("ok"), spec("raise"), spec("ok2", steps=10)], events.append, None, "cpu",
                         tmp_path, train_fn=FAKE, comparison="inline")
    assert [r.status for r in results] == ["done", "failed", "done"]
    assert results[1].reason == "RuntimeError: boom at step 3"
    with RunStore(tmp_path) as store:
        assert [r.status for r in store.list_runs(comparison="inline")] == ["done", "failed", "done"]
        assert store.events(results[0].run_id) == by_run(events)[results[0].run_id]

    calls = iter(range(1000))
    stop_soon = lambda: next(calls) >= 5  # noqa: E731 - false for the first checks, then true
    stopped = run_inline([spec("slow"), spec("ok")], None, stop_soon, "cpu", tmp_path, train_fn=FAKE)
    assert [(r.status, r.reason) for r in stopped] == [
        ("cancelled", "cancelled at step 4"), ("cancelled", "cancelled before it started")]


def test_failure_reasons():
    assert failure_reason(MemoryError(), "cpu") == "out of memory on cpu: try a smaller batch_size or model"
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert failure_reason(oom, "cuda:0") == "out of memory on cuda:0: try a smaller batch_size or model"
    assert failure_reason(ValueError("bad\n  value"), "cpu") == "ValueError: bad value"
    cpu_oom = RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 160000000000 bytes. Error code 12 (Cannot allocate memory)")
    assert failure_reason(cpu_oom, "cpu") == ("out of memory on cpu (it asked for 149 GiB at once): "
                                              "try a smaller batch_size or model")
    assert failure_reason(KeyError(), "cpu") == "KeyError"
    assert death_reason(3) == "worker process died (exit code 3)"
    assert death_reason(-9) == "worker process died (exit code -9): SIGKILL, often the system's out-of-memory killer"


def test_worker_and_thread_plan():
    cores = cpu_cores()
    three = [spec("a"), spec("b"), spec("c")]
    r = Runner(three, device="cpu", train_fn=FAKE)
    assert r.workers == max(1, min(3, cores)) and r.workers * r.threads <= max(cores, r.workers)
    assert len(set(r.run_ids)) == 3 and all(len(x) == 10 for x in r.run_ids)
    assert {s.comparison for s in r.specs} == {r.comparison} and r.comparison
    r = Runner(three, device="cpu", threads=cores, train_fn=FAKE)
    assert (r.workers, r.threads) == (1, cores)
    r = Runner([spec("a")], device="cpu", workers=4, train_fn=FAKE)
    assert (r.workers, r.threads) == (1, cores)
    with pytest.raises(ValueError, match="run_inline"):
        Runner(three, device="cpu", workers=0)
    empty = Runner([], device="cpu", train_fn=FAKE)
    assert list(empty.events()) == [] and empty.finished
    empty.close()


# -- devices -----------------------------------------------------------------------------------


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device().type == expected
    assert resolve_device("CPU") == torch.device("cpu")
    for bad in ("tpu", "cpu:1", "cuda:x", ""):
        with pytest.raises(ValueError, match="unknown device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda:0")
    assert describe("cpu").startswith("cpu (")


def test_threads_per_worker():
    cores = cpu_cores()
    assert threads_per_worker(1, "cpu") == cores
    assert threads_per_worker(cores * 4, "cpu") == 1
    assert threads_per_worker(1, "cpu", interactive=True) == max(1, cores - 1)  # 2 cores: 1 thread
