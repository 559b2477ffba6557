"""Schedules, losses and regularizers: values against hand computation and reference implementations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.recipe.config import TrainSpec
from engine.recipe.losses import accuracy, build_loss
from engine.recipe.regularize import EMA, clip_gradients, mixup, penalty
from engine.recipe.schedules import LRSchedule, schedule_curve

# ---------------------------------------------------------------------------------------- schedules


def _lr(spec: TrainSpec, step: int, total: int = 1000) -> float:
    return LRSchedule(spec, total).lr_at(step)


def test_constant_schedule() -> None:
    spec = TrainSpec(lr=0.1, min_lr=0.5)  # min_lr does not apply to constant
    assert [_lr(spec, s) for s in (0, 10, 999)] == [0.1, 0.1, 0.1]


def test_step_schedule_values_and_floor() -> None:
    spec = TrainSpec(lr=0.1, schedule="step", gamma=0.5, step_size=10)
    assert _lr(spec, 0) == pytest.approx(0.1)
    assert _lr(spec, 9) == pytest.approx(0.1)
    assert _lr(spec, 10) == pytest.approx(0.05)
    assert _lr(spec, 25) == pytest.approx(0.025)
    floored = TrainSpec(lr=0.1, schedule="step", gamma=0.5, step_size=10, min_lr=0.03)
    assert _lr(floored, 25) == pytest.approx(0.03)


def test_exponential_is_per_step() -> None:
    spec = TrainSpec(lr=0.1, schedule="exponential", gamma=0.9)
    assert _lr(spec, 3) == pytest.approx(0.1 * 0.729)
    assert _lr(TrainSpec(lr=0.1, schedule="exponential", gamma=0.5, min_lr=1e-3), 100) == pytest.approx(1e-3)


def test_inverse_time() -> None:
    spec = TrainSpec(lr=0.1, schedule="inverse_time", decay=0.1)
    assert _lr(spec, 0) == pytest.approx(0.1)
    assert _lr(spec, 10) == pytest.approx(0.05)
    assert _lr(spec, 30) == pytest.approx(0.025)


def test_cosine_after_warmup_reaches_min_lr() -> None:
    spec = TrainSpec(lr=0.1, schedule="cosine", min_lr=0.01, warmup_steps=10)
    total = 110
    assert _lr(spec, 10, total) == pytest.approx(0.1)
    assert _lr(spec, 60, total) == pytest.approx(0.055)
    assert _lr(spec, 35, total) == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi / 4)) / 2)
    assert _lr(spec, 110, total) == pytest.approx(0.01)
    assert _lr(spec, 500, total) == pytest.approx(0.01)


@pytest.mark.parametrize("kind", ["constant", "step", "exponential", "inverse_time", "cosine", "plateau"])
def test_warmup_ramps_linearly_then_hands_over(kind: str) -> None:
    spec = TrainSpec(lr=0.2, schedule=kind, warmup_steps=4, gamma=0.9, step_size=2, decay=0.5)
    sched = LRSchedule(spec, 100)
    assert [sched.lr_at(s) for s in range(4)] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    no_warmup = LRSchedule(spec.model_copy(update={"warmup_steps": 0}), 96)
    for s in (4, 5, 9, 50):
        assert sched.lr_at(s) == pytest.approx(no_warmup.lr_at(s - 4))


def test_plateau_cuts_after_patience_and_respects_min_lr() -> None:
    spec = TrainSpec(lr=0.1, schedule="plateau", plateau_patience=2, gamma=0.5, min_lr=0.02)
    sched = LRSchedule(spec, 1000)
    sched.on_eval(1.0)
    sched.on_eval(0.9)  # improvement
    sched.on_eval(0.9)  # 1 without improvement
    assert sched.lr_at(100) == pytest.approx(0.1)
    sched.on_eval(0.95)  # 2: cut
    assert sched.lr_at(100) == pytest.approx(0.05)
    sched.on_eval(0.89995)  # below 0.9 but not by 1e-4 relative: no progress
    sched.on_eval(0.89)  # progress: the count restarts
    sched.on_eval(0.9)
    assert sched.lr_at(100) == pytest.approx(0.05)
    for _ in range(20):
        sched.on_eval(float("nan"))
    assert sched.lr_at(100) == pytest.approx(0.02)
    assert sched.n_cuts == 3  # 0.1 -> 0.05 -> 0.025 -> 0.0125 (floored at 0.02), then no more


def test_on_eval_is_ignored_by_other_schedules() -> None:
    sched = LRSchedule(TrainSpec(lr=0.1, schedule="step", plateau_patience=1), 100)
    for loss in (1.0, 2.0, 3.0):
        sched.on_eval(loss)
    assert sched.lr_at(0) == pytest.approx(0.1)


def test_apply_sets_every_group() -> None:
    w = nn.Parameter(torch.zeros(2))
    b = nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "lr_scale": 0.5}], lr=1.0)
    sched = LRSchedule(TrainSpec(lr=0.1, schedule="step", gamma=0.5, step_size=10), 100)
    assert sched.apply(opt, 10) == pytest.approx(0.05)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.025])


def test_min_lr_above_lr_is_an_error() -> None:
    with pytest.raises(ValueError, match="min_lr"):
        LRSchedule(TrainSpec(lr=0.01, min_lr=0.1, schedule="cosine"), 100)


def test_schedule_curve() -> None:
    spec = TrainSpec(lr=0.1, schedule="cosine", warmup_steps=50)
    curve = schedule_curve(spec, 10_000, n_points=200)
    steps = [s for s, _ in curve]
    assert steps[0] == 0 and steps[-1] == 9_999 and steps == sorted(set(steps))
    assert 200 <= len(curve) <= 202 and 49 in steps and 50 in steps
    assert dict(curve)[50] == pytest.approx(0.1)
    assert len(schedule_curve(spec, 30)) == 30
    flat = schedule_curve(TrainSpec(lr=0.3, schedule="plateau"), 500)
    assert {lr for _, lr in flat} == {0.3}


# ------------------------------------------------------------------------------------------- losses


def _logits(n: int = 8, c: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)


def _loss(name: str, task: str = "classification", n_classes: int = 5, **kw):
    return build_loss(TrainSpec(loss=name, **kw), task, n_classes)


def test_cross_entropy_hard_soft_and_one_hot() -> None:
    s, y = _logits()
    ce = _loss("cross_entropy")
    torch.testing.assert_close(ce(s, y), F.cross_entropy(s, y))
    torch.testing.assert_close(ce(s, F.one_hot(y, 5).double()), F.cross_entropy(s, y))
    t = torch.softmax(torch.randn(8, 5, dtype=torch.float64), dim=1)
    manual = -sum((t[i] * torch.log_softmax(s[i], 0)).sum() for i in range(8)) / 8
    torch.testing.assert_close(ce(s, t), manual)


def test_mse_onehot_and_mse_softmax() -> None:
    s, y = _logits()
    onehot = F.one_hot(y, 5).double()
    torch.testing.assert_close(_loss("mse_onehot")(s, y), ((s - onehot) ** 2).sum() / 8)
    torch.testing.assert_close(_loss("mse_onehot")(s, y), 5 * F.mse_loss(s, onehot))
    p = torch.softmax(s, dim=1)
    torch.testing.assert_close(_loss("mse_softmax")(s, y), ((p - onehot) ** 2).sum() / 8)
    torch.testing.assert_close(_loss("mse_softmax")(s, onehot), _loss("mse_softmax")(s, y))


def _hinge_loop(s: torch.Tensor, y: torch.Tensor, margin: float) -> float:
    total = 0.0
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            if j != int(y[i]):
                total += max(0.0, float(s[i, j] - s[i, y[i]]) + margin)
    return total / s.shape[0]


@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_hinge_equals_loop(margin: float) -> None:
    s, y = _logits(16, 4, seed=3)
    hinge = _loss("hinge", n_classes=4, hinge_margin=margin)
    assert float(hinge(s, y)) == pytest.approx(_hinge_loop(s, y, margin))
    assert float(hinge(s, y)) == pytest.approx(4 * float(F.multi_margin_loss(s, y, margin=margin)))
    soft = 0.7 * F.one_hot(y, 4).double() + 0.3 / 4
    assert float(hinge(s, soft)) == pytest.approx(_hinge_loop(s, y, margin))


def test_regression_losses_squeeze_output() -> None:
    g = torch.Generator().manual_seed(0)
    out = torch.randn(10, 1, generator=g) * 3
    y = torch.randn(10, generator=g)
    task = "regression"
    torch.testing.assert_close(_loss("mse", task, 1)(out, y), F.mse_loss(out.squeeze(1), y))
    torch.testing.assert_close(_loss("l1", task, 1)(out, y), F.l1_loss(out.squeeze(1), y))
    torch.testing.assert_close(
        _loss("smooth_l1", task, 1, smooth_l1_beta=0.5)(out, y), F.smooth_l1_loss(out.squeeze(1), y, beta=0.5)
    )


def test_loss_task_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"'hinge'.*regression"):
        _loss("hinge", "regression", 1)
    with pytest.raises(ValueError, match=r"'l1'.*classification"):
        _loss("l1", "classification", 3)
    with pytest.raises(ValueError, match="task"):
        _loss("mse", "ranking", 1)


def test_half_precision_logits_with_soft_targets_backprop() -> None:
    s, y = _logits()
    s = s.to(torch.bfloat16).requires_grad_()
    t = F.one_hot(y, 5).float()
    for name in ("cross_entropy", "mse_onehot", "mse_softmax", "hinge"):
        loss = _loss(name)(s, t)
        assert loss.dtype == torch.float32 and loss.ndim == 0
        loss.backward()
    assert s.grad is not None


def test_accuracy() -> None:
    s = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    y = torch.tensor([0, 1, 1, 1])
    acc = accuracy(s, y)
    assert isinstance(acc, torch.Tensor) and acc.ndim == 0
    assert float(acc) == pytest.approx(0.75)
    assert float(accuracy(s, F.one_hot(y, 2).float())) == pytest.approx(0.75)


# -------------------------------------------------------------------------------------- regularizers


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_penalty_matches_manual_and_ignores_biases() -> None:
    model = _mlp()
    w1, w2 = model[0].weight, model[3].weight
    expected = 0.01 * (w1.abs().sum() + w2.abs().sum()) + 0.5 * 0.1 * (w1.pow(2).sum() + w2.pow(2).sum())
    torch.testing.assert_close(penalty(model, 0.01, 0.1), expected)
    torch.testing.assert_close(penalty(model, 0.0, 0.2), 0.1 * (w1.pow(2).sum() + w2.pow(2).sum()))
    assert penalty(model, 0.0, 0.0) is None
    penalty(model, 0.0, 1.0).backward()
    torch.testing.assert_close(model[0].weight.grad, w1.detach())
    assert model[0].bias.grad is None and model[1].weight.grad is None


def _with_grads(seed: int = 0) -> list[nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.zeros(5, 3)), nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 4
    params[2].grad = None  # a parameter without gradient is skipped
    return params


def _total_norm(params: list[nn.Parameter]) -> float:
    return float(torch.sqrt(sum(p.grad.pow(2).sum() for p in params if p.grad is not None)))


def test_clip_by_norm() -> None:
    params = _with_grads()
    before = _total_norm(params)
    assert before > 1.0
    returned = clip_gradients(params, clip_norm=1.0, clip_value=None)
    assert isinstance(returned, torch.Tensor) and float(returned) == pytest.approx(before, rel=1e-6)
    assert _total_norm(params) == pytest.approx(1.0, rel=1e-5)
    small = _with_grads()
    norm = _total_norm(small)
    clip_gradients(small, clip_norm=10 * norm, clip_value=None)
    assert _total_norm(small) == pytest.approx(norm, rel=1e-6)  # under the threshold: untouched


def test_clip_by_value_then_norm() -> None:
    params = _with_grads()
    assert clip_gradients(params, clip_norm=None, clip_value=0.5) is None
    assert all(float(p.grad.abs().max()) <= 0.5 for p in params if p.grad is not None)
    both = _with_grads()
    reference = _with_grads()
    for p in reference:
        if p.grad is not None:
            p.grad.clamp_(-0.5, 0.5)
    returned = clip_gradients(both, clip_norm=0.1, clip_value=0.5)
    assert float(returned) == pytest.approx(_total_norm(reference), rel=1e-6)
    assert _total_norm(both) == pytest.approx(0.1, rel=1e-4)


def test_ema_recurrence_buffers_and_applied() -> None:
    model = _mlp()
    decay = 0.9
    ema = EMA(model, decay)
    manual = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(16, 3)
    for _ in range(5):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        ema.update(model)
        manual = [
            decay * a + (1 - decay) * p.detach() for a, p in zip(manual, model.parameters(), strict=True)
        ]
    for a, m in zip(ema.params, manual, strict=True):
        torch.testing.assert_close(a, m, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ema.buffers[0], model[1].running_mean)  # buffers copied, not averaged

    raw = [p.detach().clone() for p in model.parameters()]
    with ema.applied(model) as m:
        for p, a in zip(m.parameters(), ema.params, strict=True):
            torch.testing.assert_close(p.detach(), a)
    for p, r in zip(model.parameters(), raw, strict=True):
        torch.testing.assert_close(p.detach(), r)
    with pytest.raises(RuntimeError), ema.applied(model):
        raise RuntimeError("evaluation failed")
    for p, r in zip(model.parameters(), raw, strict=True):
        torch.testing.assert_close(p.detach(), r)  # restored on error too
    ema.copy_to(model)
    torch.testing.assert_close(next(model.parameters()).detach(), ema.params[0])


def test_mixup_off_and_tiny_alpha_return_unmixed() -> None:
    x = torch.randn(12, 4)
    y = torch.randint(0, 3, (12,))
    x0, t0 = mixup(x, y, 0.0, 3, torch.Generator().manual_seed(0))
    assert torch.equal(x0, x) and torch.equal(t0, F.one_hot(y, 3).float())
    x1, t1 = mixup(x, y, 1e-4, 3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x1, x, atol=1e-4, rtol=0)
    torch.testing.assert_close(t1, F.one_hot(y, 3).float(), atol=1e-4, rtol=0)


def test_mixup_soft_targets_and_determinism() -> None:
    x = torch.randn(32, 4)
    y = torch.randint(0, 5, (32,))
    xm, t = mixup(x, y, 1.0, 5, torch.Generator().manual_seed(7))
    assert t.shape == (32, 5) and t.dtype == x.dtype
    torch.testing.assert_close(t.sum(1), torch.ones(32))
    assert float(t.max(1).values.min()) >= 0.5 - 1e-6  # folded λ: each row's own class dominates
    assert not torch.allclose(xm, x)
    xm2, t2 = mixup(x, y, 1.0, 5, torch.Generator().manual_seed(7))
    assert torch.equal(xm, xm2) and torch.equal(t, t2)


def test_mixup_regression_mixes_targets_with_inputs() -> None:
    x = torch.randn(20, 3, dtype=torch.float64)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    xm, ym = mixup(x, x @ w, 0.4, 1, torch.Generator().manual_seed(1))
    torch.testing.assert_close(ym, xm @ w)  # one λ and one permutation for inputs and targets


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_evaluation_cross_entropy_equals_torchs(scale: float) -> None:
    """Without autograd the loss is logsumexp(z) - z[y] (faster on a CPU): the same values as
    F.cross_entropy to the rounding of the logits' magnitude, in float32 and float64."""
    import torch.nn.functional as F

    from engine.recipe.losses import cross_entropy, hard_cross_entropy

    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        z = (torch.randn(257, 10, generator=g) * scale).to(dtype)
        y = torch.randint(0, 10, (257,), generator=g)
        with torch.no_grad():
            fast = cross_entropy(z, y)
        tol = 1e-6 * scale  # float32 rounds a logit of size s to about 1e-7 s
        assert torch.allclose(fast, F.cross_entropy(z, y), rtol=1e-6, atol=tol)
        assert torch.allclose(hard_cross_entropy(z, y), F.cross_entropy(z, y, reduction="none"), rtol=1e-6, atol=tol)
        z.requires_grad_(True)
        cross_entropy(z, y).backward()  # with autograd: torch's own loss
        assert z.grad is not None


