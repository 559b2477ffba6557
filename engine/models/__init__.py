"""Networks built from a ModelSpec."""
