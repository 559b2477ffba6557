"""History: stored runs listed, filtered, sorted; several opened together read-only (replayed
through the live code path); deleted after a confirmation."""

from __future__ import annotations

from tui_lab.screens.confirm import ConfirmScreen
from tui_lab.screens.dashboard import DashboardScreen
from tui_lab.screens.history import HistoryScreen
from tui_lab.widgets.metric_plot import MetricPlot
from tui_lab.widgets.run_table import RunTable

from .conftest import screen_text, store_recorded_runs, wait_for


async def _open_history(app, pilot) -> HistoryScreen:
    await pilot.pause()
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
    return app.screen


async def test_open_two_stored_runs_of_different_presets_together(make_app, store):
    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)], comparison="cmp-a")
    store_recorded_runs(store, [("Momentum", 0)], preset="my-momentum", comparison="cmp-b")
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        assert table.row_count == 3 and "3 of 3 runs" in screen_text(app)

        await pilot.press("slash", *"sgd", "enter")
        assert table.row_count == 1
        await pilot.press("slash", "ctrl+u", "enter")
        assert table.row_count == 3
        await pilot.press("s", "s", "s")  # sorted by best val acc
        assert [r.variant for r in table.shown][0] == "Adam"

        table.focus()
        table.move_cursor(row=0)
        await pilot.press("space")  # Adam (optimizers)
        mom = [r.run_id for r in table.shown].index("cmp-b-momentum")
        table.move_cursor(row=mom)
        await pilot.press("space")
        assert sorted(table.marked) == ["cmp-a-adam", "cmp-b-momentum"]
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        dash = app.screen
        c = dash.comparison
        await wait_for(pilot, lambda: c.finished and not dash.session.active)
        assert c.read_only and sorted(c.labels) == ["my-momentum:Momentum", "optimizers:Adam"]
        await pilot.pause(0.3)
        plot = dash.query_one("#plot-train_loss", MetricPlot)
        assert len(plot.data.curves) == 2 and all(len(cv.xs) > 20 for cv in plot.data.curves)
        text = screen_text(app)
        assert "read-only" in text and "2/2" in text and "Cancel" not in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_a_marks_every_run_the_filter_shows_and_again_unmarks_them(make_app, store):
    """A whole comparison reopened in three keys: filter by its preset, a, o."""
    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)], comparison="cmp-a")
    store_recorded_runs(store, [("Momentum", 0)], preset="my-momentum", comparison="cmp-b")
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        await pilot.press("slash", *"optimizers", "enter")
        assert table.row_count == 2
        await pilot.press("a")
        assert sorted(table.marked) == ["cmp-a-adam", "cmp-a-sgd"] and "2 marked" in screen_text(app)
        assert "Mark all shown" in screen_text(app)  # the footer says so
        await pilot.press("a")
        assert table.marked == []
        await pilot.press("a", "o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert sorted(app.screen.comparison.labels) == ["Adam", "SGD"]  # one preset: no prefix


async def test_a_stored_run_replays_like_the_live_one(make_app, store):
    """Same comparison data from the store as from the recorded event stream."""
    from engine.events import from_dict
    from tui_lab.data.comparison import Comparison

    from .fake_engine import recording

    (run_id,) = store_recorded_runs(store, [("AdamW", 0)])
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_history(app, pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.comparison.finished)
        stored = app.screen.comparison.runs[0]
    direct = Comparison("direct")
    direct.add_many(from_dict({**e, "run_id": run_id}) for e in recording()[("AdamW", 0)])
    (run,) = direct.runs
    assert stored.steps == run.steps and stored.eval_metrics == run.eval_metrics
    assert stored.final == run.final and stored.status == run.status == "done"


async def test_delete_asks_first(make_app, store):
    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)])
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        table.focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert len(store.list_runs()) == 2
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert len(store.list_runs()) == 1


async def test_the_delete_question_fits_its_count(make_app, store):
    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)])
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        screen.query_one(RunTable).focus()
        await pilot.press("d")  # one run: "its metrics", named as the table shows it (the id column is hidden)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = " ".join(screen_text(app).split())
        assert "and its metrics?" in text
        assert "Delete run cmp-a-adam (optimizers · Adam · seed 0, done)" in text, text
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("space", "space", "d")  # two marked runs: "their metrics"
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = " ".join(screen_text(app).split())
        assert "Delete 2 runs (optimizers · " in text and "and their metrics?" in text, text
        await pilot.press("n")


