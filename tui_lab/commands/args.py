"""Argparse types shared by `dllab`'s subcommands.

Each one turns the text of an option into a checked value, or raises ArgumentTypeError with a
message saying what is allowed; argparse then prints ``argument --NAME: MESSAGE`` and exits 2
(invalid input), so a bad number never reaches the engine (and never shows a library's own error).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from tui_lab.tools.limits import LIMIT


def integer(low: int | None = None, high: int | None = None, *, why: str = "") -> Callable[[str], int]:
    """A whole number in [low, high] (either end open when None); `why` explains the low end."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if low is not None and value < low:
            words = "above 0" if low == 1 else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {words}, got {value}" + (f" ({why})" if why else ""))
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(*, positive: bool = False, high: float | None = None) -> Callable[[str], float]:
    """A finite number (above 0 when `positive`, at most `high` when given)."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text.strip()}")
        if positive and value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {value:g}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:g}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = integer(1)
"""A count: 1 or more."""
non_negative_int = integer(0)
"""0 or more (a seed, a number of extra rounds)."""
positive_float = number(positive=True)
"""A finite number above 0 (a rate, a length, a step)."""
finite_float = number()
"""Any finite number."""
steps = integer(1, LIMIT)
"""Training steps of a tool's short run."""


def seeds(text: str) -> list[int]:
    """Comma-separated distinct seeds, each 0 or more."""
    try:
        values = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one seed")
    if any(s < 0 for s in values):
        raise argparse.ArgumentTypeError(f"seeds are 0 or more, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a seed is given twice in {text!r} (each would train the same runs again)")
    return values


def workers(text: str) -> int:
    """Worker processes: 0 (train in this process) or more."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (train in this process) or more, got {n}")
    return n