# ------------------------------------------------------------------------- bounds of the schema


def _schema_fields():
    """(model, name, field info) of every field of the recipe's sections."""
    from engine.recipe.config import DataSpec, ModelSpec, PretrainSpec, Recipe, RunSpec

    for model in (DataSpec, ModelSpec, TrainSpec, PretrainSpec, Recipe, RunSpec):
        for name, info in model.model_fields.items():
            yield model, name, info


def _ints_in(annotation) -> list:
    """The int annotations (with their metadata) inside `annotation`: itself, in a list, or optional."""
    from typing import Annotated, Union, get_args, get_origin

    if annotation is int:
        return [(int, ())]
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        inner = _ints_in(base)
        return [(t, (*m, *meta)) for t, m in inner]
    if origin in (list, Union) or str(origin) == "<class 'types.UnionType'>":
        return [i for a in get_args(annotation) for i in _ints_in(a)]
    return []


def test_every_integer_of_the_schema_has_an_upper_bound() -> None:
    """A seed of 10**23 reached SQLite (OverflowError, exit 1, phantom rows); 10**12 steps were
    accepted. Every integer a recipe holds is bounded above, to what can run."""
    unbounded = []
    for model, name, info in _schema_fields():
        for _, meta in _ints_in(info.annotation):
            found = [*meta, *info.metadata]
            found += [inner for m in found for inner in getattr(m, "metadata", ())]  # a Field(...) in Annotated
            if not any(getattr(m, "le", None) is not None or getattr(m, "lt", None) is not None for m in found):
                unbounded.append(f"{model.__name__}.{name}")
    assert not unbounded, unbounded


