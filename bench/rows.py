"""A row of the bench's table: one ratio, ``left ÷ right``, with what it was measured on.

Every comparison (``bench.cases``, ``bench.app_overhead``) builds its rows here, and the report
(``bench.report``) prints them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.timing import Timing, paired_ratio


@dataclass
class Row:
    """One line of the table: ``left ÷ right`` on the wall clock and in CPU time."""

    id: str
    comparison: str
    case: str
    status: str = "measured"  # measured | not measured | not available
    ratio: float | None = None
    """Wall time of the left side ÷ that of the right side: the median over the rounds of timing."""
    cpu_ratio: float | None = None
    """The same with CPU time of this process (steadier on a shared machine)."""
    left_s: float | None = None
    right_s: float | None = None
    unit: str = "s"
    target: float | None = None
    """The ratio should be at most this (None: no target, for information)."""
    meets: bool | None = None
    repeats: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measured_row(id: str, comparison: str, case: str, left: Timing, right: Timing, *, per: float = 1.0,
                 unit: str = "s", target: float | None = None, note: str = "", **extra: Any) -> Row:
    ratio = paired_ratio(left.wall, right.wall)
    cpu_ratio = paired_ratio(left.cpu, right.cpu) if right.cpu_median > 0 else None
    return Row(id, comparison, case, "measured", ratio, cpu_ratio, left.wall_median / per,
               right.wall_median / per, unit, target, None if target is None else ratio <= target,
               len(left.wall), note, extra)


def not_row(id: str, comparison: str, case: str, status: str, note: str, target: float | None = None) -> Row:
    return Row(id, comparison, case, status, target=target, note=note)
