"""The Builder's recipe under construction, and its round trip to a preset TOML file.

A :class:`Draft` holds what a person chose: the preset's own fields, the base recipe (only the
fields that differ from the engine's defaults, so a saved file stays short), the quick-form
override, the variants (each a partial override, often made by sweeping one field over values),
and the claims of a preset it was opened from (kept as they are). ``Draft.toml()`` writes the
file; ``Draft.from_preset(parse_preset(...).preset)`` reads it back to an equal draft.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.catalogue.presets import LoadedPreset, Preset, PresetError, parse_preset
from tui_lab.data import toml_writer
from tui_lab.data.fields import FieldSpec, field_by_key, model_fields, recipe_fields

SECTIONS = ("data", "model", "train")
META_FIELDS = ("title", "technique", "chapter", "step", "benefit", "summary", "view", "seeds")
MAX_VARIANTS = 24
_ID = re.compile(r"[^a-z0-9-]+")


def preset_fields() -> dict[str, FieldSpec]:
    """FieldSpecs for the preset's own fields the Builder edits."""
    return {f.name: f for f in model_fields(Preset, "preset") if f.name in META_FIELDS}


def slug(text: str) -> str:
    """A catalogue id from a title: ``My LR test`` → ``my-lr-test``."""
    return _ID.sub("-", text.lower()).strip("-") or "my-recipe"


def _clean(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s: dict(v) for s, v in sections.items() if s in SECTIONS and v}


@dataclass
class VariantDraft:
    name: str
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    quick: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out.update(_clean(self.overrides))
        if _clean(self.quick):
            out["quick"] = _clean(self.quick)
        return out


