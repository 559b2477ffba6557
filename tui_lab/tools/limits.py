"""The caps on the tools' numbers, shared by both faces: ``dllab``'s options refuse what lies
outside them and the app's Tools settings cap their fields alike."""

from __future__ import annotations

LIMIT = 100_000
"""The largest step or sample count a tool accepts (the app's tools cap them alike)."""

MIN_SAMPLES = 2
"""The fewest samples of the sanity tool's overfitting check (the command's and the app's tool)."""
