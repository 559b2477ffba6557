"""The runs service: started on demand, private to its user, refuses bad requests and keeps running,
runs comparisons whose runs a second client cancels and any client follows through the store,
replaced when stale, gone when idle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.events import RunFinished, RunStarted
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.runs.client import ServiceClient, ServiceError, connect, running_service, service_pid
from engine.runs.follow import StoreFollower
from engine.runs.service import MAX_MESSAGE, SOCKET_NAME, Service
from engine.runs.store import RunStore

DEADLINE_S = 90.0


def tiny(variant: str, steps: int = 30, lr: float = 0.05) -> RunSpec:
    return RunSpec(recipe=Recipe(data=DataSpec(name="spiral", n_samples=200), model=ModelSpec(hidden=[8]),
                                 train=TrainSpec(steps=steps, lr=lr, optimizer="sgd", log_every=5)),
                   variant=variant, preset="service-test")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout: float = DEADLINE_S, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError("timed out")


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DLLAB_HOME", str(home))
    yield home
    if (client := running_service(home)) is not None:
        pid = service_pid(home)
        client.stop()
        if pid is not None:
            wait_for(lambda: not alive(pid), 30)


def raw_request(home: Path, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(home / SOCKET_NAME))
        try:
            conn.sendall(payload)
        except BrokenPipeError:  # refused before it read anything (another user): its answer is there
            pass
        with conn.makefile("rb") as f:
            return json.loads(f.readline())


def test_a_comparison_runs_in_the_service_and_a_follower_sees_every_event(home) -> None:
    client = connect(home)
    assert os.stat(home).st_mode & 0o777 == 0o700
    assert os.stat(home / SOCKET_NAME).st_mode & 0o777 == 0o600
    pid = service_pid(home)
    assert pid is not None and os.getsid(pid) != os.getsid(0)  # its own session: a hangup here misses it
    # long enough to be still going when ps asks (30 steps could end first on a warm, quiet service)
    answer = client.submit([tiny("a", steps=1500), tiny("b", steps=1500, lr=0.1)], device="cpu")
    comparison, run_ids = answer["comparison"], answer["run_ids"]
    assert [c["comparison"] for c in client.ps()] == [comparison]
    with RunStore(home) as store:
        follower = StoreFollower(store, run_ids)
        seen: list = []
        deadline = time.monotonic() + DEADLINE_S
        while not follower.finished and time.monotonic() < deadline:
            seen.extend(follower.poll(0.2))
        assert follower.finished
        for run_id in run_ids:
            mine = [e for e in seen if e.run_id == run_id]
            assert isinstance(mine[0], RunStarted) and isinstance(mine[-1], RunFinished)
            assert mine[-1].status == "done"
            assert [type(e) for e in mine] == [type(e) for e in store.events(run_id)]  # nothing twice, none lost
    wait_for(lambda: client.ps() == [])


def test_bad_requests_are_refused_and_the_service_keeps_running(home) -> None:
    client = connect(home)
    assert raw_request(home, b"not json\n")["error"].startswith("refused: not JSON")
    assert "'op'" in raw_request(home, b'["a list"]\n')["error"]
    assert "unknown op" in raw_request(home, b'{"op": "format-disk"}\n')["error"]
    assert "run specs" in raw_request(home, b'{"op": "submit", "specs": []}\n')["error"]
    assert "refused" in raw_request(home, b'{"op": "submit", "specs": [{"recipe": 3}]}\n')["error"]
    with pytest.raises(ServiceError, match="over"):
        client.request("ping", padding="x" * (MAX_MESSAGE + 1))  # the client will not send it
    big = b'{"op": "ping", "padding": "' + b"x" * (MAX_MESSAGE + 10) + b'"}\n'
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:  # the service stops reading at the cap
        conn.connect(str(home / SOCKET_NAME))
        try:
            conn.sendall(big)
            answer = json.loads(conn.makefile("rb").readline())
            assert "over" in answer["error"]
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert client.request("ping")["ok"]
    log = (home / "service.log").read_text()
    assert "refused a request: not JSON" in log and "over" in log


def test_another_users_connection_is_refused(tmp_path) -> None:
    service = Service(tmp_path / "home", idle_s=60)
    service.uid = os.getuid() + 1  # as if the service belonged to someone else
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    try:
        wait_for(lambda: (tmp_path / "home" / SOCKET_NAME).exists(), 10)
        answer = raw_request(tmp_path / "home", b'{"op": "ping"}\n')
        assert answer == {"ok": False, "error": "this runs service belongs to another user"}
        assert thread.is_alive()
    finally:
        service.stopping.set()
        thread.join(10)


def test_a_second_client_cancels_the_runs(home) -> None:
    connect(home).submit([tiny("long-a", steps=200_000), tiny("long-b", steps=200_000)], device="cpu")
    other = ServiceClient(home)  # another terminal
    live = wait_for(other.ps)
    comparison = live[0]["comparison"]
    with RunStore(home) as store:
        wait_for(lambda: any(r.status == "running" for r in store.list_runs(comparison=comparison)))
        assert other.cancel(comparison[:4])["cancelled"] == 2
        rows = wait_for(lambda: (rows := store.list_runs(comparison=comparison))
                        and all(r.is_final for r in rows) and rows)
    assert {r.status for r in rows} == {"cancelled"}
    with pytest.raises(ServiceError, match="no live comparison"):
        other.cancel("nosuchid")


def test_a_killed_service_is_replaced_and_an_idle_one_stops_by_itself(home, monkeypatch) -> None:
    connect(home)
    first = service_pid(home)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not alive(first), 10)
    assert (home / SOCKET_NAME).exists() and running_service(home) is None  # stale socket, nobody answers
    monkeypatch.setenv("DLLAB_SERVICE_IDLE", "1")
    connect(home)
    second = service_pid(home)
    assert second not in (None, first)
    wait_for(lambda: not alive(second), 30)  # idle: it stopped by itself
    assert not (home / SOCKET_NAME).exists()


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children, ...), from /proc."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_no_process_outlives_the_services_idle_stop(home, monkeypatch) -> None:
    """The service's warm forkserver, its resource tracker and its workers all go when it stops."""
    monkeypatch.setenv("DLLAB_SERVICE_IDLE", "10")
    client = connect(home)
    pid = service_pid(home)
    answer = client.submit([tiny("a"), tiny("b", lr=0.1)], device="cpu", workers=2, threads=1)
    seen: set[int] = set()
    with RunStore(home) as store:
        def ended() -> bool:
            seen.update(descendants(pid))
            return all(store.get_run(r).is_final for r in answer["run_ids"])

        wait_for(ended, every=0.05)
    assert seen  # the forkserver at least
    wait_for(lambda: not alive(pid), 60)  # idle: it stopped by itself
    wait_for(lambda: not [p for p in seen if alive(p)], 15)