@dataclass
class Draft:
    meta: dict[str, Any] = field(default_factory=dict)
    explain: str = ""
    base: dict[str, dict[str, Any]] = field(default_factory=dict)
    quick: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: list[VariantDraft] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    quick_seeds: list[int] | None = None

    @classmethod
    def new(cls) -> Draft:
        """A small recipe that runs as it is: an MLP on mnist1d, SGD, one variant."""
        return cls(
            meta={
                "title": "My recipe",
                "technique": "my-recipe",
                "chapter": "optimization",
                "step": "optimization",
                "benefit": "optimization",
                "summary": "A recipe assembled in the Builder.",
                "view": "curves",
                "seeds": [0],
            },
            explain="Assembled in the dllab Builder.\n",
            base={"data": {"name": "mnist1d", "preprocess": "standardize"}, "model": {}, "train": {"steps": 1000}},
            quick={"train": {"steps": 200}},
            variants=[VariantDraft("base")],
        )

    @classmethod
    def from_preset(cls, preset: Preset) -> Draft:
        """A draft holding a loaded preset (base fields at their defaults are dropped)."""
        base = {s: without_defaults(s, getattr(preset.base, s)) for s in SECTIONS}
        return cls(
            meta={k: getattr(preset, k) for k in META_FIELDS},
            explain=preset.explain,
            base=base,
            quick=_clean(preset.quick.as_dict()),
            variants=[
                VariantDraft(v.name, _clean(v.as_dict()), v.description, _clean(v.quick.as_dict()))
                for v in preset.variants
            ],
            claims=[c.model_dump(exclude_defaults=True) for c in preset.claims],
            quick_seeds=list(preset.quick_seeds) if preset.quick_seeds is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The preset as TOML-ready data, keys in the order a person reads them."""
        out: dict[str, Any] = {k: self.meta[k] for k in META_FIELDS if self.meta.get(k) is not None}
        if self.quick_seeds is not None:
            out["quick_seeds"] = list(self.quick_seeds)
        out["explain"] = self.explain
        out["base"] = {s: dict(self.base.get(s, {})) for s in SECTIONS}
        if _clean(self.quick):
            out["quick"] = _clean(self.quick)
        out["variants"] = [v.as_dict() for v in self.variants]
        if self.claims:
            out["claims"] = [dict(c) for c in self.claims]
        return out

    def toml(self) -> str:
        return toml_writer.dumps(self.to_dict())

    def validate(self, path: Path | None = None) -> LoadedPreset:
        """The preset as the engine loads it (``PresetError`` with the CLI's message otherwise)."""
        technique = str(self.meta.get("technique") or "my-recipe")
        path = path or Path(f"{technique}.toml")
        if not self.variants:
            raise PresetError(f"{path}: add at least one variant")
        return parse_preset(self.toml(), path, technique)


def without_defaults(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """The fields of a section that differ from the engine's defaults."""
    specs = {f.name: f for f in recipe_fields()[section]}
    out = {}
    for k, v in values.items():
        f = specs.get(k)
        if f is None or f.required or v != f.default:
            out[k] = v
    return out


# -- overrides as text ---------------------------------------------------------------------------


def format_overrides(overrides: dict[str, dict[str, Any]]) -> str:
    """``train.optimizer = "adam"; train.lr = 0.01``: a variant's override on one line."""
    parts = []
    for section in SECTIONS:
        for k, v in overrides.get(section, {}).items():
            parts.append(f"{section}.{k} = {toml_writer.value(v)}")
    return "; ".join(parts)


def parse_overrides(text: str) -> dict[str, dict[str, Any]]:
    """The inverse of :func:`format_overrides`; bare words are read as strings (``adam``).

    Each ``section.field = value`` is checked against the field (``ValueError`` naming it).
    """
    out: dict[str, dict[str, Any]] = {}
    for part in _split_top(text, ";"):
        if not part.strip():
            continue
        name, eq, raw = part.partition("=")
        name, raw = name.strip(), raw.strip()
        if not eq or not name:
            raise ValueError(f"{part.strip()!r}: write section.field = value")
        try:
            f = field_by_key(name)
        except KeyError:
            raise ValueError(f"{name}: no such field (use data.…, model.… or train.…)") from None
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        except RecursionError:  # brackets a few hundred deep
            raise ValueError(f"{name}: the value nests too deeply") from None
        try:
            value = f.parse(f.format(value) if not isinstance(value, str) else value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        out.setdefault(f.section, {})[f.name] = value
    return out


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


# -- sweeps ----------------------------------------------------------------------------------------


def parse_sweep(key: str, values_text: str) -> list[Any]:
    """The values of one field to compare: ``sgd, momentum, adam`` or ``[100], [100, 100]``."""
    f = field_by_key(key)
    raw = [v.strip() for v in _split_top(values_text, ",") if v.strip()]
    if f.kind in ("int_list", "float_list") and raw and not any(v.startswith("[") for v in raw):
        raw = [values_text.strip()]  # one list written without brackets
    if not raw:
        raise ValueError("give the values to compare, separated by commas")
    values = []
    for v in raw:
        try:
            values.append(f.parse(v.strip("\"'")))
        except ValueError as exc:
            raise ValueError(f"{key} = {v}: {exc}") from None
    return values


def sweep_variants(key: str, values: list[Any], existing: list[VariantDraft] | None = None,
                   cross: bool = False) -> list[VariantDraft]:
    """One variant per value (``optimizer=adam``); with ``cross``, every existing variant × value."""
    f = field_by_key(key)

    def one(value: Any) -> tuple[str, dict[str, dict[str, Any]]]:
        shown = f.format(value) if not isinstance(value, list) else "[" + f.format(value) + "]"
        return f"{f.name}={shown}", {f.section: {f.name: value}}

    singles = [one(v) for v in values]
    if not cross or not existing:
        out = [VariantDraft(name[:40], ov) for name, ov in singles]
    else:
        out = []
        for variant, (name, ov) in itertools.product(existing, singles):
            merged = {s: dict(variant.overrides.get(s, {})) for s in SECTIONS}
            for s, v in ov.items():
                merged[s].update(v)
            out.append(VariantDraft(f"{variant.name}, {name}"[:40], _clean(merged), variant.description))
    if len(out) > MAX_VARIANTS:
        raise ValueError(f"that makes {len(out)} variants; keep it to {MAX_VARIANTS} or fewer")
    return out


def unique_names(variants: list[VariantDraft]) -> list[VariantDraft]:
    """Rename repeats (``lr=0.1`` twice → ``lr=0.1``, ``lr=0.1 (2)``)."""
    seen: dict[str, int] = {}
    for v in variants:
        n = seen.get(v.name, 0)
        seen[v.name] = n + 1
        if n:
            v.name = f"{v.name} ({n + 1})"[:40]
    return variants
