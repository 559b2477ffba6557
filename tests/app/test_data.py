"""The app's data layer (no Textual): TOML writer, series shaping, comparison folding, drafts."""

from __future__ import annotations

import math
import random
import tomllib

import pytest

from engine.catalogue.presets import PresetError, load_preset, parse_preset
from engine.events import from_dict
from tui_lab.data import fmt
from tui_lab.data import series as S
from tui_lab.data.comparison import Comparison, smoothing_applies
from tui_lab.data.draft import (
    Draft,
    format_overrides,
    parse_overrides,
    parse_sweep,
    sweep_variants,
    unique_names,
)
from tui_lab.data.fields import field_by_key, recipe_fields
from tui_lab.data.toml_writer import TomlWriteError, dumps

from .fake_engine import recording

# -- TOML writer -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    {"a": 1, "b": -2.5, "c": True, "d": "text", "e": [1, 2, 3], "f": []},
    {"title": 'quotes " and \\ backslash', "tiny": 1e-8, "big": 1e20, "whole": 3.0},
    {"explain": "line 1\nline 2 with \"\"\" triple\nends with a quote\"", "x": "tab\there"},
    {"base": {"data": {"name": "mnist1d"}, "model": {}, "train": {"lr": 0.01, "hidden": [100, 50]}}},
    {"variants": [{"name": "a", "train": {"optimizer": "adam", "lr": 1e-3}}, {"name": "b"}]},
    {"weird key": 1, "k.dot": {"inner key": "v"}, "inf": math.inf, "ninf": -math.inf},
    {"claims": [{"text": "t", "left": ["A", "B"], "op": "<", "value": 0.5}]},
    {"nested": {"deep": {"deeper": {"x": 1}}}, "after": [{"t": {"u": [1.5]}}]},
])
def test_toml_writer_round_trips(data):
    assert tomllib.loads(dumps(data)) == data


def test_toml_writer_round_trips_random_strings():
    rng = random.Random(7)
    alphabet = 'ab "\\\n\t\r\'#=[]{}\x01é€"""'
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        data = {"s": text, "t": [text], "u": {"v": text}}
        assert tomllib.loads(dumps(data)) == data, repr(text)


def test_toml_writer_refuses_what_toml_cannot_hold():
    with pytest.raises(TomlWriteError):
        dumps({"a": [1, None]})
    with pytest.raises(TomlWriteError):
        dumps({"a": object()})
    assert "a" not in tomllib.loads(dumps({"a": None, "b": 1}))


# -- series ----------------------------------------------------------------------------------------


def test_ema_smooths_with_bias_correction_and_keeps_nan_in_place():
    assert S.ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])
    out = S.ema([0.0, 10.0, math.nan, 10.0], 0.5)
    assert out[0] == 0.0 and math.isnan(out[2]) and 0 < out[1] < 10 and out[1] < out[3] < 10
    assert S.ema([3.0, 1.0], 0.0) == [3.0, 1.0]


def test_log_series_drops_points_a_log_scale_cannot_show():
    xs, ys = S.log10_series([1, 2, 3, 4], [10.0, 0.0, math.nan, 0.01])
    assert xs == [1, 4] and ys == pytest.approx([1.0, -2.0])


def test_downsample_keeps_first_and_last_and_the_limit():
    xs = list(range(1000))
    dx, dy = S.downsample(xs, xs, 50)
    assert len(dx) <= 50 and dx[0] == 0 and dx[-1] == 999 and dx == dy
    assert S.downsample([1, 2], [3, 4], 50) == ([1, 2], [3, 4])


def test_aggregate_means_over_seeds_where_all_have_reached():
    a = ([10, 20, 30], [10, 20, 30], [1.0, 2.0, 3.0])
    b = ([10, 20], [12, 22], [3.0, 4.0])
    xs, mean, lo, hi = S.aggregate([a, b])
    assert xs == [11, 21] and mean == [2.0, 3.0] and lo == [1.0, 2.0] and hi == [3.0, 4.0]


