"""Batched augmentation ops against per-sample references; determinism; the loop's call site."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.recipe.config import Recipe, RunSpec, TrainSpec
from engine.techniques.augment import OPS, Augmenter, build_augmenter
from engine.training.loop import train


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def aug(ops, shape, seed=0, **kw) -> Augmenter:
    return Augmenter(ops, shape, gen(seed), **kw)


def signals(n=64, length=40, seed=1) -> torch.Tensor:
    return torch.randn(n, length, generator=gen(seed))


def images(n=64, c=1, h=8, w=8, seed=1) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=gen(seed))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("kind", ["signal", "image"])
def test_each_op_keeps_shape_dtype_and_is_deterministic_per_seed(op: str, kind: str) -> None:
    x = signals() if kind == "signal" else images()
    shape = tuple(x.shape[1:])
    a, b, c = aug([op], shape, 0)(x), aug([op], shape, 0)(x), aug([op], shape, 5)(x)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_noise_has_the_requested_std() -> None:
    x = torch.zeros(2000, 40)
    out = aug(["noise"], (40,), noise=0.3)(x)
    assert out.mean().abs() < 0.01
    assert out.std().item() == pytest.approx(0.3, rel=0.02)


def test_scale_multiplies_each_sample_by_one_factor_in_range() -> None:
    x = signals().abs() + 0.5
    out = aug(["scale"], (40,), scale=0.2)(x)
    ratio = out / x
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-6)
    assert ratio.min() >= 0.8 - 1e-6 and ratio.max() <= 1.2 + 1e-6
    assert ratio[:, 0].std() > 0.05


def test_signal_shift_is_a_roll_by_at_most_m_steps() -> None:
    x = signals(n=200)
    out = aug(["shift"], (40,), shift=3)(x)
    seen = set()
    for row, orig in zip(out, x, strict=True):
        ks = [k for k in range(-3, 4) if torch.equal(row, torch.roll(orig, k))]
        assert ks, "each sample is a circular shift of itself within ±3"
        seen.add(ks[0])
    assert seen == set(range(-3, 4))


def test_signal_shift_with_channels() -> None:
    x = torch.randn(50, 2, 20, generator=gen(3))
    out = aug(["shift"], (2, 20), shift=2)(x)
    for row, orig in zip(out, x, strict=True):
        assert any(torch.equal(row, torch.roll(orig, k, dims=-1)) for k in range(-2, 3))


def _translate(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference: out[i, j] = img[i - dy, j - dx], zero outside."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[..., i, j] = img[..., i - dy, j - dx]
    return out


def test_image_shift_is_a_zero_filled_translation() -> None:
    x = images(n=100, c=2)
    out = aug(["shift"], (2, 8, 8), shift=2)(x)
    offsets = set()
    for row, orig in zip(out, x, strict=True):
        hits = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(row, _translate(orig, dy, dx))]
        assert hits
        offsets.add(hits[0])
    assert len(offsets) > 15


def test_hflip_and_negate_apply_to_about_half_the_samples() -> None:
    x = images(n=400)
    flipped = aug(["hflip"], (1, 8, 8))(x)
    is_flip = torch.tensor([torch.equal(a, b.flip(-1)) for a, b in zip(flipped, x, strict=True)])
    is_same = torch.tensor([torch.equal(a, b) for a, b in zip(flipped, x, strict=True)])
    assert bool((is_flip | is_same).all())
    assert 0.4 < is_flip.float().mean() < 0.6
    s = signals(n=400)
    neg = aug(["negate"], (40,))(s)
    is_neg = (neg == -s).all(dim=1)
    assert bool((is_neg | (neg == s).all(dim=1)).all())
    assert 0.4 < is_neg.float().mean() < 0.6


def test_signal_cutout_zeroes_one_segment_of_c_steps() -> None:
    x = torch.ones(100, 40)
    out = aug(["cutout"], (40,), cutout=6)(x)
    for row in out:
        zeros = torch.nonzero(row == 0).flatten()
        assert len(zeros) == 6
        assert int(zeros[-1] - zeros[0]) == 5  # contiguous


def test_image_cutout_zeroes_a_square_clipped_at_the_border() -> None:
    x = torch.ones(200, 1, 8, 8)
    out = aug(["cutout"], (1, 8, 8), cutout=4)(x)
    sizes = set()
    for img in out[:, 0]:
        rows = torch.nonzero((img == 0).any(dim=1)).flatten()
        cols = torch.nonzero((img == 0).any(dim=0)).flatten()
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        assert int((img == 0).sum()) == len(rows) * len(cols)  # a rectangle
        sizes.add(int((img == 0).sum()))
    assert 16 in sizes and min(sizes) < 16


def test_ops_compose_in_order() -> None:
    x = signals()
    both = aug(["negate", "scale"], (40,), seed=2)(x)
    g = gen(2)
    manual = Augmenter(["scale"], (40,), g)(Augmenter(["negate"], (40,), g)(x))
    assert torch.equal(both, manual)


def test_unknown_ops_and_unsupported_shapes_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        aug(["rotate"], (40,))
    with pytest.raises(ValueError, match="1-D signals or images"):
        aug(["noise"], (1, 2, 3, 4))


def test_build_augmenter_reads_the_spec() -> None:
    assert build_augmenter(TrainSpec(), (40,), torch.device("cpu")) is None
    a = build_augmenter(TrainSpec(augment=["shift", "noise"], augment_shift=3, augment_noise=0.2, seed=4),
                        (40,), torch.device("cpu"))
    assert a is not None and a.ops == ["shift", "noise"] and a.shift == 3 and a.noise == 0.2
    with pytest.raises(ValueError):
        TrainSpec(augment=["rotate"])


def _spec(**train) -> RunSpec:
    recipe = Recipe.model_validate({
        "data": {"name": "digits", "preprocess": "standardize", "n_train": 100},
        "model": {"hidden": [16]},
        "train": {"optimizer": "adam", "lr": 1e-2, "batch_size": 20, "steps": 30, **train},
    })
    return RunSpec(recipe=recipe, variant="v")


def test_loop_applies_augmentation_deterministically_and_only_to_training_batches() -> None:
    plain = train(_spec(), lambda e: None)
    a1 = train(_spec(augment=["shift", "noise", "cutout"], augment_shift=1), lambda e: None)
    a2 = train(_spec(augment=["shift", "noise", "cutout"], augment_shift=1), lambda e: None)
    assert a1.status == "done" and a1.final == a2.final
    assert a1.final["train_loss"] != plain.final["train_loss"]
    # an empty list is the same run as no augmentation at all
    assert train(_spec(augment=[]), lambda e: None).final == plain.final


def test_cross_entropy_of_augmented_batch_backpropagates() -> None:
    x = images(n=8).requires_grad_()
    out = aug(["shift", "cutout", "noise", "scale", "hflip", "negate"], (1, 8, 8))(x)
    F.mse_loss(out, torch.zeros_like(out)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
