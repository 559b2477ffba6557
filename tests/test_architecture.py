"""A model's summary: its parameter count is ``sum(p.numel())`` for every model kind and option,
its layers' parameters add up to it, and `dllab show` prints it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.diagnostics.architecture import architecture_of, describe_model
from engine.models import build_model
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec

MODELS = {
    "mlp": ModelSpec(hidden=[32, 16]),
    "mlp, batch norm, residual, dropout": ModelSpec(hidden=[32, 32], norm="batch", residual=True, dropout=0.1),
    "mlp, layer norm, input dropout": ModelSpec(hidden=[24], norm="layer", input_dropout=0.1),
    "mlp, maxout": ModelSpec(hidden=[16], activation="maxout", maxout_pieces=3),
    "mlp, dropconnect": ModelSpec(hidden=[16], dropconnect=0.3),
    "linear": ModelSpec(kind="linear"),
    "cnn": ModelSpec(kind="cnn", channels=[8, 4], hidden=[16]),
    "cnn, batch norm": ModelSpec(kind="cnn", channels=[6], hidden=[], norm="batch"),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize(("data", "shape"), [("mnist1d", (40,)), ("digits", (1, 8, 8)), ("spiral", (2,))])
def test_the_summarys_parameters_are_the_models(name: str, data: str, shape: tuple[int, ...]) -> None:
    spec = RunSpec(recipe=Recipe(data=DataSpec(name=data), model=MODELS[name]), variant=name)
    arch = architecture_of(spec)
    n_out = 3 if data == "spiral" else 10  # spiral: three arms by default
    model = build_model(MODELS[name], shape, n_out)
    assert arch.input_shape == shape and arch.n_outputs == n_out
    assert arch.params == sum(p.numel() for p in model.parameters()) == sum(r.params for r in arch.layers)
    assert arch.layers[-1].name == "head" and arch.layers[-1].output_shape == (n_out,)
    assert arch.activation_bytes > 0 and arch.param_bytes == 4 * arch.params


def test_any_module_is_summarized_and_left_as_it_was() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    model.train()
    arch = describe_model(model, (5,))
    assert [(r.name, r.kind, r.output_shape, r.params) for r in arch.layers] == [
        ("0", "Linear", (7,), 42), ("1", "Tanh", (7,), 0), ("2", "Linear", (3,), 24)]
    assert model.training


def test_dllab_show_prints_the_runs_model(tmp_path: Path, monkeypatch, capsys) -> None:
    from engine.runs.inline import run_inline
    from tui_lab.cli import main

    spec = RunSpec(recipe=Recipe(data=DataSpec(name="spiral", n_samples=120), model=MODELS["mlp"]), variant="A")
    spec = spec.model_copy(update={"recipe": spec.recipe.model_copy(update={
        "train": spec.recipe.train.model_copy(update={"steps": 10})})})
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    (done,) = run_inline([spec], device="cpu", store=tmp_path)
    capsys.readouterr()
    assert main(["show", done.run_id]) == 0
    out = capsys.readouterr().out
    n = 2 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3  # two hidden layers, three classes
    assert f"model: {n:,} parameters" in out and "blocks.0.linear" in out and "head" in out