def test_formatting():
    assert fmt.num(None) == "–" and fmt.num(0.0123) == "0.0123" and fmt.num(1.5e-5) == "1.50e-5"
    # a loss that rounds to a whole number keeps its digits ("1" read like a placeholder in History)
    assert fmt.num(0.99996) == "1.000" and fmt.num(2.00004) == "2.000" and fmt.num(2.0) == "2"
    assert fmt.num(0.5) == "0.5" and fmt.num(-0.99996) == "-1.000"
    assert fmt.pct(0.4287) == "42.9%" and fmt.duration(187) == "3m07s" and fmt.rate(1234.5) == "1234"
    assert fmt.bar(0.5, 8) == "████░░░░" and fmt.bar(1.0, 4) == "████" and fmt.bar(0.0, 3) == "░░░"
    assert fmt.status_text("running", 0).startswith("⠋") and fmt.status_text("done") == "✔ done"


# -- comparison ------------------------------------------------------------------------------------


def _recorded_comparison(quick: bool = True) -> Comparison:
    loaded = load_preset("optimizers")
    c = Comparison(loaded.preset.title, loaded=loaded, quick=quick)
    c.add_specs(loaded.expand(quick=True))
    ids = [f"{s.variant.lower()}-0" for s in c.specs]
    c.attach(ids)
    for (_variant, _seed), events in recording().items():
        c.add_many(from_dict(dict(e)) for e in events)
    return c


def test_comparison_keeps_every_point_and_checks_the_claims():
    c = _recorded_comparison()
    n_steps = sum(1 for events in recording().values() for e in events if e["type"] == "StepMetrics")
    assert sum(len(r.steps["step"]) for r in c.runs) == n_steps
    assert c.finished and all(r.status == "done" for r in c.runs)
    claims = c.claims()
    assert len(claims) == 2 and all(r.holds for r in claims)
    assert {run.label for run, _ in c.diagnoses()} == {s.variant for s in c.specs}


def test_curves_one_per_variant_with_log_and_time_axis():
    c = _recorded_comparison()
    curves = c.curves("train_loss", "step")
    assert [cv.label for cv in curves] == c.labels and all(cv.band == [] for cv in curves)
    logged = c.curves("train_loss", "time", smoothing=0.6, log=True)
    sgd = next(cv for cv in logged if cv.label == "SGD")
    assert max(sgd.ys) < 1 and sgd.xs == sorted(sgd.xs)
    assert c.curves("val_acc", "epoch")[0].xs[-1] == pytest.approx(18.75)


def test_smoothing_shapes_the_per_step_training_loss_only():
    """Smoothing is for the noisy per-step loss: an evaluation curve (a few points) smoothed would
    top out far below what was measured, and the learning rate is a schedule, not noise."""
    from engine.events import EvalMetrics, RunStarted, StepMetrics

    c = Comparison("smoothing")
    c.add(RunStarted("r", "A", 0, "p", "c", {}, "cpu", 10, 400, 100))
    for step in range(0, 400, 10):
        c.add(StepMetrics("r", step, step / 100, 1.0 + (step % 20) / 10, 0.1 / (1 + step), step / 100, 100.0))
    for i, acc in enumerate((0.3, 0.6, 0.85, 0.92)):
        c.add(EvalMetrics("r", 100 * (i + 1), i + 1.0, {"val_acc": acc, "val_loss": 1.0 - acc}, 1.0))
    for metric in ("val_acc", "val_loss", "lr"):
        assert c.curves(metric, smoothing=0.9)[0].ys == c.curves(metric)[0].ys, metric
    assert max(c.curves("val_acc", smoothing=0.9)[0].ys) == pytest.approx(0.92)
    assert c.curves("train_loss", smoothing=0.9)[0].ys != c.curves("train_loss")[0].ys
    assert all(smoothing_applies(m) == (m == "train_loss") for m in ("train_loss", "val_loss", "val_acc", "lr"))


