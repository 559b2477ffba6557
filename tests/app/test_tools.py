"""The Tools screen (LR range test, sanity checks, gradient check, critical points, search), the
LR finder's "apply to recipe", a search preset run from the Library, the dashboard's health
panel, and the Builder's schedule preview.

The LR finder, the gradient check, the sanity checks and the critical points run for real on
tiny settings; the search tool trains its few runs in-process; the search preset's trials are
fake (a val loss that is a known function of the learning rate), so its claims are predictable.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static, TabbedContent
from tiny_presets import SEARCH_HEADER, tiny_preset

from engine.catalogue.presets import load_preset
from engine.events import Diagnostics, EvalMetrics, RunFinished, RunStarted, StepMetrics
from engine.runs.outcomes import OutcomeCollector
from tui_lab.data.search_comparison import SearchComparison
from tui_lab.screens.builder import BuilderScreen
from tui_lab.screens.dashboard import DashboardScreen
from tui_lab.screens.tools import ToolsScreen
from tui_lab.widgets.health_panel import HealthPanel
from tui_lab.widgets.lr_curve_plot import LRCurvePlot
from tui_lab.widgets.scatter_plot import ScatterPlot
from tui_lab.widgets.schedule_preview import SchedulePreview
from tui_lab.widgets.variant_table import VariantTable

from .conftest import freeze_inputs, live, pinned, pinned_catalogue, screen_text, wait_for

TINY = tiny_preset("""
[base.model]
hidden = [16]
activation = "tanh"

[base.train]
optimizer = "sgd"
lr = 0.1
batch_size = 32
steps = 200

[quick.train]
steps = 30

[[variants]]
name = "SGD"

[[variants]]
name = "Adam"
train = { optimizer = "adam", lr = 0.01 }
""", title="Tiny tools", technique="tiny-tools", summary="A tiny network for the tool tests.", n_samples=300)

TINY_SEARCH = tiny_preset("""
[base.model]
hidden = [8]

[base.train]
steps = 20

[search]
budget = 4
fields = [{ field = "train.lr", low = 1e-3, high = 1.0, scale = "log" }]

[[variants]]
name = "random"
search = { method = "random" }

[[variants]]
name = "grid"
search = { method = "grid" }

[[claims]]
text = "The centred grid finds a validation loss below 0.2"
metric = "best_score"
left = "grid"
op = "<"
value = 0.2
""", title="Tiny search", technique="tiny-search", summary="Two searches of four runs.", **SEARCH_HEADER)


@pytest.fixture
def tiny(tmp_path: Path):
    path = tmp_path / "tiny-tools.toml"
    path.write_text(TINY, encoding="utf-8")
    return load_preset(path)


def fake_val_loss(lr: float) -> float:
    """The fake trials' validation loss: lowest (0.1) at lr = 10^-0.5."""
    return (math.log10(lr) + 0.5) ** 2 + 0.1


def fake_search_executor():
    """An ``ExecutorFactory`` whose trials are a handful of events with a known val loss."""
    ids = itertools.count()

    def factory(*, on_event, device="auto", store=None, comparison=None, should_stop=None):
        def execute(specs):
            collector = OutcomeCollector()
            run_ids = [f"t{next(ids):03d}" for _ in specs]
            for run_id, spec in zip(run_ids, specs, strict=True):
                collector.register(run_id, spec.variant, spec.seed)
            for run_id, spec in zip(run_ids, specs, strict=True):
                lr = spec.recipe.train.lr
                vl = fake_val_loss(lr)
                events = [RunStarted(run_id, spec.variant, spec.seed, spec.preset, comparison or "",
                                     spec.model_dump(mode="json"), "cpu", 100, 20, 10, 0.0)]
                for step in (10, 20):
                    events += [
                        StepMetrics(run_id, step, step / 10, vl * 30 / step, lr, 0.01 * step, 100.0, 0.0),
                        EvalMetrics(run_id, step, step / 10, {"val_loss": vl * 20 / step, "val_acc": 0.5}, 0.0, 0.0),
                        Diagnostics(run_id, step, {"block1": {"act_mean": 0.1, "act_std": 0.5, "grad_norm": 0.1,
                                                              "update_ratio": 1e-3 * step}}, {"dead_share": 0.0}, 0.0),
                    ]
                events.append(RunFinished(run_id, "done", 20, "ok", {"val_loss": vl, "val_acc": 0.5}, {}, 0.2, {}, 0.0))
                for event in events:
                    collector.add(event)
                    on_event(event)
            return [collector.runs[r] for r in run_ids]

        return execute

    return factory


