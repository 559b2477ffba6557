"""Health monitoring in every run: gradient histograms, first-layer weight images, their schedule,
and the text renderings the health panel draws."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from engine.diagnostics import health
from engine.diagnostics.health import (
    GRAD_LOG_RANGE,
    HIST_BINS,
    IMAGE_EVERY,
    add_weight_images,
    first_layer_images,
    grad_histogram,
)
from engine.events import Diagnostics
from engine.models import build_model
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.training.loop import train
from tui_lab.data import health as view


def test_grad_histogram_bins_log10_magnitudes():
    g = torch.tensor([1e-9, 0.0, -1e-4, 1e-4, 0.5, -2.0])
    counts = grad_histogram(g)
    assert len(counts) == HIST_BINS and sum(counts) == 6
    lo, hi = GRAD_LOG_RANGE
    width = (hi - lo) / HIST_BINS
    assert counts[0] == 2  # 1e-9 and the exact zero are clamped into the first bin
    assert counts[int((-4 - lo) / width)] == 2  # ±1e-4: the sign does not matter
    assert counts[-1] == 2  # log10(0.5) = -0.3 is in the last bin, 2.0 is clamped into it


def test_first_layer_images_for_images_signals_and_convs():
    digits = build_model(ModelSpec(hidden=[20]), (8, 8), 10)
    img = first_layer_images(digits)
    assert img["kind"] == "units" and img["layer"] == "block1"
    assert len(img["tiles"]) == 16 and len(img["tiles"][0]) == 8 and len(img["tiles"][0][0]) == 8
    w = digits.blocks[0].linear.weight.detach()
    assert img["scale"] == pytest.approx(float(w[:16].abs().max()))  # the shown tiles fill [-1, 1]
    assert img["tiles"][3][2][5] == pytest.approx(float(w[3].reshape(8, 8)[2, 5]) / img["scale"], abs=1e-3)
    assert max(abs(v) for t in img["tiles"] for row in t for v in row) == pytest.approx(1.0)

    signal = build_model(ModelSpec(hidden=[50]), (40,), 10)
    mat = first_layer_images(signal)
    assert mat["kind"] == "matrix" and len(mat["tiles"]) == 1
    assert len(mat["tiles"][0]) == 32 and len(mat["tiles"][0][0]) == 40  # at most 2 × 16 units as rows

    conv = build_model(ModelSpec(kind="cnn", channels=[6], kernel_size=3, hidden=[8]), (8, 8), 10)
    tiles = first_layer_images(conv)
    assert tiles["kind"] == "units" and len(tiles["tiles"]) == 6 and len(tiles["tiles"][0]) == 3

    linear = build_model(ModelSpec(kind="linear"), (8, 8), 10)
    assert first_layer_images(linear)["layer"] == "head"  # logistic regression: the class templates


def test_weight_images_are_sent_sparingly():
    model = build_model(ModelSpec(hidden=[4]), (8, 8), 10)
    due = []
    for step in range(0, 101, 5):
        layers: dict = {}
        add_weight_images(layers, model, step, every=50, total=100)
        if layers:
            due.append(step)
    assert due == [0, 50, 100]


def _digits_run(**train_kw):
    spec = RunSpec(recipe=Recipe(data=DataSpec(name="digits", preprocess="standardize"),
                                 model=ModelSpec(hidden=[16, 16], activation="tanh"),
                                 train=TrainSpec(optimizer="adam", lr=1e-3, **train_kw)), variant="v")
    events: list = []
    finished = train(spec, events.append)
    return finished, [e for e in events if isinstance(e, Diagnostics)]


def test_every_run_reports_ratio_histograms_and_weight_images():
    finished, diags = _digits_run(steps=120, eval_every=10)
    steps = [d.step for d in diags]
    assert steps[0] == 0 and steps[-1] == 120
    later = diags[1]
    for name, n_weights in (("block1", 16 * 64), ("block2", 16 * 16), ("head", 10 * 16)):
        stats = later.layers[name]
        assert 1e-5 < stats["update_ratio"] < 1e-1
        assert len(stats["grad_hist"]) == HIST_BINS and sum(stats["grad_hist"]) == n_weights
    assert len(later.layers["block1"]["act_hist"]) == HIST_BINS
    with_images = [d.step for d in diags if "weight_images" in d.layers.get("block1", {})]
    assert with_images[0] == 0 and 120 in with_images
    assert len(with_images) <= 2 + len(diags) // IMAGE_EVERY + 1
    assert "update_ratio.block1" in finished.summary


def test_the_text_views():
    assert view.sparkline([0, 1, 2, 4]) == " ▃▅█"  # height round(c / max · 7)
    assert view.sparkline([0, 0]) == "▁▁"
    rows = view.heat_rows([[0, 1, 2], [2, 2, 0]] * 10, max_rows=4)
    assert len(rows) == 4 and rows[0] == "·▒█" and rows[-1] == "██·"  # empty bins are dots
    assert view.ratio_state(1e-3) == "ok" and view.ratio_state(1e-5) == "low" and view.ratio_state(0.05) == "high"
    assert view.ratio_state(None) == "" and view.ratio_state(math.nan) == ""
    gauge = view.ratio_gauge(1e-3)
    assert len(gauge) == 18 and gauge.count("█") == 1 and "░" in gauge
    assert gauge.index("█") == int((-3 + 6) / 6 * 18)
    assert view.ratio_gauge(None).count("█") == 0
    assert view.weight_image([[-1.0, 0.0, 1.0]]) == [" +@"]
    tiles = view.weight_tiles({"kind": "units", "tiles": [[[1.0, -1.0], [0.0, 0.0]]] * 3}, per_row=2)
    assert tiles == ["@  @ ", "++ ++", "", "@ ", "++"]
    wide = view.weight_tiles({"kind": "matrix", "tiles": [[[0.5] * 120, [-0.5] * 120]]}, max_width=40)
    assert len(wide) == 2 and len(wide[0]) == 40


def test_view_ranges_match_the_engine():
    assert view.GRAD_LOG_RANGE == health.GRAD_LOG_RANGE
    for act in ("relu", "tanh", "sigmoid", "gelu"):
        assert view.act_hist_range(act) == health.act_hist_range(act)


def test_update_ratio_is_about_lr_for_sgd_on_a_linear_layer():
    """‖Δw‖/‖w‖ of one SGD step is lr·‖g‖/‖w‖: a reference for the ratio the loop reports."""
    torch.manual_seed(0)
    layer = nn.Linear(5, 3)
    before = {"head": layer.weight.detach().clone()}

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList()
            self.head = layer

        def layer_names(self):
            return ["head"]

    m = M()
    x = torch.randn(7, 5)
    layer(x).pow(2).sum().backward()
    g = layer.weight.grad.clone()
    with torch.no_grad():
        layer.weight -= 0.01 * g
    ratios = health.update_ratios(before, m)
    assert ratios["head"] == pytest.approx(float(0.01 * g.norm() / before["head"].norm()), rel=1e-5)
