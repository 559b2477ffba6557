"""The engine on a CUDA GPU: skipped where there is none (CI, most laptops), run on a GPU machine.

What must hold on CUDA as on the CPU: a run trains end to end and lands where the CPU run lands
(within float tolerance: cuBLAS sums in another order), every batched member matches its solo run
on the same device, the opt-in fast paths (bf16 autocast, ``torch.compile``, CUDA graph capture)
train to the plain result, the runner's workers train on the GPU, and the features that keep
tensors of their own (augmentation, ensembles, EMA, surfaces, LR finder, gradient checks) put them
on the run's device. Every preset's quick form is checked on CUDA by ``test_preset_claims_on_cuda``
(slow).
"""

from __future__ import annotations

import math

import pytest
import torch

from engine.batched import train_batched
from engine.batched.accel import FastPaths
from engine.catalogue.presets import builtin_ids
from engine.events import Message, RunFinished
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec, TrainSpec
from engine.training.loop import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

RANDOM = DataSpec(name="random", n_samples=600, n_features=12, n_classes=4)


def _spec(variant: str = "v", data: DataSpec = RANDOM, model: ModelSpec | None = None, **train_kw) -> RunSpec:
    train_kw.setdefault("steps", 60)
    train_kw.setdefault("log_every", 10)
    train_kw.setdefault("eval_every", 20)
    model = model or ModelSpec(hidden=[32, 32], init="kaiming_normal")
    return RunSpec(recipe=Recipe(data=data, model=model, train=TrainSpec(**train_kw)), variant=variant, preset="t")


def _finish(spec: RunSpec, device: str) -> RunFinished:
    events: list = []
    done = train(spec, events.append, device=device)
    assert done.status == "done", done.reason
    started = events[0]
    assert started.device.startswith(device.split(":")[0])
    return done


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_run_on_cuda_lands_where_the_cpu_run_lands(optimizer: str) -> None:
    spec = _spec(optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-2)
    gpu, cpu = _finish(spec, "cuda"), _finish(spec, "cpu")
    for key in ("train_loss", "val_loss", "test_loss"):
        assert math.isclose(gpu.final[key], cpu.final[key], rel_tol=2e-3, abs_tol=1e-4), key
    assert abs(gpu.final["test_acc"] - cpu.final["test_acc"]) <= 0.02


@pytest.mark.parametrize("model", [
    ModelSpec(hidden=[32, 32], norm="batch", dropout=0.2),
    ModelSpec(hidden=[32], norm="layer", dropconnect=0.2),
    ModelSpec(kind="cnn", channels=[8, 16], hidden=[32], kernel_size=3, norm="batch"),
])
def test_norms_dropout_and_cnns_train_on_cuda(model: ModelSpec) -> None:
    data = DataSpec(name="digits", preprocess="standardize") if model.kind == "cnn" else RANDOM
    done = _finish(_spec(data=data, model=model, optimizer="adam", lr=3e-3), "cuda")
    assert math.isfinite(done.final["train_loss"])


@pytest.mark.parametrize("extra", [
    {"augment": ["noise", "scale"]}, {"ema": 0.9}, {"mixup": 0.2}, {"clip_norm": 1.0, "l2": 1e-3},
    {"lr_find": True}, {"early_stopping": True, "patience": 2},
])
def test_features_with_tensors_of_their_own_run_on_cuda(extra: dict) -> None:
    _finish(_spec(optimizer="sgd", lr=0.05, **extra), "cuda")


def test_batched_members_match_their_solo_runs_on_cuda() -> None:
    from tests.test_batched import assert_matches_solo

    variants = [("SGD", dict(optimizer="sgd", lr=0.1)), ("Momentum", dict(optimizer="momentum", lr=0.05)),
                ("Adam", dict(optimizer="adam", lr=1e-2)), ("AdamW", dict(optimizer="adamw", lr=1e-2,
                                                                           weight_decay=0.05)),
                ("RMSProp", dict(optimizer="rmsprop", lr=3e-3)), ("AdaGrad", dict(optimizer="adagrad", lr=0.05))]
    specs = [_spec(name, steps=40, log_every=5, eval_every=10, **kw) for name, kw in variants]
    assert_matches_solo(specs, device="cuda")
    seeds = [_spec("s", steps=40, optimizer="adam", lr=1e-2, seed=k, l2=1e-3, clip_norm=1.0) for k in range(3)]
    assert_matches_solo(seeds, device="cuda")
    # Per-member norms (BatchNorm's running statistics on the GPU). BatchNorm with momentum, as in
    # tests/test_batched.py: under Adam the bias just before a BatchNorm (no true gradient: the norm
    # takes the mean out) takes full-size steps on rounding noise, which differs with the kernels.
    for norm, optimizer in (("batch", "momentum"), ("layer", "adam")):
        model = ModelSpec(hidden=[32, 32], norm=norm)
        normed = [_spec(f"{norm} {k}", model=model, steps=40, log_every=5, eval_every=10, optimizer=optimizer,
                        lr=1e-2 * (k + 1), seed=k) for k in range(3)]
        assert_matches_solo(normed, device="cuda")