def test_two_services_started_at_once_leave_one(home) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "engine.runs.service", "--home", str(home)],
                              start_new_session=True) for _ in range(2)]
    wait_for(lambda: running_service(home))
    exited = wait_for(lambda: [p for p in procs if p.poll() is not None], 30)
    assert len(exited) == 1 and exited[0].returncode == 0
    assert running_service(home).request("ping")["pid"] == next(p.pid for p in procs if p not in exited)


def test_the_apps_runner_hands_the_comparison_to_the_service_and_follows_it(home) -> None:
    """What the app's default runner does (tui_lab.engine_bridge.interactive_runner): the run ids are
    known before the submit, closing stops following only, and the runs end in the store."""
    from engine.runs.client import ServiceRunner

    with RunStore(home) as store:
        runner = ServiceRunner([tiny("a"), tiny("b", lr=0.1)], home=home, store=store, device="cpu", workers=1,
                               threads=1)
        ids = list(runner.run_ids)
        runner.start()
        assert runner.run_ids == ids and runner.detached
        events: list = []
        deadline = time.monotonic() + DEADLINE_S
        while not runner.finished and time.monotonic() < deadline:
            events.extend(runner.poll(0.2))
        runner.close()
        assert sorted(e.run_id for e in events if isinstance(e, RunFinished)) == sorted(ids)
        assert {r.status for r in store.list_runs(comparison=runner.comparison)} == {"done"}


