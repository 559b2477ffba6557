"""Hyperparameter search: fields and scales, grid and random points, rounds, the preset table."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest

from engine.catalogue.claims import check_claims
from engine.catalogue.presets import PresetError, load_preset, parse_preset
from engine.catalogue.search import (
    SearchField,
    apply_point,
    grid_points,
    grid_size,
    inline_executor,
    random_points,
    run_search,
    run_search_preset,
    search_fields,
)
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.runs.outcomes import RunOutcome


def test_parse_and_scales():
    f = SearchField.parse("train.lr=1e-4:1e-0:log")
    assert (f.path, f.low, f.high, f.scale) == ("train.lr", 1e-4, 1.0, "log")
    assert f.value(0) == pytest.approx(1e-4) and f.value(1) == pytest.approx(1.0)
    assert f.value(0.5) == pytest.approx(1e-2)  # the middle of a log range is the geometric mean
    assert f.unit(f.value(0.3)) == pytest.approx(0.3)
    lin = SearchField.parse("model.dropout=0:0.5:linear")
    assert lin.value(0.5) == pytest.approx(0.25)
    assert SearchField.parse("train.weight_decay=1e-6:1e-2").scale == "log"
    for bad in ("lr=1e-4:1", "train.lr=1:1e-4:log", "train.lr=0:1:log", "train.lr=1e-4", "cook.lr=1:2",
                "train.lr=a:b"):
        with pytest.raises(ValueError):
            SearchField.parse(bad)
    # a mistyped field is named before any run starts, with the field it probably means
    for bad, hint in (("train.lrr=1e-4:1", "did you mean train.lr?"), ("train.learning_rate=1e-4:1", "train.lr?"),
                      ("model.xyz=1:2", "its numeric fields (what a search can vary): hidden, depth, width")):
        with pytest.raises(ValueError, match=re.escape(hint)):
            SearchField.parse(bad)
    # no guess: the numeric fields only (a search varies numbers), a dozen and the count; the list of
    # every train field (49 and the menus) flooded the Tools' settings panel
    with pytest.raises(ValueError) as bad_field:
        SearchField.parse("train.foo=0:1")
    text = str(bad_field.value)
    assert "lr, momentum" in text and "in all)" in text and "optimizer" not in text and len(text) < 260, text


def test_narrowing_stays_inside_the_range():
    f = SearchField("train.lr", 1e-4, 1.0)
    mid = f.narrowed(1e-2, 1 / 3)
    assert mid.unit(1e-2) == pytest.approx(0.5, abs=1e-9) or mid.low < 1e-2 < mid.high
    assert f.unit(mid.high) - f.unit(mid.low) == pytest.approx(1 / 3)
    edge = f.narrowed(1e-4, 1 / 3)  # at the edge: shifted inside, same width
    assert edge.low == pytest.approx(1e-4)
    assert f.unit(edge.high) == pytest.approx(1 / 3)


def test_grid_sizes_and_points():
    assert grid_size(9, 2) == 3 and grid_size(16, 4) == 2 and grid_size(10, 2) == 3 and grid_size(8, 3) == 2
    assert grid_size(27, 3) == 3 and grid_size(5, 1) == 5
    fields = [SearchField("train.lr", 1e-4, 1.0), SearchField("model.dropout", 0.0, 0.3, "linear")]
    pts = grid_points(fields, 9)
    assert len(pts) == 9
    lrs = sorted({p["train.lr"] for p in pts})
    # centred cells of a log range: 10^(-4 + 4·(i + 0.5)/3)
    assert lrs == pytest.approx([10 ** (-4 + 4 * (i + 0.5) / 3) for i in range(3)])
    drops = sorted({p["model.dropout"] for p in pts})
    assert drops == pytest.approx([0.05, 0.15, 0.25])
    shifted = grid_points(fields, 9, offsets=[0.0, 0.0])
    assert min(p["train.lr"] for p in shifted) == pytest.approx(1e-4)
    with pytest.raises(ValueError):
        grid_points(fields, 9, offsets=[0.5])


def test_random_points_are_log_uniform():
    f = SearchField("train.lr", 1e-6, 1.0)
    pts = random_points([f], 4000, random.Random(0))
    logs = [math.log10(p["train.lr"]) for p in pts]
    assert all(-6 <= v <= 0 for v in logs)
    per_decade = [sum(-6 + d <= v < -5 + d for v in logs) for d in range(6)]
    assert max(per_decade) - min(per_decade) < 200  # ~667 per decade: uniform in log space


def _base() -> RunSpec:
    return RunSpec(recipe=Recipe(data=DataSpec(name="digits"), model=ModelSpec(hidden=[16]),
                                 train=TrainSpec(steps=5)), variant="base", preset="p")


def test_apply_point_sets_fields_and_validates():
    spec = apply_point(_base(), {"train.lr": 0.3, "model.dropout": 0.2}, "t1")
    assert spec.recipe.train.lr == 0.3 and spec.recipe.model.dropout == 0.2
    assert spec.variant == "t1" and spec.preset == "p" and spec.recipe.train.steps == 5
    with pytest.raises(ValueError, match="not a valid recipe"):
        apply_point(_base(), {"train.lr": -1.0})
    with pytest.raises(ValueError):
        apply_point(_base(), {"train.no_such_field": 1.0})


def _fake_executor(score_of):
    """Scores each spec by a function of its recipe, without training."""
    calls: list[int] = []

    def execute(specs):
        calls.append(len(specs))
        out = []
        for i, spec in enumerate(specs):
            o = RunOutcome(f"r{sum(calls)}-{i}", spec.variant, spec.seed, status="done")
            o.final = {"val_loss": score_of(spec.recipe)}
            out.append(o)
        return out

    execute.calls = calls  # type: ignore[attr-defined]
    return execute


def _bowl(recipe) -> float:
    """Best at lr = 0.1, weight decay irrelevant."""
    return (math.log10(recipe.train.lr) + 1.0) ** 2


def test_random_search_finds_the_bowl_and_ranks_trials():
    fields = [SearchField("train.lr", 1e-4, 10.0), SearchField("train.weight_decay", 1e-6, 1e-2)]
    res = run_search(_base(), fields, budget=20, method="random", executor=_fake_executor(_bowl), seed=1)
    assert len(res.trials) == 20 and res.minimize
    ranked = res.ranked()
    assert [t.score for t in ranked] == sorted(t.score for t in res.trials)
    assert res.best is ranked[0]
    assert abs(math.log10(res.best.params["train.lr"]) + 1) < 0.5
    by_lr = res.ranked("train.lr")
    assert [t.params["train.lr"] for t in by_lr] == sorted(t.params["train.lr"] for t in res.trials)
    assert len(res.scatter("train.lr")) == 20
    assert res.as_dict()["best"]["params"] == res.best.params


def test_grid_search_uses_a_full_grid_and_says_what_it_left_unused():
    fields = [SearchField("train.lr", 1e-4, 10.0), SearchField("train.weight_decay", 1e-6, 1e-2)]
    res = run_search(_base(), fields, budget=10, method="grid", executor=_fake_executor(_bowl))
    assert len(res.trials) == 9 and res.notes


def test_coarse_to_fine_narrows_around_the_best_and_keeps_the_budget():
    fields = [SearchField("train.lr", 1e-4, 10.0)]
    ex = _fake_executor(_bowl)
    res = run_search(_base(), fields, budget=12, method="random", refine=2, executor=ex, seed=3)
    assert ex.calls == [4, 4, 4] and len(res.trials) == 12
    first_best = min((t for t in res.trials if t.round == 0), key=lambda t: t.score)
    last = [t for t in res.trials if t.round == 2]
    span = fields[0].unit(max(t.params["train.lr"] for t in last)) - fields[0].unit(min(t.params["train.lr"] for t in last))
    assert span <= (1 / 3) ** 2 + 1e-9  # the third round searches a ninth of the range
    assert res.best.score <= first_best.score
    with pytest.raises(ValueError):
        run_search(_base(), fields, budget=2, refine=2, executor=ex)


def test_maximized_scores_and_failed_runs():
    def execute(specs):
        out = []
        for i, spec in enumerate(specs):
            o = RunOutcome(f"r{i}", spec.variant, spec.seed, status="failed" if i == 0 else "done")
            o.final = {"val_acc": spec.recipe.train.lr}
            out.append(o)
        return out

    res = run_search(_base(), [SearchField("train.lr", 0.1, 0.9, "linear")], budget=3, method="grid",
                     score="val_acc", executor=execute)
    assert not res.minimize
    assert math.isnan(res.trials[0].score)
    assert res.best.params["train.lr"] == pytest.approx(max(t.params["train.lr"] for t in res.trials))


def test_a_real_search_trains_runs():
    from engine.catalogue.metric_names import is_metric

    res = run_search(_base(), [SearchField("train.lr", 1e-3, 1.0)], budget=2, method="grid",
                     executor=inline_executor())
    assert all(t.status == "done" and math.isfinite(t.score) for t in res.trials)
    assert {t.spec.variant for t in res.trials} == {"grid #1", "grid #2"}
    # engine.catalogue.metric_names lists every figure a run reports (a new one must be added there)
    assert not [k for t in res.trials for k in t.metrics if not is_metric(k, "classification")]


@pytest.mark.parametrize(("preset", "score", "expected"), [
    ("optimizers", "val_los", ["'val_los'", "closest: val_loss", "classification run reports", "metric names exist"]),
    ("optimizers", "bogus", ["'bogus'", "metric names exist", "e.g. val_loss, val_acc"]),
    ("loss-functions-regression", "val_acc", ["'val_acc'", "regression run", "val_mae"]),
    ("optimizers", "status", ["'status'", "not a number"]),
])
def test_cli_rejects_an_unknown_score_before_training(preset, score, expected, monkeypatch, capsys):
    import engine.catalogue.search
    from tui_lab.cli import main

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking --score")

    monkeypatch.setattr(engine.catalogue.search, "run_search", no_training)
    code = main(["search", preset, "--field", "train.lr=1e-3:1", "--quick", "--workers", "0", "--score", score])
    err = capsys.readouterr().err
    assert code == 2, err
    for part in ["--score", *expected]:
        assert part in err, (part, err)
    assert err.count(",") <= 6 and "zero_grad_share" not in err  # a few names, not all hundred of them


def test_cli_accepts_a_score_the_task_reports(monkeypatch, capsys):
    import engine.catalogue.search
    from tui_lab.cli import main

    scores = []

    def fake_search(base, fields, *, score, **kwargs):
        scores.append(score)
        return engine.catalogue.search.SearchResult("random", fields, score, True, [])

    monkeypatch.setattr(engine.catalogue.search, "run_search", fake_search)
    main(["search", "loss-functions-regression", "--field", "train.lr=1e-3:1", "--quick", "--workers", "0",
          "--score", "val_mae"])
    assert scores == ["val_mae"]


# -- the [search] table of a preset ---------------------------------------------------------

SEARCH_PRESET = """
title = "s"
technique = "s"
chapter = "workflow & diagnostics"
step = "all"
benefit = "both"
summary = "s"
explain = "s"
quick_seeds = [0, 1]

