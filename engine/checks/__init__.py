"""Checks of a recipe around its training: the sanity checks (initial loss, a penalty raises it, a
tiny subset overfits) and the gradient check (analytic against numerical gradients, a run of its own)."""
