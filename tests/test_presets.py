"""Preset loading, validation messages and expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.catalogue.presets import PresetError, builtin_ids, catalogue, load_preset, parse_preset

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


def test_a_recipe_saved_from_the_builder_loads_by_its_id(tmp_path, monkeypatch):
    """The Builder saves to $DLLAB_HOME/presets/<id>.toml and the Library lists it: its id must open
    it everywhere an id is taken (run, check, open, presets ID, the Builder's open box)."""
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    saved = tmp_path / "presets"
    saved.mkdir()
    (saved / "my-recipe.toml").write_text(MINIMAL)
    loaded = load_preset("my-recipe")
    assert loaded.id == "my-recipe" and loaded.path == saved / "my-recipe.toml"
    assert [s.preset for s in loaded.expand(quick=True)] == ["my-recipe", "my-recipe"]
    assert load_preset(Path("my-recipe")).path == loaded.path  # the Builder passes a Path
    assert load_preset(saved / "my-recipe").path == loaded.path  # a path without its .toml
    # the catalogue comes first: a saved copy of a built-in id does not replace it
    (saved / "dropout.toml").write_text(MINIMAL)
    assert load_preset("dropout").path.parent != saved
    # a near miss suggests saved ids too
    with pytest.raises(PresetError, match="did you mean my-recipe\\?"):
        load_preset("my-recipee")


def test_a_broken_saved_recipe_says_what_is_wrong_with_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path))
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.toml").write_text(MINIMAL.replace('name = "moons"', 'name = "imagenet"'))
    with pytest.raises(PresetError, match="mine.toml: base recipe: data.name"):
        load_preset("mine")


def _error(text: str) -> str:
    with pytest.raises(PresetError) as info:
        parse(text)
    return str(info.value)


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_a_bad_base_value_is_reported_as_the_base_recipes():
    text = MINIMAL.replace('name = "moons"', 'name = "imagenet"')
    message = _error(text)
    assert message.startswith(f"demo.toml: base recipe: data.name (line {_line(text, 'imagenet')}): ")
    assert "variant" not in message and "'imagenet'" in message
    # an unknown field of the base, too
    text = MINIMAL.replace("steps = 100", "steps = 100\nstepz = 3")
    assert _error(text).startswith(f"demo.toml: base recipe: train.stepz (line {_line(text, 'stepz')}): ")


def test_a_bad_value_a_variant_sets_is_still_the_variants():
    text = MINIMAL.replace('lr = 1e-3 }', 'lr = 1e-3 }\ndata = { name = "imagenet" }')
    message = _error(text)
    assert message.startswith(f"demo.toml: variant 'B': data.name (line {_line(text, 'imagenet')}): "), message
    # the variant's value is found on its own line even when the base sets the same field
    text = MINIMAL.replace('optimizer = "adam", lr = 1e-3', 'optimizer = "adam", lr = 1e-3, steps = -1')
    message = _error(text)
    assert message.startswith(f"demo.toml: variant 'B': train.steps (line {_line(text, 'steps = -1')}): "), message


def test_a_bad_value_of_the_quick_form_says_which_table_set_it():
    text = MINIMAL.replace("[quick.train]\nsteps = 10", "[quick.train]\nsteps = -10")
    message = _error(text)
    assert message.startswith(f"demo.toml: quick form ([quick] table): train.steps (line {_line(text, '-10')}): ")
    text = MINIMAL.replace("quick = { train = { steps = 5 } }", "quick = { train = { steps = -5 } }")
    assert _error(text).startswith("demo.toml: variant 'B' (quick form): train.steps")


def test_the_line_of_a_field_set_in_several_places_is_in_the_table_that_failed():
    # a value the line search cannot match by its text (a list): the line is the one in the
    # failing variant's table, not the first `steps =` of the file (the base's)
    text = MINIMAL.replace('name = "A"', 'name = "A"\ntrain = { steps = 50 }').replace(
        'optimizer = "adam", lr = 1e-3', 'optimizer = "adam", lr = 1e-3, steps = [5]')
    message = _error(text)
    assert message.startswith(f"demo.toml: variant 'B': train.steps (line {_line(text, 'steps = [5]')}): "), message


def test_every_missing_or_invalid_top_level_field_is_reported_at_once():
    text = (MINIMAL.replace('benefit = "optimization"\n', "").replace('summary = "s"\n', "")
            .replace('chapter = "optimization"', 'chapter = "nope"'))
    lines = _error(text).splitlines()
    assert len(lines) == 3, lines
    assert any("benefit: Field required" in line for line in lines)
    assert any("summary: Field required" in line for line in lines)
    assert any("chapter (line 4)" in line and "'nope'" in line for line in lines)