[base.data]
name = "digits"

[base.train]
steps = 5

[search]
budget = 4
fields = [
  { field = "train.lr", low = 1e-4, high = 10.0 },
  { field = "train.weight_decay", low = 1e-6, high = 1e-2, scale = "log" },
]

[[variants]]
name = "grid"
search = { method = "grid", placement = "random" }

[[variants]]
name = "random"
search = { method = "random", repeats = 2 }

[[claims]]
text = "random is at least as good on average"
metric = "best_score"
left = "random"
op = "<="
right = "grid"
seeds = "mean"
"""


def test_preset_search_table_is_validated(tmp_path: Path):
    loaded = parse_preset(SEARCH_PRESET, tmp_path / "s.toml")
    settings = loaded.preset.search_settings(loaded.variant("random"))
    assert settings.method == "random" and settings.repeats == 2 and settings.budget == 4
    with pytest.raises(PresetError, match="method"):
        parse_preset(SEARCH_PRESET.replace('method = "random"', 'method = "bayes"'), tmp_path / "b.toml")
    with pytest.raises(PresetError, match="search"):
        parse_preset(SEARCH_PRESET.replace("[search]", "[nosearch]"), tmp_path / "c.toml")
    with pytest.raises(PresetError, match="grid_offsets"):
        parse_preset(SEARCH_PRESET.replace('placement = "random"', "grid_offsets = [0.5]"), tmp_path / "d.toml")
    with pytest.raises(PresetError, match=r"search.score \(line \d+\): unknown metric 'val_los'.*closest: val_loss"):
        parse_preset(SEARCH_PRESET.replace("budget = 4", 'budget = 4\nscore = "val_los"'), tmp_path / "e.toml")
    with pytest.raises(PresetError, match="variant 'random': search.score.*not a number"):
        parse_preset(SEARCH_PRESET.replace("repeats = 2", 'repeats = 2, score = "status"'), tmp_path / "f.toml")


def test_run_search_preset_gives_one_outcome_per_variant_and_seed(tmp_path: Path):
    loaded = parse_preset(SEARCH_PRESET, tmp_path / "s.toml")
    ex = _fake_executor(_bowl)
    outcomes, results = run_search_preset(loaded, quick=True, executor=ex)
    assert [(o.variant, o.seed) for o in outcomes] == [("grid", 0), ("grid", 1), ("random", 0), ("random", 1)]
    assert len(results[("random", 1)]) == 2 and ex.calls == [4] * 6
    r = outcomes[3]
    assert r.final["best_score"] == pytest.approx(sum(x.best_score for x in results[("random", 1)]) / 2)
    assert r.final["best_score_best"] <= r.final["best_score"] <= r.final["best_score_worst"]
    assert "best.train.lr" in r.final
    # grid placements differ between seeds (a random shift each)
    g0 = {t.params["train.lr"] for t in results[("grid", 0)][0].trials}
    g1 = {t.params["train.lr"] for t in results[("grid", 1)][0].trials}
    assert g0 != g1
    claims = check_claims(loaded.preset.claims, outcomes)
    assert claims[0].checks and claims[0].checks[0].seed is None
    # trials are named after the preset's variant (what History shows)
    assert all(t.spec.variant.startswith("grid #") for t in results[("grid", 0)][0].trials)
    labelled = run_search(results[("grid", 0)][0].trials[0].spec, search_fields(loaded.preset.search_settings(loaded.preset.variants[0])), budget=2,
                          method="random", executor=_fake_executor(_bowl), label="random, wide")
    assert [t.spec.variant for t in labelled.trials] == ["random, wide #1", "random, wide #2"]


def test_the_catalogue_preset_parses():
    loaded = load_preset("hparam-search")
    assert loaded.preset.search is not None
    methods = {v.name: loaded.preset.search_settings(v).method for v in loaded.preset.variants}
    assert set(methods.values()) == {"grid", "random"}


def test_cli_parses_fields():
    from tui_lab.cli import build_parser

    args = build_parser().parse_args(["search", "optimizers", "--field", "train.lr=1e-4:1:log",
                                      "--field", "train.weight_decay=1e-6:1e-2", "--budget", "8",
                                      "--method", "grid", "--refine", "1"])
    assert args.field == ["train.lr=1e-4:1:log", "train.weight_decay=1e-6:1e-2"]
    assert (args.budget, args.method, args.refine) == (8, "grid", 1)


def test_search_rounds_train_in_this_process_unless_workers_are_asked_for():
    """A round is a handful of short runs: worker processes per round cost more than the runs."""
    import argparse

    from tui_lab.commands.search import _executor

    inline = _executor(argparse.Namespace(workers=None, device="auto"), None)
    workers = _executor(argparse.Namespace(workers=2, device="cpu"), None)
    assert "stored_inline_executor" in inline.__qualname__
    assert "runner_executor" in workers.__qualname__
