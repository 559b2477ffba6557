"""Formatting numbers, durations and progress for tables and panels, and text fit to show."""

from __future__ import annotations

import math
import re

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STATUS_ICON = {
    "pending": "·",
    "starting": "·",
    "done": "✔",
    "early-stopped": "✔",
    "diverged": "✘",
    "failed": "✘",
    "cancelled": "■",
    "interrupted": "■",
}


def num(x: object, digits: int = 4) -> str:
    """A compact number: ``0.0123``, ``1.2e-05``, ``–`` for nothing."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
            return f"{x:.{max(1, digits - 2)}e}".replace("e-0", "e-").replace("e+0", "e")
        text = f"{x:.{digits}g}"
        if "." not in text and x != round(x):  # 0.99996 rounds to "1", which reads like a placeholder
            text = f"{x:#.{digits}g}"  # "1.000"
        return text
    return str(x)


def rate(x: object) -> str:
    """A speed: ``1234``, ``56.7``, ``0.512``."""
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x) or x <= 0:
        return "–"
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def pct(x: object) -> str:
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
        return "–"
    return f"{100 * x:.1f}%"


def duration(seconds: float | None) -> str:
    """``42s``, ``3m07s``, ``1h02m``; ``–`` for unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def bar(fraction: float, width: int = 10) -> str:
    """A text progress bar with eighth-block resolution."""
    fraction = min(1.0, max(0.0, fraction if math.isfinite(fraction) else 0.0))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width, "░")[:width]


def status_text(status: str, frame: int = 0) -> str:
    """The status with its icon (a spinner frame while running)."""
    icon = SPINNER[frame % len(SPINNER)] if status == "running" else STATUS_ICON.get(status, "?")
    return f"{icon} {status}"


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters but tab and newline: C0 (ESC among them), DEL and C1; and Unicode's
bidirectional controls (the embeddings and overrides U+202A-202E, the isolates U+2066-2069, the marks
U+200E, U+200F and U+061C), which reorder how the text after them reads ("Trojan Source")."""
_SEPARATORS = re.compile("[\u2028\u2029]")
"""Unicode's line and paragraph separators: a line break to Python and some terminals, not to others."""


def clean(text: object, *, lines: bool = False) -> str:
    """`text` fit to write to a terminal: its control characters removed, so that text from a
    preset file or the run store (a title, a variant name, a reason, a run's message) can never
    move the cursor, clear the screen, set the window's title or turn the line after it around (a
    bidirectional override). `lines`: text of several lines
    (an explanation, a message) keeps its newlines and tabs; otherwise each becomes a space.
    Every place that shows such text passes it through here (the app's widgets, the command line's
    tables and lines); presets refuse control characters, but the store keeps what older versions
    wrote."""
    s = text if isinstance(text, str) else str(text)
    if s.isascii() and s.isprintable():  # the usual case, at the cost of one scan
        return s
    s = _SEPARATORS.sub("\n", s)  # a new line as any other: kept in text of several lines, else a space
    if not lines:
        s = s.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub("", s)
