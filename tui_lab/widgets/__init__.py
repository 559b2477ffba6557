"""The app's widgets, one per file. Every plotext call lives in this package."""
