"""SIGTERM and SIGHUP end a foreground `dllab run` as Ctrl+C does: runs stopped (interrupted, naming the signal), a summary, exit 130."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runs.store import RunStore

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from tiny_presets import tiny_preset  # noqa: E402


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_dllab_run_like_ctrl_c(tmp_path: Path, sig) -> None:
    preset = tmp_path / "long.toml"
    preset.write_text(tiny_preset('[base.train]\nsteps = 100000\nlog_every = 50\n\n[[variants]]\nname = "A"\n'))
    home = tmp_path / "home"
    env = {**os.environ, "DLLAB_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "tui_lab.cli", "run", str(preset), "--device", "cpu",
                             "--workers", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if (home / "runs.sqlite").exists():
                with RunStore(home) as store:
                    if any(r.step > 0 for r in store.list_runs()):
                        break
            time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in out + err
    with RunStore(home) as store:
        (row,) = store.list_runs()
    assert row.status == "interrupted" and row.step > 0, row.reason
    assert row.reason.startswith(f"interrupted at step {row.step}: ") and f"({sig.name})" in row.reason


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_app_like_quitting_and_gives_the_terminal_back(tmp_path: Path, sig) -> None:
    """The app in a terminal of its own (a pty), training with its own workers: SIGTERM or SIGHUP
    ends it with 128 + the signal and its runs end interrupted naming the signal; after SIGTERM its
    last output leaves the alternate screen and turns mouse reporting off (after SIGHUP the terminal
    is gone: it leaves at once, as Textual's input thread could spin on the dead terminal)."""
    import pty
    import select

    preset = tmp_path / "long.toml"
    preset.write_text(tiny_preset('[base.train]\nsteps = 100000\nlog_every = 50\n\n[[variants]]\nname = "A"\n'))
    home = tmp_path / "home"
    env = {**os.environ, "DLLAB_HOME": str(home), "DLLAB_SERVICE": "off", "TERM": "xterm-256color",
           "COLUMNS": "100", "LINES": "30"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app in the pty
        os.execve(sys.executable, [sys.executable, "-m", "tui_lab.cli", "open", str(preset), "--device", "cpu"], env)
    output = bytearray()

    def read(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child closed the pty
                    return
                if not chunk:
                    return
                output.extend(chunk)

    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            read(0.3)
            if (home / "runs.sqlite").exists():
                with RunStore(home) as store:
                    if any(r.step > 0 for r in store.list_runs()):
                        break
        os.kill(pid, sig)
        end = time.monotonic() + 30
        status = None
        while time.monotonic() < end:
            read(0.2)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        read(0.5)
    finally:
        if status is None or not os.WIFEXITED(status):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.close(fd)
    assert status is not None and os.WIFEXITED(status), "the app did not exit"
    assert os.WEXITSTATUS(status) == 128 + sig
    tail = bytes(output[-4000:])
    if sig == signal.SIGTERM:  # SIGHUP: the terminal is gone, nothing to give back (the app leaves at once)
        assert b"\x1b[?1049l" in tail and b"\x1b[?1000l" in tail  # the screen and the mouse given back
    assert b"Traceback" not in output
    with RunStore(home) as store:
        (row,) = store.list_runs()
    assert row.status == "interrupted" and f"({sig.name})" in row.reason


def test_the_app_leaves_when_its_terminal_closes_instead_of_spinning(tmp_path: Path) -> None:
    """Closing the terminal (the pty's other end) under the app: it exits within seconds. (Textual's
    input thread can spin at full CPU on a dead terminal and hold a clean exit up for ever: seen
    with two apps left running for 40 minutes after `tmux kill-session`.)"""
    import pty
    import select

    env = {**os.environ, "DLLAB_HOME": str(tmp_path / "home"), "DLLAB_SERVICE": "off", "TERM": "xterm-256color"}
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "tui_lab.cli"], env)
    seen = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and seen < 2000:  # the Library is drawn
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += len(os.read(fd, 65536))
            except OSError:
                break
    time.sleep(1.0)
    os.close(fd)  # the terminal goes away: the kernel hangs the app's session up
    status = None
    end = time.monotonic() + 10  # under the 15 s after which a stuck clean exit is cut short
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError("the app did not leave within 10 s of its terminal closing")
    assert seen >= 2000
    assert (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + signal.SIGHUP) or (
        os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGHUP)
