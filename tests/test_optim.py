"""The optimizer factory and the written-out update rules against torch.optim."""

from __future__ import annotations

import pytest
import torch

from engine.recipe.config import TrainSpec
from engine.recipe.optim import UPDATE_RULES, build_optimizer, needs_closure, optimizer_kwargs, reference_step
from engine.recipe.optim_math import REFERENCE_OPTIMIZERS


def _params() -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return [
        torch.nn.Parameter(torch.randn(4, 3, generator=g, dtype=torch.float64)),
        torch.nn.Parameter(torch.randn(3, generator=g, dtype=torch.float64)),
    ]


@pytest.mark.parametrize(
    ("spec", "cls", "expected"),
    [
        (
            TrainSpec(optimizer="sgd", lr=0.1, weight_decay=0.01),
            torch.optim.SGD,
            {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.01, "nesterov": False},
        ),
        (
            TrainSpec(optimizer="momentum", lr=0.2, momentum=0.8, dampening=0.1),
            torch.optim.SGD,
            {"lr": 0.2, "momentum": 0.8, "dampening": 0.1, "nesterov": False},
        ),
        (
            TrainSpec(optimizer="nesterov", momentum=0.95, weight_decay=1e-3),
            torch.optim.SGD,
            {"momentum": 0.95, "dampening": 0.0, "nesterov": True, "weight_decay": 1e-3},
        ),
        (
            TrainSpec(optimizer="adagrad", lr=0.3, adagrad_lr_decay=0.01, eps=1e-6, weight_decay=0.02),
            torch.optim.Adagrad,
            {"lr": 0.3, "lr_decay": 0.01, "eps": 1e-6, "weight_decay": 0.02},
        ),
        (
            TrainSpec(
                optimizer="rmsprop", lr=1e-3, alpha=0.9, eps=1e-7, rmsprop_momentum=0.5, weight_decay=0.1
            ),
            torch.optim.RMSprop,
            {"lr": 1e-3, "alpha": 0.9, "eps": 1e-7, "momentum": 0.5, "weight_decay": 0.1},
        ),
        (
            TrainSpec(
                optimizer="adam", lr=1e-3, beta1=0.8, beta2=0.99, eps=1e-6, amsgrad=True, weight_decay=0.1
            ),
            torch.optim.Adam,
            {"lr": 1e-3, "betas": (0.8, 0.99), "eps": 1e-6, "amsgrad": True, "weight_decay": 0.1},
        ),
        (
            TrainSpec(optimizer="adamw", lr=2e-3, beta1=0.85, weight_decay=0.05),
            torch.optim.AdamW,
            {"lr": 2e-3, "betas": (0.85, 0.999), "weight_decay": 0.05, "amsgrad": False},
        ),
        (
            TrainSpec(optimizer="lbfgs", lr=1.0, lbfgs_history=7, lbfgs_max_iter=5),
            torch.optim.LBFGS,
            {"lr": 1.0, "history_size": 7, "max_iter": 5, "line_search_fn": "strong_wolfe"},
        ),
        (TrainSpec(optimizer="lbfgs", lbfgs_line_search=False), torch.optim.LBFGS, {"line_search_fn": None}),
    ],
)
def test_build_optimizer_class_and_hyperparameters(spec: TrainSpec, cls: type, expected: dict) -> None:
    opt = build_optimizer(_params(), spec)
    assert type(opt) is cls
    group = opt.param_groups[0]
    for key, value in expected.items():
        assert group[key] == value, key
    assert needs_closure(spec) == (spec.optimizer == "lbfgs")


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_is_fused_where_torch_has_the_kernel(name: str) -> None:
    opt = build_optimizer(_params(), TrainSpec(optimizer=name))
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    assert bool(opt.defaults.get("fused")) == ((major, minor) >= (2, 4))
    assert not build_optimizer(_params(), TrainSpec(optimizer="sgd")).defaults.get("fused")


