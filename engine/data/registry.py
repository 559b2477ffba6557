"""``load_data``: a DataSpec and a seed → train / val / test tensors on a device.

The steps, in order:

1. make or read the samples (generated sets from the data seed; files never downloaded);
2. split train / val / test from one stratified ordering seeded by ``split_seed`` (else the run
   seed); sets with an official test split (mnist1d, mnist, fashion_mnist, cifar10) keep it as the
   test split and take val from their training part; ``shift`` > 0 draws train+val and test from
   different regions of a larger generated pool;
3. on the training split: outliers (``regression_outliers``), ``n_unlabeled`` (the last samples of
   the training order move to ``x_unlabeled``), then ``train_fraction`` and ``n_train`` (a prefix,
   so smaller subsets are nested in larger ones);
4. ``scale_features`` on every split, then the preprocessing fitted on the training split only.

The same spec and seed give bit-identical tensors. The data seed also drives generation of the
toy sets, so a fixed ``split_seed`` pins the same samples across run seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engine.data.base import DatasetError, DataSplits
from engine.data.facts import NO_NOISE, RANDOM_FEATURES, toy_classes
from engine.data.files import read_file_data
from engine.data.images import Pool, load_cifar10_pool, load_digits_pool, load_idx_pool
from engine.data.mnist1d_source import load_mnist1d_pool
from engine.data.preprocess import InputPipeline, Preprocessor, scale_every_second
from engine.data.splits import Stream, count, rng_for, shift_sides, stratified_order
from engine.data.toy import DEFAULT_SAMPLES, OUTLIER_OFFSET, TOY_SETS, add_outliers
from engine.recipe.config import DataSpec

FILE_SETS = {
    "digits": "sklearn's 1797 handwritten 8×8 digits (bundled, raw pixel values 0..16)",
    "mnist1d": "MNIST-1D: 40-step 1-D signals of 10 digits (generated offline)",
    "mnist": "MNIST 28×28 handwritten digits (IDX files under the data folder)",
    "fashion_mnist": "Fashion-MNIST 28×28 clothing images (IDX files under the data folder)",
    "cifar10": "CIFAR-10 32×32 colour images (python batches under the data folder)",
}


def available_datasets() -> dict[str, str]:
    """Dataset name → one-line description, for menus and ``--help``."""
    return {**{name: toy.summary for name, toy in TOY_SETS.items()}, **FILE_SETS,
            "file": "your own data: a .csv / .tsv table, a .npz, .npy arrays or a folder of images (data.path)",
            "surface": "no data: a 2-D test function whose point is trained (engine.surfaces)"}


@dataclass
class _Parts:
    """Split arrays (numpy, training split in its stratified order) before tensors are made."""

    task: str
    n_classes: int
    input_shape: tuple[int, ...]
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    divisor: float = 1.0
    info: dict = field(default_factory=dict)


def load_data(spec: DataSpec, seed: int, device: str | torch.device = "cpu") -> DataSplits:
    """Build the dataset ``spec`` describes; ``seed`` is the run's seed (see the module docstring)."""
    data_seed = seed if spec.split_seed is None else spec.split_seed
    if spec.name in TOY_SETS:
        parts = _generated(spec, data_seed)
    elif spec.name in FILE_SETS:
        parts = _from_pool(spec, data_seed, _pool(spec))
    elif spec.name == "file":
        parts = _from_file(spec, data_seed)
    else:
        raise DatasetError(f"unknown dataset {spec.name!r}; choose one of {', '.join(available_datasets())}")
    parts.info.update(name=spec.name, task=parts.task, run_seed=seed, data_seed=data_seed,
                      split_seed=spec.split_seed)
    return _finish(spec, parts, data_seed).to(device)


# --- step 1 and 2: samples and the split ------------------------------------------------------


def _sizes(n: int, spec: DataSpec, with_test: bool = True) -> tuple[int, int, int]:
    n_test = count(n, spec.test_fraction) if with_test else 0
    n_val = count(n, spec.val_fraction)
    n_train = n - n_test - n_val
    if n_train < 1:
        raise DatasetError(f"{spec.name}: {n} samples leave no training samples after val/test splits")
    return n_train, n_val, n_test


