"""The learning-curve diagnosis labels the classic shapes."""

from __future__ import annotations

from engine.diagnostics.curves import diagnose


def curve(train, val, acc=0.99):
    return [{"step": i, "epoch": i, "train_loss": t, "val_loss": v, "train_acc": acc} for i, (t, v) in enumerate(zip(train, val, strict=True))]


def test_overfitting_names_the_epoch_and_numbers():
    d = diagnose(curve([2, 1, 0.5, 0.2, 0.1, 0.05], [2, 1.1, 0.8, 0.9, 1.1, 1.3]))
    assert d.label == "overfitting"
    assert "epoch 2" in d.text and "val loss up" in d.text
    assert any("dropout" in r for r in d.remedies)


def test_stalled_underfit_normal_diverged():
    assert diagnose(curve([2.30, 2.30, 2.29, 2.29], [2.3] * 4)).label == "stalled"
    assert diagnose(curve([2, 1.5, 1.2, 1.1], [2, 1.5, 1.2, 1.15], acc=0.6)).label == "underfitting"
    assert diagnose(curve([2, 1, 0.5, 0.3], [2, 1.1, 0.6, 0.45])).label == "normal"
    d = diagnose([], status="diverged", reason="loss became nan at step 12")
    assert d.label == "diverged" and "step 12" in d.text


def test_runs_without_validation_read_the_training_loss():
    d = diagnose([{"step": 0, "train_loss": 4.0}, {"step": 10, "train_loss": 0.01}])
    assert d.label == "normal" and "no validation split" in d.text
    assert diagnose([{"step": 0, "train_loss": 1.0}, {"step": 10, "train_loss": 1.0}]).label == "stalled"


def test_too_few_evaluations_says_yet_only_while_the_run_goes_on():
    from engine.diagnostics.curves import diagnose

    two = [{"step": 0, "train_loss": 2.3, "val_loss": 2.3}, {"step": 5, "train_loss": 2.0, "val_loss": 2.1}]
    assert diagnose(two, "running").text.endswith("yet")
    assert "yet" not in diagnose(two, "done").text and "ended" in diagnose(two, "done").text
    assert "yet" not in diagnose([{"step": 0, "train_loss": 1.0}], "cancelled").text  # no validation split


def test_a_loss_that_fell_almost_all_the_way_is_not_said_to_fall_100_percent():
    from engine.diagnostics.curves import diagnose

    evals = [{"step": s, "epoch": s, "train_loss": t, "val_loss": v}
             for s, (t, v) in enumerate([(2.3, 2.3), (0.5, 1.0), (0.01, 1.5), (0.0006, 2.7)])]
    text = diagnose(evals, "done").text
    assert text.startswith("overfitting") and "fell >99%" in text and "100%" not in text


def test_a_cancelled_run_is_read_as_far_as_it_got_and_says_so():
    evals = [{"step": s, "epoch": s / 10, "train_loss": 2.0 / (1 + s), "val_loss": 2.2 / (1 + s)} for s in range(6)]
    assert diagnose(evals, "done").text.startswith("normal:")
    d = diagnose(evals, "cancelled")
    assert d.label == "normal" and d.text.startswith("cancelled; so far: normal:")
