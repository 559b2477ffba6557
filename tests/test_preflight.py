"""The checks before any run starts (``engine.catalogue.preflight``): the data's facts as the
loader builds them, the memory estimate against built models, the problems found, and the
catalogue's presets passing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_data import write_mnist

from engine.catalogue.preflight import preflight
from engine.data.base import DatasetError
from engine.data.facts import describe
from engine.recipe.config import DataSpec, ModelSpec, Recipe, RunSpec
from engine.recipe.footprint import estimate, layers


def _spec(variant: str = "A", **sections) -> RunSpec:
    raw = {"data": {"name": "spiral"}, **sections}
    return RunSpec(recipe=Recipe.model_validate(raw), variant=variant)


# -- the data's facts --------------------------------------------------------------------------

FACT_CASES = [
    {"name": "spiral"},
    {"name": "spiral", "n_samples": 333, "n_classes": 5, "val_fraction": 0.1, "test_fraction": 0.3},
    {"name": "moons", "n_samples": 101, "train_fraction": 0.37},
    {"name": "xor", "n_train": 50, "n_unlabeled": 100},
    {"name": "blobs", "n_classes": 4, "preprocess": "pca", "pca_components": 1},
    {"name": "regression_outliers", "n_samples": 240},
    {"name": "random", "n_features": 7, "n_classes": 3, "preprocess": "pca_whiten"},
    {"name": "random", "shift": 1.0, "n_samples": 300},
    {"name": "digits", "n_samples": 500, "preprocess": "pca", "pca_components": 12},
    {"name": "digits", "val_fraction": 0.3, "test_fraction": 0.1, "n_unlabeled": 200},
    {"name": "mnist1d", "train_fraction": 0.5},
    {"name": "mnist1d", "n_samples": 1000, "val_fraction": 0.25},
]


@pytest.mark.parametrize("data", FACT_CASES, ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_the_facts_are_what_the_loader_builds(data):
    from engine.data import load_data

    spec = DataSpec.model_validate(data)
    facts, built = describe(spec), load_data(spec, seed=3)
    assert (facts.task, facts.n_classes, facts.input_shape) == (built.task, built.n_classes, built.input_shape)
    assert facts.n_train == len(built.x_train)
    sizes = built.info["sizes"]
    assert facts.n_total == sizes["train"] + sizes["val"] + sizes["test"] + sizes["unlabeled"] + sizes["dropped"]


def test_mnist_facts_come_from_the_files_headers(tmp_path):
    from engine.data import load_data

    write_mnist(tmp_path, n_train=40, n_test=20)
    spec = DataSpec(name="mnist", root=str(tmp_path), val_fraction=0.25)
    facts, built = describe(spec), load_data(spec, seed=0)
    assert facts.input_shape == built.input_shape == (1, 28, 28)
    assert facts.n_train == len(built.x_train) == 30 and facts.n_total == 60
    with pytest.raises(DatasetError, match="exceeds the 40 samples"):
        describe(DataSpec(name="mnist", root=str(tmp_path), n_samples=41))


@pytest.mark.parametrize("data", [
    {"name": "digits", "n_samples": 5000},
    {"name": "moons", "n_classes": 3},
    {"name": "regression_outliers", "n_classes": 2},
    {"name": "digits", "noise": 0.1},
    {"name": "mnist1d", "shift": 0.5},
    {"name": "mnist1d", "n_classes": 5},
    {"name": "spiral", "n_samples": 2, "val_fraction": 0.4, "test_fraction": 0.4},
    {"name": "spiral", "n_unlabeled": 600},
    {"name": "spiral", "preprocess": "pca", "pca_components": 5},
    {"name": "mnist"},
    {"name": "cifar10"},
], ids=str)
def test_what_the_loader_refuses_the_facts_refuse_in_its_words(data, monkeypatch, tmp_path):
    from engine.data import load_data

    monkeypatch.setenv("DLLAB_DATA", str(tmp_path))  # an empty data folder
    spec = DataSpec.model_validate(data)
    with pytest.raises(DatasetError) as loader:
        load_data(spec, seed=0)
    with pytest.raises(DatasetError) as facts:
        describe(spec)
    assert str(facts.value) == str(loader.value)


# -- the memory estimate -----------------------------------------------------------------------


@pytest.mark.parametrize(("model", "shape"), [
    ({}, (2,)),
    ({"kind": "linear"}, (1, 8, 8)),
    ({"hidden": [30, 30, 7], "norm": "batch", "dropconnect": 0.2}, (40,)),
    ({"activation": "maxout", "maxout_pieces": 3, "norm": "layer", "width": 16, "depth": 3}, (5,)),
    ({"kind": "cnn", "channels": [8, 16], "hidden": [32]}, (40,)),
    ({"kind": "cnn", "channels": [4, 4, 6], "kernel_sizes": [5, 3, 3], "padding": 1, "norm": "layer"}, (1, 8, 8)),
    ({"kind": "cnn", "channels": [5], "activation": "maxout", "norm": "batch", "stride": 1}, (3, 32, 32)),
], ids=str)
def test_the_parameter_count_is_the_built_models(model, shape):
    from engine.models import build_model, count_params

    spec = ModelSpec.model_validate(model)
    assert sum(p for p, _ in layers(spec, shape, 10)) == count_params(build_model(spec, shape, 10))


def test_a_conv_stack_that_shrinks_the_input_to_nothing_is_the_models_error():
    from engine.models import build_model

    spec = ModelSpec(kind="cnn", channels=[4] * 8, padding=0)
    with pytest.raises(ValueError) as built:
        build_model(spec, (40,), 10)
    with pytest.raises(ValueError) as estimated:
        layers(spec, (40,), 10)
    assert str(estimated.value) == str(built.value)


def test_the_estimate_counts_optimizer_state_copies_and_the_batch():
    plain = Recipe.model_validate({"data": {"name": "spiral"}, "train": {"optimizer": "sgd"}})
    adam = Recipe.model_validate({"data": {"name": "spiral"}, "train": {"optimizer": "adam"},
                                  "model": {"ensemble": 2}})
    a, b = (estimate(r, (2,), 3, n_train=600) for r in (plain, adam))
    assert a.params == b.params == 2 * 100 + 100 + 100 * 100 + 100 + 100 * 3 + 3
    assert a.state_bytes == a.params * 4 * 3 and b.state_bytes == b.params * 4 * 5 * 2
    assert a.samples == 512 and estimate(plain, (2,), 3, n_train=60).samples == 60  # the probe, the split
    wide_batch = Recipe.model_validate({"data": {"name": "spiral"}, "train": {"batch_size": 0}})
    assert estimate(wide_batch, (2,), 3, n_train=6000).samples == 6000  # full batch
    assert "about" in a.describe() and "KiB" in a.describe()


# -- preflight ---------------------------------------------------------------------------------


def test_the_catalogue_passes_preflight():
    from engine.catalogue.presets import catalogue

    for loaded in catalogue():
        for quick in (False, True):
            assert preflight(loaded.expand(quick=quick), device="cpu") == [], (loaded.id, quick)


@pytest.mark.parametrize(("sections", "words"), [
    ({"data": {"name": "mnist1d"}, "train": {"loss": "l1"}}, "loss 'l1' is a regression loss and cannot train mnist1d"),
    ({"data": {"name": "regression_outliers"}}, "loss 'cross_entropy' is a classification loss"),
    ({"data": {"name": "spiral", "preprocess": "pca", "pca_components": 3}}, "pca_components=3 exceeds the 2 input"),
    ({"data": {"name": "digits", "n_samples": 1798}}, "n_samples=1798 exceeds the 1797 samples of digits"),
    ({"data": {"name": "cifar10"}}, "cifar10 needs files under a data folder"),
    ({"model": {"kind": "cnn", "channels": [4] * 3, "padding": 0, "kernel_size": 2}}, "shrinks the input (1,)"),
    ({"train": {"optimizer": "nesterov", "momentum": 0.0}}, "nesterov' needs momentum > 0"),
    ({"train": {"optimizer": "lbfgs", "weight_decay": 0.1}}, "lbfgs' has no weight_decay"),
    ({"train": {"unlabeled_loss": "entropy"}}, "needs unlabeled data"),
    ({"model": {"ensemble": 2}, "train": {"importance_weighting": True}}, "ensemble members train on the plain loss"),
    ({"train": {"pretrain": {"task": "labels", "classes": [7, 8]}}}, "are none of spiral's classes"),
    ({"data": {"name": "regression_outliers"}, "train": {"loss": "mse", "unlabeled_loss": "entropy"},
      "model": {}}, "needs a classification task"),
], ids=lambda v: str(v)[:60])
def test_preflight_finds_what_would_fail_after_the_workers_start(sections, words, monkeypatch, tmp_path):
    monkeypatch.setenv("DLLAB_DATA", str(tmp_path))
    problems = preflight([_spec(**sections)], device="cpu")
    assert len(problems) >= 1 and problems[0].startswith("variant 'A': ") and words in " ".join(problems), problems
    assert all("\n" not in p for p in problems)


def test_a_run_that_cannot_fit_the_device_is_refused_with_the_figures(monkeypatch):
    import engine.catalogue.preflight as pf

    monkeypatch.setattr(pf, "machine_memory", lambda: 23 * 2**30)
    pf.memory_limit.cache_clear()
    try:
        big = _spec("wide", model={"hidden": [60_000, 60_000]}, train={"optimizer": "adam"})
        small = _spec("small")
        problems = preflight([big, small], device="cpu")
        assert len(problems) == 1 and problems[0].startswith("variant 'wide': this run needs about "), problems
        assert "GiB" in problems[0] and "this machine has 23 GiB" in problems[0]
        # a dense layer of a million units and a conv layer of a million channels
        assert preflight([_spec(model={"width": 1_000_000, "depth": 2})], device="cpu")
        assert preflight([_spec(data={"name": "mnist1d"}, model={"kind": "cnn", "channels": [1_000_000]})],
                         device="cpu")
        assert preflight([big], device=None) == []  # no device: no memory check
    finally:
        pf.memory_limit.cache_clear()


def test_a_problem_of_every_variant_is_said_once():
    specs = [_spec(v, data={"name": "digits", "n_samples": 9999}) for v in ("A", "B")]
    specs += [_spec(v, data={"name": "digits", "n_samples": 9999}, train={"seed": 1}) for v in ("A", "B")]
    assert preflight(specs, device="cpu") == ["every variant: n_samples=9999 exceeds the 1797 samples of digits"]


def test_preflight_does_not_import_torch():
    code = ("import sys\n"
            "from engine.catalogue.preflight import preflight\n"
            "from engine.catalogue.presets import load_preset\n"
            "assert preflight(load_preset('optimizers').expand(quick=True), device='auto') == []\n"
            "from engine.recipe.config import Recipe, RunSpec\n"
            "r = Recipe.model_validate({'data': {'name': 'mnist1d'}, 'train': {'loss': 'l1'}})\n"
            "assert preflight([RunSpec(recipe=r, variant='A')], device='auto')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_on_cuda_the_gpus_memory_is_the_limit(monkeypatch):
    """No GPU here: the device and its properties are stand-ins; the words and the share are the
    preflight's own."""
    from types import SimpleNamespace

    import torch

    import engine.catalogue.preflight as pf
    import engine.runs.device as device

    monkeypatch.setattr(device, "resolve_device", lambda name: torch.device("cuda:0"))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda dev: SimpleNamespace(total_memory=8 * 2**30, name="Stand-in GPU"))
    pf.memory_limit.cache_clear()
    try:
        allowed, words = pf.memory_limit("cuda")
        assert allowed == int(8 * 2**30 * pf.GPU_SHARE) and words == "cuda:0 (Stand-in GPU) has 8.0 GiB"
        problems = preflight([_spec(model={"hidden": [30_000, 30_000]})], device="cuda")
        assert len(problems) == 1 and "cuda:0 (Stand-in GPU) has 8.0 GiB" in problems[0], problems
    finally:
        pf.memory_limit.cache_clear()
