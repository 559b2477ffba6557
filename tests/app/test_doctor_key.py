"""The doctor from the app: History's `D` on a stored run shows the same findings as `dllab doctor`."""

from __future__ import annotations

from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.runs.inline import run_inline
from tui_lab.data.doctor_text import report_lines


async def test_history_d_shows_the_doctors_findings(make_app, tmp_path) -> None:
    from engine.diagnostics.doctor import examine_stored
    from tui_lab.screens.doctor import DoctorScreen

    app = make_app()
    spec = RunSpec(recipe=Recipe(data=DataSpec(name="spiral", n_samples=300), model=ModelSpec(hidden=[32, 32]),
                                 train=TrainSpec(steps=100, optimizer="sgd", lr=50.0, seed=1)),
                   variant="hot", preset="mine")  # every ReLU dies before the loss can run away
    (done,) = run_inline([spec], device="cpu", store=app.store)
    async with app.run_test(size=(100, 30)) as pilot:
        app.switch_mode("history")
        await pilot.pause()
        await pilot.press("D")
        await pilot.pause()
        assert isinstance(app.screen, DoctorScreen)
        shown = app.screen.text
        expected = report_lines(examine_stored(app.store.get_run(done.run_id)))
        assert "1. A learning rate too high (lr 50) knocked the ReLUs dead" in shown
        assert all(line in shown for line in expected) and "raise the learning rate" not in shown
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DoctorScreen)


async def test_a_in_the_doctor_runs_the_ablation_and_the_verdict_reads_it(make_app) -> None:
    from tests.app.conftest import wait_for
    from tui_lab.widgets.verdict_panel import verdict_content

    app = make_app()
    spec = RunSpec(recipe=Recipe(data=DataSpec(name="spiral", n_samples=300), model=ModelSpec(hidden=[32, 32]),
                                 train=TrainSpec(steps=100, optimizer="sgd", lr=50.0, seed=1)),
                   variant="hot", preset="mine")
    run_inline([spec], device="cpu", store=app.store)
    async with app.run_test(size=(100, 30)) as pilot:
        app.switch_mode("history")
        await pilot.pause()
        await pilot.press("D")
        await pilot.pause()
        await pilot.press("a")
        await wait_for(pilot, lambda: app.bridge.live is not None and app.bridge.live.comparison.finished, 30)
        c = app.bridge.live.comparison
        assert c.title == "Doctor: mine / hot" and c.ablation is not None
        assert {r.label for r in c.runs} >= {"your recipe", "lr 0.1"} and {r.seed for r in c.runs} == {0, 1, 2}
        text = verdict_content(c, 100).plain
        assert "The doctor's ablation" in text and "lr 0.1: train_loss" in text
