"""The health panel, standalone in a tiny app, fed with Diagnostics events of a real short run."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.content import Content
from textual.widgets import DataTable, Static

from engine.events import Diagnostics, to_dict
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.training.loop import train
from tui_lab.widgets.health_panel import HealthPanel


@pytest.fixture(scope="module")
def digits_events() -> list[Diagnostics]:
    spec = RunSpec(recipe=Recipe(data=DataSpec(name="digits", preprocess="standardize"),
                                 model=ModelSpec(hidden=[32, 32], activation="tanh"),
                                 train=TrainSpec(optimizer="adam", lr=1e-3, steps=60, eval_every=10)),
                   variant="tiny")
    events: list = []
    train(spec, events.append)
    return [e for e in events if isinstance(e, Diagnostics)]


class PanelApp(App):
    def __init__(self, activation: str = "tanh") -> None:
        super().__init__()
        self.activation = activation

    def compose(self) -> ComposeResult:
        yield HealthPanel(activation=self.activation, id="health")


def _text(widget: Static) -> str:
    return str(widget.render())


async def test_empty_panel_says_what_will_come():
    async with PanelApp().run_test(size=(120, 40)) as pilot:
        panel = pilot.app.query_one(HealthPanel)
        assert "first diagnostics" in _text(panel.query_one("#health-summary", Static))
        assert panel.query_one(DataTable).row_count == 0


async def test_rows_band_histograms_and_weight_images(digits_events):
    async with PanelApp().run_test(size=(160, 60)) as pilot:
        panel = pilot.app.query_one(HealthPanel)
        for event in digits_events:
            panel.add_diagnostics(event)
        await pilot.pause()
        table = panel.query_one(DataTable)
        assert table.row_count == 3  # block1, block2, head
        assert [str(k.value) for k in table.rows] == ["block1", "block2", "head"]
        ratio_cell = str(table.get_cell("block1", "ratio"))
        assert ratio_cell.split()[-1] in ("ok", "low", "high")
        gauge = str(table.get_cell("block1", "gauge"))
        assert "░" in gauge or "█" in gauge
        assert len(str(table.get_cell("block1", "act_hist"))) == 24
        assert len(str(table.get_cell("block1", "grad_hist"))) == 24
        detail = _text(panel.query_one("#health-detail", Static))
        assert "block1: histograms over time" in detail
        assert f"{len(digits_events)} measurements" in detail
        weights = _text(panel.query_one("#health-weights", Static))
        assert "first-layer weights (block1, one tile per unit" in weights
        lines = weights.splitlines()[1:]
        assert len(lines[0].split(" ")[0]) == 8  # 8×8 digit tiles side by side
        assert f"step {digits_events[-1].step}" in _text(panel.query_one("#health-summary", Static))


async def test_selecting_a_layer_shows_its_history(digits_events):
    async with PanelApp().run_test(size=(140, 60)) as pilot:
        panel = pilot.app.query_one(HealthPanel)
        for event in digits_events:
            panel.add_diagnostics(to_dict(event))  # the dict form works too
        table = panel.query_one(DataTable)
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert panel.selected == "block2"
        assert "block2: histograms over time" in _text(panel.query_one("#health-detail", Static))
        panel.add_diagnostics(digits_events[-1])  # a new event keeps the selection
        await pilot.pause()
        assert panel.selected == "block2"
        panel.reset(activation="relu")
        await pilot.pause()
        assert table.row_count == 0 and panel.activation == "relu"


def test_fit_columns_narrows_then_drops_the_graphics_and_never_the_numbers():
    from tui_lab.widgets.health_panel import NARROW_GAUGE, NARROW_HIST, fit_columns, graphic, merge_bins

    row = {"layer": Content("block1"), "ratio": Content("1.7e-03 ok"), "gauge": (1.7e-3, "$success"),
           "act_mean": Content("0.566"), "act_std": Content("0.854"), "dead": Content("0.0%"),
           "saturated": Content("0.0%"), "grad_norm": Content("0.511"),
           "act_hist": [1.0] * 24, "grad_hist": [2.0] * 24}
    full = fit_columns([row], 0)
    assert full["act_hist"] == full["grad_hist"] == 24 and full["gauge"] == 18
    assert fit_columns([row], sum(full.values()) + 2 * len(full)) == full
    narrow = fit_columns([row], sum(full.values()) + 2 * len(full) - 1)
    assert narrow["act_hist"] == narrow["grad_hist"] == NARROW_HIST
    assert len(str(graphic("act_hist", row["act_hist"], NARROW_HIST))) == NARROW_HIST
    assert merge_bins([1, 2, 3, 4], 2) == [3, 7]
    at_100 = fit_columns([row], 96)
    assert "act_hist" not in at_100 and at_100["gauge"] == 18
    at_80 = fit_columns([row], 76)
    assert "gauge" not in at_80 and set(at_80) == {"layer", "ratio", "act_mean", "act_std", "dead",
                                                   "saturated", "grad_norm"}
    assert fit_columns([row], 20) == at_80  # numbers stay whole (the table scrolls instead)
    assert len(NARROW_GAUGE[0]) <= NARROW_GAUGE[1]


def _rows(detail: str) -> dict[int, str]:
    """The history's rows by step: what stands right of the bar."""
    out = {}
    for line in detail.splitlines()[2:]:
        step, _, right = line.partition("│")
        out[int(step.split()[0])] = right.strip()
    return out


