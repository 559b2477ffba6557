"""Claims are checked per seed (or on means) with margins, against measured outcomes."""

from __future__ import annotations

import math

from engine.catalogue.claims import check_claim
from engine.catalogue.presets import Claim
from engine.runs.outcomes import RunOutcome


def run(variant: str, seed: int, status: str = "done", **final: float) -> RunOutcome:
    return RunOutcome(f"{variant}-{seed}", variant, seed, status=status, final=final,
                      evals=[{"step": 0, **{k: v * 2 for k, v in final.items()}}, {"step": 1, **final}])


def claim(**kw) -> Claim:
    return Claim(text="t", metric=kw.pop("metric", "train_loss"), **kw)


def test_relative_margin_each_seed():
    outcomes = [run("A", 0, train_loss=0.5), run("B", 0, train_loss=1.0),
                run("A", 1, train_loss=0.85), run("B", 1, train_loss=1.0)]
    c = claim(left="A", op="<", right="B", margin=0.2)
    result = check_claim(c, outcomes)
    assert not result.holds  # seed 1: 0.85 is not below 0.8
    assert [ch.holds for ch in result.checks] == [True, False]
    assert "seed 1" in result.describe()
    # the metric and the margin are written out: "train_loss: A 0.5 < 0.8 × B 1 = 0.8 [seed 0]; ..."
    assert result.describe().startswith("train_loss: A 0.5 < 0.8 × B 1 = 0.8 [seed 0]; A 0.85 < 0.8 × B 1 = 0.8 [seed 1] ✗")
    assert "B 1 + 0.05 = 1.05" in check_claim(claim(left="A", op=">", right="B", abs_margin=0.05), outcomes).describe()
    assert check_claim(claim(left="A", op="<", value=0.9, at="min"), outcomes).describe().startswith(
        "min train_loss: A 0.5 < 0.9 [seed 0]")
    assert check_claim(claim(left="A", op="<", right="B", margin=0.1), outcomes).holds
    assert check_claim(claim(left="A", op="<", right="B", margin=0.2, seeds="mean"), outcomes).holds


def test_value_status_and_lists():
    outcomes = [run("A", 0, status="diverged", train_loss=math.inf), run("B", 0, train_loss=0.1),
                run("C", 0, train_loss=0.2)]
    assert check_claim(claim(metric="status", left="A", op="==", value="diverged"), outcomes).holds
    assert not check_claim(claim(metric="status", left="B", op="==", value="diverged"), outcomes).holds
    assert check_claim(claim(left=["B", "C"], op="<", value=0.25), outcomes).holds
    assert not check_claim(claim(left=["B", "C"], op="<", value=0.15), outcomes).holds
    # a diverged run's loss is infinitely bad
    assert check_claim(claim(left="B", op="<", right="A"), outcomes).holds


def test_best_and_min_read_the_series():
    o = [RunOutcome("a", "A", 0, status="done", final={"val_loss": 0.9},
                    evals=[{"val_loss": 1.0}, {"val_loss": 0.4}, {"val_loss": 0.9}])]
    assert o[0].value("val_loss", "best") == 0.4
    assert o[0].value("val_loss", "max") == 1.0
    assert check_claim(claim(metric="val_loss", at="best", left="A", op="<", value=0.5), o).holds


def test_unfinished_or_missing_runs_do_not_hold():
    outcomes = [run("A", 0, status="cancelled", train_loss=0.1), run("B", 0, train_loss=1.0)]
    r = check_claim(claim(left="A", op="<", right="B"), outcomes)
    assert not r.holds and "cancelled" in r.problem
    r = check_claim(claim(left="Z", op="<", right="B"), outcomes)
    assert not r.holds and "no runs of Z" in r.problem
    r = check_claim(claim(metric="nope", left="B", op="<", value=1.0), outcomes)
    assert not r.holds and "nope" in r.problem


def test_accuracies_and_shares_read_in_percent():
    """An accuracy is written as the app shows it: "98.5% > 3 units 70.5% + 15 points = 85.5%"."""
    outcomes = [run("big", 0, val_acc=0.985, dead_share=0.004), run("small", 0, val_acc=0.705, dead_share=0.3)]
    text = check_claim(claim(metric="val_acc", left="big", op=">", right="small", abs_margin=0.15), outcomes).describe()
    assert text == "val_acc: big 98.5% > small 70.5% + 15 points = 85.5% [seed 0]"
    assert check_claim(claim(metric="val_acc", left="big", op=">=", value=0.97), outcomes).describe() == (
        "val_acc: big 98.5% >= 97% [seed 0]")
    assert "big 0.4% < 0.5 × small 30% = 15%" in check_claim(
        claim(metric="dead_share", left="big", op="<", right="small", margin=0.5), outcomes).describe()
    assert "big 0.985" not in text  # losses and other figures stay as they are: see the tests above