async def _tools(app, pilot) -> ToolsScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, ToolsScreen) and app.screen.query("#view-lr"))
    return app.screen


async def _run(pilot, screen: ToolsScreen, tool: str, timeout: float = 60.0):
    view = screen.view(tool)
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: view.result_value is not None and not view.running, timeout=timeout,
                   what=f"the {tool} result")
    await pilot.pause(0.2)
    return view


def _cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_key_5_opens_the_tools_the_lr_finder_runs_and_apply_sets_the_variants_lr(make_app, tiny):
    app = make_app(catalogue=lambda: [tiny])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("5")
        screen = await _tools(app, pilot)
        assert "5 Tools" in screen_text(app).splitlines()[0]
        view = screen.view("lr")
        assert view.loaded is not None and view.loaded.id == "tiny-tools"
        view.set_variant("Adam")
        view.query_one("#lr-steps", Input).value = "60"
        view.query_one("#lr-min", Input).value = "oops"
        await pilot.press("ctrl+r")  # a bad setting is a message, nothing runs
        await pilot.pause()
        assert view.worker is None and "lr min: 'oops' is not a number" in str(view.query_one("#lr-status", Static).render())
        view.query_one("#lr-min", Input).value = "1e-5"

        view = await _run(pilot, screen, "lr")
        _loaded, spec, result = view.result_value
        assert spec.variant == "Adam" and result.settings["steps"] == 60
        plot = screen.query_one(LRCurvePlot)
        assert len(plot.data.points) == len(result.lrs) and ("suggestion", result.suggestion) in plot.data.marks
        summary = str(view.query_one("#lr-summary", Static).render())
        assert "suggested lr" in summary and "the recipe has 0.01" in summary

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen), what="the Builder")
        builder = app.screen
        assert "Learning rate applied" in _toasts(app)  # no Builder before: nothing to lose, said at once
        await wait_for(pilot, lambda: builder.loaded is not None, what="the applied recipe to validate")
        expected = float(f"{result.suggestion:.3g}")
        adam = next(v for v in builder.draft.variants if v.name == "Adam")
        assert adam.overrides["train"]["lr"] == expected
        assert next(v for v in builder.draft.variants if v.name == "SGD").overrides.get("train", {}).get("lr") is None
        spec_after = next(s for s in builder.loaded.expand(quick=True) if s.variant == "Adam")
        assert spec_after.recipe.train.lr == expected
        assert builder.query_one("#builder-tabs", TabbedContent).active == "tab-variants"
        await wait_for(pilot, lambda: builder.query_one("#variant-name", Input).value == "Adam")
        assert f"train.lr = {expected:g}" in builder.query_one("#variant-overrides", Input).value

        from tui_lab.screens.confirm import ConfirmScreen

        await pilot.press("ctrl+q")  # the applied lr is not saved: quitting asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "The Builder has unsaved changes to Tiny tools" in app.screen.question
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is builder)
        assert app.is_running


async def test_a_two_step_lr_sweep_warns_next_to_the_suggestion(make_app, tiny):
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _tools(app, pilot)
        view = screen.view("lr")
        view.query_one("#lr-steps", Input).value = "2"
        view = await _run(pilot, screen, "lr")
        summary = " ".join(str(view.query_one("#lr-summary", Static).render()).split())
        assert "suggested lr" in summary and "too coarse to read: only 2 steps" in summary
        r = view.result_value[2]
        assert ("never fell" in summary) == (r.smoothed[1] >= r.smoothed[0])  # the words agree with the curve
        assert "too coarse" in str(view.query_one("#lr-apply").tooltip)
        view.query_one("#lr-steps", Input).value = "30"
        view = await _run_again(pilot, screen, "lr")
        assert "too coarse" not in str(view.query_one("#lr-summary", Static).render())
        assert "too coarse" not in str(view.query_one("#lr-apply").tooltip)


