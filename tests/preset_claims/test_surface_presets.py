"""The 2-D optimizer lab, momentum, critical-points and gradient-check presets: their claims hold in the
quick form for seeds 0, 1 and 2."""

from __future__ import annotations

import pytest

from engine.catalogue.check import check_preset

SEEDS = [0, 1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["optimizer-surfaces", "momentum", "critical-points", "gradient-check"])
def test_claims_hold_for_three_seeds(preset):
    result = check_preset(preset, quick=True, seeds=SEEDS)
    assert result.holds, result.report()
