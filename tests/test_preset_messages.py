"""What a preset's validation says about a text field with a pattern (in words, never the regex), and
the fields a hand-written preset may leave out."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_presets import MINIMAL

from engine.catalogue.presets import PresetError, parse_preset

SEARCH = MINIMAL.replace('chapter = "optimization"', 'chapter = "workflow & diagnostics"').replace(
    'step = "optimization"', 'step = "all"').replace('benefit = "optimization"', 'benefit = "both"') + """
[search]
budget = 4
fields = [{ field = "train.lr", low = 1e-3, high = 1.0 }]
"""


def _error(text: str) -> str:
    with pytest.raises(PresetError) as info:
        parse_preset(text, Path("demo.toml"))
    return str(info.value)


def test_a_bad_technique_id_says_what_an_id_may_hold_not_the_regex():
    message = _error(MINIMAL.replace('technique = "demo"', 'technique = "My Demo"'))
    assert message == ("demo.toml: technique (line 3): a technique id holds only lowercase letters, digits and "
                       "hyphens, like adam-vs-sgd (got 'My Demo')"), message
    assert "pattern" not in message and "[a-z" not in message


def test_a_bad_metric_name_and_a_bad_search_field_say_what_they_may_hold():
    message = _error(MINIMAL.replace('metric = "train_loss"', 'metric = "Train Loss"'))
    assert "claims.0.metric (line " in message and "a metric's name holds only lowercase letters" in message, message
    assert "like val_loss (got 'Train Loss')" in message and "[a-z" not in message, message

    message = _error(SEARCH.replace('field = "train.lr"', 'field = "lr"'))
    assert "search.fields.0.field" in message, message
    assert "a field is its section (data, model or train), a dot and the field's name, like train.lr" in message
    assert "(got 'lr')" in message and "pattern" not in message, message


def test_a_variants_search_table_with_a_bad_score_name_says_it_in_words():
    text = SEARCH.replace('name = "A"', 'name = "A"\nsearch = { score = "Val Loss" }')
    message = _error(text)
    assert "variant 'A': search.score: a metric's name holds only lowercase letters" in message, message
    assert "[a-z" not in message, message


def test_a_preset_without_an_explanation_loads_with_an_empty_one():
    """`explain` was required: a hand-written preset without it was refused ("explain: Field
    required"). The card and `dllab presets ID` show the rest; the explanation is optional."""
    text = MINIMAL.replace('explain = "e"\n', "")
    assert "explain" not in text
    loaded = parse_preset(text, Path("demo.toml"))
    assert loaded.preset.explain == ""
    assert [v.name for v in loaded.preset.variants] == ["A", "B"]


def test_a_bad_custom_model_factory_says_what_a_factory_looks_like():
    text = MINIMAL.replace('name = "A"', 'name = "A"\nmodel = { kind = "custom", factory = "not a factory" }')
    message = _error(text)
    assert "variant 'A': model.factory (line " in message, message
    assert "a factory is a module's dotted path, a colon and a function's name, like mypkg.models:make_net" in message
    assert "(got 'not a factory')" in message and "[A-Za-z" not in message, message