def test_the_form_of_stored_runs_comes_from_their_recipes():
    from tui_lab.data.comparison import stored_form

    loaded = load_preset("dropout")
    quick, full = loaded.expand(quick=True, seeds=[0, 1]), loaded.expand(quick=False, seeds=[0])
    assert stored_form(loaded, quick) is True and stored_form(loaded, full) is False
    assert stored_form(loaded, [quick[0], full[1]]) is None  # a set mixing both forms
    assert stored_form(None, quick) is None and stored_form(loaded, []) is None
    edited = quick[0].model_copy(update={"recipe": quick[0].recipe.model_copy(
        update={"train": quick[0].recipe.train.model_copy(update={"lr": 0.123})})})
    assert stored_form(loaded, [edited]) is None  # the preset changed since (or a saved copy ran)
    renamed = quick[0].model_copy(update={"variant": "gone"})
    assert stored_form(loaded, [renamed]) is None


def test_runs_of_several_seeds_draw_a_mean_with_a_band():
    loaded = load_preset("optimizers")
    c = Comparison("two seeds", loaded=loaded)
    rec = recording()[("SGD", 0)]
    c.add_specs([s.model_copy(update={"recipe": s.recipe.model_copy(update={"train": s.recipe.train.model_copy(
        update={"seed": seed})})}) for s in loaded.expand(quick=True)[:1] for seed in (0, 1)])
    c.attach(["a", "b"])
    for run_id, scale in (("a", 1.0), ("b", 1.5)):
        for raw in rec:
            e = from_dict({**raw, "run_id": run_id})
            if e.__class__.__name__ == "StepMetrics":
                e = e.__class__(**{**e.__dict__, "train_loss": e.train_loss * scale})
            if e.__class__.__name__ == "RunStarted":
                e = e.__class__(**{**e.__dict__, "seed": 0 if run_id == "a" else 1})
            c.add(e)
    (curve,) = c.curves("train_loss")
    assert len(curve.band) == 2 and c.multi_seed
    (lo_x, lo_y), (hi_x, hi_y) = curve.band
    assert all(lo <= m <= hi for lo, m, hi in zip(lo_y, curve.ys, hi_y, strict=True))


def test_stored_runs_of_different_presets_get_distinct_labels():
    class Row:
        def __init__(self, run_id, preset, variant, seed):
            self.run_id, self.preset, self.variant, self.seed = run_id, preset, variant, seed
            self.status, self.total_steps, self.spec = "done", 10, {}

    c = Comparison("stored", read_only=True)
    c.add_stored([Row("a1", "optimizers", "SGD", 0), Row("b1", "dropout", "SGD", 0), Row("b2", "dropout", "SGD", 0)])
    assert c.labels == ["optimizers:SGD", "dropout:SGD #b1", "dropout:SGD #b2"]


# -- fields and drafts -----------------------------------------------------------------------------


def test_every_recipe_field_gets_a_widget_kind_and_its_default_formats_back():
    for fields in recipe_fields().values():
        for f in fields:
            assert f.kind in {"choice", "bool", "int", "float", "int_list", "float_list", "choice_list", "text", "toml"}
            if f.default is not None and f.kind not in ("toml",):
                assert f.parse(f.format(f.default)) == f.default, f.key


def test_fields_validate_with_the_engines_constraints():
    lr = field_by_key("train.lr")
    assert lr.parse("1e-3") == 0.001
    with pytest.raises(ValueError, match="greater than 0"):
        lr.parse("0")
    with pytest.raises(ValueError, match="one of"):
        field_by_key("train.optimizer").parse("adamx")
    assert field_by_key("model.hidden").parse("[64, 32]") == [64, 32]
    assert field_by_key("train.clip_norm").parse("") is None
    assert "optimizer" in field_by_key("train.optimizer").doc or field_by_key("train.momentum").doc