async def _run_again(pilot, screen: ToolsScreen, tool: str, timeout: float = 60.0):
    view = screen.view(tool)
    before = view.result_value
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: view.result_value is not before and not view.running, timeout=timeout,
                   what=f"the {tool} result")
    await pilot.pause(0.2)
    return view


def _toasts(app) -> list[str]:
    return [n.title for n in app._notifications]


async def test_apply_says_applied_only_once_the_builder_has_the_new_lr(make_app, tiny):
    """With unsaved edits in the Builder, "a" asked "Replace them?" and said "Learning rate applied"
    at the same time; a "no" then added "Not replaced". It says "applied" only after the change."""
    from tui_lab.screens.confirm import ConfirmScreen

    app = make_app(catalogue=lambda: [tiny])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.query("#f-preset-title"))
        builder = app.screen
        builder.query_one("#f-preset-title", Input).value = "Work in progress"
        await pilot.pause(0.4)
        assert builder.has_unsaved_changes()

        await pilot.press("5")
        screen = await _tools(app, pilot)
        view = screen.view("lr")
        view.query_one("#lr-steps", Input).value = "30"
        view = await _run(pilot, screen, "lr")
        app.clear_notifications()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "unsaved changes to Work in progress" in app.screen.question
        assert "Learning rate applied" not in _toasts(app), _toasts(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ToolsScreen))
        await pilot.pause()
        assert _toasts(app) == ["Not replaced"], _toasts(app)
        assert builder.draft.meta["title"] == "Work in progress"

        app.clear_notifications()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert _toasts(app) == []
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is builder and builder.draft.meta["technique"] == "tiny-tools")
        await wait_for(pilot, lambda: "Learning rate applied" in _toasts(app))
        assert _toasts(app) == ["Learning rate applied"]
        _loaded, _spec, result = view.result_value
        sgd = next(v for v in builder.draft.variants if v.name == "SGD")
        assert sgd.overrides["train"]["lr"] == float(f"{result.suggestion:.3g}")

        assert builder.has_unsaved_changes()  # the applied lr is not saved yet
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not builder.has_unsaved_changes(), what="the recipe to save")

        app.clear_notifications()  # nothing to lose now: applied at once, no question
        await pilot.press("5")
        await _tools(app, pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: app.screen is builder)
        await wait_for(pilot, lambda: "Learning rate applied" in _toasts(app))
        assert not any(isinstance(s, ConfirmScreen) for s in app.screen_stack)


async def test_gradcheck_demo_passes_the_correct_layer_and_catches_the_broken_one(make_app, tiny):
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _tools(app, pilot)
        await pilot.press("t", "t")
        assert screen.active_tool == "gradcheck"
        assert screen.view("gradcheck").choice("preset") == "demo"
        view = await _run(pilot, screen, "gradcheck")
        await wait_for(pilot, lambda: len(view.query(DataTable)) == 2, what="the two tables")
        correct, broken = (_cells(view.query_one(f"#gradcheck-table-{i}", DataTable)) for i in (0, 1))
        assert all("PASS" in row[2] for row in correct)
        verdicts = {row[0]: row[2] for row in broken}
        assert "FAIL" in verdicts["blocks.0.linear.bias *"]
        assert all("PASS" in v for name, v in verdicts.items() if name != "blocks.0.linear.bias *")
        text = screen_text(app)
        assert "the broken layer is caught" in text and "≤ 1e-7: correct" in text


async def test_sanity_checks_show_pass_fail_numbers_and_advice(make_app, tiny):
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _tools(app, pilot)
        screen.query_one("#tools-tabs", TabbedContent).active = "tab-sanity"
        view = screen.view("sanity")
        view.query_one("#sanity-steps", Input).value = "40"
        view = await _run(pilot, screen, "sanity")
        rows = _cells(view.query_one("#sanity-table", DataTable))
        assert [r[0] for r in rows] == ["initial loss", "penalty raises the loss", "overfit a tiny subset"]
        assert rows[0][1].endswith("pass") and " vs 1.099" in rows[0][2]  # ln 3 classes
        assert rows[2][1].endswith("FAIL")  # 40 steps are not enough to memorize 20 samples
        details = str(view.query_one("#sanity-text", Static).render())
        assert "for 40 steps" in details and "advice:" in details