@pytest.mark.parametrize(("section", "field", "value"), [
    ("train", "seed", 2**32), ("train", "seed", 10**23), ("train", "seed", -1), ("data", "split_seed", 2**63),
    ("train", "steps", 10**12), ("train", "epochs", 10**9), ("train", "batch_size", 10**12),
    ("model", "width", 10**9), ("model", "depth", 10**6), ("model", "hidden", [10**9]),
    ("model", "channels", [1_000_000_000]), ("data", "n_samples", 10**12), ("train", "eval_every", 10**15),
])
def test_integers_beyond_what_can_run_are_refused(section, field, value) -> None:
    from pydantic import ValidationError

    from engine.recipe.config import Recipe

    with pytest.raises(ValidationError) as info:
        Recipe.model_validate({"data": {"name": "spiral"}, **{section: {field: value}}} if section != "data"
                              else {"data": {"name": "spiral", field: value}})
    assert field in str(info.value)


@pytest.mark.parametrize(("section", "field"), [
    ("train", "lr"), ("train", "weight_decay"), ("model", "init_value"), ("model", "bias_init"),
    ("train", "diverge_threshold"), ("train", "clip_norm"), ("data", "noise"), ("data", "start"),
])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_float_of_the_schema_is_finite(section, field, value) -> None:
    """`lr = inf` ran and ended "diverged" with exit 0; `init_value = nan` passed too."""
    from pydantic import ValidationError

    from engine.recipe.config import Recipe

    raw = {"data": {"name": "spiral"}}
    number = [1.0, value] if field == "start" else value
    raw.setdefault(section, {})[field] = number
    with pytest.raises(ValidationError) as info:
        Recipe.model_validate(raw)
    assert field in str(info.value) and ("finite" in str(info.value) or "greater than" in str(info.value))


def test_a_claim_value_is_finite() -> None:
    from pydantic import ValidationError

    from engine.catalogue.presets import Claim

    for value in (math.inf, math.nan):
        with pytest.raises(ValidationError, match="finite"):
            Claim(text="x", metric="train_loss", left="A", op="<", value=value)
    assert Claim(text="x", metric="train_loss", left="A", op="<", value=1e300).value == 1e300


def test_the_largest_seed_trains() -> None:
    """MAX_SEED and the offsets the engine adds to it (dropout, augmentation, ensemble members) are
    taken by numpy, torch and the store."""
    from engine.events import RunFinished
    from engine.recipe.config import MAX_SEED, Recipe, RunSpec
    from engine.training.loop import train

    recipe = Recipe.model_validate({"data": {"name": "blobs", "n_samples": 120},
                                    "model": {"hidden": [8], "dropout": 0.1, "ensemble": 2},
                                    "train": {"seed": MAX_SEED, "steps": 3, "batch_size": 20}})
    events = []
    train(RunSpec(recipe=recipe, variant="max seed"), events.append, device="cpu")
    assert isinstance(events[-1], RunFinished) and events[-1].status == "done", events[-1]
