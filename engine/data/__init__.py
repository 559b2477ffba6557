"""Built-in datasets by name: ``load_data(spec, seed, device) -> DataSplits``.

Generated toy sets (spiral, moons, circles, xor, blobs, regression_outliers, random), digits
(bundled with sklearn), mnist1d (generated offline) and file sets read from ``DataSpec.root`` or
``$DLLAB_DATA`` (mnist, fashion_mnist, cifar10; never downloaded). Preprocessing is fitted on the
training split only (see ``engine.data.preprocess``).
"""

from engine.data.base import DatasetError, DataSplits
from engine.data.preprocess import METHODS as PREPROCESS_METHODS
from engine.data.preprocess import InputPipeline, Preprocessor
from engine.data.registry import available_datasets, load_data

__all__ = [
    "PREPROCESS_METHODS",
    "DataSplits",
    "DatasetError",
    "InputPipeline",
    "Preprocessor",
    "available_datasets",
    "load_data",
]
