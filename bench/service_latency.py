"""Time to the first point: a comparison handed to the runs service, from the submit to its first
curve point in the store (what the app draws after Enter), with a cold service (just started; its
workers spawn and import torch) and a warm one (its forkserver has imported torch already).

Each round starts a fresh service in a fresh home, submits the comparison (cold), waits for it to
end, submits it again (warm), and stops the service. The row is warm ÷ cold; the absolute seconds
are its left and right columns (the issue's target: the warm side at most 2 s on a 2-core CPU).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.rows import Row, not_row
from bench.timing import Timing

PRESET = "optimizers"
TARGET_S = 2.0


def first_point(home: Path, specs, device: str) -> float:
    """Seconds from the submit to the first StepMetrics or EvalMetrics; waits for the runs to end."""
    from engine.events import EvalMetrics, StepMetrics
    from engine.runs.client import ServiceRunner
    from engine.runs.store import RunStore

    with RunStore(home) as store:
        started = time.perf_counter()
        runner = ServiceRunner(specs, home=home, store=store, device=device, workers=1, threads=1)
        runner.start()
        seen = None
        while not runner.finished:
            events = runner.poll(0.02)
            if seen is None and any(isinstance(e, StepMetrics | EvalMetrics) for e in events):
                seen = time.perf_counter() - started
        runner.close()
    return seen if seen is not None else float("nan")


def service_rows(device: str, quick: bool, repeats: int) -> list[Row]:
    from engine.catalogue.presets import load_preset
    from engine.runs.client import connect, service_pid
    from engine.runs.store import pid_alive

    what = f"{PRESET} (quick), submit → first curve point in the store, warm service ÷ cold"
    if device != "cpu":
        return [not_row("service/first-point", "time to the first point, warm ÷ cold", what, "not measured",
                        "measured on the CPU only (the service's workers pick their own device)")]
    specs = load_preset(PRESET).expand(quick=True)
    cold, warm = Timing(), Timing()
    for _ in range(max(1, repeats if not quick else 1)):
        with tempfile.TemporaryDirectory(prefix="dllab-bench-service-") as tmp:
            home = Path(tmp)
            client = connect(home)
            pid = service_pid(home)
            cold.wall.append(first_point(home, specs, device))
            warm.wall.append(first_point(home, specs, device))
            client.stop()
            deadline = time.monotonic() + 20
            while pid is not None and time.monotonic() < deadline and pid_alive(pid):
                time.sleep(0.05)
    ratios = [w / c for w, c in zip(warm.wall, cold.wall, strict=True)]
    ratio = sorted(ratios)[len(ratios) // 2]
    w, c = sorted(warm.wall)[len(warm.wall) // 2], sorted(cold.wall)[len(cold.wall) // 2]
    return [Row("service/first-point", "time to the first point, warm ÷ cold", what, "measured", ratio, None, w, c,
                "s", None, None, len(warm.wall),
                f"warm {w:.2f} s (target ≤ {TARGET_S:.0f} s: {'met' if w <= TARGET_S else 'not met'}), "
                f"cold {c:.2f} s; medians of {len(warm.wall)}")]

