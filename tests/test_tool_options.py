"""The tools' options (lr-find, sanity, gradcheck, critical, search, bench): bad values are refused
by argparse with the option's name and what it allows (exit 2), before any training, and never
reach the engine as a pydantic or Python error."""

from __future__ import annotations

import argparse
import json

import pytest

from tui_lab.cli import _invalid, main
from tui_lab.commands import args as opts
from tui_lab.tools.specs import resolve_name

LIBRARY_TEXT = ("validation error", "pydantic", "Traceback", "invalid literal", "cannot cover", "empty training split")


def _refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert not any(words in err for words in LIBRARY_TEXT), err
    return err


@pytest.mark.parametrize(("argv", "words"), [
    (["lr-find", "optimizers", "--quick", "--min", "0"], "argument --min: must be above 0"),
    (["lr-find", "optimizers", "--quick", "--max", "0"], "argument --max: must be above 0"),
    (["lr-find", "optimizers", "--quick", "--max", "-1"], "argument --max: must be above 0"),
    (["lr-find", "optimizers", "--quick", "--min", "nan"], "argument --min: must be a finite number"),
    (["lr-find", "optimizers", "--quick", "--steps", "0"], "argument --steps: must be at least 2"),
    (["lr-find", "optimizers", "--quick", "--steps", "1"], "argument --steps: must be at least 2"),
    (["gradcheck", "--h", "0"], "argument --h: must be above 0"),
    (["gradcheck", "--h", "inf"], "argument --h: must be a finite number"),
    (["gradcheck", "--max-elements", "0"], "argument --max-elements: must be above 0"),
    (["sanity", "optimizers", "--quick", "--steps", "0"], "argument --steps: must be above 0"),
    (["sanity", "optimizers", "--quick", "--steps", "100001"], "argument --steps: must be at most 100000"),
    (["sanity", "optimizers", "--quick", "--samples", "0"], "argument --samples: must be at least 2"),
    (["sanity", "optimizers", "--quick", "--samples", "100001"], "argument --samples: must be at most 100000"),
    (["search", "hparam-search", "--quick", "--seeds", "0,x"], "argument --seeds: seeds must be integers"),
    (["search", "optimizers", "--field", "train.lr=1e-3:1", "--budget", "3", "--refine", "-1"],
     "argument --refine: must be at least 0"),
    (["search", "optimizers", "--field", "train.lr=1e-3:1", "--budget", "0"], "argument --budget: must be above 0"),
    (["critical", "--step", "inf"], "argument --step: must be a finite number"),
    (["critical", "--step", "0"], "argument --step: must be above 0"),
    (["critical", "--rows", "-1"], "argument --rows: must be above 0"),
    (["critical", "--box", "nan"], "argument --box: must be a finite number"),
    (["critical", "--box", "inf"], "argument --box: must be a finite number"),
    (["critical", "--starts", "10001"], "argument --starts: must be at most 10000"),
    (["critical", "--seed", "x"], "argument --seed: must be a whole number"),
    (["runs", "--limit", "0"], "argument --limit: must be above 0"),
])
def test_bad_numbers_name_the_option_and_what_it_allows(argv, words, capsys):
    assert words in _refused(argv, capsys)


def test_one_sample_is_refused_with_the_reason(capsys):
    """One sample standardizes to all-zero inputs: the overfit check would "fail" (loss 0.16 at 100%
    accuracy) and send the user looking for a bug that is not there."""
    err = _refused(["sanity", "optimizers", "--quick", "--samples", "1"], capsys)
    assert "at least 2" in err and "all-zero inputs" in err


def test_lr_find_wants_min_below_max(capsys):
    assert main(["lr-find", "optimizers", "--quick", "--min", "1", "--max", "0.5"]) == 2
    assert "--min (1) must be below --max (0.5)" in capsys.readouterr().err


