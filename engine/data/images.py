"""Image sets read from disk (a run never downloads): digits (bundled with sklearn), MNIST and
Fashion-MNIST (IDX files, plain or .gz), CIFAR-10 (the python pickle batches).

Each loader returns a ``Pool``: the raw arrays (uint8 pixels stay uint8 until the split picks
its samples) plus the official test split when the dataset has one. Files are looked up under
``DataSpec.root``, else the data folder (``$DLLAB_DATA``, else ``$DLLAB_HOME/data``: where
`dllab data get` puts them, ``engine.data.fetch``); parsed arrays are cached per process, keyed by
path, size and modification time.
"""

from __future__ import annotations

import functools
import gzip
import pickle
import shlex
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.base import DatasetError
from engine.paths import DATA_ENV, default_data_folder

ENV_ROOT = DATA_ENV


@dataclass
class Pool:
    """A dataset's samples before splitting (``x_test`` is the official test split, if any)."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int
    input_shape: tuple[int, ...]
    source: str
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    divisor: float = 1.0
    """Pixels are divided by this when converted to float32 (255 for uint8 images)."""
    notes: list[str] = field(default_factory=list)


def _readonly(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.setflags(write=False)
    return arrays


# --- digits -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :]
    return _readonly(x, bunch.target.astype(np.int64))


def load_digits_pool() -> Pool:
    """sklearn's 1797 8×8 digits, pixel values kept raw (0..16) so preprocessing matters."""
    x, y = _digits_arrays()
    return Pool(x, y, 10, (1, 8, 8), "sklearn.datasets.load_digits (bundled, offline)",
                notes=["digits pixels are raw values 0..16 (not scaled)"])


# --- file lookup ------------------------------------------------------------------------------


def data_roots(root: str | None) -> list[Path]:
    """The folders to search: ``root`` if given, else the data folder (``$DLLAB_DATA`` if set, else
    ``data`` in the dllab home: ``engine.paths.default_data_folder``)."""
    return [Path(root).expanduser() if root else default_data_folder()]


