"""The two-question frame every technique is placed in (from the lecture notes): which step of
training it changes (1 the loss and the data, 2 the set of functions, 3 the optimization) and
what it buys. Words for the Library's card and ``dllab presets ID``."""

from __future__ import annotations

STEP_WORDS = {
    "data": "1 · data (step 1 of 3: the loss and the data it is measured on)",
    "loss": "1 · loss (step 1 of 3: the loss and the data it is measured on)",
    "architecture": "2 · architecture (step 2 of 3: the set of functions)",
    "optimization": "3 · optimization (step 3 of 3: finding the best function)",
    "all": "all three steps",
}
BENEFIT_WORDS = {
    "optimization": "better optimization (lower training loss)",
    "generalization": "better generalization (smaller train/val gap)",
    "both": "better optimization and generalization",
}
