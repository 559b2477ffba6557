"""What would stop a comparison's runs, found before any of them starts.

``preflight(specs, device=...)`` returns one line per problem (none: the runs can start). It
checks what the schema cannot, because it needs the data's facts or the machine:

* the data: a data folder without its files, ``n_samples`` beyond what a data set holds,
  ``n_classes`` or ``noise`` or ``shift`` that a data set does not take, splits that leave no
  training samples, ``n_unlabeled`` that takes them all, ``pca_components`` above the input's
  features (``engine.data.facts``, in the loader's own words);
* the recipe against its data: a regression loss on a classification set (or the reverse), an
  unlabeled term or a ``labels`` pretraining on a regression set, pretraining classes the set does
  not have, a conv stack that shrinks the input to nothing;
* settings that do not go together: nesterov without momentum or with dampening, lbfgs with
  weight_decay, an ensemble with importance weighting, an unlabeled term or pretraining, an
  unlabeled term without unlabeled data;
* memory: a run whose estimate (``engine.recipe.footprint``) exceeds what the device can give it:
  on a CPU (or MPS) a share of the machine's memory (its cgroup limit where lower), on CUDA the
  GPU's memory.

Cheap: nothing trains, nothing is generated, read (beyond an IDX header) or downloaded, and torch
is imported only to ask a GPU's size, for a run that needs more than SMALL. A problem shared by
several variants is said once. Surface runs (``data.name = "surface"``) have no data or network:
only their schema applies.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path

from engine.data.base import DatasetError
from engine.data.facts import DataFacts, describe
from engine.recipe.config import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, Recipe, RunSpec
from engine.recipe.footprint import Footprint, estimate, size

SMALL = 256 * 2**20
"""A run that needs less fits any device: its device is not looked up (that imports torch)."""
CPU_SHARE = 0.8
"""The share of the machine's memory one run may take on a CPU (the rest: the system, the app,
the other workers)."""
GPU_SHARE = 0.95


def preflight(specs: Sequence[RunSpec], *, device: str | None = "auto") -> list[str]:
    """The problems of `specs` (see the module docstring), one line each, naming the variants they
    concern; `device`: where the runs will train (``auto``, ``cpu``, ``cuda:1``, …; None: skip the
    memory check)."""
    found: dict[str, list[str]] = {}
    needs: list[tuple[str, Footprint]] = []
    seen: set[str] = set()
    for spec in specs:
        key = spec.variant + spec.recipe.model_dump_json(exclude={"train": {"seed"}})
        if key in seen:  # another seed of the same recipe
            continue
        seen.add(key)
        problems, footprint = check_recipe(spec.recipe)
        for text in problems:
            found.setdefault(text, []).append(spec.variant)
        if footprint is not None:
            needs.append((spec.variant, footprint))
    if device is not None and needs and max(f.total for _, f in needs) > SMALL:
        limit = memory_limit(device)
        if limit is not None:
            allowed, words = limit
            for variant, footprint in needs:
                if footprint.total > allowed:
                    text = (f"this run needs {footprint.describe()}; {words}: use a smaller model, "
                            "batch or data set")
                    found.setdefault(text, []).append(variant)
    variants = list(dict.fromkeys(s.variant for s in specs))
    return [f"{_which(names, variants)}: {text}" for text, names in found.items()]


def _which(names: list[str], variants: list[str]) -> str:
    names = list(dict.fromkeys(names))
    if len(variants) > 1 and len(names) == len(variants):
        return "every variant"
    return ("variant " if len(names) == 1 else "variants ") + ", ".join(repr(n) for n in names)


def check_recipe(recipe: Recipe) -> tuple[list[str], Footprint | None]:
    """The problems of one recipe found without the machine, and its footprint (None for a surface
    run, or when its data or architecture already has a problem)."""
    if recipe.data.name == "surface":
        return [], None
    try:
        facts = describe(recipe.data)
    except DatasetError as exc:
        return [str(exc)], None
    problems = _settings(recipe) + _against_data(recipe, facts)
    if recipe.model.kind == "custom":
        return [*problems, *_custom_model(recipe, facts)], None
    try:
        footprint = estimate(recipe, facts.input_shape, facts.n_outputs, n_train=facts.n_train,
                             raw_values=facts.n_total * math.prod(facts.raw_shape), features=math.prod(facts.raw_shape))
    except ValueError as exc:
        return [*problems, str(exc)], None
    return problems, footprint


def _custom_model(recipe: Recipe, facts: DataFacts) -> list[str]:
    """Your own model: allowed by the person (``--allow-code``), importable, and of the right shape
    for this data (built once here, on the CPU; its memory is not estimated)."""
    from engine.models.custom import HOW_TO_ALLOW, CustomModelError, build_custom, code_allowed

    factory = recipe.model.factory or ""
    if not code_allowed():
        return [f"model.factory {factory!r} is code of your own, and dllab imports code only when you allow it: "
                f"{HOW_TO_ALLOW}"]
    try:
        build_custom(factory, facts.input_shape, facts.n_outputs)
    except CustomModelError as exc:
        return [str(exc)]
    return []


def _against_data(recipe: Recipe, facts: DataFacts) -> list[str]:
    t, name = recipe.train, recipe.data.name
    out = []
    if facts.task == "classification" and t.loss not in CLASSIFICATION_LOSSES:
        out.append(f"loss {t.loss!r} is a regression loss and cannot train {name}, a classification set; "
                   f"use one of {', '.join(CLASSIFICATION_LOSSES)}")
    if facts.task == "regression" and t.loss not in REGRESSION_LOSSES:
        out.append(f"loss {t.loss!r} is a classification loss and cannot train {name}, a regression set; "
                   f"use one of {', '.join(REGRESSION_LOSSES)}")
    if t.unlabeled_loss != "none" and facts.task != "classification":
        out.append(f"unlabeled_loss={t.unlabeled_loss!r} needs a classification task, not {name}'s {facts.task}")
    if t.pretrain is not None and t.pretrain.task == "labels":
        if facts.task != "classification":
            out.append(f"pretrain task 'labels' needs a classification data set, not {name}")
        elif t.pretrain.classes is not None and all(c >= facts.n_classes for c in t.pretrain.classes):
            out.append(f"pretrain.classes {t.pretrain.classes} are none of {name}'s classes "
                       f"(0 to {facts.n_classes - 1}): the pretraining pool would be empty")
    return out


def _settings(recipe: Recipe) -> list[str]:
    t, m = recipe.train, recipe.model
    out = []
    if t.optimizer == "nesterov" and (t.momentum <= 0 or t.dampening != 0):
        out.append("optimizer 'nesterov' needs momentum > 0 and dampening = 0 "
                   f"(got momentum={t.momentum}, dampening={t.dampening})")
    if t.optimizer == "lbfgs" and t.weight_decay != 0:
        out.append(f"optimizer 'lbfgs' has no weight_decay (got {t.weight_decay}); use the l2 penalty instead")
    if m.ensemble > 1 and (t.importance_weighting or t.unlabeled_loss != "none"):
        out.append("ensemble members train on the plain loss only: turn off importance_weighting "
                   "and unlabeled_loss, or use ensemble = 1")
    if m.ensemble > 1 and t.pretrain is not None:
        out.append("ensemble members start from scratch and cannot share a pretraining phase: "
                   "use ensemble = 1 with pretrain")
    if t.unlabeled_loss != "none" and recipe.data.n_unlabeled == 0:
        out.append(f"unlabeled_loss={t.unlabeled_loss!r} needs unlabeled data: set data.n_unlabeled")
    return out


# -- the device's memory --------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def memory_limit(device: str) -> tuple[int, str] | None:
    """(bytes one run may take on `device`, the words that say so), or None when unknown (a device
    name the runner will refuse itself, a system that does not say its memory)."""
    text = str(device).strip().lower()
    if text.startswith("cuda") or text == "auto":
        from engine.runs.device import resolve_device  # imports torch

        try:
            dev = resolve_device(text)
        except ValueError:
            return None
        if dev.type == "cuda":
            import torch

            props = torch.cuda.get_device_properties(dev)
            return (int(props.total_memory * GPU_SHARE),
                    f"{dev} ({props.name}) has {size(props.total_memory)}")
    total = machine_memory()
    if total is None:
        return None
    return int(total * CPU_SHARE), f"this machine has {size(total)} of memory and a run may take {CPU_SHARE:.0%} of it"


def machine_memory() -> int | None:
    """The machine's physical memory in bytes, or its cgroup's limit where lower; None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = Path(path).read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            total = min(total, int(limit))
    return total if total > 0 else None
