"""Batched variants: every member of a batched group against its solo run, and the pieces against references.

* the stacked optimizers against ``torch.optim`` (float64, step by step, per-member hyperparameters);
* the stacked MLP's forward against each member's solo ``Net``; the per-sample losses against
  ``engine.recipe.losses``;
* whole runs: the event sequence and every metric of each member against ``engine.training.loop.train``
  on the same spec (an optimizer comparison, three seeds of one variant, a 2-D set, regression,
  a member that diverges, cancellation);
* ``plan``: what batches, what falls back (whitelist: unknown fields at non-default values too).
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F

from engine.batched import plan, train_batched, why_solo
from engine.batched.accel import FastPaths, tune_allocator
from engine.batched.losses import member_loss, per_sample_correct, per_sample_loss
from engine.batched.optim import RULE_ORDER, StackedOptimizer, rule_of
from engine.batched.plan import MAX_GROUP
from engine.batched.stacked import MemberDropout, StackedMLP
from engine.events import Diagnostics, EvalMetrics, Message, RunFinished, RunStarted, StepMetrics
from engine.models import build_model
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.recipe.losses import accuracy, build_loss
from engine.recipe.optim import build_optimizer
from engine.recipe.schedules import LRSchedule
from engine.runs.executor import WorkUnit, run_unit, train_one, trainer_for
from engine.training.loop import train

# ------------------------------------------------------------------------------ the optimizers


OPTIMIZER_SPECS = [
    TrainSpec(optimizer="sgd", lr=0.1),
    TrainSpec(optimizer="sgd", lr=0.03, weight_decay=0.01, schedule="step", step_size=3, gamma=0.5),
    TrainSpec(optimizer="momentum", lr=0.05, momentum=0.9),
    TrainSpec(optimizer="momentum", lr=0.02, momentum=0.5, dampening=0.3, weight_decay=1e-3),
    TrainSpec(optimizer="nesterov", lr=0.05, momentum=0.9, schedule="cosine", warmup_steps=2),
    TrainSpec(optimizer="nesterov", lr=0.01, momentum=0.7, weight_decay=0.02),
    TrainSpec(optimizer="adagrad", lr=0.1),
    TrainSpec(optimizer="adagrad", lr=0.05, adagrad_lr_decay=0.1, eps=1e-6, weight_decay=0.01),
    TrainSpec(optimizer="rmsprop", lr=1e-2, alpha=0.9),
    TrainSpec(optimizer="rmsprop", lr=3e-3, eps=1e-6, weight_decay=0.01, schedule="exponential", gamma=0.9),
    TrainSpec(optimizer="rmsprop", lr=1e-3, rmsprop_momentum=0.9),
    TrainSpec(optimizer="rmsprop", lr=2e-3, rmsprop_momentum=0.5, alpha=0.95),
    TrainSpec(optimizer="adam", lr=1e-2),
    TrainSpec(optimizer="adam", lr=3e-3, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.01),
    TrainSpec(optimizer="adamw", lr=1e-2, weight_decay=0.05, schedule="inverse_time", decay=0.1),
    TrainSpec(optimizer="adamw", lr=1e-2, amsgrad=True, weight_decay=0.01),
    TrainSpec(optimizer="adam", lr=5e-3, amsgrad=True, beta2=0.9),
]


def _sorted_by_rule(specs: list[TrainSpec]) -> list[TrainSpec]:
    return sorted(specs, key=lambda t: RULE_ORDER.index(rule_of(t)))


@pytest.mark.parametrize("device_step", [False, True])
def test_stacked_optimizers_match_torch_optim(device_step: bool) -> None:
    """Every rule, with hyperparameters that differ within a block, equals torch.optim step by step."""
    specs = _sorted_by_rule(OPTIMIZER_SPECS)
    steps, n_params = 8, 7
    g = torch.Generator().manual_seed(0)
    start = torch.randn(len(specs), n_params, generator=g, dtype=torch.float64)
    grads_by_step = torch.randn(steps, len(specs), n_params, generator=g, dtype=torch.float64)
    params, grads = start.clone(), torch.zeros_like(start)
    stacked = StackedOptimizer(params, grads, specs, [LRSchedule(t, steps) for t in specs], device_step=device_step)
    for k in range(steps):
        grads.copy_(grads_by_step[k])
        stacked.step(k)
    for m, spec in enumerate(specs):
        p = torch.nn.Parameter(start[m].clone())
        opt = build_optimizer([p], spec)
        schedule = LRSchedule(spec, steps)
        for k in range(steps):
            p.grad = grads_by_step[k, m].clone()
            schedule.apply(opt, k)
            opt.step()
        tol = 1e-6 if device_step else 1e-12  # device_step keeps 1 - beta^t in float32
        torch.testing.assert_close(params[m], p.detach(), rtol=tol, atol=tol, msg=f"{spec.optimizer} {m}")


def test_stacked_optimizer_needs_rule_blocks() -> None:
    specs = [TrainSpec(optimizer="adam"), TrainSpec(optimizer="sgd"), TrainSpec(optimizer="adam")]
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="ordered by update rule"):
        StackedOptimizer(x, x.clone(), specs, [LRSchedule(t, 5) for t in specs])


# --------------------------------------------------------------------- the stacked model, losses


@pytest.mark.filterwarnings("ignore:grad and param do not obey")
@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec(hidden=[16, 16], activation="relu"),
        ModelSpec(hidden=[12, 12, 12], activation="tanh", residual=True, init="kaiming_normal"),
        ModelSpec(hidden=[10], activation="maxout", maxout_pieces=3),
        ModelSpec(kind="linear"),
        ModelSpec(hidden=[8, 8], activation="gelu", init="sparse"),
    ],
)
def test_stacked_mlp_forward_and_gradients_match_solo(spec: ModelSpec) -> None:
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_model(spec, (1, 3, 4), 5))
    stacked = StackedMLP(models, spec, "cpu")
    x = torch.randn(6, 1, 3, 4)
    y = torch.randint(0, 5, (6,))
    out = stacked(x)
    per_member_x = torch.randn(3, 6, 1, 3, 4)
    out_each = stacked(per_member_x)
    F.cross_entropy(out.reshape(-1, 5), y.repeat(3), reduction="sum").backward()
    for m, model in enumerate(models):
        torch.testing.assert_close(out[m], model(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out_each[m], model(per_member_x[m]), rtol=1e-5, atol=1e-6)
        F.cross_entropy(model(x), y, reduction="sum").backward()
        solo_grad = torch.cat([p.grad.flatten() for p in model.parameters()])
        torch.testing.assert_close(stacked.grads[m], solo_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:grad and param do not obey")
@pytest.mark.parametrize("spec", [
    ModelSpec(hidden=[16, 16], norm="batch"),
    ModelSpec(hidden=[12, 12], norm="layer", residual=True, activation="tanh"),
    ModelSpec(hidden=[8], norm="batch", activation="maxout", maxout_pieces=2),
])
@pytest.mark.parametrize("shared", [True, False])
def test_stacked_norms_match_solo_in_training_and_eval(spec: ModelSpec, shared: bool) -> None:
    """Batch statistics per member in training (and running statistics updated as the solo
    BatchNorm updates them), running statistics in evaluation; gains and shifts per member."""
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = build_model(spec, (20,), 4)
        with torch.no_grad():  # gains and shifts away from 1 and 0, so a mix-up of members shows
            for p in model.parameters():
                p.add_(0.2 * torch.randn_like(p))
        models.append(model)
    stacked = StackedMLP(models, spec, "cpu")
    xs = [torch.randn(32, 20) if shared else torch.randn(3, 32, 20) for _ in range(2)]
    y = torch.randint(0, 4, (32,))
    for x in xs:  # two training passes: the running statistics move twice
        out = stacked(x, train=True)
    F.cross_entropy(out.reshape(-1, 4), y.repeat(3), reduction="sum").backward()
    evaluated = stacked(xs[0])
    copy = build_model(spec, (20,), 4)
    for m, model in enumerate(models):
        model.train()
        for x in xs:
            solo_out = model(x if shared else x[m])
        torch.testing.assert_close(out[m], solo_out, rtol=1e-5, atol=1e-6)
        F.cross_entropy(solo_out, y, reduction="sum").backward()
        solo_grad = torch.cat([p.grad.flatten() for p in model.parameters()])
        torch.testing.assert_close(stacked.grads[m], solo_grad, rtol=1e-5, atol=1e-5)
        model.eval()
        torch.testing.assert_close(evaluated[m], model(xs[0] if shared else xs[0][m]), rtol=1e-5, atol=1e-6)
        stacked.load_member(m, copy)  # parameters and running statistics
        for (name, a), b in zip(copy.state_dict().items(), model.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse_onehot", "mse_softmax", "hinge", "mse", "l1", "smooth_l1"])
def test_per_sample_losses_average_to_the_solo_loss(loss: str) -> None:
    classify = loss in ("cross_entropy", "mse_onehot", "mse_softmax", "hinge")
    spec = TrainSpec(loss=loss, hinge_margin=0.7, smooth_l1_beta=0.5)
    task, n_classes = ("classification", 4) if classify else ("regression", 0)
    per_sample = per_sample_loss(spec, task, n_classes)
    solo = build_loss(spec, task, n_classes)
    out = torch.randn(3, 9, 4 if classify else 1)
    y = torch.randint(0, 4, (9,)) if classify else torch.randn(9)
    ys = torch.randint(0, 4, (3, 9)) if classify else torch.randn(3, 9)
    for targets in (y, ys):
        values = per_sample(out, targets).mean(dim=1)
        for m in range(3):
            t = targets if targets.dim() == 1 else targets[m]
            torch.testing.assert_close(values[m], solo(out[m], t), rtol=1e-5, atol=1e-6)
            if classify:
                torch.testing.assert_close(per_sample_correct(out, targets)[m].mean(), accuracy(out[m], t))


# ------------------------------------------------------------------------ whole runs against solo


def _spec(variant: str, data: DataSpec, model: ModelSpec | None = None, **train) -> RunSpec:
    train.setdefault("steps", 40)
    train.setdefault("log_every", 5)
    train.setdefault("eval_every", 10)
    return RunSpec(recipe=Recipe(data=data, model=model or ModelSpec(hidden=[24, 24], init="kaiming_normal"),
                                 train=TrainSpec(**train)), variant=variant, preset="test")


RANDOM = DataSpec(name="random", n_samples=500, n_features=12, n_classes=4)


def _by_run(events: list) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for e in events:
        out[e.run_id].append(e)
    return out


def _close(a: float, b: float, key: str) -> bool:
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return (math.isinf(a) and math.isinf(b)) or (math.isnan(a) and math.isnan(b))
    if key.endswith("acc") or key.endswith("acc_gap"):
        return abs(a - b) <= 0.02  # a sample or two may flip
    if "seconds" in key or "sec_per" in key:
        return True  # timings
    return abs(a - b) <= 2e-3 * max(abs(a), abs(b)) + 2e-4


def _assert_dicts_close(batched: dict, solo: dict, where: str) -> None:
    assert list(batched) == list(solo), f"{where}: keys {list(batched)} != {list(solo)}"
    for key, value in solo.items():
        other = batched[key]
        if isinstance(value, float) and isinstance(other, float):
            assert _close(other, value, key), f"{where}: {key} batched {other} solo {value}"
        elif isinstance(value, dict):
            _assert_dicts_close(other, value, f"{where}.{key}")
        elif isinstance(value, list) and key not in ("act_hist", "grad_hist", "tiles", "grid", "points"):
            assert len(other) == len(value), f"{where}: {key}"


def assert_matches_solo(specs: list[RunSpec], stops=None, **kw) -> tuple[list[RunFinished], list[RunFinished]]:
    """Train `specs` batched and each solo; every member's events must match its solo run's."""
    ids = [f"run{i}" for i in range(len(specs))]
    batched_events: list = []
    results = train_batched(specs, batched_events.append, stops if stops is not None else (lambda: False),
                            run_ids=ids, **kw)
    per_run = _by_run(batched_events)
    solo_results = []
    for i, (spec, run_id) in enumerate(zip(specs, ids, strict=True)):
        solo_events: list = []
        stop = stops[i] if isinstance(stops, list) else None
        solo_results.append(train(spec, solo_events.append, stop.reset() if stop else (lambda: False),
                                  run_id=run_id, device=kw.get("device", "cpu")))
        mine = per_run[run_id]
        assert [type(e).__name__ for e in mine] == [type(e).__name__ for e in solo_events], spec.variant
        for b, s in zip(mine, solo_events, strict=True):
            where = f"{spec.variant} {type(s).__name__} step {getattr(s, 'step', '')}"
            if isinstance(s, RunStarted):
                assert (b.variant, b.seed, b.n_params, b.total_steps, b.steps_per_epoch) == (
                    s.variant, s.seed, s.n_params, s.total_steps, s.steps_per_epoch)
                assert b.spec == s.spec
            elif isinstance(s, StepMetrics):
                assert (b.step, b.epoch, b.lr) == (s.step, s.epoch, s.lr), where
                assert _close(b.train_loss, s.train_loss, "train_loss"), f"{where}: {b.train_loss} {s.train_loss}"
            elif isinstance(s, EvalMetrics):
                assert (b.step, b.epoch) == (s.step, s.epoch), where
                _assert_dicts_close(b.metrics, s.metrics, where)
            elif isinstance(s, Diagnostics):
                assert b.step == s.step, where
                _assert_dicts_close(b.layers, s.layers, where)
                _assert_dicts_close(b.summary, s.summary, where)
            elif isinstance(s, RunFinished):
                assert (b.status, b.step, b.reason) == (s.status, s.step, s.reason), where
                assert list(b.final) == list(s.final), where
                # blown-up weights: which class an argmax picks among infinite logits depends on the
                # kernel (on CUDA batched and solo differ), so such a run's accuracies are not compared
                blown = not math.isfinite(s.final.get("train_loss", 0.0))
                keys = [k for k in s.final if not (blown and k.endswith("_acc"))]
                _assert_dicts_close({k: b.final[k] for k in keys}, {k: s.final[k] for k in keys}, where + " final")
                _assert_dicts_close(b.best, s.best, where + " best")
                assert sorted(b.summary) == sorted(s.summary), where
            elif type(s).__name__ == "Boundary":
                assert (b.step, b.x_range, b.y_range, b.points, b.raw, b.n_classes) == (
                    s.step, s.x_range, s.y_range, s.points, s.raw, s.n_classes), where
                cells = [a == c for ra, rc in zip(b.grid, s.grid, strict=True) for a, c in zip(ra, rc, strict=True)]
                assert sum(cells) >= 0.98 * len(cells), where
            elif isinstance(s, Message):
                assert (b.text, b.level) == (s.text, s.level), where
            else:
                assert b.step == s.step, where
    return results, solo_results


def test_optimizer_comparison_matches_solo_runs() -> None:
    """sgd / momentum / nesterov / adam / adamw / rmsprop / adagrad at different LRs, one model."""
    variants = [("SGD", dict(optimizer="sgd", lr=0.1)), ("Momentum", dict(optimizer="momentum", lr=0.05)),
                ("Nesterov", dict(optimizer="nesterov", lr=0.03, weight_decay=1e-3)),
                ("Adam", dict(optimizer="adam", lr=1e-2)), ("AdamW", dict(optimizer="adamw", lr=3e-3, weight_decay=0.01)),
                ("RMSProp", dict(optimizer="rmsprop", lr=1e-3)), ("AdaGrad", dict(optimizer="adagrad", lr=0.05)),
                ("SGD cosine", dict(optimizer="sgd", lr=0.2, schedule="cosine", warmup_steps=5))]
    specs = [_spec(name, RANDOM, **kw) for name, kw in variants]
    assert plan(specs) == [list(range(len(specs)))]
    results, _ = assert_matches_solo(specs)
    assert [r.status for r in results] == ["done"] * len(specs)


def test_three_seeds_of_one_variant_each_keep_their_own_data() -> None:
    specs = [_spec("Adam", RANDOM, optimizer="adam", lr=1e-2, seed=s, l2=1e-3, clip_norm=1.0) for s in (0, 1, 2)]
    results, solo = assert_matches_solo(specs)
    assert len({r.final["train_loss"] for r in results}) == 3  # different data, different runs


def test_two_dimensional_set_with_boundary_events_and_penalties() -> None:
    data = DataSpec(name="spiral", n_samples=300)
    specs = [_spec("l1", data, optimizer="momentum", lr=0.05, l1=1e-4),
             _spec("clip", data, optimizer="momentum", lr=0.05, clip_value=0.05, seed=1),
             _spec("plateau", data, optimizer="sgd", lr=0.2, schedule="plateau", plateau_patience=1, gamma=0.5)]
    assert_matches_solo(specs)


def test_dropout_members_draw_their_solo_runs_masks() -> None:
    """Dropout rates differ per member (0 too), with input dropout, residual blocks and seeds of
    their own: each member's masks come from its own generator in its solo run's order, so the
    runs match step for step (the manual step is off: autograd through the masks)."""
    model = ModelSpec(hidden=[24, 24], init="kaiming_normal", residual=True)
    specs = [_spec("none", RANDOM, model, optimizer="adam", lr=1e-2),
             _spec("p0.2", RANDOM, model.model_copy(update={"dropout": 0.2}), optimizer="adam", lr=1e-2),
             _spec("p0.5", RANDOM, model.model_copy(update={"dropout": 0.5}), optimizer="sgd", lr=0.1),
             _spec("in0.2 s1", RANDOM, model.model_copy(update={"dropout": 0.3, "input_dropout": 0.2}),
                   optimizer="adam", lr=1e-2, seed=1)]
    assert plan(specs) == [[0, 1, 2, 3]]
    batched, solo = assert_matches_solo(specs)
    assert batched[1].final["train_loss"] != batched[0].final["train_loss"]  # the masks did something


def test_norm_groups_match_solo_runs() -> None:
    """BatchNorm members (their own learning rates, optimizers and seeds) and LayerNorm members
    train batched, with every event as solo, BatchNorm's running statistics included (they decide
    every evaluation)."""
    for norm in ("batch", "layer"):
        model = ModelSpec(hidden=[24, 24], init="kaiming_normal", norm=norm)
        specs = [_spec("sgd", RANDOM, model, optimizer="sgd", lr=0.5),
                 _spec("adam", RANDOM, model, optimizer="adam", lr=1e-2, weight_decay=1e-3),
                 _spec("sgd s1", RANDOM, model, optimizer="momentum", lr=0.1, seed=1, l2=1e-3)]
        assert plan(specs) == [[0, 1, 2]]
        batched, _ = assert_matches_solo(specs)
        assert [r.status for r in batched] == ["done"] * 3


def test_dropconnect_members_draw_their_solo_runs_masks() -> None:
    """DropConnect rates differ per member (0 too) beside dropout: each member's weight masks and
    unit masks come from its own generator in its solo run's order. Both step paths: the manual
    one (no norm) and autograd (with LayerNorm)."""
    for norm in ("none", "layer"):
        model = ModelSpec(hidden=[24, 24], init="kaiming_normal", norm=norm)
        specs = [_spec("plain", RANDOM, model, optimizer="adam", lr=1e-2),
                 _spec("dc0.3", RANDOM, model.model_copy(update={"dropconnect": 0.3}), optimizer="adam", lr=1e-2),
                 _spec("dc0.5+do", RANDOM, model.model_copy(update={"dropconnect": 0.5, "dropout": 0.2}),
                       optimizer="sgd", lr=0.1, seed=1)]
        assert plan(specs) == [[0, 1, 2]]
        batched, _ = assert_matches_solo(specs)
        assert batched[1].final["train_loss"] != batched[0].final["train_loss"]


def test_early_stopping_members_stop_on_their_own() -> None:
    """Members with early stopping (restoring their best weights or not, BatchNorm's running
    statistics included) end when their patience runs out, with the solo run's events, while the
    others train on."""
    model = ModelSpec(hidden=[48, 48], init="kaiming_normal", norm="batch")
    common = dict(steps=200, eval_every=10, optimizer="momentum", lr=0.1)  # Adam turns the pre-BN bias's
    # rounding-noise gradient into full steps, which moves eval-mode figures by ~1e-3 between paths
    specs = [_spec("es restore", RANDOM, model, early_stopping=True, patience=2, **common),
             _spec("es keep", RANDOM, model, early_stopping=True, patience=3, restore_best=False, seed=1, **common),
             _spec("no es", RANDOM, model, **common)]
    assert plan(specs) == [[0, 1, 2]]
    batched, solo = assert_matches_solo(specs)
    assert [r.status for r in batched] == ["early-stopped", "early-stopped", "done"]
    assert batched[0].step < 200 and batched[0].step != batched[1].step


def test_residual_and_plain_members_share_a_group() -> None:
    """The skip connection has no parameters: plain and residual members of one architecture
    train together (a per-member mask on the skip), on the manual step and through autograd."""
    for norm in ("none", "batch"):
        model = ModelSpec(hidden=[24, 24, 24], init="kaiming_normal", norm=norm)
        specs = [_spec("plain", RANDOM, model, optimizer="momentum", lr=0.05),
                 _spec("residual", RANDOM, model.model_copy(update={"residual": True}), optimizer="momentum",
                       lr=0.05),
                 _spec("residual s1", RANDOM, model.model_copy(update={"residual": True, "dropout": 0.1}),
                       optimizer="nesterov", lr=0.03, seed=1)]  # not Adam with BatchNorm: see early stopping
        assert plan(specs) == [[0, 1, 2]]
        batched, _ = assert_matches_solo(specs)
        assert batched[0].final["train_loss"] != batched[1].final["train_loss"]


def test_members_with_different_activations_share_a_group(caplog) -> None:
    """Sigmoid, tanh, ReLU and leaky ReLU members of one architecture train together (each on its
    own activation; diagnostics, the saturation and histogram ranges included, as solo); Maxout's
    wider layers make another group."""
    model = ModelSpec(hidden=[20, 20], init="kaiming_normal")
    acts = [("sigmoid", {}), ("tanh", {}), ("relu", {}), ("leaky", {"activation": "leaky_relu", "leaky_slope": 0.2})]
    specs = [_spec(name, RANDOM, model.model_copy(update=kw or {"activation": name}), optimizer="momentum", lr=0.05)
             for name, kw in acts]
    specs.append(_spec("maxout", RANDOM, model.model_copy(update={"activation": "maxout"}), optimizer="momentum",
                       lr=0.05))
    assert plan(specs) == [[0, 1, 2, 3], [4]]
    for residual in (False, True):  # the manual step, then autograd (dropout)
        group = [s.model_copy(update={"recipe": s.recipe.model_copy(update={"model": s.recipe.model.model_copy(
            update={"residual": residual, "dropout": 0.1 if residual else 0.0})})}) for s in specs[:4]]
        with caplog.at_level("INFO", logger="engine.batched.train"):
            batched, _ = assert_matches_solo(group)
        assert len({r.final["train_loss"] for r in batched}) == 4
        assert "differ" not in caplog.text  # the stacked diagnostics passed their checks


def test_members_with_different_preprocessing_share_a_group() -> None:
    """Data settings that keep the shapes (the preprocessing, the noise) may differ within a group:
    each member trains and is evaluated on its own dataset, as solo."""
    data = DataSpec(name="mnist1d", n_samples=1200)
    specs = [_spec(pre, data.model_copy(update={"preprocess": pre}), optimizer="momentum", lr=0.02)
             for pre in ("none", "standardize", "zca_whiten")]
    specs.append(_spec("std s1", data.model_copy(update={"preprocess": "standardize"}), optimizer="adam",
                       lr=1e-3, seed=1))
    assert plan(specs) == [[0, 1, 2, 3]]
    batched, _ = assert_matches_solo(specs)
    assert len({r.final["train_loss"] for r in batched}) == 4


def test_a_group_whose_datasets_would_not_fit_trains_run_by_run(monkeypatch, tmp_path) -> None:
    """Stacking every member's dataset copies them all: past the memory budget the group refuses to
    start, and the runner trains its runs one by one (each as solo)."""
    import engine.batched.train as batched_train
    from engine.runs.inline import run_inline

    monkeypatch.setattr(batched_train, "_stack_budget", lambda dev: 1000)
    specs = [_spec(f"s{k}", RANDOM, optimizer="sgd", lr=0.05, seed=k) for k in range(2)]
    with pytest.raises(ValueError, match="datasets would take"):
        train_batched(specs, lambda e: None)
    results = run_inline(specs, store=tmp_path, device="cpu")
    assert [r.status for r in results] == ["done", "done"]
    assert train_batched(specs[:1], lambda e: None)[0].status == "done"  # one dataset: nothing to stack


def test_datasets_that_cannot_be_stacked_are_refused() -> None:
    from engine.batched.train import _mismatch
    from engine.data import load_data

    small, big = (load_data(DataSpec(name="spiral", n_samples=n), seed=0) for n in (300, 400))
    assert _mismatch([small, small]) is None
    assert "split sizes" in _mismatch([small, big])
    assert "→" in _mismatch([small, load_data(RANDOM, seed=0)])


def test_augmenting_members_draw_their_solo_runs_transforms() -> None:
    """Each member augments its own rows of the batch with its own augmenter and stream, as solo
    (mnist1d's shift and noise; a member without augmentation sees the batch as it is)."""
    data = DataSpec(name="mnist1d", n_samples=1200, preprocess="standardize")
    specs = [_spec("none", data, optimizer="adam", lr=1e-3),
             _spec("noise", data, optimizer="adam", lr=1e-3, augment=["noise"], augment_noise=0.5),
             _spec("shift s1", data, optimizer="momentum", lr=0.02, augment=["shift", "scale"], augment_shift=4,
                   seed=1)]
    assert plan(specs) == [[0, 1, 2]]
    batched, _ = assert_matches_solo(specs)
    assert len({r.final["train_loss"] for r in batched}) == 3


def test_ema_members_report_their_averaged_weights() -> None:
    """Members with an EMA of their weights (their own decays; BatchNorm statistics copied, not
    averaged) report the ema_ figures of their solo runs; a member without one reports none."""
    model = ModelSpec(hidden=[24, 24], init="kaiming_normal", norm="batch")
    specs = [_spec("ema 0.9", RANDOM, model, optimizer="momentum", lr=0.05, ema=0.9),
             _spec("plain", RANDOM, model, optimizer="momentum", lr=0.05),
             _spec("ema 0.99 s1", RANDOM, model, optimizer="sgd", lr=0.1, ema=0.99, seed=1)]
    assert plan(specs) == [[0, 1, 2]]
    batched, _ = assert_matches_solo(specs)
    assert "ema_val_loss" in batched[0].final and "ema_test_acc" in batched[2].final
    assert not any(k.startswith("ema_") for k in batched[1].final)


def test_regression_with_extra_metrics() -> None:
    """Members with different losses (and smooth-L1 betas) train as one group, each on its own loss."""
    data = DataSpec(name="regression_outliers")
    model = ModelSpec(hidden=[16], activation="tanh")
    specs = [_spec(f"{loss}", data, model, loss=loss, optimizer="adam", lr=1e-2) for loss in ("mse", "l1", "smooth_l1")]
    specs.append(_spec("smooth beta 0.2", data, model, loss="smooth_l1", smooth_l1_beta=0.2, optimizer="sgd", lr=0.05))
    assert plan(specs) == [[0, 1, 2, 3]]
    assert_matches_solo(specs)


def test_classification_losses_share_a_group() -> None:
    """Cross-entropy, MSE on softmax or on logits and hinge members of one network train together
    (the loss-functions preset): the manual step takes each loss on its own members' rows."""
    specs = [_spec("ce", RANDOM, optimizer="momentum", lr=0.05),
             _spec("mse softmax", RANDOM, loss="mse_softmax", optimizer="momentum", lr=0.05),
             _spec("mse logits", RANDOM, loss="mse_onehot", optimizer="momentum", lr=0.02),
             _spec("hinge", RANDOM, loss="hinge", hinge_margin=0.5, optimizer="adam", lr=1e-2, seed=1)]
    assert plan(specs) == [[0, 1, 2, 3]]
    batched, _ = assert_matches_solo(specs)
    assert len({r.final["train_loss"] for r in batched}) == 4


def test_one_member_diverges_while_the_others_go_on() -> None:
    specs = [_spec("ok", RANDOM, optimizer="sgd", lr=0.05),
             _spec("boom", RANDOM, optimizer="sgd", lr=50.0, diverge_threshold=20.0),
             _spec("ok2", RANDOM, optimizer="adam", lr=1e-2)]
    results, solo = assert_matches_solo(specs)
    assert [r.status for r in results] == ["diverged" if s.variant == "boom" else "done" for s in specs]
    assert results[1].step == solo[1].step < 40
    assert math.isinf(results[1].final["train_loss"])


def test_the_stack_drops_finished_members(monkeypatch) -> None:
    """Once half the members have ended, the stack shrinks to the others (their parameters,
    optimizer state, norms' statistics, dropout streams, EMA rows and per-member settings move
    along), and every member still matches its solo run."""
    from engine.batched.stacked import StackedMLP

    kept: list[list[int]] = []
    keep = StackedMLP.keep
    monkeypatch.setattr(StackedMLP, "keep", lambda self, rows: (kept.append(list(rows)), keep(self, rows))[1])
    for model in (ModelSpec(hidden=[24, 24], init="kaiming_normal", norm="batch"),
                  ModelSpec(hidden=[24, 24], init="kaiming_normal", dropout=0.2)):
        specs = [_spec("boom", RANDOM, model, optimizer="sgd", lr=50.0, diverge_threshold=20.0),
                 _spec("ok", RANDOM, model, optimizer="momentum", lr=0.05, clip_norm=1.0, l2=1e-3),
                 _spec("boom s1", RANDOM, model, optimizer="sgd", lr=80.0, diverge_threshold=20.0, seed=1),
                 _spec("ok s1", RANDOM, model, optimizer="nesterov", lr=0.03, seed=1, clip_value=0.5, ema=0.9)]
        kept.clear()
        results, solo = assert_matches_solo(specs)
        assert [r.status for r in results] == ["diverged", "done", "diverged", "done"]
        assert len(kept) == 1 and len(kept[0]) == 2  # the two that go on


class StopAfter:
    """A should_stop that says yes from its n-th call on (and can start over for the solo run)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.n

    def reset(self) -> StopAfter:
        self.calls = 0
        return self


def test_cancelling_one_member() -> None:
    specs = [_spec(f"v{i}", RANDOM, optimizer="momentum", lr=0.02 * (i + 1)) for i in range(3)]
    stops = [StopAfter(10**9), StopAfter(13), StopAfter(10**9)]
    results, _ = assert_matches_solo(specs, stops)
    assert [r.status for r in results] == ["done", "cancelled", "done"]
    assert results[1].step == 13 and results[1].reason == "cancelled at step 13"


def test_cancelling_half_the_group_between_log_reads_shrinks_the_stack() -> None:
    """Members cancelled at step 13 (between two reads of the losses, so unread losses move with
    the stack), with dropout, an early-stopping member and the written-out step; the others go on
    in a smaller stack, each as solo."""
    model = ModelSpec(hidden=[24, 24], init="kaiming_normal", dropout=0.1)
    specs = [_spec(f"v{i}", RANDOM, model, optimizer="momentum", lr=0.02 * (i + 1), seed=i % 2,
                   early_stopping=i == 3, patience=1) for i in range(4)]
    stops = [StopAfter(13), StopAfter(10**9), StopAfter(13), StopAfter(10**9)]
    results, _ = assert_matches_solo(specs, stops)
    assert [r.status for r in results][:3] == ["cancelled", "done", "cancelled"]


def test_a_group_of_surface_runs_trains_as_one_tensor() -> None:
    """Points on a 2-D function go to their own batched trainer (engine.surfaces, chosen by the
    executor), with one stop function per run: each ends as it would alone, a cancelled one at its step."""
    data = DataSpec(name="surface", surface="rosenbrock")
    specs = [RunSpec(recipe=Recipe(data=data, train=TrainSpec(optimizer=opt, lr=lr, steps=60, log_every=10)),
                     variant=opt, preset="t") for opt, lr in (("sgd", 1e-3), ("adam", 0.05), ("momentum", 1e-3))]
    assert plan(specs) == [[0, 1, 2]]
    stops = [StopAfter(10**9), StopAfter(25), StopAfter(10**9)]
    unit = WorkUnit(tuple(specs), ("a", "b", "c"))
    assert trainer_for(unit).name == "surfaces"
    results = run_unit(unit, lambda e: None, stops, device="cpu")
    assert [(r.status, r.step) for r in results] == [("done", 60), ("cancelled", 25), ("done", 60)]
    for spec, r in zip([specs[0], specs[2]], [results[0], results[2]], strict=True):
        assert train_one(spec, lambda e: None).final["loss"] == pytest.approx(r.final["loss"], rel=1e-9)


def test_one_stop_function_cancels_the_whole_group() -> None:
    specs = [_spec(f"v{i}", RANDOM, optimizer="sgd", lr=0.05) for i in range(2)]
    events: list = []
    results = train_batched(specs, events.append, StopAfter(7))
    assert [(r.status, r.step) for r in results] == [("cancelled", 7), ("cancelled", 7)]
    assert isinstance(events[-1], RunFinished)


def test_fast_paths_on_cpu() -> None:
    specs = [_spec(f"v{i}", RANDOM, optimizer="adam", lr=1e-2, seed=i) for i in range(2)]
    plain = train_batched(specs, lambda e: None)
    events: list = []
    graphs = train_batched(specs, events.append, fast=FastPaths(cuda_graphs=True))
    assert any(isinstance(e, Message) and "CUDA graphs need a CUDA device" in e.text for e in events)
    assert [r.final["train_loss"] for r in graphs] == [r.final["train_loss"] for r in plain]
    bf16 = train_batched(specs, lambda e: None, fast=FastPaths(bf16=True))
    for a, b in zip(bf16, plain, strict=True):
        assert a.status == "done" and abs(a.final["train_loss"] - b.final["train_loss"]) < 0.1 * b.final["train_loss"]


@pytest.mark.slow
def test_compiled_step_matches_eager() -> None:
    specs = [_spec(f"v{i}", RANDOM, optimizer="sgd", lr=0.05 * (i + 1)) for i in range(2)]
    plain = train_batched(specs, lambda e: None)
    compiled = train_batched(specs, lambda e: None, fast=FastPaths(compile=True))
    for a, b in zip(compiled, plain, strict=True):
        assert _close(a.final["train_loss"], b.final["train_loss"], "train_loss")


def test_fast_paths_parse() -> None:
    assert FastPaths.parse("bf16, compile") == FastPaths(bf16=True, compile=True)
    assert FastPaths.parse("") == FastPaths() and not FastPaths().any
    with pytest.raises(ValueError, match="unknown fast path"):
        FastPaths.parse("turbo")
    assert isinstance(tune_allocator(), bool)


# ------------------------------------------------------------------------------------------ plan


def test_plan_groups_by_architecture_and_data() -> None:
    a = _spec("a", RANDOM, optimizer="sgd")
    b = _spec("b", RANDOM, ModelSpec(hidden=[24, 24], init="xavier_normal"), optimizer="adam", lr=1e-3, seed=3)
    wide = _spec("wide", RANDOM, ModelSpec(hidden=[48, 48]))
    other_data = _spec("digits", DataSpec(name="digits"))
    longer = _spec("longer", RANDOM, steps=80)
    assert plan([a, wide, b, other_data, longer, a]) == [[0, 2, 5], [1], [3], [4]]


@pytest.mark.parametrize(
    ("model", "train", "words"),
    [
        (ModelSpec(kind="cnn"), {}, "model kind"),
        (ModelSpec(), {"optimizer": "lbfgs"}, "optimizer 'lbfgs'"),
        (ModelSpec(), {"mixup": 0.2}, "mixup"),
        (ModelSpec(), {"optimizer": "nesterov", "momentum": 0.0}, "invalid settings"),
    ],
)
def test_unsupported_features_train_solo(model: ModelSpec, train: dict, words: str) -> None:
    spec = _spec("x", RANDOM, model, **train)
    reason = why_solo(spec)
    assert reason is not None and words in reason
    assert plan([spec, spec]) == [[0], [1]]


def test_fields_the_batched_trainer_does_not_know_fall_back() -> None:
    """Whitelist: a field added to the config later trains solo unless it keeps its default."""

    class NewTrain(TrainSpec):
        brand_new_feature: float = 0.0

    base = _spec("x", RANDOM)
    with_default = base.model_copy(update={"recipe": Recipe.model_construct(
        data=RANDOM, model=base.recipe.model, train=NewTrain(steps=40))})
    with_value = base.model_copy(update={"recipe": Recipe.model_construct(
        data=RANDOM, model=base.recipe.model, train=NewTrain(steps=40, brand_new_feature=1.0))})
    assert why_solo(with_default) is None
    assert "train.brand_new_feature" in (why_solo(with_value) or "")


def test_plan_splits_big_groups() -> None:
    specs = [_spec(f"v{i}", RANDOM, lr=0.01 * (i + 1)) for i in range(MAX_GROUP + 3)]
    groups = plan(specs)
    assert [len(g) for g in groups] == [MAX_GROUP, 3]


def test_train_batched_refuses_a_mixed_group() -> None:
    with pytest.raises(ValueError, match="cannot share one batched model"):
        train_batched([_spec("a", RANDOM), _spec("b", RANDOM, steps=80)], lambda e: None)
    with pytest.raises(ValueError, match="cannot train batched"):
        train_batched([_spec("a", RANDOM, ModelSpec(kind="cnn"))], lambda e: None)


# ------------------------------------------------------------------------------ through the runner


def test_run_inline_batches_groups_and_stores_every_member(tmp_path) -> None:
    from engine.runs.inline import run_inline
    from engine.runs.store import RunStore

    specs = [_spec("SGD", RANDOM, optimizer="sgd", lr=0.05), _spec("Adam", RANDOM, optimizer="adam", lr=1e-2),
             _spec("Dropout", RANDOM, ModelSpec(hidden=[24, 24], dropout=0.2)),
             _spec("Adam s1", RANDOM, optimizer="adam", lr=1e-2, seed=1)]
    events: list = []
    results = run_inline(specs, events.append, None, "cpu", tmp_path, comparison="batched")
    assert [r.status for r in results] == ["done"] * 4
    per_run = _by_run(events)
    with RunStore(tmp_path) as store:
        for r in results:
            assert store.events(r.run_id) == per_run[r.run_id]
            assert store.get_run(r.run_id).status == "done"
    for spec, r in zip(specs, results, strict=True):
        solo = train(spec, lambda e: None)
        _assert_dicts_close(r.final, solo.final, spec.variant)


def test_a_group_that_cannot_start_runs_solo_with_each_runs_error(tmp_path) -> None:
    from engine.runs.inline import run_inline

    specs = [_spec(f"v{i}", RANDOM, loss="mse", lr=0.01 * (i + 1)) for i in range(2)]  # regression loss
    results = run_inline(specs, None, None, "cpu", tmp_path)
    assert [r.status for r in results] == ["failed", "failed"]
    assert all("regression loss" in r.reason for r in results)


def test_work_units_split_groups_for_workers() -> None:
    from engine.batched.plan import work_units

    specs = [_spec(f"v{i}", RANDOM, lr=0.01 * (i + 1)) for i in range(8)]
    assert work_units(specs, 1) == [list(range(8))]
    assert work_units(specs, 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert work_units(specs[:3], 2) == [[0, 1, 2]]  # too small to split
    assert work_units(specs, 2, batch=False) == [[i] for i in range(8)]
    solo = [_spec(f"lbfgs{i}", RANDOM, optimizer="lbfgs") for i in range(3)]
    assert work_units(specs + solo, 2) == [[0, 1, 2, 3], [4, 5, 6, 7], [8], [9], [10]]  # 4 + 4 + 3 solo, not 8
    # 9 runs on 2 workers: a share is 5, so the group of 6 is halved; biggest units first
    assert work_units(solo + specs[:6], 2) == [[3, 4, 5], [6, 7, 8], [0], [1], [2]]
    assert work_units(solo + specs[:6], 1) == [[3, 4, 5, 6, 7, 8], [0], [1], [2]]


@pytest.mark.slow  # spawns a worker process (imports torch there): ~10 s of CPU
def test_runner_trains_a_group_in_one_worker_cancels_one_member(tmp_path) -> None:
    from engine.runs.runner import Runner

    specs = [_spec(f"v{i}", RANDOM, optimizer="momentum", lr=0.01 * (i + 1), steps=3000, eval_every=500)
             for i in range(3)]
    with Runner(specs, workers=1, store=tmp_path, device="cpu") as runner:
        assert runner.units == [[0, 1, 2]]
        victim = runner.run_ids[1]
        seen: list = []
        for event in runner.events():
            seen.append(event)
            if isinstance(event, StepMetrics) and event.run_id == victim and event.step >= 100:
                runner.cancel(victim)
    statuses = {r: e.status for r, e in runner.results().items()}
    assert statuses[victim] == "cancelled"
    assert [statuses[r] for r in runner.run_ids if r != victim] == ["done", "done"]


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec(hidden=[16, 12], activation="relu"),
        ModelSpec(hidden=[12, 12], activation="tanh", residual=True),
        ModelSpec(hidden=[10], activation="sigmoid", init="normal", init_std=2.0),
        ModelSpec(hidden=[10, 10], activation="leaky_relu"),
        ModelSpec(hidden=[6], activation="maxout"),
        ModelSpec(hidden=[8], activation="identity"),
        ModelSpec(kind="linear"),
        ModelSpec(hidden=[12, 12], activation="relu", norm="batch"),
        ModelSpec(hidden=[12, 12], activation="tanh", norm="layer", dropconnect=0.3),
    ],
)
@pytest.mark.filterwarnings("ignore:grad and param do not obey")
def test_stacked_health_matches_the_solo_functions(spec: ModelSpec) -> None:
    from engine.batched.diagnostics import differences, stacked_layer_health, stacked_update_ratios
    from engine.diagnostics.health import layer_health, update_ratios

    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_model(spec, (20,), 4))
    stacked = StackedMLP(models, spec, "cpu")
    probe = torch.randn(64, 20)
    before = stacked.params.clone()
    out = stacked(probe)
    out.pow(2).sum().backward()
    with torch.no_grad():
        stacked.params.sub_(0.01 * stacked.grads)
    names = models[0].layer_names()
    fast = stacked_layer_health(stacked, probe, [spec.activation] * 3, True, names)
    ratios = stacked_update_ratios(before, stacked, names)
    for m, model in enumerate(models):
        snapshot = {n: t.clone() for n, t in zip(names, [p for p in model.parameters() if p.dim() > 1], strict=False)}
        stacked.load_member(m, model, grads=True)
        solo = layer_health(model, probe, spec.activation)
        assert not differences(fast[m], solo), differences(fast[m], solo)
        assert not differences(ratios[m], update_ratios(snapshot, model))


@pytest.mark.filterwarnings("ignore:grad and param do not obey")
@pytest.mark.parametrize(
    ("model", "loss"),
    [
        (ModelSpec(hidden=[16, 12], activation="relu"), "cross_entropy"),
        (ModelSpec(hidden=[12, 12, 12], activation="tanh", residual=True), "mse_softmax"),
        (ModelSpec(hidden=[10], activation="sigmoid"), "mse_onehot"),
        (ModelSpec(hidden=[10, 10], activation="leaky_relu", residual=True), "hinge"),
        (ModelSpec(hidden=[9], activation="elu"), "cross_entropy"),
        (ModelSpec(hidden=[9, 9], activation="gelu"), "cross_entropy"),
        (ModelSpec(hidden=[8], activation="identity"), "hinge"),
        (ModelSpec(kind="linear"), "cross_entropy"),
        (ModelSpec(hidden=[8], activation="tanh"), "mse"),
        (ModelSpec(hidden=[8, 8], activation="relu"), "l1"),
        (ModelSpec(hidden=[8], activation="relu", residual=True), "smooth_l1"),
        (ModelSpec(hidden=[12, 12], activation="relu", residual=True, dropout=0.3, input_dropout=0.2),
         "cross_entropy"),
        (ModelSpec(hidden=[10], activation="tanh", dropout=0.5), "mse"),
        (ModelSpec(hidden=[10, 10], activation="relu", residual=True, dropconnect=0.4, dropout=0.2), "cross_entropy"),
    ],
)
@pytest.mark.parametrize("shared", [True, False])
def test_manual_backward_matches_autograd(model: ModelSpec, loss: str, shared: bool) -> None:
    from engine.batched.manual import ManualStep

    classify = loss in ("cross_entropy", "mse_onehot", "mse_softmax", "hinge")
    train = TrainSpec(loss=loss, hinge_margin=0.8, smooth_l1_beta=0.3)
    task, n_out = ("classification", 5) if classify else ("regression", 1)
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        # a residual model's middle member is plain: a group may mix them (a mask on the skip)
        member = model.model_copy(update={"residual": False}) if model.residual and seed == 1 else model
        models.append(build_model(member, (2, 6), n_out).double())
    stack = StackedMLP(models, model, "cpu")
    x = torch.randn(7, 2, 6, dtype=torch.float64) if shared else torch.randn(3, 7, 2, 6, dtype=torch.float64)
    y = torch.randint(0, 5, (7,)) if classify else torch.randn(7, dtype=torch.float64)
    scale = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    l1 = torch.tensor([0.0, 1e-2, 1e-3], dtype=torch.float64)
    l2 = torch.tensor([1e-2, 0.0, 0.5], dtype=torch.float64)
    rates = [0.0, model.dropout, model.dropout]  # member 0 without dropout, as a mixed group has

    def member_dropout() -> MemberDropout | None:  # the same seeds: the same masks for both paths
        if not (model.dropout or model.input_dropout or model.dropconnect):
            return None
        return MemberDropout([0.0, model.input_dropout, model.input_dropout], rates, [0, 1, 2], torch.device("cpu"),
                             [0.0, model.dropconnect, model.dropconnect])

    stack.dropout = member_dropout()
    manual_loss = ManualStep(stack, model, [train] * 3, task, l1, l2).step(x, y, scale)
    manual_grads = stack.grads.clone()
    stack.grads.zero_()
    stack.dropout = member_dropout()
    per = per_sample_loss(train, task, 5 if classify else 0)(stack(x, train=True), y).mean(dim=1)
    objective = ((per + stack.penalty(l1, l2)) * scale).sum()
    objective.backward()
    torch.testing.assert_close(manual_loss, per.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(manual_grads, stack.grads, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:grad and param do not obey")
def test_stacked_health_and_manual_step_with_an_activation_per_member() -> None:
    from engine.batched.diagnostics import differences, stacked_layer_health
    from engine.batched.manual import ManualStep
    from engine.diagnostics.health import layer_health

    base = ModelSpec(hidden=[12, 12])
    specs = [base.model_copy(update={"activation": a}) for a in ("sigmoid", "relu", "tanh", "relu", "elu")]
    models = []
    for seed, spec in enumerate(specs):
        torch.manual_seed(seed)
        models.append(build_model(spec, (6,), 4).double())
    stack = StackedMLP(models, base, "cpu", member_specs=specs)
    x, y = torch.randn(5, 30, 6, dtype=torch.float64), torch.randint(0, 4, (5, 30))
    scale = torch.ones(5, dtype=torch.float64)
    manual_loss = ManualStep(stack, base, [TrainSpec()] * 5, "classification", None, None).step(x, y, scale)
    manual_grads = stack.grads.clone()
    stack.grads.zero_()
    per = per_sample_loss(TrainSpec(), "classification", 4)(stack(x, train=True), y).mean(dim=1)
    per.sum().backward()
    torch.testing.assert_close(manual_loss, per.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(manual_grads, stack.grads, rtol=1e-10, atol=1e-12)
    names = models[0].layer_names()
    fast = stacked_layer_health(stack, x, stack.activations, True, names)
    shadow = build_model(specs[0], (6,), 4).double()  # one solo model takes each member in turn
    for m, spec in enumerate(specs):
        stack.load_member(m, shadow, grads=True)
        torch.testing.assert_close(shadow(x[m]), stack(x)[m])
        solo = layer_health(shadow, x[m], spec.activation)
        assert not differences(fast[m], solo), (spec.activation, differences(fast[m], solo))


@pytest.mark.filterwarnings("ignore:grad and param do not obey")
def test_manual_backward_with_a_loss_per_member() -> None:
    from engine.batched.manual import ManualStep

    model = ModelSpec(hidden=[10, 10], activation="relu")
    trains = [TrainSpec(loss="hinge", hinge_margin=0.7), TrainSpec(loss="cross_entropy"),
              TrainSpec(loss="mse_softmax"), TrainSpec(loss="cross_entropy")]
    models = []
    for seed in range(4):
        torch.manual_seed(seed)
        models.append(build_model(model, (6,), 5).double())
    stack = StackedMLP(models, model, "cpu")
    x, y = torch.randn(4, 9, 6, dtype=torch.float64), torch.randint(0, 5, (4, 9))
    scale = torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    manual_loss = ManualStep(stack, model, trains, "classification", None, None).step(x, y, scale)
    manual_grads = stack.grads.clone()
    stack.grads.zero_()
    per = member_loss(trains, "classification", 5, "cpu")(stack(x, train=True), y).mean(dim=1)
    (per * scale).sum().backward()
    for m, t in enumerate(trains):  # each member's loss is its own solo loss
        solo = per_sample_loss(t, "classification", 5)(stack(x)[m : m + 1], y[m : m + 1]).mean()
        torch.testing.assert_close(per[m], solo, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(manual_loss, per.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(manual_grads, stack.grads, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # spawns a worker process: ~10 s of CPU
def test_a_worker_that_dies_fails_its_whole_group(tmp_path) -> None:
    import os
    import signal

    from engine.runs.runner import Runner

    specs = [_spec(f"v{i}", RANDOM, optimizer="sgd", lr=0.01 * (i + 1), steps=100_000, eval_every=5000)
             for i in range(2)]
    with Runner(specs, workers=1, store=tmp_path, device="cpu") as runner:
        for event in runner.events():
            if isinstance(event, StepMetrics):
                os.kill(runner.pids[0], signal.SIGKILL)
                break
        rest = list(runner.events())
    results = runner.results()
    assert [results[r].status for r in runner.run_ids] == ["failed", "failed"]
    assert all("worker process died" in results[r].reason for r in runner.run_ids)
    assert sum(isinstance(e, RunFinished) for e in rest) == 2
