"""Comparisons timed as the lab runs them: through ``engine.runs.runner.Runner`` with its own choice of
workers, threads and batched groups for this machine, from the runs' start and end times in the
store (the training, without worker start-up, which both sides pay alike)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.app_overhead import training_span
from bench.timing import Timing, turn
from engine.recipe.config import RunSpec


def runner_span(specs: list[RunSpec], device: str, store_dir: Path) -> float:
    """Train `specs` with the runner's defaults into a fresh store; seconds from the first run's
    start to the last run's end."""
    from engine.events import RunFinished
    from engine.runs.runner import Runner

    with Runner(specs, device=device, store=store_dir) as runner:
        finished = [e for e in runner.events() if isinstance(e, RunFinished)]
    bad = [f"{f.status}: {f.reason}" for f in finished if f.status != "done"]
    if len(finished) != len(specs) or bad:
        raise RuntimeError(f"the runner did not finish every run: {bad or len(finished)}")
    return training_span(store_dir)


def interleaved_spans(sides: dict[str, list[RunSpec]], device: str, repeats: int) -> dict[str, Timing]:
    """Each side's training span through the runner, `repeats` times in turns (no warm-up round:
    every repeat starts fresh worker processes anyway)."""
    out = {name: Timing() for name in sides}
    with tempfile.TemporaryDirectory(prefix="dllab-bench-") as tmp:
        for r in range(repeats):
            for name in turn(list(sides), r):
                store_dir = Path(tmp) / f"{name}{r}"
                store_dir.mkdir()
                span = runner_span(sides[name], device, store_dir)
                out[name].add(span, span)
    return out