def test_overrides_text_round_trips_and_names_bad_fields():
    text = 'train.optimizer = adam; train.lr = 0.01; model.hidden = [10, 20]'
    parsed = parse_overrides(text)
    assert parsed == {"train": {"optimizer": "adam", "lr": 0.01}, "model": {"hidden": [10, 20]}}
    assert parse_overrides(format_overrides(parsed)) == parsed
    with pytest.raises(ValueError, match="train.lrr: no such field"):
        parse_overrides("train.lrr = 1")
    with pytest.raises(ValueError, match="train.lr"):
        parse_overrides("train.lr = -1")


def test_sweeps_make_variants_and_cross_with_existing_ones():
    made = sweep_variants("train.optimizer", parse_sweep("train.optimizer", "sgd, momentum, adam"))
    assert [v.name for v in made] == ["optimizer=sgd", "optimizer=momentum", "optimizer=adam"]
    crossed = sweep_variants("train.lr", [0.1, 0.01], made, cross=True)
    assert len(crossed) == 6 and crossed[0].overrides == {"train": {"optimizer": "sgd", "lr": 0.1}}
    assert parse_sweep("model.hidden", "[100], [100, 100]") == [[100], [100, 100]]
    with pytest.raises(ValueError, match="train.lr = x"):
        parse_sweep("train.lr", "0.1, x")
    named = unique_names([made[0], sweep_variants("train.optimizer", ["sgd"])[0]])
    assert [v.name for v in named] == ["optimizer=sgd", "optimizer=sgd (2)"]


@pytest.mark.parametrize("preset_id", ["optimizers", "dropout", "init"])
def test_a_preset_opened_in_the_builder_saves_to_the_same_runs(preset_id):
    try:
        original = load_preset(preset_id)
    except PresetError:
        pytest.skip(f"{preset_id} is not in the catalogue")
    draft = Draft.from_preset(original.preset)
    again = parse_preset(draft.toml(), original.path, preset_id)
    for quick in (False, True):
        assert [s.recipe for s in again.expand(quick=quick)] == [s.recipe for s in original.expand(quick=quick)]
    assert again.preset.claims == original.preset.claims
    assert Draft.from_preset(again.preset) == draft


def test_a_new_draft_is_a_valid_preset_and_round_trips():
    draft = Draft.new()
    draft.variants = sweep_variants("train.optimizer", ["sgd", "adam"])
    loaded = draft.validate()
    assert [v.name for v in loaded.preset.variants] == ["optimizer=sgd", "optimizer=adam"]
    assert Draft.from_preset(loaded.preset) == draft


def test_the_data_layer_imports_no_textual():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import tui_lab.data.comparison, tui_lab.data.draft, tui_lab.data.fields, tui_lab.data.series\n"
        "import tui_lab.data.toml_writer, tui_lab.data.fmt\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext', 'plotext'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_followed_comparisons_clock_counts_from_its_first_runs_start():
    """`dllab attach` to a comparison that began 100 s ago: the header's clock says 100 s and on,
    not the seconds since the app attached; one the session itself started counts from Enter."""
    import time

    from engine.events import RunStarted
    from tui_lab.engine_bridge import Session

    def started(at: float) -> Comparison:
        c = Comparison("followed")
        c.add(RunStarted(run_id="r1", variant="A", seed=0, preset="p", comparison="c1", spec={}, device="cpu",
                         n_params=1, total_steps=10, steps_per_epoch=5, time=at))
        return c

    late = Session(started(time.time() - 100.0), lambda: None, detached=True)
    assert 100.0 <= late.elapsed() < 105.0
    fresh = Session(Comparison("mine"), lambda: None)
    fresh.comparison = started(time.time() + 2.0)  # its runs started after the session did
    assert fresh.elapsed() < 1.0
