"""Preset loading, validation messages and expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.presets import PresetError, builtin_ids, catalogue, load_preset, parse_preset

MINIMAL = """
title = "t"
technique = "demo"
chapter = "optimization"
step = "optimization"
benefit = "optimization"
summary = "s"
explain = "e"

[base.data]
name = "moons"

[base.train]
steps = 100

[quick.train]
steps = 10

[[variants]]
name = "A"

[[variants]]
name = "B"
train = { optimizer = "adam", lr = 1e-3 }
quick = { train = { steps = 5 } }

[[claims]]
text = "B lower"
metric = "train_loss"
left = "B"
op = "<"
right = "A"
"""


def parse(text: str):
    return parse_preset(text, Path("demo.toml"))


def test_catalogue_presets_load_and_expand():
    ids = builtin_ids()
    assert {"optimizers", "init", "dropout"} <= set(ids)
    for loaded in catalogue():
        for quick in (False, True):
            specs = loaded.expand(quick=quick)
            assert len(specs) == len(loaded.preset.variants) * len(loaded.preset.default_seeds(quick))


def test_expand_merges_base_quick_variant_and_seeds():
    loaded = parse(MINIMAL)
    full = loaded.expand()
    assert [s.variant for s in full] == ["A", "B"]
    assert full[0].recipe.train.steps == 100 and full[1].recipe.train.optimizer == "adam"
    quick = loaded.expand(quick=True, seeds=[0, 1, 2])
    assert [(s.variant, s.seed) for s in quick] == [("A", 0), ("A", 1), ("A", 2), ("B", 0), ("B", 1), ("B", 2)]
    assert quick[0].recipe.train.steps == 10
    assert quick[3].recipe.train.steps == 5  # the variant's own quick override wins
    assert quick[3].recipe.train.lr == 1e-3


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('optimizer = "adam"', 'optimizer = "adamm"'), ["variant 'B'", "train.optimizer", "'adamm'", "'sgd'"]),
        (("steps = 100", "stepz = 100"), ["train.stepz", "unknown field", "did you mean steps"]),
        (("steps = 100", "steps = 100\nlearning_rate = 0.1"), ["train.learning_rate", "did you mean lr?"]),
        (("steps = 100", "steps = 100\nfoo = 1"), ["train.foo", "unknown field", "allowed:", "steps"]),
        (("steps = 100", 'steps = "many"'), ["train.steps", "valid integer", "line"]),
        (('name = "moons"', 'name = "imagenet"'), ["data.name", "'imagenet'", "mnist1d"]),
        (("steps = 100", "steps = -3"), ["train.steps", "greater than 0"]),
        (('right = "A"', 'right = "C"'), ["claims[0]", "'C'"]),
        (('metric = "train_loss"', 'metric = "train_los"'),
         ["claim 'B lower'", "claims[0].metric", "line", "'train_los'", "closest: train_loss"]),
        (('right = "A"', 'right = "A"\nright_metric = "val_accc"'),
         ["claims[0].right_metric", "'val_accc'", "closest: val_acc"]),
        (('title = "t"', 'title = "t"\ncolour = 1'), ["colour", "unknown field"]),
        (('title = "t"', 'title = "t'), ["not valid TOML", "line"]),
    ],
)
def test_invalid_presets_give_clear_messages(change, expected):
    old, new = change
    assert old in MINIMAL
    with pytest.raises(PresetError) as info:
        parse(MINIMAL.replace(old, new, 1))
    message = str(info.value)
    assert "demo.toml" in message
    for part in expected:
        assert part in message, (part, message)
    assert "Traceback" not in message


def test_an_unknown_claim_metric_names_a_few_metrics_not_all():
    with pytest.raises(PresetError) as info:
        parse(MINIMAL.replace('metric = "train_loss"', 'metric = "bogus"', 1))
    message = str(info.value)
    assert "'bogus'" in message and "metric names exist" in message and "e.g. val_loss" in message
    assert message.count(",") <= 6, message
    with pytest.raises(PresetError) as info:
        parse(MINIMAL.replace('metric = "train_loss"', 'metric = "train_los"', 1))
    assert "closest: train_loss" in str(info.value) and str(info.value).count(",") <= 6


def test_unknown_preset_suggests_the_closest_ids(tmp_path):
    with pytest.raises(PresetError, match="did you mean dropout\\?"):
        load_preset("dropot")
    with pytest.raises(PresetError, match="`dllab presets` lists the catalogue") as info:
        load_preset("no-such-technique")
    assert "optimizers" not in str(info.value)  # a short message, not all 36 ids
    with pytest.raises(PresetError, match="no such preset file"):
        load_preset(tmp_path / "missing.toml")


def test_path_presets_load(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL)
    loaded = load_preset(str(path))
    assert loaded.id == "mine" and loaded.path == path


@pytest.mark.parametrize(
    ("old", "new"),
    [('right = "A"', 'right = "C"'), ('name = "B"', 'name = "A"'), ('metric = "train_loss"', 'metric = "train_los"')],
)
def test_whole_preset_errors_have_no_empty_location(old, new):
    # a check on the whole preset (claims naming variants, unique names) has no field location:
    # the message must not read "demo.toml: : Value error, ..."
    with pytest.raises(PresetError) as info:
        parse(MINIMAL.replace(old, new, 1))
    message = str(info.value)
    assert ": :" not in message and "Value error" not in message, message
    assert message.startswith("demo.toml: ")


@pytest.mark.parametrize("metric", ["status", "val_mae", "dist_to_min", "rel_error.blocks.0.linear.weight",
                                    "dead.block2", "best_score", "best.train.lr"])
def test_claims_may_name_any_metric_some_run_reports(metric):
    loaded = parse(MINIMAL.replace('metric = "train_loss"', f'metric = "{metric}"'))
    assert loaded.preset.claims[0].metric == metric
