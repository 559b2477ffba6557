"""2-D surfaces: functions against autograd, the batched path optimizer against torch.optim, the trainer's events."""

from __future__ import annotations

import math

import pytest
import torch

from engine.recipe.config import DataSpec, Recipe, RunSpec, TrainSpec
from engine.surfaces.functions import SURFACE_NAMES, SURFACES, get_surface
from engine.surfaces.optim import BatchedAdagrad, BatchedAdam, BatchedRMSprop, BatchedSGD, PathOptimizer
from engine.surfaces.paths import (
    bench_surface_paths,
    make_gradient,
    overshoot,
    run_paths_batched,
    run_paths_torch,
    steps_to_escape,
    zigzag,
)

F64 = torch.float64


def _points(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(seed), dtype=F64) * 4 - 2


def test_config_lists_every_surface():
    from engine.recipe.config import SURFACE_FUNCTIONS

    assert tuple(SURFACE_FUNCTIONS) == SURFACE_NAMES


@pytest.mark.parametrize("name", SURFACE_NAMES)
def test_analytic_gradient_matches_autograd(name):
    fn = SURFACES[name]
    p = _points().requires_grad_(True)
    (auto,) = torch.autograd.grad(fn.value(p).sum(), p)
    torch.testing.assert_close(fn.grad(p.detach()), auto, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", SURFACE_NAMES)
def test_minima_are_critical_with_zero_loss_and_value_at_agrees(name):
    fn = SURFACES[name]
    for m in fn.minima:
        point = torch.tensor(m, dtype=F64)
        assert float(fn.value(point)) == pytest.approx(0.0, abs=1e-12)
        assert float(fn.grad(point).norm()) < 1e-6
        assert float(fn.dist_to_min(point)) < 1e-9
    for x, y in _points(5).tolist():
        assert fn.value_at(x, y) == pytest.approx(float(fn.value(torch.tensor([x, y], dtype=F64))), rel=1e-12)


def test_quadratic_kappa_and_unknown_name():
    fn = get_surface("quadratic", 10.0)
    assert float(fn.value(torch.tensor([0.0, 1.0], dtype=F64))) == pytest.approx(5.0)
    assert "10" in fn.formula
    with pytest.raises(ValueError, match="unknown surface"):
        get_surface("nope")


HPARAMS = [
    {"optimizer": "sgd", "lr": 1e-3},
    {"optimizer": "momentum", "lr": 1e-4, "momentum": 0.9},
    {"optimizer": "momentum", "lr": 1e-4, "momentum": 0.8, "dampening": 0.3},
    {"optimizer": "nesterov", "lr": 1e-4, "momentum": 0.9},
    {"optimizer": "adagrad", "lr": 0.1},
    {"optimizer": "adagrad", "lr": 0.1, "adagrad_lr_decay": 0.01, "weight_decay": 0.01},
    {"optimizer": "rmsprop", "lr": 1e-3},
    {"optimizer": "rmsprop", "lr": 1e-2, "alpha": 0.9, "clip_norm": 1.0},
    {"optimizer": "adam", "lr": 1e-2},
    {"optimizer": "adam", "lr": 1e-2, "beta1": 0.8, "weight_decay": 0.1},
    {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 0.05},
    {"optimizer": "sgd", "lr": 1e-3, "clip_value": 1.0, "weight_decay": 0.1},
]


@pytest.mark.parametrize("name", ["rosenbrock", "beale"])
def test_batched_paths_match_torch_optim_one_by_one(name):
    """Every row of one mixed batch follows torch.optim on its own point (float64, 150 steps)."""
    fn = get_surface(name)
    ref = run_paths_torch(fn, HPARAMS, fn.start, 150)
    got = run_paths_batched(fn, HPARAMS, fn.start, 150, gradient="autograd")
    assert (got - ref).abs().max() < 1e-13
    # the closed-form gradient differs from autograd's by rounding, which some paths amplify a little
    got = run_paths_batched(fn, HPARAMS, fn.start, 150, gradient="analytic")
    assert (got - ref).abs().max() < 1e-9


@pytest.mark.parametrize("hp", HPARAMS, ids=lambda h: "-".join(f"{v}" for v in h.values()))
def test_a_batch_of_one_algorithm_matches_torch_optim(hp):
    fn = get_surface("rosenbrock")
    ref = run_paths_torch(fn, [hp], fn.start, 200)
    got = run_paths_batched(fn, [hp], fn.start, 200, gradient="autograd")
    assert (got - ref).abs().max() < 1e-13


def test_torch_style_wrappers_take_per_path_tensors():
    fn = get_surface("rosenbrock")
    lrs = torch.tensor([1e-3, 3e-3, 1e-2], dtype=F64)
    builders = [
        (lambda p: BatchedSGD([p], lr=torch.tensor([1e-4, 3e-4, 1e-3], dtype=F64), momentum=torch.tensor([0.0, 0.5, 0.9], dtype=F64),
                              nesterov=[False, False, True]),
         [{"optimizer": "sgd", "lr": 1e-4}, {"optimizer": "momentum", "lr": 3e-4, "momentum": 0.5},
          {"optimizer": "nesterov", "lr": 1e-3, "momentum": 0.9}]),
        (lambda p: BatchedAdam([p], lr=lrs, betas=(0.9, torch.tensor([0.999, 0.99, 0.9], dtype=F64))),
         [{"optimizer": "adam", "lr": 1e-3}, {"optimizer": "adam", "lr": 3e-3, "beta2": 0.99},
          {"optimizer": "adam", "lr": 1e-2, "beta2": 0.9}]),
        (lambda p: BatchedRMSprop([p], lr=lrs), [{"optimizer": "rmsprop", "lr": float(v)} for v in lrs]),
        (lambda p: BatchedAdagrad([p], lr=lrs, eps=1e-8), [{"optimizer": "adagrad", "lr": float(v)} for v in lrs]),
    ]
    for build, hps in builders:
        p = torch.tensor([fn.start] * 3, dtype=F64)
        opt = build(p)
        assert isinstance(opt, torch.optim.Optimizer)
        grad = make_gradient(fn, "autograd")  # the reference's gradient, to the last bit
        for _ in range(100):
            opt.zero_grad()
            p.grad = grad(p)[1]
            opt.step()
        ref = run_paths_torch(fn, hps, fn.start, 100)[-1]
        assert (p - ref).abs().max() < 1e-13


def test_unsupported_options_are_clear_errors():
    for bad in ({"optimizer": "adam", "amsgrad": True}, {"optimizer": "rmsprop", "rmsprop_momentum": 0.5},
                {"optimizer": "lbfgs"}, {"optimizer": "sgd", "schedule": "cosine"}):
        with pytest.raises(ValueError, match="does not support"):
            run_paths_batched("quadratic", [bad], (1.0, 1.0), 2)
    with pytest.raises(ValueError, match="paths"):
        PathOptimizer([torch.zeros(3, 2, dtype=F64)], "sgd", lr=[0.1, 0.2])


def test_gd_zigzags_only_between_one_and_two_over_the_largest_curvature():
    fn = get_surface("quadratic", 50.0)  # λmax = 50: the window is (0.02, 0.04)
    paths = run_paths_batched(fn, [{"optimizer": "sgd", "lr": lr} for lr in (0.019, 0.021, 0.039, 0.041)],
                              (-5.0, 1.0), 100)
    flips = [zigzag(paths[:, i], 1) for i in range(4)]
    assert flips[0] == 0 and flips[1] == 99 and flips[2] == 99
    assert not math.isfinite(float(paths[-1, 3, 1])) or abs(float(paths[-1, 3, 1])) > 1.0  # diverges


def test_path_measures_on_hand_made_paths():
    path = torch.tensor([[-2.0, 1.0], [-1.0, -0.5], [0.5, 0.25], [0.2, -0.1], [0.0, 0.0]], dtype=F64)
    assert zigzag(path, 1) == 3 and zigzag(path, 0) == 1
    assert overshoot(path, (0.0, 0.0), 0) == pytest.approx(0.5)  # started at x < 0, reached x = 0.5
    assert overshoot(path, (0.0, 0.0), 1) == pytest.approx(0.5)
    assert steps_to_escape(path, (0.0, 0.0), 0, radius=1.5) == 0.0
    assert steps_to_escape(path, (0.0, 0.0), 1, radius=2.0) == math.inf


def test_bench_function_times_both_sides():
    batched, sequential = bench_surface_paths(n_paths=6, steps=20)
    assert batched > 0 and sequential > 0


# --- the trainer, through the training loop ---------------------------------------------------

def _spec(surface: str = "quadratic", seed: int = 0, **kw) -> RunSpec:
    data_kw = {k: kw.pop(k) for k in list(kw) if k in DataSpec.model_fields}
    return RunSpec(recipe=Recipe(data=DataSpec(name="surface", surface=surface, **data_kw),
                                 train=TrainSpec(seed=seed, **kw)), variant="v")


def _run(spec: RunSpec):
    from engine.runs.executor import train_one as train

    events: list = []
    finished = train(spec, events.append, run_id="r1")
    return events, finished


def test_surface_runs_emit_the_loops_events():
    from engine.events import EvalMetrics, RunFinished, RunStarted, StepMetrics

    events, fin = _run(_spec(optimizer="momentum", lr=0.01, steps=100, start=[-5.0, 1.0]))
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished) and events[-1] is fin
    started = events[0]
    assert started.n_params == 2 and started.total_steps == 100
    assert started.spec["data_info"]["function"] == "quadratic" and started.spec["data_info"]["start"] == [-5.0, 1.0]
    evals = [e for e in events if isinstance(e, EvalMetrics)]
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert evals[0].step == 0 and evals[-1].step == 100 and steps
    assert {"loss", "train_loss", "dist_to_min", "x", "y", "lr"} <= set(evals[-1].metrics)
    assert steps[0].train_loss == pytest.approx(0.5 * (25 + 50))  # f at the start point
    assert fin.status == "done"
    for key in ("loss", "dist_to_min", "final_x", "final_y", "zigzag", "overshoot", "travel", "hess_min_eig"):
        assert key in fin.final
    assert fin.final["hess_min_eig"] == pytest.approx(1.0) and fin.final["hess_max_eig"] == pytest.approx(50.0)
    assert fin.final["x"] == evals[-1].metrics["x"]


