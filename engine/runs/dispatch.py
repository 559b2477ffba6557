"""Runs that are not network training: which trainer a RunSpec goes to.

``engine.training.loop.train`` asks :func:`special_trainer` first; a spec it recognizes is handed to that
trainer, which has the loop's signature (``spec, emit, should_stop, *, device, run_id``) and emits
the same events (RunStarted first, RunFinished last), so presets, the runner, the store and the
dashboard treat these runs like any other.

* ``data.name = "surface"``: a point on a 2-D test function (``engine.surfaces.trainer``);
* ``train.gradcheck = true``: a gradient check of the spec's model instead of training
  (``engine.diagnostics.gradcheck``).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.recipe.config import RunSpec


def special_trainer(spec: RunSpec) -> Callable | None:
    """The trainer for `spec` when it is not plain network training, else None."""
    if spec.recipe.data.name == "surface":
        from engine.surfaces.trainer import train_surface

        return train_surface
    if getattr(spec.recipe.train, "gradcheck", False):
        from engine.diagnostics.gradcheck import train_gradcheck

        return train_gradcheck
    return None
