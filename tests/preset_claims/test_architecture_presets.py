"""Architecture, regularization and loss presets: their claims hold in the quick form for seeds 0, 1, 2."""

from __future__ import annotations

import pytest

from engine.catalogue.check import check_preset

SEEDS = [0, 1, 2]
PRESETS = [
    "capacity",
    "activations",
    "dead-relu",
    "normalization",
    "bn-batch-size",
    "skip-connections",
    "cnn-vs-mlp",
    "weight-decay",
    "adamw",
    "loss-functions",
    "loss-functions-regression",
    "early-stopping",
    "overfitting-diagnosis",
]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_claims_hold_for_three_seeds(preset):
    result = check_preset(preset, quick=True, seeds=SEEDS)
    assert result.holds, result.report()