def test_the_trainer_matches_the_batched_paths():
    _, fin = _run(_spec("rosenbrock", optimizer="adam", lr=0.05, steps=300))
    ref = run_paths_batched("rosenbrock", [{"optimizer": "adam", "lr": 0.05}], get_surface("rosenbrock").start, 300)
    assert fin.final["x"] == float(ref[-1, 0, 0]) and fin.final["y"] == float(ref[-1, 0, 1])


def test_seeds_jitter_the_start_only_when_asked():
    a = _run(_spec(seed=0, steps=5))[1].final["x"]
    b = _run(_spec(seed=1, steps=5))[1].final["x"]
    c = _run(_spec(seed=1, steps=5, start_jitter=0.1))[1].final["x"]
    d = _run(_spec(seed=1, steps=5, start_jitter=0.1))[1].final["x"]
    assert a == b and c != a and c == d


def test_saddle_runs_end_when_they_leave_the_window_and_count_steps_to_escape():
    events, fin = _run(_spec("saddle", optimizer="sgd", lr=0.01, steps=600))
    assert fin.status == "done" and "left the window" in fin.reason and fin.step < 600
    assert fin.final["steps_to_escape"] == 349.0


def test_a_diverging_path_is_marked_diverged():
    _, fin = _run(_spec(optimizer="sgd", lr=0.05, steps=200))  # lr·κ = 2.5 > 2
    assert fin.status == "diverged" and fin.final["loss"] == math.inf and fin.final["dist_to_min"] == math.inf


