"""Preset texts for tests that write a tiny preset to a file: the fields every preset needs and a
spiral data set, then the rest (`body`: model, training, variants, search, claims)."""

from __future__ import annotations


def tiny_preset(body: str, *, title: str = "Tiny", technique: str = "tiny", chapter: str = "optimization",
                step: str = "optimization", benefit: str = "optimization", summary: str = "Tiny.",
                n_samples: int = 200) -> str:
    return f"""
title = "{title}"
technique = "{technique}"
chapter = "{chapter}"
step = "{step}"
benefit = "{benefit}"
summary = "{summary}"
explain = "Tiny."

[base.data]
name = "spiral"
n_samples = {n_samples}
""" + body


SEARCH_HEADER = {"chapter": "workflow & diagnostics", "step": "all", "benefit": "both"}
"""The header of a preset with a ``[search]`` table."""
