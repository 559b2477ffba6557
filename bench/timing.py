"""Side-by-side timing: interleaved repeats, medians, ratios, on wall clock and CPU time.

Every comparison in the benchmark times its sides in turns (A B, B A, A B, ...) after a warm-up
round, so that whatever else the machine is doing at the moment weighs on both sides alike; a
ratio is the median of the rounds' ratios (:func:`paired_ratio`), and each side's median time is
reported beside it. Two clocks are kept:

* wall time (``time.perf_counter``): what a person waits;
* CPU time of this process (``time.process_time``): on a shared machine it leaves out the time
  the process spent waiting for a core, so it is the steadier figure for single-threaded runs.

On CUDA the wall clock of a side is taken after ``torch.cuda.synchronize()`` (and CUDA events
are recorded around it, see ``cuda_ms``).
"""

from __future__ import annotations

import math
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

    def add(self, wall: float, cpu: float, cuda_ms: float | None = None) -> None:
        """One repeat's times."""
        self.wall.append(wall)
        self.cpu.append(cpu)
        if cuda_ms is not None:
            self.cuda_ms.append(cuda_ms)


def turn(names: list[str], round_: int) -> list[str]:
    """The order the sides go in a round: forward, then backward, … (neither always goes first)."""
    return names if round_ % 2 == 0 else names[::-1]


def paired_ratio(left: list[float], right: list[float]) -> float:
    """The median of the per-round ratios ``left[i] / right[i]``.

    Sides timed in turns are paired round by round, so a slow stretch of the machine (on a shared
    virtual machine the same run here has taken 0.41 s and 0.60 s an epoch minutes apart) weighs
    on both halves of a ratio, where a ratio of two medians may take them from different moments.
    """
    ratios = sorted(a / b for a, b in zip(left, right, strict=True) if b > 0)
    return statistics.median(ratios) if ratios else math.nan


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
        for name in turn(list(sides), r):
            out[name].add(*time_once(sides[name], device))
    return out


@dataclass
class Marked:
    """The repeats of one side that marks points inside its run: the whole run, and between marks."""

    run: Timing = field(default_factory=Timing)
    between: Timing = field(default_factory=Timing)
    """From the first mark to the last (e.g. the epochs after the first, without the run's start and end)."""


def interleaved_marked(sides: dict[str, Callable[[Callable[[], None]], object]], repeats: int, warmup: int = 1,
                       device: str = "cpu") -> dict[str, Marked]:
    """`interleaved` for sides that take a ``mark`` callable and call it at points of their run.

    Each side is timed as a whole and from its first mark to its last, so a per-epoch figure can
    leave out what a run does once (building the model, an evaluation before the first step, the
    test evaluation at the end). A mark synchronizes CUDA first.
    """
    out = {name: Marked() for name in sides}
    for r in range(warmup + repeats):
        for name in turn(list(sides), r):
            marks: list[tuple[float, float]] = []

            def mark(marks: list[tuple[float, float]] = marks) -> None:
                _sync(device)
                marks.append((time.perf_counter(), time.process_time()))

            times = time_once(lambda name=name, mark=mark: sides[name](mark), device)
            if r < warmup:
                continue
            if len(marks) < 2:
                raise ValueError(f"side {name!r} marked {len(marks)} point(s); the span between marks needs 2")
            out[name].run.add(*times)
            out[name].between.add(marks[-1][0] - marks[0][0], marks[-1][1] - marks[0][1])
    return out
