"""Presets, claims and checks: loading presets, checking claims, running a preset in-process, searches, the metric names."""
