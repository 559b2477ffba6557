"""Built-in datasets by name: ``load_data(spec, seed, device) -> DataSplits``.

Generated toy sets (spiral, moons, circles, xor, blobs, regression_outliers, random), digits
(bundled with sklearn), mnist1d (generated offline) and file sets read from ``DataSpec.root`` or
``$DLLAB_DATA`` (mnist, fashion_mnist, cifar10: `dllab data get` fetches them; a run never downloads). Preprocessing is fitted on the
training split only (see ``engine.data.preprocess``).

The names below are imported when first used: importing a torch-free part of the package
(``engine.data.facts``: shapes, class counts and sizes for the checks before a run) must not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.data.base import DatasetError, DataSplits
    from engine.data.preprocess import METHODS as PREPROCESS_METHODS
    from engine.data.preprocess import InputPipeline, Preprocessor
    from engine.data.registry import available_datasets, load_data

_WHERE = {
    "DatasetError": ("engine.data.base", "DatasetError"),
    "DataSplits": ("engine.data.base", "DataSplits"),
    "PREPROCESS_METHODS": ("engine.data.preprocess", "METHODS"),
    "InputPipeline": ("engine.data.preprocess", "InputPipeline"),
    "Preprocessor": ("engine.data.preprocess", "Preprocessor"),
    "available_datasets": ("engine.data.registry", "available_datasets"),
    "load_data": ("engine.data.registry", "load_data"),
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _WHERE[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


__all__ = [
    "PREPROCESS_METHODS",
    "DataSplits",
    "DatasetError",
    "InputPipeline",
    "Preprocessor",
    "available_datasets",
    "load_data",
]