def test_members_that_differ_beyond_the_optimizer_batch_on_cuda() -> None:
    """Per-member activations, losses, skips, dropout, DropConnect, augmentation and data settings,
    early stopping, and a stack that sheds its diverged half, on the GPU: each member as its solo
    run (dropout masks too: the solo layers draw them as the batched members do)."""
    from tests.test_batched import assert_matches_solo

    data = DataSpec(name="mnist1d", n_samples=1200, preprocess="standardize")
    base = ModelSpec(hidden=[32, 32], init="kaiming_normal")
    specs = [
        _spec("relu", data, base, optimizer="momentum", lr=0.05, steps=40, log_every=5, eval_every=10),
        _spec("tanh res", data, base.model_copy(update={"activation": "tanh", "residual": True}), optimizer="adam",
              lr=1e-2, steps=40, log_every=5, eval_every=10, loss="hinge"),
        _spec("dc aug", data, base.model_copy(update={"dropconnect": 0.3}), optimizer="sgd", lr=0.05, steps=40,
              log_every=5, eval_every=10, augment=["shift"], seed=1),
        _spec("drop", data, base.model_copy(update={"dropout": 0.3, "input_dropout": 0.1}), optimizer="sgd", lr=0.05,
              steps=40, log_every=5, eval_every=10, seed=2),
        _spec("zca es", data.model_copy(update={"preprocess": "zca_whiten"}), base, optimizer="nesterov", lr=0.02,
              steps=40, log_every=5, eval_every=10, early_stopping=True, patience=1),
    ]
    assert_matches_solo(specs, device="cuda")
    boom = [_spec(f"boom{k}", model=base, optimizer="sgd", lr=60.0 + k, diverge_threshold=20.0, steps=40, log_every=5,
                  eval_every=10, seed=k) for k in range(2)]
    ok = [_spec(f"ok{k}", model=base, optimizer="momentum", lr=0.05, steps=40, log_every=5, eval_every=10, seed=k)
          for k in range(2)]
    assert_matches_solo(boom + ok, device="cuda")


@pytest.mark.parametrize("path", ["bf16", "compile", "cuda_graphs"])
def test_fast_paths_train_to_the_plain_result(path: str) -> None:
    specs = [_spec(f"v{i}", optimizer="adam", lr=1e-2, seed=i, steps=80) for i in range(3)]
    plain = train_batched(specs, lambda e: None, device="cuda")
    events: list = []
    fast = train_batched(specs, events.append, device="cuda", fast=FastPaths(**{path: True}))
    fallbacks = [e.text for e in events if isinstance(e, Message)]
    assert not fallbacks, fallbacks
    tol = 0.1 if path == "bf16" else 5e-3
    for a, b in zip(fast, plain, strict=True):
        assert a.status == "done", a.reason
        assert math.isclose(a.final["train_loss"], b.final["train_loss"], rel_tol=tol), (path, a.final, b.final)


def test_the_runner_trains_on_the_gpu(tmp_path) -> None:
    from engine.runs.runner import Runner

    specs = [_spec(f"v{i}", optimizer="sgd", lr=0.02 * (i + 1)) for i in range(3)]
    specs.append(_spec("bn", model=ModelSpec(hidden=[16], norm="batch"), optimizer="adam", lr=1e-2))
    with Runner(specs, device="cuda", store=tmp_path) as runner:
        finished = [e for e in runner.events() if isinstance(e, RunFinished)]
    assert len(finished) == 4 and all(f.status == "done" for f in finished), [f.reason for f in finished]
    assert runner.device.startswith("cuda")


def test_surfaces_lr_finder_and_gradient_check_on_cuda() -> None:
    from engine.checks.gradcheck import check_spec
    from engine.diagnostics.lr_find import find_lr

    surface = RunSpec(recipe=Recipe(data=DataSpec(name="surface", surface="rosenbrock"),
                                    train=TrainSpec(optimizer="adam", lr=0.05, steps=50)), variant="adam")
    assert train(surface, lambda e: None, device="cuda").status == "done"
    found = find_lr(_spec(optimizer="sgd", lr=0.1), device="cuda")
    assert found.suggestion > 0 and len(found.losses) > 10
    result, _ = check_spec(_spec(model=ModelSpec(hidden=[8], activation="tanh")), device="cuda")
    assert result.passed, result


@pytest.mark.slow
@pytest.mark.parametrize("preset", builtin_ids())
def test_preset_claims_on_cuda(preset: str) -> None:
    from engine.catalogue.check import check_preset

    result = check_preset(preset, quick=True, seeds=[0, 1, 2], device="cuda")
    assert result.holds, result.report()