def _visible_rows(app, table: DataTable) -> list[str]:
    """The table's lines as the screen shows them (what the pane's edge leaves), header first."""
    region = table.region
    lines = screen_text(app).splitlines()
    return [line[region.x:region.right] for line in lines[region.y:region.bottom]]


async def test_at_80_columns_the_gradcheck_verdicts_and_the_sanity_numbers_are_whole(make_app, tiny):
    """At 80×24 the gradient check's verdict column read "PASS ≤ 1" (it is ≤ 1e-7) and the sanity
    table's measured numbers were cut by the pane's edge. Names are cut in the middle now (a tensor
    keeps its last part, a check its last word), the numbers and the verdicts stay whole."""
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _tools(app, pilot)
        await pilot.press("t", "t")
        view = await _run(pilot, screen, "gradcheck")
        await wait_for(pilot, lambda: len(view.query(DataTable)) == 2, what="the two tables")
        await pilot.pause(0.2)
        table = view.query_one("#gradcheck-table-0", DataTable)
        shown = _visible_rows(app, table)
        assert table.virtual_size.width <= table.size.width, shown  # nothing beyond the pane's edge
        assert shown[0].split() == ["tensor", "rel.", "error", "verdict"], shown
        names = ["blocks.0.linear.weight *", "blocks.0.linear.bias *", "blocks.1.linear.weight",
                 "blocks.1.linear.bias", "head.weight", "head.bias"]
        for line, name in zip(shown[1:], names, strict=True):
            assert line.rstrip().endswith("PASS ≤ 1e-7"), shown
            cut = line.split("  ")[0].strip()
            assert cut == name or ("…" in cut and name.startswith(cut.split("…")[0])
                                   and name.endswith(cut.split("…")[1]) and "." + name.split(".")[-1] in cut), shown
        assert any("…" in line for line in shown), shown  # the long names were cut, not the numbers

        screen.query_one("#tools-tabs", TabbedContent).active = "tab-sanity"
        view = screen.view("sanity")
        view.query_one("#sanity-steps", Input).value = "40"
        view = await _run(pilot, screen, "sanity")
        table = view.query_one("#sanity-table", DataTable)
        shown = _visible_rows(app, table)
        assert table.virtual_size.width <= table.size.width, shown
        measured = [str(row[-1]) for row in _cells(table)]
        assert " vs 1.099" in measured[0] and measured[2].startswith("loss ") and ", acc " in measured[2], measured
        names = ["initial loss", "penalty raises the loss", "overfit a tiny subset"]
        for line, numbers, name in zip(shown[1:], measured, names, strict=True):
            assert line.rstrip().endswith(numbers), shown
            cut = line.split("  ")[0].strip()
            assert cut == name or ("…" in cut and cut.split()[-1] == name.split()[-1]), shown


async def test_critical_points_of_the_two_weight_chain(make_app, tiny):
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _tools(app, pilot)
        screen.query_one("#tools-tabs", TabbedContent).active = "tab-critical"
        screen.view("critical").query_one("#critical-starts", Input).value = "4"
        view = await _run(pilot, screen, "critical")
        points = _cells(view.query_one("#critical-points", DataTable))
        assert points[0][:2] == ["± saddle", "(0, 0)"] and points[0][4] == "(-2, 2)"
        assert sum(int(r[5].split()[0]) for r in points) == 4  # only the 4 starts are counted
        refs = [r for r in points if r[5].endswith(" ref")]
        assert len(refs) == 3 and all(r[1] in ("(0, 0)", "(1, 1)", "(-1, -1)") for r in refs)
        assert "4 starts, none dropped" in str(view.query_one("#critical-title", Static).render())
        assert "ref: a reference point" in str(view.query_one("#critical-note", Static).render())
        known = _cells(view.query_one("#critical-known", DataTable))
        assert [r[1] for r in known] == ["± saddle", "0 degenerate", "0 degenerate"] and all(r[4] == "✔" for r in known)
        escape = str(view.query_one("#critical-escape", Static).render())
        assert "negative-curvature" in escape and "loss 1 → 0.25" in escape


