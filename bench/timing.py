"""Side-by-side timing: interleaved repeats, medians, ratios, on wall clock and CPU time.

Every comparison in the benchmark times its sides in turns (A, B, A, B, ...) after a warm-up
round, so that whatever else the machine is doing at the moment weighs on both sides alike, and
reports the median of each side. Two clocks are kept:

* wall time (``time.perf_counter``): what a person waits;
* CPU time of this process (``time.process_time``): on a shared machine it leaves out the time
  the process spent waiting for a core, so it is the steadier figure for single-threaded runs.

On CUDA the wall clock of a side is taken after ``torch.cuda.synchronize()`` (and CUDA events
are recorded around it, see ``cuda_ms``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Timing:
    """The repeats of one side of a comparison, in seconds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    cuda_ms: list[float] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_once(fn: Callable[[], object], device: str = "cpu") -> tuple[float, float, float | None]:
    """(wall s, CPU s, CUDA-event ms or None) of one call of `fn`."""
    events = None
    if device.startswith("cuda"):
        import torch

        events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        _sync(device)
        events[0].record()
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    if events is not None:
        events[1].record()
    _sync(device)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall, cpu, (events[0].elapsed_time(events[1]) if events is not None else None)


def interleaved(sides: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                device: str = "cpu") -> dict[str, Timing]:
    """Time each side `repeats` times, in turns, after `warmup` untimed rounds."""
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    out = {name: Timing() for name in sides}
    for r in range(repeats):
        names = list(sides) if r % 2 == 0 else list(reversed(sides))  # neither side always goes first
        for name in names:
            wall, cpu, cuda = time_once(sides[name], device)
            out[name].wall.append(wall)
            out[name].cpu.append(cpu)
            if cuda is not None:
                out[name].cuda_ms.append(cuda)
    return out
