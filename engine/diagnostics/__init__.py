"""Diagnostics: learning-curve diagnosis, per-layer health, gradient checks, ..."""