def test_param_groups_pass_through() -> None:
    w, b = _params()
    opt = build_optimizer(
        [{"params": [w]}, {"params": [b], "weight_decay": 0.0}],
        TrainSpec(optimizer="adamw", weight_decay=0.1),
    )
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_invalid_combinations_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="nesterov"):
        build_optimizer(_params(), TrainSpec(optimizer="nesterov", dampening=0.1))
    with pytest.raises(ValueError, match="nesterov"):
        build_optimizer(_params(), TrainSpec(optimizer="nesterov", momentum=0.0))
    with pytest.raises(ValueError, match="l2"):
        build_optimizer(_params(), TrainSpec(optimizer="lbfgs", weight_decay=0.1))
    w, b = _params()
    with pytest.raises(ValueError, match="single parameter group"):
        build_optimizer([{"params": [w]}, {"params": [b]}], TrainSpec(optimizer="lbfgs"))


def test_every_optimizer_has_an_explanation() -> None:
    for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lbfgs"):
        assert UPDATE_RULES[name]
        optimizer_kwargs(TrainSpec(optimizer=name))  # builds for the defaults


REFERENCE_CASES = [
    ("sgd", {}),
    ("momentum", {}),
    ("momentum", {"dampening": 0.3, "momentum": 0.7}),
    ("nesterov", {}),
    ("adagrad", {}),
    ("adagrad", {"adagrad_lr_decay": 0.05, "eps": 1e-6}),
    ("rmsprop", {}),
    ("rmsprop", {"rmsprop_momentum": 0.6, "alpha": 0.9}),
    ("adam", {}),
    ("adam", {"amsgrad": True, "beta1": 0.8, "beta2": 0.95}),
    ("adamw", {}),
    ("adamw", {"amsgrad": True}),
]


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize(("name", "extra"), REFERENCE_CASES)
def test_reference_rule_equals_torch_for_20_steps(name: str, extra: dict, weight_decay: float) -> None:
    spec = TrainSpec(optimizer=name, lr=0.03, weight_decay=weight_decay, **extra)
    torch_params = _params()
    ref_params = [p.detach().clone() for p in torch_params]
    opt = build_optimizer(torch_params, spec)
    states: list[dict] = [{} for _ in ref_params]
    gen = torch.Generator().manual_seed(1)
    for step in range(1, 21):
        grads = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in ref_params]
        for p, g in zip(torch_params, grads, strict=True):
            p.grad = g.clone()
        opt.step()
        for p, g, st in zip(ref_params, grads, states, strict=True):
            reference_step(name, p, g, st, spec, step)
        for p_t, p_r in zip(torch_params, ref_params, strict=True):
            torch.testing.assert_close(p_t.detach(), p_r, atol=1e-12, rtol=0)
    assert all(REFERENCE_OPTIMIZERS)


def test_reference_lr_override_follows_a_schedule() -> None:
    spec = TrainSpec(optimizer="adam", lr=0.1)
    p_t = _params()[0]
    p_r = p_t.detach().clone()
    opt = build_optimizer([p_t], spec)
    st: dict = {}
    gen = torch.Generator().manual_seed(2)
    for step in range(1, 6):
        lr = 0.1 / step
        opt.param_groups[0]["lr"] = lr
        g = torch.randn(p_r.shape, generator=gen, dtype=torch.float64)
        p_t.grad = g.clone()
        opt.step()
        reference_step("adam", p_r, g, st, spec, step, lr=lr)
    torch.testing.assert_close(p_t.detach(), p_r, atol=1e-12, rtol=0)


def test_reference_rejects_unknown_and_step_zero() -> None:
    p = torch.zeros(2)
    with pytest.raises(ValueError, match="lbfgs"):
        reference_step("lbfgs", p, p, {}, TrainSpec(), 1)
    with pytest.raises(ValueError, match="from 1"):
        reference_step("sgd", p, p, {}, TrainSpec(), 0)


def test_lbfgs_converges_on_a_quadratic_with_closure() -> None:
    torch.manual_seed(0)
    a = torch.randn(6, 6, dtype=torch.float64)
    hessian = a @ a.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    solution = torch.linalg.solve(hessian, b)
    x = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    spec = TrainSpec(optimizer="lbfgs", lr=1.0)
    assert needs_closure(spec)
    opt = build_optimizer([x], spec)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * x @ hessian @ x - b @ x
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    torch.testing.assert_close(x.detach(), solution, atol=1e-4, rtol=0)
    assert float((hessian @ x.detach() - b).norm()) < 1e-3 * float(b.norm())
