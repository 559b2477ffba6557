"""The surface view on its own: paths from a comparison's events over the function's level sets."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from engine.recipe.config import DataSpec, Recipe, RunSpec, TrainSpec
from tui_lab.data.comparison import Comparison
from tui_lab.data.surface_paths import level_sets, paths_from_comparison
from tui_lab.widgets.surface_plot import SurfaceCanvas, SurfacePlot

from .conftest import screen_text


def _spec(variant: str, surface: str, optimizer: str, lr: float, seed: int) -> RunSpec:
    return RunSpec(recipe=Recipe(
        data=DataSpec(name="surface", surface=surface, start_jitter=0.05),
        train=TrainSpec(optimizer=optimizer, lr=lr, steps=60, seed=seed),
    ), variant=variant, preset="test")


def _comparison(train: bool = True) -> Comparison:
    from engine.runs.executor import train_one as run

    specs = [_spec(f"Bowl · {o}", "quadratic", o, lr, s) for o, lr in (("sgd", 0.035), ("momentum", 0.01)) for s in (0, 1)]
    specs += [_spec("Banana · adam", "rosenbrock", "adam", 0.1, s) for s in (0, 1)]
    c = Comparison("surfaces")
    c.add_specs(specs)
    ids = [f"run{i}" for i in range(len(specs))]
    c.attach(ids)
    if train:
        for spec, run_id in zip(specs, ids, strict=True):
            run(spec, c.add, run_id=run_id)
    return c


class SurfaceApp(App):
    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison

    def compose(self) -> ComposeResult:
        yield SurfacePlot(id="surface")

    def on_mount(self) -> None:
        self.query_one(SurfacePlot).update_view(self.comparison)


def test_paths_and_level_sets_are_plain_data():
    c = _comparison()
    paths = paths_from_comparison(c)
    assert [p.function for p in paths] == ["quadratic"] * 4 + ["rosenbrock"] * 2
    bowl = paths[0]
    assert bowl.label == "Bowl · sgd s0" and bowl.seed == 0 and len(bowl.xs) == 61 and bowl.steps[-1] == 60
    assert bowl.dist is not None and bowl.loss is not None and bowl.status == "done"
    levels = level_sets(("rosenbrock", 50.0), 40, 20)
    assert len(levels) == 9 and sum(len(xs) for xs, _ in levels) > 40


async def test_the_view_draws_one_surface_at_a_time_and_switches():
    c = _comparison()
    app = SurfaceApp(c)
    async with app.run_test(size=(110, 32)) as pilot:
        await pilot.pause(0.2)
        plot = app.query_one(SurfacePlot)
        canvas = app.query_one(SurfaceCanvas)
        table = app.query_one(DataTable)
        assert plot.current == ("quadratic", 50.0)
        assert [p.label for p in canvas.paths] == ["Bowl · sgd s0", "Bowl · momentum s0"]  # first seed only
        assert table.row_count == 2
        text = screen_text(app)
        assert "quadratic: ½·(x² + 50·y²)" in text and "surface 1/2" in text and "●" in text and "×" in text

        plot.focus()
        await pilot.press("e")
        assert plot.every_seed and table.row_count == 4
        await pilot.press("]")
        await pilot.pause(0.1)
        assert plot.current == ("rosenbrock", 50.0) and table.row_count == 2
        assert "rosenbrock" in screen_text(app)
        await pilot.press("[")
        assert plot.current == ("quadratic", 50.0)


async def test_the_view_grows_as_events_arrive_and_survives_an_empty_comparison():
    from engine.runs.executor import train_one as train

    c = _comparison(train=False)
    app = SurfaceApp(c)
    async with app.run_test(size=(90, 26)) as pilot:
        await pilot.pause(0.1)
        plot = app.query_one(SurfacePlot)
        assert all(not p.xs for p in plot.all_paths)  # registered runs, no points yet
        events: list = []
        train(c.specs[0], events.append, run_id="run0")
        for event in events[: len(events) // 2]:
            c.add(event)
        plot.update_view(c)
        half = len(plot.all_paths[0].xs)
        for event in events[len(events) // 2:]:
            c.add(event)
        plot.update_view(c)
        assert 0 < half < len(plot.all_paths[0].xs) == 61
        await pilot.pause(0.1)

    empty = SurfaceApp(Comparison("nothing"))
    async with empty.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        assert empty.query_one(SurfacePlot).current is None
        assert "no runs on a 2-D surface" in screen_text(empty)


def test_the_view_draws_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys\nimport tui_lab.widgets.surface_plot\nfrom tui_lab.data.surface_paths import level_sets\n"
            "level_sets(('rastrigin', 50.0), 30, 10)\nprint('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (110, 32)])
async def test_the_axes_read_round_evenly_spaced_values(size):
    """plotext's own ticks on a short plot fell two on one row (one label lost, one step looking
    twice as long): the axes now read round, evenly spaced values, none lost."""
    from .test_plot_ticks import NUMBER, _round_step, x_tick_labels, y_tick_labels

    app = SurfaceApp(_comparison())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        plot = app.query_one(SurfacePlot)
        for _ in plot.surfaces:
            text = screen_text(app)
            top = next(i for i, line in enumerate(text.splitlines()) if "┌" in line)
            for labels in (y_tick_labels(text, top), x_tick_labels(text, top)):
                values = [float(NUMBER.findall(label)[0]) for label in labels]
                steps = {round(b - a, 9) for a, b in zip(values, values[1:], strict=False)}
                assert len(values) >= 3 and len(steps) == 1 and _round_step(steps.pop()), labels
            plot.action_next_surface()
            await pilot.pause(0.1)


def test_the_header_gives_way_in_whole_pieces():
    """At 100 columns the header was cut after "first seed · [": it now leaves out whole pieces."""
    from tui_lab.widgets.surface_plot import header_line

    desc = "an ill-conditioned bowl: curvatures 1 and κ"
    whole = header_line("surface 1/4", desc, False, True).plain
    assert whole.endswith("first seed · [ ] switch · e seeds"), whole
    for width in (96, 70, 50, 30):
        line = header_line("surface 1/4", desc, False, True, width).plain
        assert len(line) <= width and not line.rstrip().endswith("["), line
        assert line.startswith("surface 1/4 · ") and (desc in line or line.endswith("…")), line


def test_the_table_names_runs_without_the_surface_they_share():
    """"Rosenbrock · Momentum s0" filled the table, its loss read "6.4e-0" and its distance was off
    the edge: the shared "Rosenbrock · " goes (the header names the surface)."""
    from tui_lab.widgets.surface_plot import short_labels

    assert short_labels(["Rosenbrock · AdaGrad s0", "Rosenbrock · Momentum s0"]) == ["AdaGrad s0", "Momentum s0"]
    assert short_labels(["Bowl · sgd s0", "Banana · adam s0"]) == ["Bowl · sgd s0", "Banana · adam s0"]
    assert short_labels(["Bowl · sgd s0"]) == ["Bowl · sgd s0"]
    assert short_labels(["sgd", "adam"]) == ["sgd", "adam"]


async def test_the_table_keeps_its_numbers_whole_and_long_names_give_way():
    """At 100 columns a long run name pushed the dist column out of the 42-cell table ("5.8e-")."""
    from engine.runs.executor import train_one as run

    specs = [_spec("Very long variant name with momentum 0.95 · extra words", "quadratic", "momentum", 0.01, 0),
             _spec("short", "quadratic", "sgd", 0.035, 0)]
    c = Comparison("surfaces")
    c.add_specs(specs)
    c.attach(["a", "b"])
    for spec, run_id in zip(specs, ["a", "b"], strict=True):
        run(spec, c.add, run_id=run_id)
    app = SurfaceApp(c)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        table = app.query_one(DataTable)
        dists = [str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert all(d == "–" or "e-" not in d or d[-1].isdigit() for d in dists), dists
        assert sum(col.get_render_width(table) for col in table.columns.values()) <= table.size.width, \
            [col.get_render_width(table) for col in table.columns.values()]
        names = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert names[0].endswith("…") or "…" in names[0], names  # cut, the numbers kept


async def test_at_120_columns_the_table_widens_so_that_run_names_that_differ_in_the_middle_stay_apart():
    """At 120 columns "Bowl · GD lr 0.01 s0" and "Bowl · GD lr 0.035 s0" both read "GD lr 0.… s0"
    (the table kept 42 cells and the seed's word whole). The table takes up to 45% of the view for
    its names, and with one seed per variant shown the names lose the " s0" the header says."""
    from engine.runs.executor import train_one as run

    specs = [_spec(f"Bowl · GD lr {lr}", "quadratic", "sgd", lr, s) for lr in (0.01, 0.035) for s in (0, 1)]
    specs += [_spec("Bowl · Nesterov", "quadratic", "nesterov", 0.01, s) for s in (0, 1)]
    c = Comparison("surfaces")
    c.add_specs(specs)
    ids = [f"r{i}" for i in range(len(specs))]
    c.attach(ids)
    for spec, run_id in zip(specs, ids, strict=True):
        run(spec, c.add, run_id=run_id)
    for size, every_seed in (((120, 40), False), ((120, 40), True), ((100, 30), True), ((80, 24), False)):
        app = SurfaceApp(c)
        async with app.run_test(size=size) as pilot:
            plot = app.query_one(SurfacePlot)
            if every_seed:
                plot.action_toggle_seeds()
            await pilot.pause(0.3)
            table = app.query_one(DataTable)
            names = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
            seeds = [" s0", " s1"] if every_seed else [""]
            assert names == [f"{v}{s}" for v in ("GD lr 0.01", "GD lr 0.035", "Nesterov") for s in seeds], (size, names)
            assert sum(col.get_render_width(table) for col in table.columns.values()) <= table.size.width
            assert table.size.width <= 0.45 * size[0] or table.size.width == 42, (size, table.size.width)


async def test_the_name_column_narrows_again_after_a_longer_name_was_shown():
    """Every seed on ("Momentum 0.95 s0"), then off, or a wider terminal then a narrower one: the name
    column kept the width of the longest name it had ever shown, and in the table's fixed width the
    distance "5.8e-12" came out as "5.8e-". The columns are laid out anew with each redraw."""
    from engine.runs.executor import train_one as run

    specs = [_spec(f"Bowl · GD lr {lr}", "quadratic", "sgd", lr, s) for lr in (0.01, 0.035) for s in (0, 1)]
    c = Comparison("surfaces")
    c.add_specs(specs)
    ids = [f"r{i}" for i in range(len(specs))]
    c.attach(ids)
    for spec, run_id in zip(specs, ids, strict=True):
        run(spec, c.add, run_id=run_id)
    app = SurfaceApp(c)
    async with app.run_test(size=(120, 40)) as pilot:
        plot = app.query_one(SurfacePlot)
        table = app.query_one(DataTable)
        plot.action_toggle_seeds()
        await pilot.pause(0.3)
        wide = table.ordered_columns[1].get_render_width(table)
        plot.action_toggle_seeds()
        await pilot.pause(0.3)
        names = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert names == ["GD lr 0.01", "GD lr 0.035"], names
        narrow = table.ordered_columns[1].get_render_width(table)
        assert narrow == len("GD lr 0.035") + 2 * table.cell_padding < wide, (narrow, wide)
        assert sum(col.get_render_width(table) for col in table.columns.values()) <= table.size.width
