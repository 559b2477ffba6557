"""A user's own data (``data.name = "file"``): a CSV / TSV table, a ``.npz`` with ``x`` and ``y``,
a ``.npy`` of inputs with a ``.npy`` of targets beside it, or a folder of images with one
subfolder per class.

:func:`read_file_data` reads and checks the whole file once per process (cached by path, size and
modification time), so the check made before any run starts (``engine.data.facts``,
``engine.catalogue.preflight``) and the loading itself see the same arrays. Every problem is a
:class:`~engine.data.base.DatasetError` that names the file, the row or column, and what is allowed:
a missing column, a ragged row, a cell that is not a number, a missing value or NaN, a single class,
labels outside ``0 .. n_classes-1``, images of different sizes.

The task is inferred and can be set (``data.task``): text labels, or whole numbers with at most
:data:`MAX_INFERRED_CLASSES` distinct values, are classes; other numbers are a regression target.
Class labels are mapped to ``0 .. K-1`` in sorted order (whole numbers that already are
``0 .. K-1`` keep their values); the names are kept for the run's description.

Written here rather than with pandas: the standard library's ``csv`` reader gives the exact line of
a bad cell, and the lab needs no other table features. Images are read with Pillow (the ``images``
extra), imported only for a folder of images.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.base import DatasetError

MAX_INFERRED_CLASSES = 50
"""Whole-number labels with at most this many distinct values are read as classes (else regression)."""
LABEL_NAMES = ("label", "labels", "target", "y", "class")
"""Columns taken as the label when ``data.label`` is not set."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_QUOTED = 60
"""Characters of a cell or a name quoted in a message."""


@dataclass(frozen=True)
class FileData:
    """A file's samples, checked: inputs ``x`` (float32, or uint8 pixels), targets ``y``."""

    x: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int
    """Classes (0 for regression)."""
    input_shape: tuple[int, ...]
    source: str
    divisor: float = 1.0
    """Pixels are divided by this when converted to float32 (255 for images)."""
    class_names: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    def balance(self) -> dict[str, int]:
        """Samples per class (by name), for a description before a run."""
        if self.task != "classification":
            return {}
        counts = np.bincount(self.y.astype(np.int64), minlength=self.n_classes)
        names = self.class_names or tuple(str(k) for k in range(self.n_classes))
        return {name: int(n) for name, n in zip(names, counts, strict=True)}


def _quote(text: object) -> str:
    s = str(text)
    s = "".join(ch if ch.isprintable() else "?" for ch in s)
    return repr(s if len(s) <= MAX_QUOTED else s[: MAX_QUOTED - 1] + "…")


def read_file_data(spec: Any) -> FileData:
    """The checked samples of `spec` (a DataSpec with ``name = "file"``): see the module docstring."""
    if not spec.path:
        raise DatasetError('data.name = "file" needs data.path: a .csv / .tsv, a .npz, a .npy or a folder of images')
    path = Path(spec.path).expanduser()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file or folder (data.path)") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    targets_key: tuple[str, int, int] | None = None
    if spec.targets:
        tpath = Path(spec.targets).expanduser()
        try:
            tstat = tpath.stat()
        except OSError:
            raise DatasetError(f"{tpath}: no such file (data.targets)") from None
        targets_key = (str(tpath), tstat.st_size, tstat.st_mtime_ns)
    image_size = tuple(spec.image_size) if spec.image_size else None
    features = tuple(spec.features) if spec.features is not None else None
    return _read(str(path), stat.st_size, stat.st_mtime_ns, path.is_dir(), spec.label, features, spec.task,
                 spec.n_classes, targets_key, image_size)


@functools.lru_cache(maxsize=8)
def _read(path: str, size: int, mtime_ns: int, is_dir: bool, label: str | None, features: tuple[str, ...] | None,
          task: str | None, n_classes: int | None, targets: tuple[str, int, int] | None,
          image_size: tuple[int, int] | None) -> FileData:
    p = Path(path)
    suffix = p.suffix.lower()
    if is_dir:
        x, y, names = _read_image_folder(p, image_size)
        return _finish(p, x, y, "classification" if task is None else task, n_classes, names, divisor=255.0,
                       source=f"a folder of images: {p}")
    if image_size is not None:
        raise DatasetError(f"{p}: data.image_size applies to a folder of images only")
    if suffix in (".csv", ".tsv", ".txt"):
        x, raw_y, names = _read_table(p, label, features)
        y, inferred, class_names = _labels(p, raw_y, task, label_name=names)
        return _finish(p, x, y, inferred, n_classes, class_names, source=f"a table: {p}")
    if label is not None or features is not None:
        raise DatasetError(f"{p}: data.label and data.features choose columns of a .csv / .tsv table only")
    if suffix == ".npz":
        x, raw_y = _read_npz(p)
    elif suffix == ".npy":
        if targets is None:
            raise DatasetError(f"{p}: a .npy of inputs needs data.targets, the .npy of its targets")
        x, raw_y = _load_npy(p, "inputs"), _load_npy(Path(targets[0]), "targets")
    else:
        raise DatasetError(f"{p}: not a data file dllab reads (.csv, .tsv, .npz, .npy, or a folder of images)")
    y, inferred, class_names = _labels(p, raw_y, task)
    return _finish(p, _array_inputs(p, x), y, inferred, n_classes, class_names,
                   source=f"arrays: {p}" + (f" and {targets[0]}" if targets else ""))


