"""SIGTERM and SIGHUP end a foreground `dllab run` as Ctrl+C does: runs stopped (interrupted, naming the signal), a summary, exit 130."""

from __future__ import annotations

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
