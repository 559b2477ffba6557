"""The benchmark's timing helpers: paired ratios, and spans between the marks a run makes."""

from __future__ import annotations

import math

import pytest

from bench.baselines import dataloader_loop, slicing_loop
from bench.cases import engine_side
from bench.timing import interleaved_marked, paired_ratio
from engine.data import load_data
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec


def test_paired_ratio_is_the_median_of_round_ratios() -> None:
    # A slow stretch in round 2 slows both sides: its round ratio is still 2.
    assert paired_ratio([2.0, 8.0, 3.0], [1.0, 4.0, 1.0]) == 2.0
    assert paired_ratio([1.0, 2.0], [1.0, 1.0]) == 1.5
    assert math.isnan(paired_ratio([], []))
    with pytest.raises(ValueError):
        paired_ratio([1.0], [1.0, 2.0])


def test_interleaved_marked_times_the_run_and_the_span_between_its_marks() -> None:
    calls: list[str] = []

    def side(name: str, marks: int):
        def run(mark) -> None:
            calls.append(name)
            for _ in range(marks):
                sum(range(20_000))
                mark()
        return run

    out = interleaved_marked({"a": side("a", 3), "b": side("b", 2)}, repeats=3, warmup=1)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # warm-up round, then turns
    for marked in out.values():
        assert len(marked.run.wall) == len(marked.between.wall) == 3
        assert all(0 < b <= r for b, r in zip(marked.between.wall, marked.run.wall, strict=True))
    with pytest.raises(ValueError, match="marked 1 point"):
        interleaved_marked({"once": side("once", 1)}, repeats=1, warmup=0)


def test_every_loop_of_the_bench_marks_the_end_of_each_epoch() -> None:
    data_spec = DataSpec(name="spiral", n_samples=300)
    model = ModelSpec(hidden=[16])
    data = load_data(data_spec, seed=0, device="cpu")
    spec = RunSpec(recipe=Recipe(data=data_spec, model=model,
                                 train=TrainSpec(optimizer="sgd", lr=0.05, batch_size=50, epochs=3, seed=0)),
                   variant="bench")
    counts = {}
    for name, run in {
        "engine": engine_side(spec, data, "cpu"),
        "dataloader": lambda mark: dataloader_loop(data, model, epochs=3, batch_size=50, lr=0.05, on_epoch=mark),
        "slicing": lambda mark: slicing_loop(data, model, epochs=3, batch_size=50, lr=0.05, on_epoch=mark),
    }.items():
        marks: list[int] = []
        run(lambda marks=marks: marks.append(1))
        counts[name] = len(marks)
    assert counts == {"engine": 3, "dataloader": 3, "slicing": 3}