def _generated(spec: DataSpec, data_seed: int) -> _Parts:
    toy = TOY_SETS[spec.name]
    k = toy_classes(spec)
    noise = toy.default_noise if spec.noise is None else spec.noise
    n_features = (spec.n_features or RANDOM_FEATURES) if spec.name == "random" else 0
    n = spec.n_samples or DEFAULT_SAMPLES
    n_train, n_val, n_test = _sizes(n, spec)
    classification = toy.task == "classification"
    gen_rng, split_rng = rng_for(data_seed, Stream.GENERATE), rng_for(data_seed, Stream.SPLIT)
    info: dict = {"source": f"generated ({toy.summary})", "noise": noise, "noise_meaning": toy.noise_meaning,
                  "shift": None}

    if spec.shift == 0:
        x, y = toy.make(n, k, noise, n_features, gen_rng)
        order = stratified_order(y, split_rng, classification)
        test, val, train = np.split(order, [n_test, n_test + n_val])
    else:
        pool_n = 4 * n
        for _ in range(5):
            x, y = toy.make(pool_n, k, noise, n_features, gen_rng)
            sides, info["shift"] = shift_sides(x, spec.shift, rng_for(data_seed, Stream.SHIFT))
            train_side, test_side = np.flatnonzero(sides), np.flatnonzero(~sides)
            if len(train_side) >= n_train + n_val and len(test_side) >= n_test:
                break
            pool_n *= 2
        else:
            raise DatasetError(f"{spec.name}: shift={spec.shift} leaves too few samples on one side")
        info["shift"]["pool"] = pool_n
        train_side = train_side[stratified_order(y[train_side], split_rng, classification)]
        test_side = test_side[stratified_order(y[test_side], split_rng, classification)]
        val, train = train_side[:n_val], train_side[n_val : n_val + n_train]
        test = test_side[:n_test]

    info["split"] = {"method": "stratified" if classification else "random", "test": "held out",
                     "val_fraction": spec.val_fraction, "test_fraction": spec.test_fraction}
    y = y.astype(np.int64 if classification else np.float32)
    return _Parts(toy.task, k, (x.shape[1],), (x[train], y[train]), (x[val], y[val]), (x[test], y[test]),
                  info=info)


def _pool(spec: DataSpec) -> Pool:
    if spec.noise is not None and spec.name in NO_NOISE:
        raise DatasetError(f"{spec.name} has no noise option (noise applies to generated sets and mnist1d)")
    if spec.name == "digits":
        return load_digits_pool()
    if spec.name == "mnist1d":
        return load_mnist1d_pool(spec.noise)
    if spec.name == "cifar10":
        return load_cifar10_pool(spec.root)
    return load_idx_pool(spec.name, spec.root)


def _from_pool(spec: DataSpec, data_seed: int, pool: Pool) -> _Parts:
    if spec.shift > 0:
        raise DatasetError(f"shift applies to the generated sets only, not to {spec.name}")
    if spec.n_classes is not None and spec.n_classes != pool.n_classes:
        raise DatasetError(f"{spec.name} has {pool.n_classes} classes; n_classes={spec.n_classes} does not apply")
    order = stratified_order(pool.y, rng_for(data_seed, Stream.SPLIT), classification=True)
    notes = list(pool.notes)
    if spec.n_samples is not None:
        if spec.n_samples > len(order):
            raise DatasetError(f"n_samples={spec.n_samples} exceeds the {len(order)} samples of {spec.name}")
        order = order[: spec.n_samples]
        notes.append(f"a stratified subsample of {spec.n_samples} of the {len(pool.y)} samples")
    official = pool.x_test is not None
    n_train, n_val, n_test = _sizes(len(order), spec, with_test=not official)
    test, val, train = np.split(order, [n_test, n_test + n_val])
    if official:
        assert pool.x_test is not None and pool.y_test is not None
        test_xy = (pool.x_test, pool.y_test)
        notes.append(f"test is the official test split ({len(pool.y_test)}); test_fraction is not used, "
                     "val_fraction is a share of the training part")
    else:
        test_xy = (pool.x[test], pool.y[test])
    info = {"source": pool.source, "notes": notes,
            "split": {"method": "stratified", "test": "official" if official else "held out",
                      "val_fraction": spec.val_fraction,
                      "test_fraction": None if official else spec.test_fraction}}
    return _Parts("classification", pool.n_classes, pool.input_shape, (pool.x[train], pool.y[train]),
                  (pool.x[val], pool.y[val]), test_xy, divisor=pool.divisor, info=info)


def _from_file(spec: DataSpec, data_seed: int) -> _Parts:
    """A user's own data (``engine.data.files``): split as a file set without an official test split
    (stratified for classes, random for a regression target)."""
    if spec.shift > 0 or spec.noise is not None:
        raise DatasetError("shift and noise apply to the generated sets, not to your own data")
    data = read_file_data(spec)
    classification = data.task == "classification"
    order = stratified_order(data.y, rng_for(data_seed, Stream.SPLIT), classification)
    notes = list(data.notes)
    if spec.n_samples is not None:
        if spec.n_samples > len(order):
            raise DatasetError(f"n_samples={spec.n_samples} exceeds the {len(order)} samples of {spec.path}")
        order = order[: spec.n_samples]
        notes.append(f"a {'stratified ' if classification else ''}subsample of {spec.n_samples} of the "
                     f"{len(data.y)} samples")
    n_train, n_val, n_test = _sizes(len(order), spec)
    test, val, train = np.split(order, [n_test, n_test + n_val])
    info = {"source": data.source, "notes": notes, "class_names": list(data.class_names),
            "split": {"method": "stratified" if classification else "random", "test": "held out",
                      "val_fraction": spec.val_fraction, "test_fraction": spec.test_fraction}}
    x, y = data.x, data.y
    return _Parts(data.task, data.n_classes, data.input_shape, (x[train], y[train]), (x[val], y[val]),
                  (x[test], y[test]), divisor=data.divisor, info=info)