async def test_search_tool_table_sorts_and_scatters(make_app, tiny, store):
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _tools(app, pilot)
        screen.query_one("#tools-tabs", TabbedContent).active = "tab-search"
        view = screen.view("search")
        view.query_one("#search-fields", Input).value = "train.lr=1e-3:1:log; train.weight_decay=1e-6:1e-2"
        view.query_one("#search-budget", Input).value = "3"
        view = await _run(pilot, screen, "search")
        search = view.search
        assert len(search.trials) == 3 and all(t.status == "done" for t in search.trials)
        table = view.query_one("#search-table", DataTable)
        scores = [float(r[4]) for r in _cells(table)]
        assert scores == sorted(scores)  # best (lowest val_loss) first
        view.sort_by("train.lr")
        lrs = [float(r[2]) for r in _cells(table)]
        assert lrs == sorted(lrs)
        view.sort_by("train.lr")
        assert [float(r[2]) for r in _cells(table)] == sorted(lrs, reverse=True)
        plot = view.query_one(ScatterPlot)
        assert plot.data.log_x and len(plot.data.series[0][1]) == 3
        view.query_one("#search-against", Select).value = "train.weight_decay"
        await pilot.pause()
        assert plot.data.xlabel == "train.weight_decay"
        assert {r.run_id for r in store.list_runs()} >= {t.run_id for t in search.trials}


async def test_stopping_the_search_tool_cancels_its_trials(make_app, tiny, store):
    """ctrl+r while a search runs stops it: the running trials end cancelled (not failed), the
    rest of the round does not start."""
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _tools(app, pilot)
        screen.query_one("#tools-tabs", TabbedContent).active = "tab-search"
        view = screen.view("search")
        view.query_one("#search-fields", Input).value = "train.lr=1e-3:1:log"
        view.query_one("#search-budget", Input).value = "3000"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(store.list_runs()) > 0, what="the first trials")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not view.running, timeout=30, what="the search to stop")
        await wait_for(pilot, lambda: not any(r.status in ("pending", "running") for r in store.list_runs()),
                       timeout=30, what="the trials to end")
        statuses = [r.status for r in store.list_runs()]
        counts = {s: statuses.count(s) for s in set(statuses)}
        # the trials the stop caught training end cancelled (none if it came between two batched
        # groups); those it reached before they began are not kept
        assert "failed" not in counts and set(counts) <= {"done", "cancelled"}, counts
        assert len(statuses) < 3000


async def test_a_search_preset_runs_as_searches_and_the_verdict_uses_their_outcomes(make_app, tmp_path: Path):
    path = tmp_path / "tiny-search.toml"
    path.write_text(TINY_SEARCH, encoding="utf-8")
    loaded = load_preset(path)
    app = make_app(catalogue=lambda: [loaded], search_executor=fake_search_executor())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # the Library's highlighted preset, quick
        await wait_for(pilot, lambda: app.bridge.live is not None and not app.bridge.live.active, what="the search")
        c = live(app)
        assert isinstance(c, SearchComparison) and c.finished
        assert len(c.runs) == 8 and set(c.labels) == {"random", "grid"}
        assert c.run_title(c.runs[-1]) == "grid #4"
        [claim] = c.claims()
        assert claim.holds and "grid 0.1156 < 0.2" in claim.describe()  # the centred grid's best: lr = 10^-0.375
        screen = app.screen
        assert isinstance(screen, DashboardScreen) and not screen.check_action("cancel_run", ())
        await pilot.press("v")
        await pilot.pause(0.3)
        assert "✔ holds The centred grid finds" in screen_text(app)
        screen.query_one("#dash-tabs", TabbedContent).active = "tab-view"
        await pilot.pause(0.5)
        board = screen.query_one("#extra-view")
        rows = _cells(board.query_one(DataTable))
        assert [r[0] for r in rows] == ["random", "grid"] and rows[1][2] == "4/4" and rows[1][3] == "0.1156"
        assert sum(len(xs) for _, xs, _ in board.query_one(ScatterPlot).data.series) == 8


