"""2-D test functions and optimizer paths over them (see DESIGN.md, "Surfaces").

* :mod:`engine.surfaces.functions`: the functions (Rosenbrock, Rastrigin, Beale, Himmelblau, a
  saddle, an ill-conditioned quadratic, a cliff, the 1-1-1 net's loss) with gradients and minima;
* :mod:`engine.surfaces.optim`: ``PathOptimizer``: many optimizers as one (paths × 2) tensor,
  torch.optim's interface and arithmetic, per-path hyperparameters;
* :mod:`engine.surfaces.paths`: ``run_paths_batched``, ``bench_surface_paths`` and path measures;
* :mod:`engine.surfaces.trainer`: ``train_surface`` (the loop's entry for ``data.name = "surface"``)
  and ``train_surfaces`` (every run of a comparison in one batch).

Names are imported lazily, so ``import engine.surfaces.functions`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SURFACES": "functions", "SURFACE_NAMES": "functions", "SurfaceFunction": "functions", "get_surface": "functions",
    "PathOptimizer": "optim", "BatchedSGD": "optim", "BatchedAdagrad": "optim", "BatchedRMSprop": "optim",
    "BatchedAdam": "optim", "BatchedAdamW": "optim", "path_hparams": "optim",
    "run_paths_batched": "paths", "run_paths_torch": "paths", "bench_surface_paths": "paths",
    "bench_hparams": "paths",
    "train_surface": "trainer", "train_surfaces": "trainer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.surfaces' has no attribute {name!r}")
    return getattr(importlib.import_module(f"engine.surfaces.{module}"), name)