# -- tables ---------------------------------------------------------------------------------------


def _read_table(path: Path, label: str | None, features: tuple[str, ...] | None
                ) -> tuple[np.ndarray, list[str], str]:
    """(inputs, the label column's cells, the label column's name) of a table with a header."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}); save the table as UTF-8 CSV") from None
    except (OSError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot be read as a table ({exc})") from None
    rows = [r for r in rows if r and any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise DatasetError(f"{path}: a table needs a header row and at least one row of data")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        twice = next(h for h in header if header.count(h) > 1)
        raise DatasetError(f"{path}: the header names column {_quote(twice)} twice")
    if label is None:
        label = next((h for h in header if h.lower() in LABEL_NAMES), None)
        if label is None:
            raise DatasetError(f"{path}: no label column: set data.label to one of the columns "
                               f"({', '.join(_quote(h) for h in header[:12])}{', …' if len(header) > 12 else ''})")
    elif label not in header:
        raise DatasetError(f"{path}: no column {_quote(label)} (data.label); the columns are "
                           f"{', '.join(_quote(h) for h in header[:12])}{', …' if len(header) > 12 else ''}")
    chosen = list(features) if features is not None else [h for h in header if h != label]
    for name in chosen:
        if name not in header:
            raise DatasetError(f"{path}: no column {_quote(name)} (data.features)")
        if name == label:
            raise DatasetError(f"{path}: column {_quote(name)} is the label; it cannot be a feature too")
    if not chosen:
        raise DatasetError(f"{path}: no feature columns besides the label {_quote(label)}")
    li, fi = header.index(label), [header.index(name) for name in chosen]
    x = np.empty((len(rows) - 1, len(fi)), dtype=np.float32)
    labels: list[str] = []
    for n, row in enumerate(rows[1:]):
        line = n + 2  # the header is line 1
        if len(row) != len(header):
            raise DatasetError(f"{path}, line {line}: {len(row)} cells where the header has {len(header)} "
                               "(every row needs one cell per column)")
        for j, k in enumerate(fi):
            cell = row[k].strip()
            try:
                value = float(cell)
            except ValueError:
                what = "is empty" if not cell else f"holds {_quote(cell)}, not a number"
                raise DatasetError(f"{path}, line {line}, column {_quote(header[k])}: the cell {what}; "
                                   "features must be numbers (fill or drop missing values first)") from None
            if not math.isfinite(value):
                raise DatasetError(f"{path}, line {line}, column {_quote(header[k])}: {_quote(cell)} is not a "
                                   "finite number (fill or drop missing values first)")
            x[n, j] = value
        cell = row[li].strip()
        if not cell:
            raise DatasetError(f"{path}, line {line}, column {_quote(label)}: the label is empty")
        labels.append(cell)
    return x, labels, label


# -- arrays ---------------------------------------------------------------------------------------


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read as a .npy of {what} ({str(exc)[:200]})") from None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if "x" not in keys or "y" not in keys:
                raise DatasetError(f"{path}: a .npz needs arrays named 'x' (inputs) and 'y' (targets); it holds "
                                   f"{', '.join(_quote(k) for k in keys[:12]) or 'none'}")
            return z["x"], z["y"]
    except DatasetError:
        raise
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read as a .npz ({str(exc)[:200]})") from None


def _array_inputs(path: Path, x: np.ndarray) -> np.ndarray:
    """Inputs as float32 (N, F), (N, 1, H, W) or (N, C, H, W); every value finite."""
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: the inputs are {x.dtype}, not numbers")
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim == 3:
        x = x[:, None]  # (N, H, W) images: one channel
    elif x.ndim not in (2, 4):
        raise DatasetError(f"{path}: inputs of shape {x.shape}; dllab reads (samples, features), "
                           "(samples, height, width) or (samples, channels, height, width)")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        first = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
        raise DatasetError(f"{path}: sample {first} of the inputs holds NaN or an infinite value")
    return x


# -- images ---------------------------------------------------------------------------------------


def _read_image_folder(folder: Path, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(N, C, H, W) uint8 pixels and class indices of a folder with one subfolder per class."""
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError("a folder of images needs Pillow: pip install 'dllab[images]' (or pillow)") from None
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DatasetError(f"{folder}: no class subfolders; put each class's images in a subfolder named after it")
    files = [(k, f) for k, name in enumerate(classes) for f in sorted((folder / name).iterdir())
             if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DatasetError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in its class subfolders")
    empty = [name for k, name in enumerate(classes) if not any(c == k for c, _ in files)]
    if empty:
        raise DatasetError(f"{folder}: class folder {_quote(empty[0])} holds no images")
    pixels, labels = [], []
    mode: str | None = None
    shape: tuple[int, int] | None = None
    for k, f in files:
        try:
            with Image.open(f) as im:
                im.load()
                image = im
                if mode is None:
                    mode = "L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
                image = im.convert(mode)
                if size is not None:
                    image = image.resize((size[1], size[0]))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{f}: cannot be read as an image ({str(exc)[:120]})") from None
        hw = (image.height, image.width)
        if shape is None:
            shape = hw
        elif hw != shape:
            raise DatasetError(f"{f}: {hw[0]}×{hw[1]} pixels where the first image has {shape[0]}×{shape[1]}; "
                               "set data.image_size = [height, width] to resize them all")
        a = np.asarray(image, dtype=np.uint8)
        pixels.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        labels.append(k)
    return np.stack(pixels), np.array(labels, dtype=np.int64), tuple(classes)


# -- labels and the checks every source shares -----------------------------------------------


def _labels(path: Path, raw: Any, task: str | None, label_name: str = "y"
            ) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """Targets as an array, the task, and the class names (classification)."""
    cells = list(raw) if isinstance(raw, list) else None
    if cells is None:  # an array
        y = np.asarray(raw)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DatasetError(f"{path}: targets of shape {y.shape}; dllab reads one target per sample")
        if y.dtype.kind in "US":
            cells = [str(v) for v in y]
        elif y.dtype.kind not in "biuf":
            raise DatasetError(f"{path}: the targets are {y.dtype}, not numbers or text")
        else:
            values = y.astype(np.float64)
    if cells is not None:
        try:
            values = np.array([float(c) for c in cells], dtype=np.float64)
        except ValueError:
            values = None  # text labels: classes
    if values is not None and not np.isfinite(values).all():
        bad = int(np.argwhere(~np.isfinite(values))[0][0])
        where = f"line {bad + 2}" if cells is not None and isinstance(raw, list) else f"sample {bad}"
        raise DatasetError(f"{path}, {where}: the target ({label_name}) is NaN or infinite")
    whole = values is not None and bool(np.all(values == np.round(values)))
    if task is None:
        if values is None:
            task = "classification"
        else:
            task = "classification" if whole and len(np.unique(values)) <= MAX_INFERRED_CLASSES else "regression"
    if task == "regression":
        if values is None:
            raise DatasetError(f"{path}: data.task = 'regression' needs numeric targets; the {label_name} column "
                               "holds text")
        return values.astype(np.float32), task, ()
    if values is not None and not whole:
        k = int(np.argwhere(values != np.round(values))[0][0])
        raise DatasetError(f"{path}: class labels must be whole numbers or names; target {k} is {values[k]!r} "
                           "(set data.task = 'regression' for a numeric target)")
    if values is None:
        names = tuple(sorted(set(cells or [])))
        index = {name: i for i, name in enumerate(names)}
        return np.array([index[c] for c in cells or []], dtype=np.int64), task, names
    ints = values.astype(np.int64)
    found = np.unique(ints)
    if found.min() >= 0:
        return ints, task, ()  # kept as given: 0 .. max (n_classes checks the range)
    index = {v: i for i, v in enumerate(found.tolist())}
    return np.array([index[v] for v in ints.tolist()], dtype=np.int64), task, tuple(str(v) for v in found.tolist())


def _finish(path: Path, x: np.ndarray, y: np.ndarray, task: str, n_classes: int | None,
            class_names: tuple[str, ...], *, source: str, divisor: float = 1.0) -> FileData:
    if len(x) != len(y):
        raise DatasetError(f"{path}: {len(x)} inputs but {len(y)} targets")
    if len(x) < 3:
        raise DatasetError(f"{path}: {len(x)} samples; train, validation and test splits need more")
    if task == "classification":
        seen = int(y.max()) + 1 if not class_names else len(class_names)
        if n_classes is not None:
            if class_names and len(class_names) > n_classes:
                raise DatasetError(f"{path}: {len(class_names)} classes but data.n_classes = {n_classes}")
            if not class_names and seen > n_classes:
                bad = int(np.argwhere(y >= n_classes)[0][0])
                raise DatasetError(f"{path}: label {int(y[bad])} (sample {bad}) is out of range: with "
                                   f"data.n_classes = {n_classes} labels are 0 .. {n_classes - 1}")
        k = n_classes or max(seen, 2 if len(np.unique(y)) > 1 else seen)
        if len(np.unique(y)) < 2:
            raise DatasetError(f"{path}: every sample has the same label; classification needs two classes or more")
        notes = [f"{k} classes" + (f" ({', '.join(class_names[:10])}{', …' if len(class_names) > 10 else ''})"
                                   if class_names else "")]
    else:
        k = 0
        notes = ["a regression target"]
    return FileData(x, y, task, k, tuple(x.shape[1:]), source, divisor, class_names, notes)
