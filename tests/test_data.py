"""Datasets, splits and preprocessing: shapes, determinism, train-only statistics, file loaders."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch

from engine.data import DatasetError, DataSplits, Preprocessor, available_datasets, load_data
from engine.data.mnist1d_source import _generate, mnist1d_args
from engine.data.splits import shift_direction
from engine.data.toy import regression_target
from engine.recipe.config import DataSpec

EXPECTED = {  # name: (input_shape, n_classes, task)
    "spiral": ((2,), 3, "classification"),
    "moons": ((2,), 2, "classification"),
    "circles": ((2,), 2, "classification"),
    "xor": ((2,), 2, "classification"),
    "blobs": ((2,), 3, "classification"),
    "regression_outliers": ((1,), 0, "regression"),
    "random": ((20,), 2, "classification"),
    "digits": ((1, 8, 8), 10, "classification"),
    "mnist1d": ((40,), 10, "classification"),
}


def load(seed: int = 0, **fields) -> DataSplits:
    return load_data(DataSpec(**fields), seed)


def splits_of(d: DataSplits) -> list[torch.Tensor]:
    out = [d.x_train, d.y_train, d.x_val, d.y_val, d.x_test, d.y_test]
    return out + ([d.x_unlabeled] if d.x_unlabeled is not None else [])


def same(a: DataSplits, b: DataSplits) -> bool:
    ta, tb = splits_of(a), splits_of(b)
    return len(ta) == len(tb) and all(torch.equal(x, y) for x, y in zip(ta, tb, strict=True))


def cov(x: torch.Tensor) -> torch.Tensor:
    return torch.cov(x.reshape(len(x), -1).double().T)


# --- every dataset ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_dataset_loads_with_its_shapes_dtypes_and_classes(name: str) -> None:
    shape, n_classes, task = EXPECTED[name]
    d = load(name=name)
    assert (d.name, d.task, d.n_classes, d.input_shape) == (name, task, n_classes, shape)
    for x, y in [(d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)]:
        assert x.dtype == torch.float32 and x.shape[1:] == shape and len(x) == len(y) > 0
        assert torch.isfinite(x).all()
        if task == "classification":
            assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) < n_classes
        else:
            assert y.dtype == torch.float32 and y.ndim == 1
    if task == "classification":
        assert set(d.y_train.tolist()) == set(range(n_classes))
    assert d.x_unlabeled is None
    json.dumps(d.info)  # JSON-able
    assert d.info["sizes"]["train"] == len(d.x_train)


def test_toy_sizes_follow_n_samples_and_fractions() -> None:
    d = load(name="spiral", n_samples=500, n_classes=5, val_fraction=0.1, test_fraction=0.3)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (300, 50, 150)
    assert d.n_classes == 5
    assert load(name="random", n_features=7, n_classes=4).input_shape == (7,)


def test_split_is_stratified() -> None:
    d = load(name="digits")
    counts = torch.bincount(d.y_train, minlength=10).float()
    share = counts / counts.sum()
    assert (share - 0.1).abs().max() < 0.01
    # a small prefix of the training split still holds every class
    assert set(load(name="digits", n_train=30).y_train.tolist()) == set(range(10))


def test_available_datasets_lists_every_config_name() -> None:
    from engine.recipe.config import DATASETS

    assert set(available_datasets()) == set(DATASETS)


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["spiral", "moons", "blobs", "regression_outliers", "digits"])
def test_same_seed_gives_identical_tensors_and_another_seed_another_split(name: str) -> None:
    assert same(load(3, name=name, preprocess="standardize"), load(3, name=name, preprocess="standardize"))
    a, b = load(0, name=name), load(1, name=name)
    assert not torch.equal(a.x_train, b.x_train)


def test_split_seed_pins_the_split_across_run_seeds() -> None:
    a, b = load(0, name="moons", split_seed=7), load(5, name="moons", split_seed=7)
    assert same(a, b)
    assert a.info["run_seed"] == 0 and b.info["run_seed"] == 5 and a.info["data_seed"] == 7


def test_fixed_data_different_seed_only_reshuffles_the_split() -> None:
    a, b = load(0, name="digits"), load(1, name="digits")
    pooled = lambda d: torch.cat([d.x_train, d.x_val, d.x_test]).reshape(-1, 64)  # noqa: E731
    rows = lambda x: sorted(map(tuple, x.tolist()))  # noqa: E731
    assert rows(pooled(a)) == rows(pooled(b))
    assert not torch.equal(a.x_test, b.x_test)


def test_negative_and_large_seeds_work() -> None:
    assert same(load(-1, name="xor"), load(-1, name="xor"))
    load(2**40, name="xor")


def test_to_moves_every_tensor() -> None:
    d = load(name="spiral", n_unlabeled=10).to("meta")
    assert all(t.device.type == "meta" for t in splits_of(d))
    assert d.name == "spiral" and d.info["sizes"]["unlabeled"] == 10


# --- preprocessing fitted on the training split only ------------------------------------------


def test_standardize_uses_training_statistics_only() -> None:
    raw = load(name="digits")
    d = load(name="digits", preprocess="standardize")
    flat = d.x_train.reshape(len(d.x_train), -1)
    varying = raw.x_train.reshape(len(raw.x_train), -1).std(0) > 0
    assert flat.mean(0).abs().max() < 1e-5
    assert torch.allclose(flat[:, varying].std(0, unbiased=False), torch.ones(int(varying.sum())), atol=1e-4)
    assert d.x_val.reshape(len(d.x_val), -1).mean(0).abs().max() > 1e-3  # val is not exactly centred
    pre = Preprocessor("standardize").fit(raw.x_train)
    assert torch.allclose(pre.mean.float(), raw.x_train.reshape(len(raw.x_train), -1).mean(0), atol=1e-5)
    assert torch.allclose(pre.transform(raw.x_val), d.x_val, atol=1e-6)
    assert d.info["preprocess"]["method"] == "standardize" and d.info["preprocess"]["fitted_on"] == "train"


def test_center_and_minmax() -> None:
    d = load(name="moons", preprocess="center")
    assert d.x_train.mean(0).abs().max() < 1e-6 and d.x_test.mean(0).abs().max() > 1e-4
    m = load(name="blobs", preprocess="minmax")
    assert torch.allclose(m.x_train.amin(0), torch.zeros(2)) and torch.allclose(m.x_train.amax(0), torch.ones(2))


def test_constant_features_are_guarded() -> None:
    x = torch.randn(50, 3)
    x[:, 1] = 4.0
    for method in ["standardize", "minmax", "pca_whiten", "zca_whiten"]:
        out = Preprocessor(method).fit_transform(x)
        assert torch.isfinite(out).all(), method
    assert torch.allclose(Preprocessor("standardize").fit_transform(x)[:, 1], torch.zeros(50))


@pytest.mark.parametrize("method", ["pca_whiten", "zca_whiten"])
def test_whitening_gives_identity_covariance_on_train(method: str) -> None:
    d = load(name="random", n_features=10, n_samples=2000, scale_features=100.0, preprocess=method)
    assert torch.allclose(cov(d.x_train), torch.eye(10, dtype=torch.float64), atol=1e-3)
    assert not torch.allclose(cov(d.x_test), torch.eye(10, dtype=torch.float64), atol=1e-3)
    assert d.input_shape == (10,)


def test_zca_keeps_image_shape_and_pca_changes_it() -> None:
    z = load(name="digits", preprocess="zca_whiten")
    assert z.input_shape == (1, 8, 8) and z.x_train.shape[1:] == (1, 8, 8)
    p = load(name="digits", preprocess="pca", pca_components=12)
    assert p.input_shape == (12,) and p.x_test.shape[1:] == (12,)
    assert p.info["input_shape"] == [12] and p.info["raw_input_shape"] == [1, 8, 8]
    c = cov(p.x_train)
    assert torch.allclose(c - torch.diag(torch.diagonal(c)), torch.zeros(12, 12, dtype=torch.float64), atol=1e-3)
    assert (torch.diagonal(c)[:-1] >= torch.diagonal(c)[1:] - 1e-6).all()  # descending variances
    assert 0.5 < p.info["preprocess"]["explained_variance"] < 1.0
    assert load(name="digits", preprocess="pca").input_shape == (64,)


def test_preprocessor_errors() -> None:
    with pytest.raises(DatasetError, match="pca_components"):
        load(name="moons", preprocess="pca", pca_components=3)
    with pytest.raises(RuntimeError):
        Preprocessor("center").transform(torch.zeros(2, 2))
    with pytest.raises(DatasetError, match="shape"):
        Preprocessor("center").fit(torch.zeros(4, 2)).transform(torch.zeros(4, 3))
    with pytest.raises(DatasetError, match="unknown preprocessing"):
        Preprocessor("sphere")


def test_empty_validation_split_is_fine() -> None:
    d = load(name="xor", val_fraction=0.0, preprocess="pca_whiten")
    assert d.x_val.shape == (0, 2) and len(d.y_val) == 0


def test_input_transform_maps_raw_inputs_like_the_splits() -> None:
    raw = load(name="moons")
    d = load(name="moons", scale_features=5.0, preprocess="pca_whiten")
    assert d.input_transform is not None
    assert torch.allclose(d.input_transform(raw.x_test), d.x_test, atol=1e-5)


# --- training-split options -------------------------------------------------------------------


def test_train_fraction_subsets_are_nested_prefixes() -> None:
    full = load(name="digits")
    prev = None
    for frac in [0.1, 0.25, 0.5, 1.0]:
        d = load(name="digits", train_fraction=frac)
        assert len(d.x_train) == round(frac * len(full.x_train))
        assert torch.equal(d.x_train, full.x_train[: len(d.x_train)])
        assert torch.equal(d.x_test, full.x_test) and torch.equal(d.x_val, full.x_val)
        if prev is not None:
            assert torch.equal(prev, d.x_train[: len(prev)])
        prev = d.x_train
    capped = load(name="digits", train_fraction=0.5, n_train=40)
    assert torch.equal(capped.x_train, full.x_train[:40])
    assert capped.info["sizes"]["dropped"] == len(full.x_train) - 40


def test_n_unlabeled_moves_training_samples_without_labels() -> None:
    full = load(name="moons")
    d = load(name="moons", n_unlabeled=200, n_train=50)
    assert d.x_unlabeled is not None and d.x_unlabeled.shape == (200, 2)
    assert len(d.x_train) == len(d.y_train) == 50
    assert torch.equal(d.x_unlabeled, full.x_train[-200:])
    assert torch.equal(d.x_train, full.x_train[:50])
    assert d.info["sizes"]["unlabeled"] == 200
    with pytest.raises(DatasetError, match="n_unlabeled"):
        load(name="moons", n_unlabeled=600)


def test_unlabeled_pool_gets_the_same_preprocessing() -> None:
    d = load(name="blobs", n_unlabeled=100, preprocess="standardize")
    pre = Preprocessor("standardize").fit(load(name="blobs", n_unlabeled=100).x_train)
    assert torch.allclose(pre.transform(load(name="blobs", n_unlabeled=100).x_unlabeled), d.x_unlabeled, atol=1e-6)


def test_scale_features_multiplies_every_second_feature_in_every_split() -> None:
    base = load(name="random", n_features=6, n_unlabeled=20)
    scaled = load(name="random", n_features=6, n_unlabeled=20, scale_features=1000.0)
    factor = torch.tensor([1.0, 1000.0] * 3)
    for a, b in zip(splits_of(base)[::2], splits_of(scaled)[::2], strict=True):
        assert torch.allclose(a * factor, b)
    img = load(name="digits", scale_features=3.0)
    raw = load(name="digits")
    flat_a, flat_b = raw.x_val.reshape(-1, 64), img.x_val.reshape(-1, 64)
    assert torch.equal(flat_a[:, 0::2], flat_b[:, 0::2]) and torch.allclose(3 * flat_a[:, 1::2], flat_b[:, 1::2])


@pytest.mark.parametrize("name", ["spiral", "moons", "xor", "regression_outliers"])
def test_shift_moves_train_and_test_apart(name: str) -> None:
    d = load(name=name, shift=4.0)
    direction = torch.tensor(d.info["shift"]["direction"], dtype=torch.float32)
    proj = {k: (x @ direction).mean().item() for k, x in [("train", d.x_train), ("val", d.x_val), ("test", d.x_test)]}
    scale = d.info["shift"]["scale"]
    assert proj["train"] - proj["test"] > 0.8 * scale
    assert abs(proj["train"] - proj["val"]) < 0.25 * scale  # val follows the training distribution
    plain = load(name=name)
    assert abs((plain.x_train @ direction).mean() - (plain.x_test @ direction).mean()) < 0.25 * scale
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (len(plain.x_train), len(plain.x_val), len(plain.x_test))
    assert same(d, load(name=name, shift=4.0))


def test_shift_direction_is_recorded() -> None:
    assert shift_direction(2).tolist() == [0.8, 0.6]
    assert load(name="circles", shift=1.0).info["shift"]["direction"] == [0.8, 0.6]


def test_regression_outliers_only_in_training_targets() -> None:
    d = load(name="regression_outliers", outlier_fraction=0.2)
    resid = {k: (y - torch.from_numpy(regression_target(x[:, 0].double().numpy())).float()).abs()
             for k, x, y in [("train", d.x_train, d.y_train), ("val", d.x_val, d.y_val), ("test", d.x_test, d.y_test)]}
    assert resid["val"].max() < 1.0 and resid["test"].max() < 1.0
    idx = torch.tensor(d.info["outliers"]["indices"])
    assert len(idx) == round(0.2 * len(d.x_train)) == d.info["outliers"]["count"]
    assert resid["train"][idx].min() > 4.0
    mask = torch.ones(len(d.x_train), dtype=torch.bool)
    mask[idx] = False
    assert resid["train"][mask].max() < 1.0


# --- bad combinations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "moons", "n_classes": 3}, "2 classes"),
        ({"name": "regression_outliers", "n_classes": 3}, "regression"),
        ({"name": "digits", "shift": 1.0}, "shift"),
        ({"name": "digits", "noise": 0.5}, "noise"),
        ({"name": "digits", "n_samples": 5000}, "exceeds"),
        ({"name": "digits", "n_classes": 5}, "10 classes"),
    ],
)
def test_bad_combinations_raise_dataset_error(fields: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load(**fields)


def test_n_samples_subsamples_a_fixed_set() -> None:
    d = load(name="digits", n_samples=500)
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 500


# --- mnist1d ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist1d_global_rng() -> tuple[bool, bool]:
    """Generate mnist1d once in this module, checking that the global generators are left alone."""
    _generate.cache_clear()
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    load(name="mnist1d")
    return bool((np.random.get_state()[1] == np_before).all()), random.getstate() == py_before


def test_mnist1d_keeps_the_published_test_split(mnist1d_global_rng: tuple[bool, bool]) -> None:
    assert mnist1d_global_rng == (True, True)
    d = load(name="mnist1d", val_fraction=0.25, test_fraction=0.5)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (3000, 1000, 1000)
    other = load(7, name="mnist1d")
    assert torch.equal(d.x_test, other.x_test) and not torch.equal(d.x_val[:100], other.x_val[:100])
    assert d.info["split"]["test"] == "official"


def test_mnist1d_noise_scales_the_noise_parameters() -> None:
    base, doubled = mnist1d_args(), mnist1d_args(2.0)
    assert doubled.corr_noise_scale == 2 * base.corr_noise_scale
    assert doubled.iid_noise_scale == 2 * base.iid_noise_scale
    assert doubled.shear_scale == base.shear_scale and mnist1d_args(None).seed == 42


# --- file sets: MNIST IDX and CIFAR-10 pickles written here in their real formats --------------


def write_idx(path: os.PathLike, array: np.ndarray, gz: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(blob)


def write_mnist(folder, n_train: int = 40, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    for i, (name, arr) in enumerate(arrays.items()):
        write_idx(folder / name, arr, gz=i % 2 == 0)  # a mix of .gz and plain files
    return arrays


def test_mnist_reads_idx_files(tmp_path) -> None:
    arrays = write_mnist(tmp_path)
    assert (tmp_path / "train-images-idx3-ubyte.gz").exists() and (tmp_path / "train-labels-idx1-ubyte").exists()
    d = load(name="mnist", root=str(tmp_path), val_fraction=0.25)
    assert d.input_shape == (1, 28, 28) and d.n_classes == 10
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (30, 10, 20)
    assert float(d.x_train.min()) >= 0.0 and float(d.x_train.max()) <= 1.0
    expected = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].astype(np.float32) / 255)[:, None]
    assert torch.allclose(d.x_test, expected) and d.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_fashion_mnist_from_dllab_data_subfolder(tmp_path, monkeypatch) -> None:
    write_mnist(tmp_path / "FashionMNIST" / "raw", seed=1)
    monkeypatch.setenv("DLLAB_DATA", str(tmp_path))
    d = load(name="fashion_mnist")
    assert d.x_train.shape[1:] == (1, 28, 28) and d.info["split"]["test"] == "official"


def test_missing_files_give_a_helpful_dataset_error(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DLLAB_DATA", raising=False)
    with pytest.raises(DatasetError, match="DLLAB_DATA"):
        load(name="mnist")
    with pytest.raises(DatasetError) as err:
        load(name="mnist", root=str(tmp_path))
    text = str(err.value)
    assert "train-images-idx3-ubyte(.gz)" in text and "never downloads" in text and str(tmp_path) in text
    with pytest.raises(DatasetError, match="data_batch_1"):
        load(name="cifar10", root=str(tmp_path))


def test_corrupt_idx_file_is_a_dataset_error(tmp_path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x12\x34\x56\x78junk")
    with pytest.raises(DatasetError, match="magic"):
        load(name="mnist", root=str(tmp_path))


def write_cifar(folder, per_batch: int = 10, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, per_batch)], b"batch_label": name.encode()}
        with open(batches / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


def test_cifar10_reads_python_batches(tmp_path) -> None:
    write_cifar(tmp_path)
    d = load(name="cifar10", root=str(tmp_path))
    assert d.input_shape == (3, 32, 32) and d.n_classes == 10
    assert len(d.x_train) + len(d.x_val) == 50 and len(d.x_test) == 10
    assert float(d.x_train.max()) <= 1.0 and d.y_train.dtype == torch.int64


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_refuses_pickles_that_run_code(tmp_path) -> None:
    write_cifar(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(DatasetError, match="refusing"):
        load(name="cifar10", root=str(tmp_path))
