"""Argparse types shared by `dllab`'s subcommands.

Each one turns the text of an option into a checked value, or raises ArgumentTypeError with a
message saying what is allowed; argparse then prints ``argument --NAME: MESSAGE`` and exits 2
(invalid input), so a bad number never reaches the engine (and never shows a library's own error).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from engine.recipe.config import MAX_SEED
from tui_lab.tools.limits import LIMIT

FAST_PATHS = ("bf16", "compile", "cuda_graphs")
"""The names of ``engine.batched.accel.FAST_PATHS``, here so that checking `--fast` does not import
torch (a test keeps the two the same)."""
MAX_WORKERS = 1024
"""More worker processes than any machine here runs usefully."""


def integer(low: int | None = None, high: int | None = None, *, why: str = "") -> Callable[[str], int]:
    """A whole number in [low, high] (either end open when None); `why` explains the low end."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text[:40]!r}") from None
        if low is not None and value < low:
            words = "above 0" if low == 1 else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {words}, got {str(value)[:40]}" + (f" ({why})" if why else ""))
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {str(value)[:40]}")
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


positive_int = integer(1, MAX_SEED)
"""A count: 1 or more (below 2**32, as every integer the engine and the store take)."""
non_negative_int = integer(0, MAX_SEED)
"""0 or more (a seed, a number of extra rounds), below 2**32: what numpy, torch and the run store
all take as a seed (``engine.recipe.config.MAX_SEED``)."""
positive_float = number(positive=True)
"""A finite number above 0 (a rate, a length, a step)."""
finite_float = number()
"""Any finite number."""
steps = integer(1, LIMIT)
"""Training steps of a tool's short run."""


def seeds(text: str) -> list[int]:
    """Comma-separated distinct seeds, each 0 or more and at most MAX_SEED (2**32 − 1)."""
    try:
        values = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text[:80]!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one seed")
    if any(s < 0 for s in values):
        raise argparse.ArgumentTypeError(f"seeds are 0 or more, got {text[:80]!r}")
    if too_big := [s for s in values if s > MAX_SEED]:
        raise argparse.ArgumentTypeError(f"seeds are at most {MAX_SEED} (2**32 - 1), got {str(too_big[0])[:40]}")
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
    if n > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WORKERS}, got {str(n)[:40]}")
    return n


def fast_paths(text: str) -> str:
    """Comma-separated names of FAST_PATHS (`-` for `_` allowed), or empty: the text, checked
    without importing torch (``engine.batched.accel.FastPaths.parse`` reads it in the run)."""
    names = [n.strip().replace("-", "_") for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAST_PATHS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fast path {', '.join(repr(n[:40]) for n in unknown)}; choose from {', '.join(FAST_PATHS)}")
    return text



ALLOW_CODE_ENV = "DLLAB_ALLOW_CODE"
"""The opt-in's environment variable (``engine.models.custom.ALLOW_ENV``; set here without importing torch)."""


def allow_code_option(p: argparse.ArgumentParser) -> None:
    """`--allow-code`: the person's opt-in to import their own model code (``engine.models.custom``);
    ``tui_lab.cli.main`` acts on it before the command runs (the runs it starts inherit it)."""
    p.add_argument("--allow-code", action="store_true", default=argparse.SUPPRESS,
                   help='allow your own model code (model.kind = "custom", model.factory) to be imported and run')