def _whole(value: str, line: str) -> bool:
    """`value` stands whole in `line` (not cut, not part of a longer word)."""
    import re

    return re.search(rf"(?<!\S){re.escape(value)}(?!\S)", line) is not None


async def test_at_80_columns_every_number_is_shown_whole_and_the_names_give_way(make_app, store):
    from tui_lab.widgets.run_table import COLUMNS, NUMERIC, short_start

    store_recorded_runs(store, [("SGD", 0), ("Momentum", 0), ("Adam", 0)], preset="a-rather-long-preset-name",
                        comparison="a-long-comparison-name")
    store_recorded_runs(store, [("AdamW", 0)], preset="my-recipe", comparison="cmp-b")
    app = make_app(mode="history")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        lines = screen_text(app).splitlines()
        labels = {key: label.splitlines()[0] for key, label in COLUMNS}
        i_header, header = next((i, line) for i, line in enumerate(lines) if _whole("seed", line))
        for key in NUMERIC:
            assert _whole(labels[key], header), f"the {labels[key]!r} header is cut: {header!r}"
        at = header.index("train loss")  # the final evaluation of the training split, says its second line
        assert lines[i_header + 1][at:].startswith("(eval)"), lines[i_header + 1]
        cut_names = 0
        for run in table.shown:
            cells = table.row_cells(run)
            (line,) = [line for line in lines if _whole(cells["val_acc"], line) and _whole(cells["train_loss"], line)]
            for key in NUMERIC:
                assert _whole(cells[key], line), f"{labels[key]} {cells[key]!r} is not whole in {line!r}"
            assert len(line.rstrip()) <= 80
            cut_names += "…" in line
        assert cut_names >= 3, "the long names should have given way"
        # the start time stays (it went first): its hour for a run of today, else its day
        assert table.widths.get("started") == 5 and _whole("start", header), (table.widths, header)
        for run in table.shown:
            assert any(_whole(short_start(run.started), line) for line in lines if "…" in line)

        await pilot.resize_terminal(140, 24)  # room again: names whole, the start time back
        await wait_for(pilot, lambda: "started" in table.widths)
        text = screen_text(app)
        assert "a-rather-long-preset-name" in text and "a-long-comparison-name-momentum" in text
        assert "…" not in text


SKIP_VARIANTS = ("plain, 4 layers", "residual, 4 layers", "plain, 20 layers", "residual, 20 layers",
                 "plain, 20, Kaiming")


def _store_skip_connection_runs(store, n: int) -> list[str]:
    """`n` runs of five variants whose names differ only after their first few characters, with
    every status (the widest, early-stopped and cancelled, among them)."""
    from engine.events import EvalMetrics, RunFinished, RunStarted

    statuses = ("done", "early-stopped", "cancelled", "diverged", "done")
    ids = []
    for i in range(n):
        run_id, variant = f"{i:02d}{'f3a9c07e21'[:8]}", SKIP_VARIANTS[i % 5]
        store.record(RunStarted(run_id, variant, i // 5, "skip-connections", f"cmp-{i // 5}", {}, "cpu", 10, 200,
                                10))
        store.record(EvalMetrics(run_id, 200, 1.0, {"train_loss": 1.489, "val_acc": 0.352}, 2.5))
        store.record(RunFinished(run_id, statuses[i % 5], 200, "finished", {"train_loss": 1.489 + i / 1000,
                                                                           "val_acc": 0.352}, {}, 2.5))
        ids.append(run_id)
    return ids


async def test_at_80_columns_the_variant_names_stay_readable(make_app, store):
    """Runs of one preset are told apart by their variant: at 80 columns the run id column goes (the
    status line names the highlighted run) and the status shrinks to its icon before the variant
    names give way (they were cut to five characters: "resid…", "plain…")."""
    from tui_lab.data.fmt import STATUS_ICON

    _store_skip_connection_runs(store, 25)  # more rows than fit: a vertical scrollbar too
    app = make_app(mode="history")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        await wait_for(pilot, lambda: table.row_count == 25)
        await pilot.pause()
        assert "run_id" not in table.widths and table.widths["variant"] >= 14, table.widths
        lines = screen_text(app).splitlines()
        assert all(len(line.rstrip()) <= 80 for line in lines)
        for variant in SKIP_VARIANTS:
            assert any(variant[:14] in line for line in lines), f"{variant!r} is cut below 14 cells"
        row = next(line for line in lines if "residual, 20 layers"[:14] in line)  # every 5th run: diverged
        assert STATUS_ICON["diverged"] in row and "35.2%" in row and "2.5s" in row, row
        assert "started" in table.widths and "step" not in table.widths  # the steps go before the start time
        status = lines[-2]
        assert f"run {table.current_run_id()}" in status, status
        table.move_cursor(row=3)
        await pilot.pause()
        assert f"run {table.shown[3].run_id}" in screen_text(app).splitlines()[-2]

        await pilot.resize_terminal(120, 24)  # room: the run ids and the status words are back
        await wait_for(pilot, lambda: "run_id" in table.widths)
        await pilot.pause()
        text = screen_text(app)
        assert table.shown[0].run_id in text and "early-stopped" in text and "cancelled" in text
        assert f"run {table.current_run_id()} ·" not in text