def test_escape_step_leaves_the_tiny_nets_saddle():
    from engine.events import Message

    events, fin = _run(_spec("tiny_net", optimizer="sgd", lr=0.05, steps=100, start=[0.0, 0.0], escape_step=1.0))
    assert fin.final["escape_loss"] == pytest.approx(0.25) and fin.final["escape_eig"] == pytest.approx(-2.0)
    assert fin.final["loss"] < 1e-12
    assert any(isinstance(e, Message) and "escaped" in e.text for e in events)


def test_sweeps_report_shares():
    _, fin = _run(_spec("rosenbrock", optimizer="adam", lr=0.1, steps=1000, sweep_lrs=[1e-3, 0.1, 0.3], sweep_starts=4))
    assert 0.0 <= fin.final["lr_hit_share"] <= 1.0 and fin.final["lr_hit_share"] == pytest.approx(2 / 3)
    assert 0.0 <= fin.final["start_hit_share"] <= 1.0 and math.isfinite(fin.final["start_mean_loss"])


def test_a_whole_comparison_in_one_batch_gives_each_run_its_own_results():
    from engine.events import RunFinished, RunStarted
    from engine.surfaces.trainer import train_surfaces

    specs = [_spec(optimizer=o, lr=lr, steps=50, seed=s, start_jitter=0.05)
             for o, lr in (("sgd", 0.01), ("momentum", 0.01), ("adam", 0.1)) for s in (0, 1)]
    specs.append(_spec("saddle", optimizer="sgd", lr=0.01, steps=50))
    events: list = []
    finals = train_surfaces(specs, events.append, run_ids=[f"r{i}" for i in range(len(specs))])
    for i, spec in enumerate(specs):
        own = [e for e in events if e.run_id == f"r{i}"]
        assert isinstance(own[0], RunStarted) and isinstance(own[-1], RunFinished)
        alone = _run(spec)[1]
        assert finals[i].final["x"] == alone.final["x"] and finals[i].final["y"] == alone.final["y"]


def test_surface_config_is_validated():
    with pytest.raises(ValueError, match="needs a `surface`"):
        DataSpec(name="surface")
    with pytest.raises(ValueError, match="only used with"):
        DataSpec(name="spiral", surface="rosenbrock")
    with pytest.raises(ValueError, match="point"):
        DataSpec(name="surface", surface="rosenbrock", start=[1.0, 2.0, 3.0])
