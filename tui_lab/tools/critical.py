"""Critical points of a tiny net's loss, shared by both faces (``dllab critical`` and the app's
Tools screen): the search and the labels (``explore``), the starts cap, and the words both show
under their tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_STARTS = 10_000
"""The most random starts (the app's Critical points tool has the same cap)."""


def starts_cell(p) -> str:
    """The starts column: how many starts ended at the point, 'ref' marking a reference point."""
    return f"{p.count} ref" if p.reference else str(p.count)


REF_NOTE = ("ref: a reference point (a known critical point), listed whether or not a start reached it; "
            "starts counts only the random starts that ended there")
"""The note under a table with reference points (the command's and the app's)."""


def found_words(search, noun: str = "") -> str:
    """'5 distinct' (`noun` after it: ' points') and, when some reference points no start reached
    are listed, how many."""
    extra = search.n_reference_only
    return f"{search.n_found} distinct{noun}" + (f" + {extra} reference point(s) no start reached" if extra else "")


@dataclass
class CriticalReport:
    """What `dllab critical` (and the app's Tools screen) shows: the points found, the reference
    points with their expected kinds, and the escape step from the first saddle (None: no saddle)."""

    net: Any
    points: list[Any]
    known: list[tuple[Any, str]]
    escape: dict[str, Any] | None
    ok: bool
    """Every reference point got its expected label."""
    search: Any = None
    """The engine's CriticalSearch: how many starts, how many dropped and why."""


def explore(net_name: str, *, starts: int = 48, box: float = 2.0, seed: int = 0, step: float = 1.0) -> CriticalReport:
    """Find and label a tiny net's critical points; ValueError for an unknown net or bad settings.

    Call it off the UI thread: it imports torch and computes Hessians."""
    import torch

    from engine.diagnostics.critical import (
        TINY_NETS,
        describe_point,
        negative_curvature_step,
        search_critical_points,
    )

    if net_name not in TINY_NETS:
        raise ValueError(f"unknown net {net_name!r}; choose one of {', '.join(TINY_NETS)}")
    if not 1 <= starts <= MAX_STARTS:
        raise ValueError(f"starts must be 1 to {MAX_STARTS}, got {starts}")
    for what, value in (("box", box), ("step", step)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{what} must be a finite number above 0, got {value:g}")
    torch.set_num_threads(1)
    net = TINY_NETS[net_name]
    search = search_critical_points(net.loss, net.dim, n_starts=starts, box=box, seed=seed,
                                    reference_points=[list(p) for p, _ in net.known])
    points = search.points
    known = []
    for point, expected in net.known:
        cp = describe_point(net.loss, torch.tensor(point, dtype=torch.float64))
        known.append((cp, expected))
    escape = None
    saddle = next((p for p in points if p.kind == "saddle"), None)
    if saddle is not None:
        new, before, after, u = negative_curvature_step(net.loss, torch.tensor(saddle.point, dtype=torch.float64),
                                                        step)
        escape = {"from": list(saddle.point), "direction": u.tolist(), "to": new.tolist(),
                  "loss_before": before, "loss_after": after, "step": step}
    ok = all(cp.kind == expected for cp, expected in known)
    return CriticalReport(net, points, known, escape, ok, search)
