"""Extra evaluation metrics (regression errors, BatchNorm batch statistics), the paper CNN,
and the learning-curve diagnosis as a claim metric."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from engine.catalogue.claims import check_claim
from engine.catalogue.presets import Claim
from engine.diagnostics.curves import diagnose
from engine.models import build_model, count_params
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.recipe.losses import cross_entropy
from engine.runs.outcomes import RunOutcome
from engine.training.loop import train
from engine.training.metrics import _chunks, evaluate_with_batch_stats, extra_metrics, regression_errors

# --- regression errors -------------------------------------------------------------------------


def test_regression_errors_match_manual() -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(hidden=[5]), (1,), 1)
    x, y = torch.randn(50, 1), torch.randn(50)
    with torch.no_grad():
        out = model(x)[:, 0]
    mae, mse = regression_errors(model, x, y)
    assert float(mae) == pytest.approx(float((out - y).abs().mean()), rel=1e-5)
    assert float(mse) == pytest.approx(float(((out - y) ** 2).mean()), rel=1e-5)


def test_regression_runs_report_mae_on_every_split_whatever_the_loss() -> None:
    for loss in ("mse", "l1"):
        spec = RunSpec(
            recipe=Recipe(
                data=DataSpec(name="regression_outliers", n_samples=200),
                model=ModelSpec(hidden=[8]),
                train=TrainSpec(loss=loss, steps=10),
            ),
            variant=loss,
        )
        final = train(spec, lambda e: None).final
        assert {"train_mae", "val_mae", "test_mae", "val_mse", "test_mse"} <= set(final)
        same = "val_mae" if loss == "l1" else "val_mse"
        assert final[same] == pytest.approx(final["val_loss"], rel=1e-5)


# --- BatchNorm with batch statistics ---------------------------------------------------------------


def test_chunks_merge_a_single_leftover_sample() -> None:
    assert _chunks(7, 2) == [(0, 2), (2, 4), (4, 7)]
    assert _chunks(8, 3) == [(0, 3), (3, 6), (6, 8)]
    assert _chunks(5, 1) == [(0, 2), (2, 5)]  # batch 1 has no batch statistics: pairs at least


def test_batch_stats_eval_matches_manual_batch_norm_and_restores_buffers() -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(hidden=[6], norm="batch"), (4,), 3)
    bn = model.blocks[0].norm
    with torch.no_grad():
        bn.running_mean.fill_(0.3)
        bn.running_var.fill_(2.0)
        bn.weight.uniform_(0.5, 1.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(12, 4), torch.randint(0, 3, (12,))
    loss, acc = evaluate_with_batch_stats(model.train(), cross_entropy, x, y, 4, classify=True)
    # reference: each chunk of 4 normalized by its own mean and biased variance
    outs = []
    lin, head = model.blocks[0].linear, model.head
    with torch.no_grad():
        for i in range(0, 12, 4):
            z = lin(x[i : i + 4])
            zn = F.batch_norm(z, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
            outs.append(head(torch.relu(zn)))
    out = torch.cat(outs)
    assert float(loss) == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-5)
    assert float(acc) == pytest.approx(float((out.argmax(1) == y).float().mean()))
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # in eval mode the running statistics give a different answer
    assert extra_metrics(model, cross_entropy, x, y, "val", "classification", final=False, batch_size=4) == {}
    extras = extra_metrics(model, cross_entropy, x, y, "val", "classification", final=True, batch_size=4)
    assert set(extras) == {"val_loss_batch_stats", "val_acc_batch_stats", "val_loss_mode_gap", "val_acc_mode_gap"}
    with torch.no_grad():
        eval_out = model.eval()(x)
    model.train()
    assert float(extras["val_loss_mode_gap"]) == pytest.approx(abs(float(F.cross_entropy(eval_out, y)) - float(loss)), rel=1e-5)
    eval_acc = float((eval_out.argmax(1) == y).float().mean())
    assert float(extras["val_acc_mode_gap"]) == pytest.approx(abs(eval_acc - float(acc)), abs=1e-6)


def test_no_batch_stats_metrics_without_batch_norm_or_on_train() -> None:
    torch.manual_seed(0)
    plain = build_model(ModelSpec(hidden=[6]), (4,), 3)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    assert extra_metrics(plain, cross_entropy, x, y, "val", "classification", final=True, batch_size=4) == {}
    bn = build_model(ModelSpec(hidden=[6], norm="batch"), (4,), 3)
    assert extra_metrics(bn, cross_entropy, x, y, "train", "classification", final=True, batch_size=4) == {}


# --- the mnist1d paper's CNN -----------------------------------------------------------------------


def test_paper_cnn_shapes_and_parameter_count() -> None:
    spec = ModelSpec(kind="cnn", channels=[25, 25, 25], kernel_sizes=[5, 3, 3], stride=2, padding=1, hidden=[])
    torch.manual_seed(0)
    model = build_model(spec, (40,), 10)
    convs = [b.linear for b in model.blocks]
    assert [c.kernel_size for c in convs] == [(5,), (3,), (3,)]
    assert all(c.stride == (2,) and c.padding == (1,) for c in convs)
    assert (model.head.in_features, model.head.out_features) == (125, 10)  # 25 channels × length 5
    lengths = []
    hooks = [b.act.register_forward_hook(lambda _m, _i, o: lengths.append(o.shape[-1])) for b in model.blocks]
    model(torch.randn(2, 40))
    for h in hooks:
        h.remove()
    assert lengths == [19, 10, 5]
    # the paper's ConvBase, written out: conv(1→25, k5) + 2 × conv(25→25, k3) + Linear(125, 10)
    reference = nn.ModuleList([
        nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.Linear(125, 10),
    ])
    assert count_params(model) == count_params(reference) == 5210


def test_kernel_sizes_must_match_channels() -> None:
    with pytest.raises(ValidationError, match="one kernel size per conv layer"):
        ModelSpec(kind="cnn", channels=[8, 8], kernel_sizes=[3])
    # per-layer default padding is each kernel // 2
    torch.manual_seed(0)
    model = build_model(ModelSpec(kind="cnn", channels=[4, 4], kernel_sizes=[5, 3], stride=1, hidden=[]), (12,), 2)
    assert [b.linear.padding for b in model.blocks] == [(2,), (1,)]


# --- the diagnosis as a claim metric ---------------------------------------------------------------


def _outcome(evals: list[dict[str, float]], status: str = "done") -> RunOutcome:
    return RunOutcome("r", "v", 0, status=status, evals=evals)


OVERFIT = [{"step": i, "epoch": i, "train_loss": 2.0 / (i + 1), "val_loss": v, "train_acc": 0.99}
           for i, v in enumerate([2.0, 1.2, 1.0, 1.1, 1.3, 1.6])]
UNDERFIT = [{"step": i, "epoch": i, "train_loss": 2.0 - 0.1 * i, "val_loss": 2.05 - 0.1 * i, "train_acc": 0.4}
            for i in range(6)]


def test_diagnosis_metric_is_the_curve_label_the_app_shows() -> None:
    assert _outcome(OVERFIT).value("diagnosis") == diagnose(OVERFIT).label == "overfitting"
    assert _outcome(UNDERFIT).value("diagnosis") == "underfitting"
    assert _outcome(OVERFIT, status="diverged").value("diagnosis") == "diverged"


def test_claim_on_the_diagnosis_label() -> None:
    claim = Claim(text="t", metric="diagnosis", left="v", op="==", value="overfitting")
    assert check_claim(claim, [_outcome(OVERFIT)]).holds
    result = check_claim(claim, [_outcome(UNDERFIT)])
    assert not result.holds and "underfitting" in result.describe()
