"""The command line's text charts (`dllab lr-find`, `dllab search`): round tick values."""

from __future__ import annotations

import re

from tui_lab.widgets.text_chart import chart


def test_the_y_axis_reads_round_evenly_spaced_values():
    """The lr-find chart's loss axis read 4.03 / 3.72 / 3.42 (plotext's own ticks)."""
    xs = [10 ** (-5 + 0.1 * i) for i in range(50)]
    ys = [2.2 + 1.85 * (i / 49) ** 3 for i in range(50)]  # 2.2 .. 4.05
    text = chart([("loss", xs, ys)], log_x=True, width=72, height=18, xlabel="learning rate (log)")
    labels = [m.group(1) for line in text.splitlines() if (m := re.match(r"\s*(\d+(?:\.\d+)?)┤", line))]
    assert len(labels) >= 3, text
    values = [float(x) for x in labels]
    steps = {round(a - b, 9) for a, b in zip(values, values[1:], strict=False)}
    assert len(steps) == 1, labels  # evenly spaced
    assert all(round(v * 4, 9).is_integer() for v in values), labels  # at round values (0.25, 0.5, 1, …)
