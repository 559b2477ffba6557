"""Gradient checking: against torch.autograd.gradcheck, the notes' thresholds, a broken layer, the command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from engine.checks.gradcheck import (
    HandWrittenLinear,
    _LinearFunction,
    check_gradients,
    check_model,
    check_spec,
    numerical_gradient,
    relative_error,
    replace_first_linear,
    verdict,
)
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec

F64 = torch.float64


def test_relative_error_and_thresholds():
    a = torch.tensor([1.0, 0.0, 2.0, -1e-3], dtype=F64)
    n = torch.tensor([1.0, 0.0, 1.0, 1e-3], dtype=F64)
    torch.testing.assert_close(relative_error(a, n), torch.tensor([0.0, 0.0, 0.5, 2.0], dtype=F64))
    assert verdict(1e-9, kinks=False)[0] == "pass"
    assert verdict(1e-6, kinks=True)[0] == "pass" and verdict(1e-6, kinks=False)[0] == "warn"
    assert verdict(1e-3, kinks=True)[0] == "warn"
    assert verdict(0.5, kinks=True)[0] == "fail" and verdict(float("nan"), kinks=False)[0] == "fail"


def _linear_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(5, 3, generator=g, dtype=F64, requires_grad=True),
            torch.randn(4, 3, generator=g, dtype=F64, requires_grad=True),
            torch.randn(4, generator=g, dtype=F64, requires_grad=True))


def test_the_hand_written_layer_against_torch_autograd_gradcheck():
    x, w, b = _linear_inputs()
    assert torch.autograd.gradcheck(lambda x, w, b: _LinearFunction.apply(x, w, b, False), (x, w, b))
    assert not torch.autograd.gradcheck(lambda x, w, b: _LinearFunction.apply(x, w, b, True), (x, w, b),
                                        raise_exception=False)


@pytest.mark.parametrize("broken", [False, True])
def test_our_check_agrees_with_torch_autograd_gradcheck(broken):
    x, w, b = _linear_inputs(1)
    target = torch.randn(5, 4, generator=torch.Generator().manual_seed(2), dtype=F64)

    def loss_of():
        return ((torch.tanh(_LinearFunction.apply(x, w, b, broken)) - target) ** 2).mean()

    result = check_gradients(loss_of, [("x", x), ("weight", w), ("bias", b)], max_elements=None)
    by_name = {t.name: t for t in result.tensors}
    torch_says = torch.autograd.gradcheck(lambda x, w, b: _LinearFunction.apply(x, w, b, broken), (x, w, b),
                                          raise_exception=False)
    assert result.passed == torch_says
    assert by_name["x"].status == "pass" and by_name["weight"].status == "pass"
    assert by_name["bias"].status == ("fail" if broken else "pass")
    if broken:  # mean instead of sum over a batch of 5: the analytic bias gradient is 1/5 of the true one
        assert by_name["bias"].rel_error == pytest.approx(0.8, abs=1e-6)


def test_numerical_gradient_of_a_smooth_function_and_parameters_restored():
    w = torch.linspace(-1, 1, 7, dtype=F64)
    before = w.clone()

    def loss_of():
        return (torch.sin(w) * w).sum()

    n = numerical_gradient(loss_of, w, torch.arange(7), 1e-5)
    torch.testing.assert_close(n, torch.sin(before) + before * torch.cos(before), rtol=1e-9, atol=1e-10)
    assert torch.equal(w, before)


def _mlp(activation: str = "tanh", dropout: float = 0.0) -> nn.Module:
    from engine.models import build_model

    torch.manual_seed(0)
    return build_model(ModelSpec(hidden=[8, 8], activation=activation, dropout=dropout), (3,), 4)


def test_check_model_passes_a_correct_network_and_turns_dropout_off():
    model = _mlp(dropout=0.5)
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    y = torch.arange(10) % 4
    state = {k: v.clone() for k, v in model.state_dict().items()}
    result = check_model(model, nn.functional.cross_entropy, x, y, max_elements=None)
    assert result.passed and result.max_rel < 1e-7 and result.dtype == "float64"
    assert any("dropout" in note for note in result.notes) and not model.training
    for k, v in model.state_dict().items():  # every perturbed entry was put back exactly
        assert torch.equal(v, state[k].to(F64))


def test_replacing_the_first_linear_layer_keeps_names_and_outputs():
    model = _mlp().double()
    x = torch.randn(6, 3, dtype=F64)
    before = model(x)
    name = replace_first_linear(model, broken=True)
    assert name == "blocks.0.linear" and isinstance(model.get_submodule(name), HandWrittenLinear)
    assert "blocks.0.linear.bias" in dict(model.named_parameters())
    torch.testing.assert_close(model(x), before)


def _spec(**train) -> RunSpec:
    return RunSpec(recipe=Recipe(data=DataSpec(name="spiral", n_samples=120),
                                 model=ModelSpec(hidden=[8, 8], activation="tanh"),
                                 train=TrainSpec(gradcheck=True, batch_size=8, **train)), variant="v")


def test_a_spec_with_a_broken_layer_fails_on_that_bias_only():
    result, replaced = check_spec(_spec(gradcheck_layer="broken"))
    assert replaced == "blocks.0.linear"
    failing = [t.name for t in result.tensors if t.status == "fail"]
    assert failing == ["blocks.0.linear.bias"]
    assert result.metrics()["rel_error.blocks.0.linear.bias"] == pytest.approx(1 - 1 / 8, abs=1e-6)


def test_float32_is_far_less_precise():
    r64, _ = check_spec(_spec())
    r32, _ = check_spec(_spec(gradcheck_dtype="float32"))
    assert r64.max_rel < 1e-7 < 1e-4 < r32.max_rel and r32.h == 1e-3


def test_gradcheck_runs_go_through_the_training_loop_as_events():
    from engine.events import Diagnostics, EvalMetrics, RunFinished, RunStarted
    from engine.runs.executor import train_one as train

    events: list = []
    fin = train(_spec(gradcheck_layer="custom"), events.append, run_id="g1")
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished) and fin.status == "done"
    assert any(isinstance(e, EvalMetrics) and "max_rel_error" in e.metrics for e in events)
    diag = next(e for e in events if isinstance(e, Diagnostics))
    assert diag.layers["blocks.0.linear.weight"]["status"] == "pass"
    assert fin.final["max_rel_error"] < 1e-7 and fin.final["n_fail"] == 0.0


def test_the_command(capsys):
    from tui_lab.cli import main

    assert main(["gradcheck", "--json", "--max-elements", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in out] == ["hand-written layer, correct backward", "hand-written layer, broken backward"]
    assert out[0]["max_rel"] < 1e-7 and out[1]["max_rel"] > 1e-2
    assert main(["gradcheck", "--max-elements", "10"]) == 0
    text = capsys.readouterr().out
    assert "FAIL" in text and "PASS" in text and "thresholds" in text
