"""MNIST-1D, generated offline with the `mnist1d` package (its ``get_dataset`` downloads: never used).

``make_dataset(get_dataset_args())`` reproduces the published set: 4000 training and 1000 test
sequences of length 40, 10 classes. ``DataSpec.noise`` is a factor on the two noise parameters
(``corr_noise_scale`` and ``iid_noise_scale``): None or 1.0 is the published set, 0 removes the
noise, 2 doubles it. Generation takes about two seconds, so the arrays are cached per process.
"""

from __future__ import annotations

import functools
import random

import numpy as np

from engine.data.images import Pool

NOISE_PARAMS = ("corr_noise_scale", "iid_noise_scale")


def mnist1d_args(noise: float | None = None) -> object:
    """The package's published arguments, with the noise parameters multiplied by ``noise``."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args()
    factor = 1.0 if noise is None else float(noise)
    for name in NOISE_PARAMS:
        setattr(args, name, getattr(args, name) * factor)
    return args


@functools.lru_cache(maxsize=4)
def _generate(factor: float) -> tuple[np.ndarray, ...]:
    from mnist1d.data import make_dataset

    # make_dataset reseeds numpy's and Python's global generators: leave them as they were
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(mnist1d_args(factor))
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (
        np.asarray(data["x"], dtype=np.float32), np.asarray(data["y"], dtype=np.int64),
        np.asarray(data["x_test"], dtype=np.float32), np.asarray(data["y_test"], dtype=np.int64),
    )
    for a in arrays:
        a.setflags(write=False)
    return arrays


def load_mnist1d_pool(noise: float | None) -> Pool:
    """The 4000 generated training sequences as the pool, the 1000 published test ones as test."""
    factor = 1.0 if noise is None else float(noise)
    x, y, x_test, y_test = _generate(factor)
    return Pool(
        x, y, 10, (x.shape[1],), "mnist1d.make_dataset(get_dataset_args()) (generated offline, seed 42)",
        x_test=x_test, y_test=y_test,
        notes=[f"mnist1d noise factor {factor:g} on {' and '.join(NOISE_PARAMS)} (1 = published set)"],
    )