def test_run_detach_ps_and_cancel_from_the_command_line(home, tmp_path, capsys) -> None:
    """`dllab run --detach` returns at once with the comparison's id; `ps` lists it; `cancel` stops it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tiny_presets import tiny_preset

    from tui_lab.cli import main

    path = tmp_path / "long.toml"
    path.write_text(tiny_preset('[base.train]\nsteps = 100000\nlog_every = 50\n\n[[variants]]\nname = "A"\n'
                                '[[variants]]\nname = "B"\ntrain = { lr = 0.05 }\n'))
    started = time.monotonic()
    assert main(["run", str(path), "--detach", "--device", "cpu"]) == 0
    assert time.monotonic() - started < 15  # it does not wait for the runs
    out, err = capsys.readouterr()
    comparison = out.strip()
    assert len(comparison) == 8 and f"dllab attach {comparison}" in err
    assert main(["ps"]) == 0 and comparison in capsys.readouterr().out
    with RunStore(home) as store:
        wait_for(lambda: any(r.status == "running" for r in store.list_runs(comparison=comparison)))
        assert main(["cancel", comparison]) == 0
        assert "cancelling 2 runs" in capsys.readouterr().out
        rows = wait_for(lambda: (rows := store.list_runs(comparison=comparison)) and all(r.is_final for r in rows)
                        and rows)
    assert {r.status for r in rows} == {"cancelled"}
    assert main(["cancel", "nosuch"]) == 2 and "no live comparison" in capsys.readouterr().err


def test_a_killed_services_run_ends_with_a_reason_and_resumes_to_the_uninterrupted_numbers(home, capsys) -> None:
    """kill -9 of the service mid-run: its worker stops the run and checkpoints it; `dllab resume`
    finishes it with the final numbers of a run that never stopped (CPU, one thread both ways)."""
    import torch

    from engine.runs.inline import run_inline
    from tui_lab.cli import main

    spec = tiny("long", steps=4000, lr=0.05)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (whole,) = run_inline([spec], device="cpu", store=home.parent / "whole")
        client = connect(home)
        comparison = client.submit([spec], device="cpu", workers=1, threads=1)["comparison"]
        with RunStore(home) as store:
            wait_for(lambda: any(r.step >= 200 for r in store.list_runs(comparison=comparison)))
            os.kill(service_pid(home), signal.SIGKILL)
            (row,) = wait_for(lambda: (rows := store.list_runs(comparison=comparison)) and rows[0].is_final
                              and rows, 60)
            assert row.status == "interrupted" and 0 < row.step < 4000
            assert row.reason.startswith(f"interrupted at step {row.step}: the runs service (pid ")
            assert row.reason.endswith(f"stopped without ending it (killed or crashed); `dllab resume {row.run_id}` "
                                       "goes on from its checkpoint")
        assert main(["resume", row.run_id]) == 0
        assert f"went on from step {row.step}" in capsys.readouterr().out
        with RunStore(home) as store:
            resumed = store.get_run(row.run_id)
        assert (resumed.status, resumed.step) == ("done", 4000) and resumed.final == whole.final
    finally:
        torch.set_num_threads(threads)


def test_a_killed_services_batched_group_resumes_whole_to_the_uninterrupted_numbers(home, capsys) -> None:
    """kill -9 of the service while it trains a batched group: every run of the group ends
    interrupted with its checkpoint; `dllab resume` of one of them takes the whole group on, and
    every run ends with the numbers of a group that never stopped (CPU, one thread both ways)."""
    import torch

    from engine.runs.executor import WorkUnit, run_unit
    from tui_lab.cli import main

    specs = [tiny(f"lr {lr}", steps=4000, lr=lr) for lr in (0.02, 0.05, 0.1)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with RunStore(home.parent / "whole") as store:
            whole = run_unit(WorkUnit(tuple(specs), ("w1", "w2", "w3")), lambda e: None, lambda: False,
                             device="cpu", store=store)
        client = connect(home)
        answer = client.submit(specs, device="cpu", workers=1, threads=1)
        with RunStore(home) as store:
            wait_for(lambda: all(store.get_run(r).step >= 300 for r in answer["run_ids"]))
            os.kill(service_pid(home), signal.SIGKILL)
            rows = wait_for(lambda: (rows := [store.get_run(r) for r in answer["run_ids"]])
                            and all(r.is_final for r in rows) and rows, 60)
        assert {r.status for r in rows} == {"interrupted"} and len({r.step for r in rows}) == 1
        assert all(r.reason.endswith(f"`dllab resume {r.run_id}` goes on from its checkpoint") for r in rows)
        assert main(["resume", rows[1].run_id]) == 0
        assert "its 3 runs went on together" in capsys.readouterr().err
        with RunStore(home) as store:
            resumed = [store.get_run(r) for r in answer["run_ids"]]
        assert [(r.status, r.step, r.final) for r in resumed] == [("done", 4000, w.final) for w in whole]
    finally:
        torch.set_num_threads(threads)


def test_runs_whose_process_is_gone_are_settled_with_a_reason(tmp_path) -> None:
    import engine.runs.store as store_module

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with RunStore(tmp_path) as store:
        store.add_pending("alive1", {}, variant="a")  # this process: it is going
        store.add_pending("gone1", {}, variant="g")
        store.add_pending("reboot1", {}, variant="r")
        store.add_pending("else1", {}, variant="e")
        me = store_module.owner_id().split("|")
        owners = {"gone1": f"the runs service|{dead.pid}|{me[2]}|{me[3]}",
                  "reboot1": f"`dllab run`|{os.getpid()}|another-boot|{me[3]}",
                  "else1": f"the app|{dead.pid}|{me[2]}|another-host"}
        for run_id, owner in owners.items():
            store._write([("UPDATE runs SET owner = ? WHERE run_id = ?", (owner, run_id))])
        assert store.settle_orphans() == 2
        status = {r.run_id: (r.status, r.reason) for r in store.list_runs()}
    assert status["alive1"][0] == "pending" and status["else1"][0] == "pending"
    assert status["gone1"] == ("interrupted",
                               f"the runs service (pid {dead.pid}) stopped without ending it (killed or crashed)")
    assert status["reboot1"] == ("interrupted", "the machine restarted while `dllab run` (pid "
                                 f"{os.getpid()}) ran it")


def test_a_run_cancelled_in_the_service_resumes_there(home, capsys) -> None:
    """Cancel through the service (the run checkpoints), then `dllab resume RUN --detach`: the
    service goes on from the checkpoint; the run ends done at its full budget."""
    from tui_lab.cli import main

    client = connect(home)
    answer = client.submit([tiny("long", steps=3000)], device="cpu", workers=1, threads=1)
    run_id = answer["run_ids"][0]
    with RunStore(home) as store:
        wait_for(lambda: store.get_run(run_id).step >= 100)
        client.cancel(run_id)
        stopped = wait_for(lambda: (row := store.get_run(run_id)).is_final and row)
        assert stopped.status == "cancelled" and stopped.step < 3000
        assert main(["resume", run_id, "--detach"]) == 0
        assert capsys.readouterr().out.strip() == answer["comparison"]
        done = wait_for(lambda: (row := store.get_run(run_id)).is_final and row)
    assert (done.status, done.step) == ("done", 3000)
    with RunStore(home) as store:
        messages = [m.text for m in store.series(run_id).messages]
    assert any(text.startswith(f"resumed at step {stopped.step}") for text in messages)