def test_the_types():
    assert opts.positive_float("1e-3") == 1e-3 and opts.non_negative_int("0") == 0
    assert opts.integer(2, 5)("5") == 5 and opts.finite_float("-2.5") == -2.5
    for parse, text in ((opts.positive_float, "-0.0"), (opts.positive_int, "1.5"), (opts.finite_float, "-inf"),
                        (opts.integer(2, 5), "6"), (opts.non_negative_int, "-1")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_a_variant_matches_ignoring_case_or_gets_a_did_you_mean():
    from tui_lab.tools.specs import pick_spec

    _, spec = pick_spec("optimizers", "adam", True, 0)
    assert spec.variant == "Adam"
    _, spec = pick_spec("optimizers", "ADAMW", True, 0)
    assert spec.variant == "AdamW"
    with pytest.raises(ValueError, match=r"no variant 'adm'; did you mean Adam.*variants: SGD"):
        pick_spec("optimizers", "adm", True, 0)


def test_a_name_that_differs_only_by_case_from_two_is_ambiguous():
    assert resolve_name("relu", ["ReLU", "tanh"], "variant", "p") == "ReLU"
    assert resolve_name("ReLU", ["ReLU", "relu"], "variant", "p") == "ReLU"  # exact wins
    with pytest.raises(ValueError, match="several variants named 'RELU'.*exact name"):
        resolve_name("RELU", ["ReLU", "relu"], "variant", "p")


def test_gradcheck_variant_ignores_case(capsys):
    from tui_lab.tools.gradcheck import check_specs

    assert [s.variant for s in check_specs("optimizers", "sgd")] == ["SGD"]
    assert main(["gradcheck", "optimizers", "--variant", "sgdd"]) == 2
    assert "did you mean SGD" in capsys.readouterr().err


def test_search_sort_must_be_a_searched_field(capsys):
    argv = ["search", "optimizers", "--field", "train.lr=1e-3:1", "--quick", "--workers", "0", "--budget", "2"]
    assert main([*argv, "--sort", "model.width"]) == 2  # refused before any run
    err = capsys.readouterr().err
    assert "--sort 'model.width' is not a field this search varies" in err and "score, train.lr" in err
    assert main(["search", "hparam-search", "--quick", "--sort", "train.lr"]) == 2
    assert "--sort" in capsys.readouterr().err


def test_search_sorts_by_a_searched_field(capsys):
    argv = ["search", "optimizers", "--field", "train.lr=1e-3:1:log", "--quick", "--workers", "0", "--budget", "3",
            "--method", "grid", "--sort", "train.lr"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    rows = [line.split("│") for line in text.splitlines() if line.count("│") > 4]
    lrs = [float(r[3]) for r in rows if r[3].strip() and r[3].strip()[0].isdigit()]
    assert len(lrs) == 3 and lrs == sorted(lrs)


def test_critical_limits_in_explore_too():
    from tui_lab.tools.critical import explore

    for kwargs in ({"box": float("nan")}, {"box": float("inf")}, {"step": float("inf")}, {"starts": 0},
                   {"step": -1.0}):
        with pytest.raises(ValueError, match="must be"):
            explore("chain2", **kwargs)


def test_critical_errors_go_to_stderr(capsys):
    assert main(["critical", "nope", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "unknown net 'nope'" in err


def test_a_validation_error_reads_as_fields_and_problems():
    from pydantic import ValidationError

    from engine.recipe.config import TrainSpec

    with pytest.raises(ValidationError) as info:
        TrainSpec(gradcheck_h=0)
    text = _invalid(info.value)
    assert text.startswith("invalid setting: gradcheck_h") and "greater than 0" in text
    assert "pydantic.dev" not in text and "validation error for" not in text
    assert _invalid(ValueError("plain")) == "plain"


def test_search_seeds_reach_the_preset_search_as_a_list(monkeypatch, capsys):
    import engine.catalogue.search

    seen = {}

    def fake(loaded, *, quick, seeds, executor, progress):
        seen["seeds"] = seeds
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.catalogue.search, "run_search_preset", fake)
    assert main(["search", "hparam-search", "--quick", "--seeds", "3,1", "--workers", "0"]) == 130
    assert seen["seeds"] == [3, 1]
    json.dumps(seen)
