"""What a DataSpec's data will be, known without building it: the task, the classes, the input
shape the model sees and the sample counts, for the checks made before any run starts
(``engine.catalogue.preflight``).

Cheap and torch-free: nothing is generated, downloaded or read beyond a file's header, but a
user's own data (``name = "file"``), which is read and checked whole (``engine.data.files``). The toy
sets follow their generators' rules (2-D inputs, 1-D for ``regression_outliers``, ``n_features``
for ``random``); digits, mnist1d and CIFAR-10 have their published sizes; MNIST and Fashion-MNIST
read the header of their training images. A data folder without the files is found here by the
loader's own look-up (``engine.data.images``), and the options that do not fit the data are the
loader's own DatasetErrors, in its words. ``tests/test_preflight.py`` compares these facts with
what ``load_data`` builds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.data.base import DatasetError
from engine.data.files import read_file_data
from engine.data.images import find_cifar10_folder, find_idx_files, idx_dims
from engine.data.splits import count
from engine.data.toy import DEFAULT_SAMPLES, TOY_SETS
from engine.recipe.config import DataSpec

RANDOM_FEATURES = 20
"""Input size of the `random` set when ``n_features`` is not given."""
NO_NOISE = ("digits", "mnist", "fashion_mnist", "cifar10")
"""File sets without a noise option."""
FILE_SIZES: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "digits": (1797, 0, (1, 8, 8)),
    "mnist1d": (4000, 1000, (40,)),
    "cifar10": (50_000, 10_000, (3, 32, 32)),
}
"""(samples of the pool, samples of the official test split (0: none), input shape) of the file
sets whose files are fixed; MNIST and Fashion-MNIST read theirs from the files' headers."""
FILE_CLASSES = 10
"""Every file set has ten classes."""


@dataclass(frozen=True)
class DataFacts:
    """What a run's data will hold (see the module docstring)."""

    task: str
    n_classes: int
    input_shape: tuple[int, ...]
    """The shape of one input as the model sees it (after preprocessing: PCA makes it ``(k,)``)."""
    n_train: int
    """Training samples a run trains on (after the splits, the unlabeled pool, `train_fraction`, `n_train`)."""
    n_total: int
    """Samples held in all splits together."""
    raw_shape: tuple[int, ...]
    """The shape of one input before preprocessing."""

    @property
    def n_outputs(self) -> int:
        """The network's outputs: one per class, or one for regression."""
        return self.n_classes if self.task == "classification" else 1


def describe(spec: DataSpec) -> DataFacts:
    """The facts of `spec`'s data, or the DatasetError that building it would raise."""
    if spec.name in TOY_SETS:
        task, classes, shape, n, n_test = _toy(spec)
    elif spec.name in FILE_SIZES or spec.name in ("mnist", "fashion_mnist"):
        task, classes, shape, n, n_test = _file_set(spec)
    elif spec.name == "file":
        task, classes, shape, n, n_test = _own_file(spec)
    else:
        raise DatasetError(f"{spec.name!r} runs have no data set")
    official = n_test > 0  # the set's own test split: val is a share of the rest
    n_val = count(n, spec.val_fraction)
    if not official:
        n_test = count(n, spec.test_fraction)
    n_train = n - n_val - (0 if official else n_test)
    if n_train < 1:
        raise DatasetError(f"{spec.name}: {n} samples leave no training samples after val/test splits")
    if spec.n_unlabeled and spec.n_unlabeled >= n_train:
        raise DatasetError(f"n_unlabeled={spec.n_unlabeled} must be smaller than the training split "
                           f"({n_train} samples of {spec.name})")
    labeled = n_train - spec.n_unlabeled
    keep = max(1, count(labeled, spec.train_fraction))
    if spec.n_train is not None:
        keep = min(keep, spec.n_train)
    features = math.prod(shape)
    seen = tuple(shape)
    if spec.preprocess in ("pca", "pca_whiten"):
        if spec.pca_components is not None and spec.pca_components > features:
            raise DatasetError(f"pca_components={spec.pca_components} exceeds the {features} input features")
        seen = (spec.pca_components or features,)
    return DataFacts(task, classes, seen, keep, n_train + n_val + n_test, tuple(shape))


def toy_classes(spec: DataSpec) -> int:
    """The classes of a generated set (0: a regression set); DatasetError when `n_classes` asks
    another number of a set whose classes are fixed."""
    toy = TOY_SETS[spec.name]
    if toy.fixed_classes is None:
        return spec.n_classes or toy.default_classes
    if spec.n_classes is not None and spec.n_classes != toy.fixed_classes:
        what = "is a regression set" if toy.fixed_classes == 0 else f"has {toy.fixed_classes} classes"
        raise DatasetError(f"{spec.name} {what}; n_classes={spec.n_classes} does not apply")
    return toy.fixed_classes


def _toy(spec: DataSpec) -> tuple[str, int, tuple[int, ...], int, int]:
    toy = TOY_SETS[spec.name]
    k = toy_classes(spec)
    dims = {"regression_outliers": 1, "random": spec.n_features or RANDOM_FEATURES}.get(spec.name, 2)
    return toy.task, k, (dims,), spec.n_samples or DEFAULT_SAMPLES, 0


def _own_file(spec: DataSpec) -> tuple[str, int, tuple[int, ...], int, int]:
    """A user's own data is read (and checked) whole: its problems are found here, before any run."""
    if spec.shift > 0 or spec.noise is not None:
        raise DatasetError("shift and noise apply to the generated sets, not to your own data")
    data = read_file_data(spec)
    if spec.n_samples is not None and spec.n_samples > len(data.y):
        raise DatasetError(f"n_samples={spec.n_samples} exceeds the {len(data.y)} samples of {spec.path}")
    return data.task, data.n_classes, data.input_shape, spec.n_samples or len(data.y), 0


def _file_set(spec: DataSpec) -> tuple[str, int, tuple[int, ...], int, int]:
    if spec.noise is not None and spec.name in NO_NOISE:
        raise DatasetError(f"{spec.name} has no noise option (noise applies to generated sets and mnist1d)")
    if spec.name in FILE_SIZES:
        if spec.name == "cifar10":
            find_cifar10_folder(spec.root)
        pool, n_test, shape = FILE_SIZES[spec.name]
    else:
        _, paths = find_idx_files(spec.name, spec.root)
        train_dims, test_dims = idx_dims(paths["train_images"]), idx_dims(paths["test_images"])
        if len(train_dims) != 3 or len(test_dims) != 3:
            raise DatasetError(f"{spec.name}: {paths['train_images']} holds shape {train_dims}, not images")
        pool, n_test, shape = train_dims[0], test_dims[0], (1, *train_dims[1:])
    if spec.shift > 0:
        raise DatasetError(f"shift applies to the generated sets only, not to {spec.name}")
    if spec.n_classes is not None and spec.n_classes != FILE_CLASSES:
        raise DatasetError(f"{spec.name} has {FILE_CLASSES} classes; n_classes={spec.n_classes} does not apply")
    if spec.n_samples is not None and spec.n_samples > pool:
        raise DatasetError(f"n_samples={spec.n_samples} exceeds the {pool} samples of {spec.name}")
    return "classification", FILE_CLASSES, shape, spec.n_samples or pool, n_test
