"""Variants of a comparison that share an architecture, trained together as one batched model.

* :func:`plan` groups the RunSpecs that can share a model (everything else trains solo);
* :func:`train_batched` trains one group and emits, for each member, the events its solo run
  (:func:`engine.training.loop.train`) would emit, with the same numbers within float rounding.

See docs/performance.md for what is batched, what falls back, and the measured speed-ups.
"""

from engine.batched.accel import FastPaths
from engine.batched.plan import BATCHED_OPTIMIZERS, group_key, plan, why_solo
from engine.batched.train import train_batched

__all__ = ["BATCHED_OPTIMIZERS", "FastPaths", "group_key", "plan", "train_batched", "why_solo"]