async def test_a_new_sort_shows_the_top_of_the_table(make_app, store):
    """After `s` the table shows the first runs of the new order (the cursor used to stay on its
    run, so the view scrolled to it and the top rows were out of sight)."""
    for c in range(12):
        store_recorded_runs(store, [("SGD", 0), ("Adam", 0), ("Momentum", 0)], comparison=f"cmp{c:02d}")
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        table.focus()
        table.move_cursor(row=34)
        await pilot.pause()
        assert table.scroll_offset.y > 0
        await pilot.press("s")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_offset.y == 0
        first = table.shown[0]
        lines = screen_text(app).splitlines()
        assert first.variant in lines[2 + table.header_height]  # the first row
        assert f"run {first.run_id}" in lines[-2] or first.run_id[:6] in lines[2 + table.header_height]


NAMES_WITH_BRACKETS = [("[bold]x", "lr [lr=0.1]"), ("a [/b] c", "[red]y[/]")]
"""(preset, variant) names a person may give that read as Textual markup: a tag, a closing tag."""


def _store_named_runs(store, names: list[tuple[str, str]]) -> None:
    from engine.events import EvalMetrics, RunFinished, RunStarted

    for i, (preset, variant) in enumerate(names):
        run_id = f"r{i}"
        store.record(RunStarted(run_id, variant, 0, preset, f"cmp-{i}", {}, "cpu", 10, 10, 10))
        store.record(EvalMetrics(run_id, 10, 1.0, {"train_loss": 0.5, "val_loss": 0.6, "val_acc": 0.9}, 1.0))
        store.record(RunFinished(run_id, "done", 10, "finished", {"train_loss": 0.5, "val_acc": 0.9}, {}, 1.0))


