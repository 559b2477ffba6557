"""Zero-gradient units (health.zero_grad_shares) against hand-computed references."""

from __future__ import annotations

import pytest
import torch

from engine.diagnostics.health import layer_health, model_summary
from engine.models import build_model
from engine.recipe.config import ModelSpec


def _net(activation: str, **fields):
    torch.manual_seed(0)
    return build_model(ModelSpec(hidden=[6, 5], activation=activation, **fields), (4,), 3)


def _kill_units(model, block: int, units: list[int]) -> None:
    """Make units never positive: zero incoming weights, a negative bias."""
    with torch.no_grad():
        lin = model.blocks[block].linear
        lin.weight[units] = 0.0
        lin.bias[units] = -1.0


def test_relu_zero_grad_equals_dead() -> None:
    model = _net("relu")
    _kill_units(model, 0, [1, 4])
    _kill_units(model, 1, [0])
    layers = layer_health(model, torch.randn(64, 4), "relu")
    assert layers["block1"]["dead"] == pytest.approx(2 / 6)
    assert layers["block1"]["zero_grad"] == pytest.approx(2 / 6)
    assert layers["block2"]["zero_grad"] == pytest.approx(layers["block2"]["dead"])
    assert layers["block2"]["zero_grad"] >= 1 / 5


def test_leaky_units_never_positive_still_pass_gradient() -> None:
    model = _net("leaky_relu", leaky_slope=0.01)
    _kill_units(model, 0, [1, 4])
    layers = layer_health(model, torch.randn(64, 4), "leaky_relu")
    assert layers["block1"]["dead"] == pytest.approx(2 / 6)  # never positive
    assert layers["block1"]["zero_grad"] == 0.0  # but the slope carries gradient
    summary = model_summary(model, layers)
    assert summary["zero_grad_share"] == 0.0 and summary["zero_grad.block1"] == 0.0
    assert summary["dead.block1"] == pytest.approx(2 / 6)


def test_maxout_counts_pieces_that_never_win() -> None:
    model = _net("maxout", maxout_pieces=2)
    lin = model.blocks[0].linear  # 6 units × 2 pieces = 12 pre-activations, pieces adjacent
    with torch.no_grad():
        lin.weight[[0, 2]] = 0.0
        lin.bias[[0, 2]] = -100.0  # the first piece of units 0 and 1 never wins
    x = torch.randn(64, 4)
    with torch.no_grad():
        z = lin(x).reshape(64, 6, 2)
    winners = torch.zeros(6, 2, dtype=torch.bool)
    idx = z.argmax(2)  # (64, 6): the winning piece of each unit per sample
    for piece in range(2):
        winners[:, piece] = (idx == piece).any(0)
    expected = 1 - winners.float().mean().item()
    layers = layer_health(model, x, "maxout")
    assert layers["block1"]["zero_grad"] == pytest.approx(expected)
    assert layers["block1"]["zero_grad"] >= 2 / 12


def test_sigmoid_and_tanh_have_no_zero_gradient_units() -> None:
    for act in ("sigmoid", "tanh"):
        layers = layer_health(_net(act), torch.randn(32, 4), act)
        assert all(layers[b]["zero_grad"] == 0.0 for b in ("block1", "block2"))


def test_conv_channels_count_as_units() -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(kind="cnn", channels=[4, 4], hidden=[]), (16,), 3)
    with torch.no_grad():
        model.blocks[0].linear.weight[2] = 0.0
        model.blocks[0].linear.bias[2] = -1.0
    layers = layer_health(model, torch.randn(8, 16), "relu")
    assert layers["block1"]["zero_grad"] == pytest.approx(0.25)
