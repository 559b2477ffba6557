"""The recurrent kind (``model.kind = "gru"``): an input read as a sequence, the last hidden state to
a linear head; its parameters are what the summary and the memory estimate count; it trains on
mnist1d with the lab's health signals."""

from __future__ import annotations

import pytest
import torch

from engine.diagnostics.architecture import architecture_of
from engine.models import build_model
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.recipe.footprint import layers, sequence_shape
from engine.training.loop import train


@pytest.mark.parametrize(("shape", "steps", "values"), [((40,), 40, 1), ((3, 20), 20, 3), ((1, 8, 8), 8, 8)])
def test_an_input_is_read_as_a_sequence(shape, steps, values) -> None:
    assert sequence_shape(shape) == (steps, values)
    model = build_model(ModelSpec(kind="gru", hidden=[16, 16]), shape, 10)
    assert model(torch.zeros(5, *shape)).shape == (5, 10)


@pytest.mark.parametrize("hidden", [[16], [32, 32]])
def test_its_parameters_are_counted_alike_everywhere(hidden) -> None:
    spec = ModelSpec(kind="gru", hidden=hidden)
    model = build_model(spec, (40,), 10)
    n = sum(p.numel() for p in model.parameters())
    assert n == sum(p for p, _ in layers(spec, (40,), 10))
    run = RunSpec(recipe=Recipe(data=DataSpec(name="mnist1d"), model=spec), variant="gru")
    assert architecture_of(run).params == n


def test_a_gru_trains_on_mnist1d_with_its_health_signals() -> None:
    spec = RunSpec(recipe=Recipe(data=DataSpec(name="mnist1d", n_samples=600),
                                 model=ModelSpec(kind="gru", hidden=[32]),
                                 train=TrainSpec(steps=150, optimizer="adam", lr=0.01, eval_every=50)),
                   variant="gru")
    events: list = []
    finished = train(spec, events.append)
    assert finished.status == "done"
    evals = [e for e in events if type(e).__name__ == "EvalMetrics"]
    assert evals[-1].metrics["train_loss"] < evals[0].metrics["train_loss"] - 0.3
    diags = [e for e in events if type(e).__name__ == "Diagnostics"]
    assert set(diags[-1].layers) >= {"block1", "head"} and "grad_norm" in diags[-1].layers["block1"]