def _candidates(roots: list[Path], subdirs: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for r in roots:
        out += [r / s for s in subdirs] + [r]
    return out


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        path = folder / name
        if path.is_file():
            return path
    return None


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _missing(dataset: str, root: str | None, folders: list[Path], expected: str) -> DatasetError:
    where = ", ".join(str(f) for f in folders)
    get = f"dllab data get {dataset.replace('_', '-')}" + (f" --root {shlex.quote(root)}" if root else "")
    other = "" if root else f"; ${ENV_ROOT} or data.root in the recipe picks another data folder"
    return DatasetError(f"{dataset} needs files under a data folder (looked in {where}): expected {expected}; "
                        f"a run never downloads: `{get}` fetches them, or place them there yourself{other}")


# --- MNIST / Fashion-MNIST (IDX) --------------------------------------------------------------

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_SUBDIRS = {
    "mnist": ("mnist", "MNIST/raw", "MNIST"),
    "fashion_mnist": ("fashion_mnist", "fashion-mnist", "FashionMNIST/raw", "FashionMNIST"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx_names(stem: str) -> tuple[str, ...]:
    alt = stem.replace("-idx", ".idx")
    return (stem, stem + ".gz", alt, alt + ".gz")


def parse_idx(data: bytes, origin: str = "<bytes>") -> np.ndarray:
    """Decode one IDX file (magic 0x0000 | dtype code | ndim, then big-endian int32 dims)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{origin} is not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{origin}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    n = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != n * dtype.itemsize:
        raise DatasetError(f"{origin}: IDX header says shape {dims} but the file holds "
                           f"{len(data) - header} data bytes")
    return np.frombuffer(data, dtype=dtype, count=n, offset=header).reshape(dims)


@functools.lru_cache(maxsize=16)
def _read_idx(path: str, size: int, mtime_ns: int) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    (arr,) = _readonly(parse_idx(data, path).copy())
    return arr


def find_idx_files(name: str, root: str | None) -> tuple[Path, dict[str, Path]]:
    """The folder holding the four IDX files of `name` and their paths (keys of IDX_FILES), without
    reading them; a DatasetError saying where it looked when they are not all there."""
    roots = data_roots(root)
    folders = _candidates(roots, IDX_SUBDIRS[name])
    for folder in folders:
        paths = {key: _find(folder, _idx_names(stem)) for key, stem in IDX_FILES.items()}
        if all(paths.values()):
            return folder, {key: p for key, p in paths.items() if p is not None}
    expected = ", ".join(f"{stem}(.gz)" for stem in IDX_FILES.values())
    raise _missing(name, root, folders, expected)


def idx_dims(path: Path) -> tuple[int, ...]:
    """The dimensions an IDX file's header gives (its first bytes only; plain or .gz)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
                raise DatasetError(f"{path} is not an IDX file (bad magic number {head.hex() or 'empty'})")
            dims = f.read(4 * head[3])
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if len(dims) < 4 * head[3]:
        raise DatasetError(f"{path}: truncated IDX header")
    return struct.unpack(f">{head[3]}I", dims)


def load_idx_pool(name: str, root: str | None) -> Pool:
    """MNIST or Fashion-MNIST from the four IDX files (plain or .gz) under the data folder."""
    folder, paths = find_idx_files(name, root)
    arrays = {key: _read_idx(*_stamp(p)) for key, p in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(f"{name} {split} files disagree: images {images.shape}, labels {labels.shape} "
                               f"in {folder}")
    h, w = arrays["train_images"].shape[1:]
    return Pool(
        x=arrays["train_images"][:, None], y=arrays["train_labels"].astype(np.int64),
        x_test=arrays["test_images"][:, None], y_test=arrays["test_labels"].astype(np.int64),
        n_classes=10, input_shape=(1, h, w), divisor=255.0,
        source=f"IDX files in {folder}", notes=[f"{name} pixels scaled to [0, 1] (uint8 / 255)"],
    )


# --- CIFAR-10 (python pickle batches) ---------------------------------------------------------

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a data file can never run code."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how Python 3 spells bytes in protocol-2 pickles
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _get(batch: dict, key: str) -> object:
    value = batch.get(key.encode(), batch.get(key))
    if value is None:
        raise KeyError(key)
    return value


@functools.lru_cache(maxsize=8)
def _read_cifar_batch(path: str, size: int, mtime_ns: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(_get(batch, "data"), dtype=np.uint8)
        labels = np.asarray(_get(batch, "labels"), dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, AttributeError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path} is not a CIFAR-10 python batch (a pickled dict with b'data' and "
                           f"b'labels'): {exc}") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DatasetError(f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape} "
                           f"and {labels.shape}")
    return _readonly(data.reshape(-1, 3, 32, 32), labels)  # type: ignore[return-value]


def find_cifar10_folder(root: str | None) -> Path:
    """The folder holding CIFAR-10's six python batches, without reading them; a DatasetError saying
    where it looked when they are not all there."""
    roots = data_roots(root)
    folders = _candidates(roots, (CIFAR_DIR, f"cifar10/{CIFAR_DIR}", "cifar10"))
    names = (*CIFAR_TRAIN, CIFAR_TEST)
    for folder in folders:
        if all((folder / n).is_file() for n in names):
            return folder
    raise _missing("cifar10", root, folders, f"{CIFAR_DIR}/" + ", ".join(names))


def load_cifar10_pool(root: str | None) -> Pool:
    """CIFAR-10 from ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch`` under the data folder."""
    folder = find_cifar10_folder(root)
    train = [_read_cifar_batch(*_stamp(folder / n)) for n in CIFAR_TRAIN]
    x_test, y_test = _read_cifar_batch(*_stamp(folder / CIFAR_TEST))
    return Pool(
        x=np.concatenate([b[0] for b in train]), y=np.concatenate([b[1] for b in train]),
        x_test=x_test, y_test=y_test, n_classes=10, input_shape=(3, 32, 32), divisor=255.0,
        source=f"CIFAR-10 python batches in {folder}", notes=["cifar10 pixels scaled to [0, 1] (uint8 / 255)"],
    )
