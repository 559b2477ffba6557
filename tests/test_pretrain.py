"""Pretraining: the pretext transforms, the pool, carrying the body over, a fresh head, freezing."""

from __future__ import annotations

import pytest
import torch

from engine.data import load_data
from engine.models import build_model
from engine.recipe.config import DataSpec, ModelSpec, PretrainSpec, Recipe, RunSpec, TrainSpec
from engine.techniques.pretrain import pretrain_body, pretraining_pool, transform
from engine.training.loop import train


def test_transforms_rotate_images_and_flip_or_negate_signals():
    img = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3)
    k = torch.tensor([0, 1])
    out = transform(img, k)
    assert torch.equal(out[0], img[0])
    assert torch.equal(out[1], torch.rot90(img[1], 1, dims=(-2, -1)))
    sig = torch.arange(4 * 5, dtype=torch.float32).reshape(4, 5)
    out = transform(sig, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(out[0], sig[0])
    assert torch.equal(out[1], sig[1].flip(0))
    assert torch.equal(out[2], -sig[2])
    assert torch.equal(out[3], -sig[3].flip(0))


def _recipe(pretrain: PretrainSpec | None, n_train: int = 20, **model) -> Recipe:
    return Recipe(data=DataSpec(name="digits", preprocess="standardize", n_train=n_train),
                  model=ModelSpec(**{"hidden": [32, 32], **model}),
                  train=TrainSpec(optimizer="adam", lr=1e-3, steps=10, pretrain=pretrain))


def test_the_pool_is_the_whole_training_split_prepared_like_the_run():
    r = _recipe(PretrainSpec(steps=1))
    data = load_data(r.data, seed=0)
    x, y = pretraining_pool(r, data, torch.device("cpu"))
    full = load_data(r.data.model_copy(update={"n_train": None}), seed=0)
    assert len(x) == len(full.x_train) > 1000
    # the run's 20 labelled samples are the first of the pool, with identical preprocessing
    assert torch.allclose(x[:20], data.x_train, atol=1e-6)
    assert torch.equal(y[:20], data.y_train)
    val = {tuple(v.flatten().tolist()) for v in data.x_val}
    assert not any(tuple(v.flatten().tolist()) in val for v in x)


def test_body_is_pretrained_and_the_head_stays_fresh():
    r = _recipe(PretrainSpec(task="labels", classes=[0, 1, 2, 3, 4], steps=30))
    data = load_data(r.data, seed=0)
    torch.manual_seed(0)
    model = build_model(r.model, data.input_shape, 10)
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    body_before = model.blocks[0].linear.weight.detach().clone()
    figures = pretrain_body(model, r, data)
    assert figures["pretrain_steps"] == 30 and 0 <= figures["pretrain_acc"] <= 1
    assert figures["pretrain_pool"] == pytest.approx((load_data(r.data.model_copy(update={"n_train": None}), 0)
                                                      .y_train < 5).sum().item())
    assert not torch.equal(model.blocks[0].linear.weight, body_before)
    for k, v in model.head.state_dict().items():
        assert torch.equal(v, head_before[k])
    assert model.head.out_features == 10


def test_freeze_body_trains_only_the_head_in_the_main_phase():
    spec = RunSpec(recipe=_recipe(PretrainSpec(task="transform", steps=5, freeze_body=True)), variant="probe")
    events: list = []
    finished = train(spec, events.append)
    assert finished.status == "done"
    assert finished.summary["pretrain_acc"] >= 0 and finished.summary["pretrain_steps"] == 5


def test_pretraining_changes_the_run_but_not_the_scratch_run_of_the_same_seed():
    scratch = RunSpec(recipe=_recipe(None), variant="scratch")
    pre = RunSpec(recipe=_recipe(PretrainSpec(task="labels", steps=20)), variant="pre")
    a = train(scratch, lambda e: None)
    b = train(scratch, lambda e: None)
    c = train(pre, lambda e: None)
    assert a.final["train_loss"] == b.final["train_loss"]
    assert c.final["train_loss"] != a.final["train_loss"]
    assert "pretrain_loss" in c.summary and "pretrain_loss" not in a.summary
