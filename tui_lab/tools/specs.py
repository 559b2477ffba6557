"""Which recipe a tool works on, shared by both faces: one variant of a preset (``pick_spec``),
named as typed, ignoring case when that is unambiguous (``dllab lr-find``, ``sanity``, ``search``,
``gradcheck`` and the app's Tools screen)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def pick_spec(preset: str, variant: str | None, quick: bool, seed: int):
    """The RunSpec of one variant (default the first) of a preset, for a tool to work on.

    The variant's name matches ignoring case when only one variant has it (``adam`` for Adam);
    otherwise a ValueError with a did-you-mean and the variants."""
    from engine.catalogue.presets import load_preset

    loaded = load_preset(preset)
    specs = loaded.expand(quick=quick, seeds=[seed])
    if variant is None:
        return loaded, specs[0]
    name = variant_name(loaded, variant)
    return loaded, next(spec for spec in specs if spec.variant == name)


def variant_name(loaded, variant: str) -> str:
    """The name of `loaded`'s variant that `variant` means (see pick_spec); ValueError when none."""
    return resolve_name(variant, [v.name for v in loaded.preset.variants], "variant", loaded.id)


def resolve_name(given: str, names: Sequence[str], what: str, owner: str) -> str:
    """The one of `names` that `given` means: itself, or the only name equal to it ignoring case.

    A ValueError (exit 2) otherwise, with a did-you-mean and the full list, e.g.
    ``optimizers has no variant 'adm'; did you mean Adam? variants: SGD, Adam``."""
    if given in names:
        return given
    folded = [n for n in names if n.casefold() == given.casefold()]
    if len(folded) == 1:
        return folded[0]
    listing = ", ".join(names)
    if folded:
        raise ValueError(f"{owner} has several {what}s named {given!r} but for case ({', '.join(folded)}); "
                         f"give the exact name")
    by_fold = {n.casefold(): n for n in names}
    close = [by_fold[c] for c in difflib.get_close_matches(given.casefold(), list(by_fold), n=3, cutoff=0.6)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ValueError(f"{owner} has no {what} {given!r}; {hint}{what}s: {listing}")