async def test_each_history_row_has_its_step_and_a_row_without_gradients_says_so(digits_events):
    """The measurement at step 0 has no gradients (nothing ran backward yet): its gradient row was
    left out, so the gradient rows stood one row up, against the wrong activations, and the last
    row was blank. Each row now shows its step, its own histograms, or says there are none."""
    from tui_lab.data.health import heat_rows

    events = [to_dict(e) for e in digits_events]
    assert "grad_hist" not in events[0]["layers"]["block1"] and "grad_hist" in events[-1]["layers"]["block1"]
    async with PanelApp().run_test(size=(140, 60)) as pilot:
        panel = pilot.app.query_one(HealthPanel)
        for event in events:
            panel.add_diagnostics(event)
        await pilot.pause()
        detail = _text(panel.query_one("#health-detail", Static))
        rows = _rows(detail)
        assert list(rows) == [e["step"] for e in events], detail
        assert rows[0] == "no gradients yet: before the first update"
        for e in events[1:]:
            assert rows[e["step"]] == heat_rows([e["layers"]["block1"]["grad_hist"]])[0], detail

        # a last measurement without gradients says so too, and the rows above keep their own
        panel.reset()
        last = {**events[-1], "layers": {k: {s: v for s, v in stats.items() if s != "grad_hist"}
                                         for k, stats in events[-1]["layers"].items()}}
        for event in [*events[:-1], last]:
            panel.add_diagnostics(event)
        await pilot.pause()
        rows = _rows(_text(panel.query_one("#health-detail", Static)))
        assert rows[last["step"]] == "no gradients measured at this step"
        middle = events[1]
        assert rows[middle["step"]] == heat_rows([middle["layers"]["block1"]["grad_hist"]])[0]


async def test_a_long_history_is_thinned_and_says_how_many_rows_it_shows(digits_events):
    event = to_dict(digits_events[-1])
    async with PanelApp().run_test(size=(140, 60)) as pilot:
        panel = pilot.app.query_one(HealthPanel)
        for step in range(0, 300, 10):
            panel.add_diagnostics({**event, "step": step})
        await pilot.pause()
        detail = _text(panel.query_one("#health-detail", Static))
        assert "block1: histograms over time (12 of 30 measurements, steps 0–290)" in detail
        assert list(_rows(detail))[0] == 0 and list(_rows(detail))[-1] == 290 and len(_rows(detail)) == 12


@pytest.mark.parametrize("width", [160, 88])
async def test_the_gauge_header_is_the_gauges_own_picture(digits_events, width):
    """The header read "1e-6 ··░░·· 1" (13 cells) over an 18-cell gauge whose band is 4 cells wide
    from the 8th: it is now the gauge's picture, cell for cell, with its ends labelled (at the
    full width and at the narrow one)."""
    from tests.app.conftest import screen_text
    from tui_lab.data.health import ratio_gauge
    from tui_lab.widgets.health_panel import GAUGE_WIDTH, NARROW_GAUGE, column_label

    async with PanelApp().run_test(size=(width, 40)) as pilot:
        panel = pilot.app.query_one(HealthPanel)
        for event in digits_events:
            panel.add_diagnostics(event)
        await pilot.pause()
        cells = panel.widths["gauge"]
        assert cells == (GAUGE_WIDTH if width == 160 else NARROW_GAUGE[1])
        label = column_label("gauge", cells)
        assert len(label) == cells and label.startswith("1e-6") and label.endswith(" 1")
        background = ratio_gauge(None, cells)
        assert all(h == g for h, g in zip(label, background, strict=True) if h in "·░")
        assert [i for i, g in enumerate(background) if g == "░"] == [i for i, h in enumerate(label) if h == "░"]
        lines = screen_text(pilot.app).splitlines()
        header = next(line for line in lines if "update/weight" in line and "layer" in line)
        at = header.index(label)
        for name in ("block1", "block2", "head"):
            row = next(line for line in lines if line.strip().startswith(name + " "))
            gauge = row[at:at + cells]
            assert gauge.replace("█", "") == "".join(c for c, g in zip(background, gauge, strict=True) if g != "█"), (header, row)