async def test_the_layers_tab_feeds_the_health_panel_of_the_highlighted_run(make_app):
    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        screen = app.screen
        c = live(app)
        table = screen.query_one(VariantTable)
        table.focus()
        await pilot.press("down", "down")  # the third run
        screen.query_one("#dash-tabs", TabbedContent).active = "tab-layers"
        await pilot.pause(0.4)
        panel = screen.query_one(HealthPanel)
        run = c.runs[2]
        assert panel.step == run.diagnostics[-1].step
        assert set(panel.layer_stats) == set(run.diagnostics[-1].layers)
        assert panel.query_one(DataTable).row_count == len(run.diagnostics[-1].layers)
        assert str(screen.query_one("#layers-run", Static).render()).startswith(c.run_title(run))
        screen.query_one("#dash-tabs", TabbedContent).active = "tab-curves"
        await pilot.pause(0.2)
        table.focus()
        await pilot.press("up", "up")
        screen.query_one("#dash-tabs", TabbedContent).active = "tab-layers"
        await pilot.pause(0.4)
        assert str(screen.query_one("#layers-run", Static).render()).startswith(c.run_title(c.runs[0]))
        assert panel.step == c.runs[0].diagnostics[-1].step


async def test_the_builder_previews_the_schedule_as_its_fields_change(make_app):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 34)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.query("#f-preset-title"))
        screen = app.screen
        screen.query_one("#builder-tabs", TabbedContent).active = "tab-train"
        preview = screen.query_one(SchedulePreview)
        await wait_for(pilot, lambda: bool(preview.points), timeout=20, what="the first preview")
        assert {lr for _, lr in preview.points} == {0.05} and preview.points[-1][0] == 999
        assert preview.total == 1000  # the step axis ends at the budget
        await wait_for(pilot, lambda: bool(screen.query("#f-train-schedule")))
        screen.query_one("#f-train-schedule", Select).value = "cosine"
        screen.query_one("#f-train-warmup_steps", Input).value = "100"
        await wait_for(pilot, lambda: "cosine" in preview.plot_title, what="the cosine preview")
        lrs = dict(preview.points)
        assert lrs[99] == pytest.approx(0.05) and lrs[0] == pytest.approx(0.0005)
        assert lrs[999] < 1e-4 and "warmup 100" in preview.plot_title


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")])
def test_tools_screen(make_app, snap_compare, size):
    app = make_app(mode="tools", catalogue=pinned_catalogue, presets_dir=Path("/home/you/.local/share/dllab/presets"))

    async def run_before(pilot):
        await wait_for(pilot, lambda: isinstance(app.screen, ToolsScreen) and app.screen.query("#view-lr"))
        await pilot.pause(0.3)
        freeze_inputs(app)
        app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_an_open_compact_select_menu_has_a_frame(make_app, tiny):
    """The variant menu of a compact Select opened with no frame and the screen's background, so its
    items read as part of the form ("RunAdamW"): it now has a border and a raised background."""
    app = make_app(catalogue=lambda: [tiny])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("5")
        screen = await _tools(app, pilot)
        select = screen.view("lr").query_one("#lr-variant", Select)
        select.focus()
        select.expanded = True
        await pilot.pause(0.3)
        lines = screen_text(app).splitlines()
        row = next(i for i, line in enumerate(lines) if line.startswith(" variant "))
        assert "▔▔▔" in lines[row + 1], lines[row + 1]  # the menu's top edge, under the field
        assert any("▁▁▁" in line for line in lines[row + 2:row + 8])  # and its bottom edge
        overlay = select.query_one("SelectOverlay")
        assert overlay.styles.background != screen.styles.background


def test_a_settings_number_that_is_empty_or_not_finite_says_so():
    """An empty box read "nothing is not a whole number"; nan and inf passed as numbers (a box of
    ±nan dropped every start of the critical-points search without a word)."""
    from tui_lab.widgets.tool_view import number

    with pytest.raises(ValueError, match=r"^samples: empty; type a whole number$"):
        number("  ", "samples", kind=int)
    for text in ("nan", "inf", "-inf"):
        with pytest.raises(ValueError, match=rf"^box must be a finite number, got {text}$"):
            number(text, "box", positive=True)
    assert number(" 2.5 ", "box", positive=True) == 2.5
