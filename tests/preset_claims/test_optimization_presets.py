"""The optimization and workflow presets' claims hold in their quick form for seeds 0, 1 and 2."""

from __future__ import annotations

import pytest

from engine.catalogue.check import check_preset

SEEDS = [0, 1, 2]
PRESETS = [
    "learning-rate",
    "lr-schedules",
    "batch-size",
    "gd-variants",
    "grad-clipping",
    "second-order",
    "pretraining",
    "sanity-checks",
    "monitoring",
    "hparam-search",
]
"""init and optimizers (also finished here) are checked by test_starter_presets.py."""


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_claims_hold_for_three_seeds(preset):
    result = check_preset(preset, quick=True, seeds=SEEDS)
    assert result.holds, result.report()