async def test_names_with_brackets_show_as_written(make_app, store):
    _store_named_runs(store, NAMES_WITH_BRACKETS)
    app = make_app(mode="history")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        text = screen_text(app)
        for preset, variant in NAMES_WITH_BRACKETS:
            assert preset in text and variant in text, text
        await pilot.press("space", "space", "o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.comparison.finished)
        await pilot.pause(0.3)
        text = screen_text(app)
        for _, variant in NAMES_WITH_BRACKETS:
            assert variant in text, text


def _store_preset_runs(store, *, quick: bool, variants: int = 2) -> None:
    """Runs of the catalogue's `dropout` as the runner stores them, in its quick or full form."""
    from engine.catalogue.presets import load_preset
    from engine.events import RunFinished, RunStarted

    for i, spec in enumerate(load_preset("dropout").expand(quick=quick, seeds=[0])[:variants]):
        run_id = f"{'q' if quick else 'f'}{i}"
        store.record(RunStarted(run_id, spec.variant, spec.seed, "dropout", "cmp", spec.model_dump(mode="json"),
                                "cpu", 10, 10, 10))
        store.record(RunFinished(run_id, "done", 10, "finished", {"train_loss": 0.5}, {}, 1.0))


async def _rerun_header(make_app, store, quick: bool) -> str:
    _store_preset_runs(store, quick=quick)
    app = make_app(mode="history")
    async with app.run_test(size=(120, 30)) as pilot:
        await _open_history(app, pilot)
        await pilot.press("space", "space", "o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.comparison.finished)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.bridge.live is not None and app.bridge.live.comparison.finished)
        await wait_for(pilot, lambda: app.screen.session is app.bridge.live)
        await pilot.pause(0.4)
        return screen_text(app).splitlines()[1]


async def test_the_history_tells_quick_runs_from_full_ones_and_keeps_their_start_time(make_app, store):
    """History did not say which form a run was (the stored spec tells it), and at 80 columns its
    start-time column was the first to go."""
    from tui_lab.widgets.run_table import short_start

    _store_preset_runs(store, quick=True)
    _store_preset_runs(store, quick=False)
    store_recorded_runs(store, [("SGD", 0)], preset="gone-since", comparison="cmp-x")  # no preset to tell
    app = make_app(mode="history")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        lines = screen_text(app).splitlines()
        i_header, header = next((i, line) for i, line in enumerate(lines) if _whole("form", line))
        assert _whole("start", header) or _whole("started", header), header
        forms = {"q0": "quick", "q1": "quick", "f0": "full", "f1": "full", "cmp-x-sgd": "–"}
        for k, run in enumerate(table.shown):
            line = lines[i_header + table.header_height + k]
            assert _whole(forms[run.run_id], line) and run.variant in line, line
            assert _whole(short_start(run.started), line) or _whole(table.row_cells(run)["started"], line), line
            assert len(line.rstrip()) <= 80
        await pilot.press("slash", *"full", "enter")
        assert sorted(r.run_id for r in table.shown) == ["f0", "f1"]  # the filter reads the form too


def test_a_start_time_in_five_cells_is_its_hour_today_else_its_day():
    import datetime as dt

    from tui_lab.widgets.run_table import short_start

    now = dt.datetime(2025, 12, 7, 19, 36).timestamp()
    assert short_start(dt.datetime(2025, 12, 7, 8, 5).timestamp(), now) == "08:05"
    assert short_start(dt.datetime(2025, 11, 30, 23, 59).timestamp(), now) == "11-30"
    assert short_start(None, now) == "–"


def test_stored_forms_reads_each_runs_form_from_its_spec():
    from types import SimpleNamespace

    from engine.catalogue.presets import load_preset
    from tui_lab.data.comparison import stored_forms

    quick, full = (load_preset("dropout").expand(quick=q, seeds=[1])[0] for q in (True, False))
    rows = [SimpleNamespace(run_id="q", preset="dropout", spec=quick.model_dump(mode="json")),
            SimpleNamespace(run_id="f", preset="dropout", spec=full.model_dump(mode="json")),
            SimpleNamespace(run_id="gone", preset="no-such-preset", spec=full.model_dump(mode="json")),
            SimpleNamespace(run_id="bare", preset="dropout", spec={})]
    assert stored_forms(rows) == {"q": True, "f": False, "gone": None, "bare": None}


async def test_a_rerun_of_stored_quick_runs_says_quick(make_app, store):
    header = await _rerun_header(make_app, store, quick=True)
    assert "(quick)" in header and "(full)" not in header, header


async def test_a_rerun_of_stored_full_runs_says_full(make_app, store):
    header = await _rerun_header(make_app, store, quick=False)
    assert "(full)" in header and "(quick)" not in header, header


async def test_repeated_runs_opened_together_fit_the_dashboard_table(make_app, store):
    """Two stored runs of one variant and seed are told apart by their run ids ("SGD #cmp-a-"); at
    100 columns the Dashboard's table showed only the "E" of ETA. Its columns now fit: the columns
    that read "–" for every run (steps/s, ETA of ended runs) go first, and every number is whole."""
    from tui_lab.data import fmt
    from tui_lab.widgets.variant_table import VariantTable

    store_recorded_runs(store, [("SGD", 0)], comparison="cmp-a")
    store_recorded_runs(store, [("SGD", 0)], comparison="cmp-b")
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        table.focus()
        await pilot.press("space", "space", "o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        dash = app.screen
        c = dash.comparison
        await wait_for(pilot, lambda: c.finished and not dash.session.active)
        await pilot.pause(0.3)
        assert sorted(c.labels) == ["SGD #cmp-a-", "SGD #cmp-b-"]
        runs = dash.query_one(VariantTable)
        assert runs.virtual_size.width <= runs.size.width, (runs.virtual_size, runs.size)
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if "batch loss" in line)
        assert "ETA" not in header and "steps/s" not in header, header
        rows = [line for line in lines if line.startswith(" ━━ ")]
        for run, row in zip(c.runs, rows, strict=True):
            assert c.run_title(run) in row and "done" in row, row
            for number in (fmt.num(run.train_loss), fmt.pct(run.last_eval("val_acc")),
                           fmt.num(run.last_eval("val_loss"))):
                assert f" {number} " in f"{row} ", (number, row)


async def test_a_rerun_of_a_stored_set_of_two_presets_keeps_their_labels_and_says_rerun(make_app, store):
    """A rerun of stored runs of two presets kept the title "3 stored runs of …" (they are new runs)
    and lost the "preset:" in front of each variant that told the presets' runs apart."""
    from engine.catalogue.presets import load_preset
    from engine.events import RunFinished, RunStarted

    for preset in ("dropout", "optimizers"):
        for i, spec in enumerate(load_preset(preset).expand(quick=True, seeds=[0])[:2]):
            run_id = f"{preset[:3]}{i}"
            store.record(RunStarted(run_id, spec.variant, spec.seed, preset, "cmp", spec.model_dump(mode="json"),
                                    "cpu", 10, 10, 10))
            store.record(RunFinished(run_id, "done", 10, "finished", {"train_loss": 0.5}, {}, 1.0))
    app = make_app(mode="history")
    async with app.run_test(size=(120, 30)) as pilot:
        await _open_history(app, pilot)
        await pilot.press("a", "o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.comparison.finished)
        stored = [r.label for r in app.screen.comparison.runs]
        assert all(":" in label for label in stored), stored
        await pilot.press("r")
        await wait_for(pilot, lambda: app.bridge.live is not None and app.bridge.live.comparison.finished)
        fresh = app.bridge.live.comparison
        assert fresh.title.startswith("rerun of ") and "stored runs" in fresh.title, fresh.title
        assert sorted(r.label for r in fresh.runs) == sorted(stored), [r.label for r in fresh.runs]


async def test_text_from_the_store_is_shown_without_its_control_characters(make_app, store):
    """Runs an older version stored with control characters in their text (presets allowed them):
    the History, the dashboard they open in and a toast show that text, never obey it (a title
    that sets the terminal's title, a name that clears the screen)."""
    import re

    from engine.events import Message, RunFinished

    control = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
    [run_id] = store_recorded_runs(store, [("SGD", 0)], preset="pre\x1b]0;pwned\x07set", comparison="cmp-x")
    store.record(Message(run_id, "warn\x1b[2Jing\x9b", "warning"))
    store.record(RunFinished(run_id, "failed", 10, "rea\x1b]0;x\x07son", {}, {}, 1.0))
    app = make_app(mode="history")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        cells = table.row_cells(table.rows_all[0])
        assert cells["preset"] == "pre]0;pwnedset" and not any(control.search(v) for v in cells.values())
        assert not control.search(screen_text(app))
        table.focus()
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        c = app.screen.comparison
        await wait_for(pilot, lambda: c.finished and not app.screen.session.active)
        shown = [c.title, *c.labels, *(r.reason for r in c.runs), *(m.text for m in c.messages)]
        assert "rea]0;xson" in shown and "warn[2Jing" in shown, shown
        assert not any(control.search(text) for text in shown), shown
        await pilot.press("v")  # the Verdict: reasons and messages
        await pilot.pause()
        assert not control.search(screen_text(app))
        app.notify("bad\x1b]0;pwned\x07 news", title="t\x1b[2J")
        await pilot.pause()
        note = list(app._notifications)[-1]
        assert (note.title, note.message) == ("t[2J", "bad]0;pwned news")


async def test_u_resumes_a_stopped_run_in_the_runs_service_and_follows_it(make_app, store, monkeypatch):
    """A run with a checkpoint goes on in the service; one without says why it cannot."""
    import engine.runs.client as client_module
    from engine.training.checkpoint import checkpoint_path

    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)], comparison="cmp-r")
    for run_id in ("cmp-r-sgd", "cmp-r-adam"):
        store._write([("UPDATE runs SET status = 'cancelled', reason = 'cancelled at step 40' WHERE run_id = ?",
                       (run_id,))])
    path = checkpoint_path(store.path.parent, "cmp-r-sgd")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a checkpoint")
    asked: list[str] = []

    class Service:
        def resume(self, run_id: str) -> dict:
            asked.append(run_id)
            return {"ok": True, "comparison": "cmp-r", "run_ids": [run_id]}

    monkeypatch.setattr(client_module, "connect", lambda home: Service())
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        table.focus()
        await pilot.press("a", "u")  # both chosen: SGD has a checkpoint, Adam has none
        await wait_for(pilot, lambda: asked == ["cmp-r-sgd"], what="the service to be asked")
        await wait_for(pilot, lambda: app.current_mode == "dashboard" and app.bridge.live is not None)
        assert "followed (cmp-r)" in app.bridge.live.comparison.title
