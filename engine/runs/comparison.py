"""A comparison's identity in the store: its id, its runs' ids, and their pending rows.

Every executor backend registers a comparison the same way before its first run starts (the
Runner, the in-process path), so History shows the runs as pending from the first moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.recipe.config import RunSpec

if TYPE_CHECKING:
    from engine.runs.store import RunStore

NOT_STARTED = "cancelled before it started"
"""The reason of a run a cancel reached before it began."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def new_run_ids(n: int) -> list[str]:
    """`n` distinct run ids."""
    ids: list[str] = []
    while len(ids) < n:
        run_id = new_run_id()
        if run_id not in ids:
            ids.append(run_id)
    return ids


def with_comparison(specs: list[RunSpec], comparison: str | None) -> tuple[str, list[RunSpec]]:
    """The comparison id (given, shared by the specs already, or new) and the specs carrying it."""
    if comparison is None:
        existing = {s.comparison for s in specs}
        comparison = existing.pop() if len(existing) == 1 and "" not in existing else uuid.uuid4().hex[:8]
    return comparison, [s if s.comparison == comparison else s.model_copy(update={"comparison": comparison})
                        for s in specs]


def register_pending(store: RunStore, specs: Sequence[RunSpec], run_ids: Sequence[str], comparison: str,
                     device: str) -> None:
    """A pending row per run, before any of them starts."""
    for run_id, spec in zip(run_ids, specs, strict=True):
        store.add_pending(run_id, spec.model_dump(mode="json"), variant=spec.variant, seed=spec.seed,
                          preset=spec.preset, comparison=comparison, device=device)