# --- step 3 and 4: the training split, feature scaling, preprocessing -------------------------


def _tensor_x(x: np.ndarray, divisor: float) -> torch.Tensor:
    out = x.astype(np.float32)
    if divisor != 1.0:
        out /= np.float32(divisor)
    return torch.from_numpy(np.ascontiguousarray(out))


def _tensor_y(y: np.ndarray, task: str) -> torch.Tensor:
    dtype = np.int64 if task == "classification" else np.float32
    return torch.from_numpy(np.array(y, dtype=dtype))  # a copy: pools may be read-only


def _finish(spec: DataSpec, parts: _Parts, data_seed: int) -> DataSplits:
    info = parts.info
    x_tr, y_tr = parts.train
    outliers = None
    if spec.name == "regression_outliers":
        y_tr, outliers = add_outliers(y_tr, spec.outlier_fraction, rng_for(data_seed, Stream.OUTLIERS))

    x_unl = None
    if spec.n_unlabeled:
        if spec.n_unlabeled >= len(x_tr):
            raise DatasetError(f"n_unlabeled={spec.n_unlabeled} must be smaller than the training split "
                               f"({len(x_tr)} samples of {spec.name})")
        x_unl = x_tr[-spec.n_unlabeled :]
        x_tr, y_tr = x_tr[: -spec.n_unlabeled], y_tr[: -spec.n_unlabeled]
    n_labeled = len(x_tr)
    keep = max(1, count(n_labeled, spec.train_fraction))
    if spec.n_train is not None:
        keep = min(keep, spec.n_train)
    x_tr, y_tr = x_tr[:keep], y_tr[:keep]
    if outliers is not None:
        outliers = outliers[:keep]
        info["outliers"] = {"fraction": spec.outlier_fraction, "count": int(outliers.sum()),
                            "offset": list(OUTLIER_OFFSET), "indices": np.flatnonzero(outliers).tolist(),
                            "where": "training targets only; val and test stay clean"}

    t = parts.task
    xs = {"train": _tensor_x(x_tr, parts.divisor), "val": _tensor_x(parts.val[0], parts.divisor),
          "test": _tensor_x(parts.test[0], parts.divisor)}
    if x_unl is not None:
        xs["unlabeled"] = _tensor_x(x_unl, parts.divisor)
    xs = {k: scale_every_second(v, spec.scale_features) for k, v in xs.items()}

    components = spec.pca_components if spec.preprocess in ("pca", "pca_whiten") else None
    pre = Preprocessor(spec.preprocess, components, spec.whiten_eps).fit(xs["train"])
    xs = {k: pre.transform(v) for k, v in xs.items()}

    ys = {"train": y_tr, "val": parts.val[1], "test": parts.test[1]}
    sizes = {k: len(v) for k, v in xs.items()}
    sizes.setdefault("unlabeled", 0)
    sizes["dropped"] = n_labeled - keep
    info.update(
        n_classes=parts.n_classes, raw_input_shape=list(parts.input_shape), input_shape=list(pre.output_shape()),
        sizes=sizes, train_fraction=spec.train_fraction, n_train=spec.n_train,
        scale_features=spec.scale_features, preprocess=pre.describe(),
    )
    if spec.scale_features != 1.0:
        info["scaled_features"] = "flattened features 1, 3, 5, … multiplied by scale_features in every split"
    if t == "classification":
        info["class_counts"] = {k: np.bincount(v, minlength=parts.n_classes).tolist() for k, v in ys.items()}
    return DataSplits(
        name=spec.name, task=t, n_classes=parts.n_classes,  # type: ignore[arg-type]
        input_shape=pre.output_shape(),
        x_train=xs["train"], y_train=_tensor_y(y_tr, t), x_val=xs["val"], y_val=_tensor_y(parts.val[1], t),
        x_test=xs["test"], y_test=_tensor_y(parts.test[1], t), x_unlabeled=xs.get("unlabeled"),
        info=info, input_transform=InputPipeline(parts.input_shape, spec.scale_features, pre),
    )
