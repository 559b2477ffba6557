"""Presets: one comparison per TOML file, loaded, validated and expanded into RunSpecs.

A preset holds metadata (title, technique, the step / benefit frame, an explanation), a base
recipe, named variants that override parts of it, a `[quick]` override for the short form, and
declarative claims. It is data only: nothing in it is ever executed.

Errors are ``PresetError``: one short message naming the file, the place (variant, field, line
where it can be found) and what is allowed, meant to be printed as is.
"""

from __future__ import annotations

import difflib
import re
import reprlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from engine.recipe.config import (
    FACTORY_PATTERN,
    Recipe,
    RunSpec,
    Seed,
    Strict,
    close_fields,
    deep_merge,
    section_fields,
)

Chapter = Literal[
    "data",
    "architecture",
    "initialization",
    "optimization",
    "regularization & loss",
    "workflow & diagnostics",
]
CHAPTERS: tuple[str, ...] = Chapter.__args__  # type: ignore[attr-defined]
Step = Literal["data", "loss", "architecture", "optimization", "all"]
Benefit = Literal["optimization", "generalization", "both"]
SECTIONS = ("data", "model", "train")


class PresetError(ValueError):
    """A preset that cannot be used, with a message fit to show a person."""


QUOTE_LIMIT = 80
"""The most characters of a value from the file that an error message quotes (then "…")."""
MAX_DEPTH = 32
"""The most levels of tables and arrays a preset may nest (the catalogue's presets use 6)."""
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Control characters: C0 (tab, newline and ESC among them), DEL and C1."""
_CONTROL_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""The same, but tab and newline: what text of several lines refuses."""


def _clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A value from the file as an error message quotes it: its repr (control characters escaped),
    cut to `limit` characters. A 50 MB string makes a short message, not a 50 MB one."""
    if isinstance(value, str):
        return _clip(repr(value[: 4 * limit]), limit)  # the repr of a huge string is never built
    return _clip(_SHORT_REPR.repr(value), limit)


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = QUOTE_LIMIT


class Override(Strict):
    """A partial recipe: any of data / model / train as tables of fields to change."""

    data: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in (("data", self.data), ("model", self.model), ("train", self.train)) if v}


class Variant(Override):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    description: str = ""
    quick: Override = Field(default_factory=Override)
    """Extra override applied in the quick form only."""
    search: dict[str, Any] = Field(default_factory=dict)
    """Presets with a ``[search]`` table only: this variant's changes to it (e.g. ``method``)."""


TECHNIQUE_PATTERN = r"^[a-z0-9-]+$"
METRIC_PATTERN = r"^[a-z_][a-z0-9_.]*$"
FIELD_PATTERN = r"^(data|model|train)\.[a-z_][a-z0-9_]*$"
PATTERN_WORDS = {
    TECHNIQUE_PATTERN: "a technique id holds only lowercase letters, digits and hyphens, like adam-vs-sgd",
    METRIC_PATTERN: "a metric's name holds only lowercase letters, digits, _ and . and starts with a letter or "
                    "_, like val_loss",
    FIELD_PATTERN: "a field is its section (data, model or train), a dot and the field's name, like train.lr",
    FACTORY_PATTERN: "a factory is a module's dotted path, a colon and a function's name, like "
                     "mypkg.models:make_net",
}
"""What a text field with a pattern may hold, in words: an error message says this, not the regex."""

ClaimMetric = Annotated[str, Field(pattern=METRIC_PATTERN, max_length=80)]


class Claim(Strict):
    """A structured comparison between variants (or a variant and a number).

    ``left op right`` for each left variant, where the values are `metric` read `at` a point of
    each run. With `margin` (relative) "<" means left < right·(1 − margin), ">" means
    left > right·(1 + margin); `abs_margin` shifts by an absolute amount instead. ``seeds``:
    "each" needs the claim to hold for every seed, "mean" compares means over seeds.
    """

    text: str
    metric: ClaimMetric
    at: Literal["final", "best", "min", "max", "last"] = "final"
    left: str | list[str]
    op: Literal["<", ">", "<=", ">=", "==", "!="]
    right: str | None = None
    value: float | str | None = None
    margin: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    abs_margin: Annotated[float, Field(ge=0.0)] = 0.0
    seeds: Literal["each", "mean"] = "each"
    right_metric: ClaimMetric | None = None
    """The metric read on the `right` variant (default: `metric`): compares two metrics, e.g. one
    variant's `ensemble_val_acc` against another's (or its own) `val_acc`."""

    @model_validator(mode="after")
    def _one_side(self) -> Claim:
        if (self.right is None) == (self.value is None):
            raise ValueError("a claim needs exactly one of `right` (a variant) or `value` (a number)")
        if isinstance(self.value, str) and self.op not in ("==", "!="):
            raise ValueError("a text value (such as a status) can only be compared with == or !=")
        return self

    @property
    def lefts(self) -> list[str]:
        return [self.left] if isinstance(self.left, str) else list(self.left)

    @property
    def variants(self) -> list[str]:
        """Every variant the claim names: its left ones, then its right one if any."""
        return self.lefts + ([self.right] if self.right else [])


class SearchFieldSpec(Strict):
    """One searched field of a ``[search]`` table."""

    field: Annotated[str, Field(pattern=FIELD_PATTERN)]
    low: float
    high: float
    scale: Literal["log", "linear"] = "log"


class SearchSpec(Strict):
    """A hyperparameter-search comparison (``engine.catalogue.search``): each variant of the preset is one
    search (its recipe is the base of every trial, its ``search`` table changes these settings),
    repeated `repeats` times per seed; its claims compare ``best_score`` and ``best.<field>``.
    Such a preset is run by ``engine.catalogue.search.run_search_preset`` (``check_preset`` and
    ``dllab search`` do it), not trained variant by variant."""

    fields: Annotated[list[SearchFieldSpec], Field(min_length=1)]
    budget: Annotated[int, Field(ge=1)]
    """Runs per search (all rounds together)."""
    method: Literal["grid", "random"] = "random"
    refine: Annotated[int, Field(ge=0)] = 0
    """Coarse-to-fine rounds after the first (the budget is split over them)."""
    score: ClaimMetric = "val_loss"
    at: Literal["final", "best", "min", "max", "last"] = "final"
    mode: Literal["min", "max"] | None = None
    """Default: min for losses and gaps, max otherwise."""
    repeats: Annotated[int, Field(ge=1)] = 1
    """Searches per seed: random draws, or grid placements with ``placement = "random"``."""
    placement: Literal["centered", "random"] = "centered"
    """Where a grid sits in its range: centred cells, or shifted by a random offset per field."""
    grid_offsets: list[Annotated[float, Field(ge=0.0, lt=1.0)]] | None = None
    """A fixed grid placement: one offset per field, in units of a grid cell (0.5 = centred)."""


class Preset(Strict):
    title: str
    technique: Annotated[str, Field(pattern=TECHNIQUE_PATTERN)]
    chapter: Chapter
    step: Step
    benefit: Benefit
    summary: Annotated[str, Field(max_length=160)]
    explain: str = ""
    """The explanation, in Markdown (the Library's card and `dllab presets ID` show it); optional."""
    view: Literal["curves", "boundary", "surface", "regression"] = "curves"
    """The extra dashboard view that suits this comparison."""
    seeds: list[Seed] = Field(default_factory=lambda: [0])
    quick_seeds: list[Seed] | None = None
    base: Override
    quick: Override = Field(default_factory=Override)
    variants: Annotated[list[Variant], Field(min_length=1)]
    claims: list[Claim] = Field(default_factory=list)
    search: SearchSpec | None = None
    """A hyperparameter-search comparison (see SearchSpec); None for ordinary presets."""

    @model_validator(mode="after")
    def _search_tables(self) -> Preset:
        for v in self.variants:
            if v.search and self.search is None:
                raise ValueError(f"variant {v.name!r} has a search table but the preset has no [search]")
            if self.search is not None:
                settings = self.search_settings(v)
                if settings.grid_offsets is not None and len(settings.grid_offsets) != len(settings.fields):
                    raise ValueError(f"variant {v.name!r}: grid_offsets needs one offset per search field")
        return self

    def search_settings(self, variant: Variant) -> SearchSpec:
        """The preset's [search] table with the variant's changes (validated)."""
        if self.search is None:
            raise ValueError("this preset has no [search] table")
        merged = {**self.search.model_dump(), **variant.search}
        try:
            return SearchSpec.model_validate(merged)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = pattern_words(err) if err["type"] == "string_pattern_mismatch" else err["msg"]
            raise ValueError(f"variant {variant.name!r}: search.{loc}: {msg}") from None

    @model_validator(mode="after")
    def _names(self) -> Preset:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(dupes)}")
        for i, claim in enumerate(self.claims):
            for name in claim.variants:
                if name not in names:
                    raise ValueError(
                        f"claims[{i}] names variant {name!r}, which is not one of: {', '.join(names)}"
                    )
        return self

    def recipe_dict(self, variant: Variant, quick: bool) -> dict[str, Any]:
        merged = deep_merge({}, self.base.as_dict())
        if quick:
            merged = deep_merge(merged, self.quick.as_dict())
        merged = deep_merge(merged, variant.as_dict())
        if quick:
            merged = deep_merge(merged, variant.quick.as_dict())
        return merged

    def default_seeds(self, quick: bool) -> list[int]:
        return list(self.quick_seeds if quick and self.quick_seeds is not None else self.seeds)


@dataclass(frozen=True)
class LoadedPreset:
    """A validated preset and where it came from."""

    id: str
    path: Path
    preset: Preset
    source: str

    def variant(self, name: str) -> Variant:
        for v in self.preset.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def expand(self, *, quick: bool = False, seeds: list[int] | None = None) -> list[RunSpec]:
        """One RunSpec per variant × seed, variants in file order, seeds inner."""
        seeds = seeds if seeds is not None else self.preset.default_seeds(quick)
        specs: list[RunSpec] = []
        for variant in self.preset.variants:
            raw = self.preset.recipe_dict(variant, quick)
            for seed in seeds:
                with_seed = deep_merge(raw, {"train": {"seed": seed}})
                recipe = _validate_recipe(with_seed, self, variant, quick)
                specs.append(RunSpec(recipe=recipe, variant=variant.name, preset=self.id))
        return specs


def _validate_recipe(raw: dict[str, Any], loaded: LoadedPreset, variant: Variant, quick: bool) -> Recipe:
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise PresetError(_format_errors(exc, loaded.path, loaded.source,
                                         _recipe_place(loaded.preset, variant, quick))) from None


_UNSET = object()


def _at(layer: dict[str, Any], loc: tuple) -> Any:
    """What a partial recipe (``Override.as_dict()``) holds at `loc` (``_UNSET``: nothing)."""
    node: Any = layer
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return _UNSET
        node = node[part]
    return node if loc else _UNSET


def _sets(override: dict[str, Any], loc: tuple) -> bool:
    """Whether a partial recipe (``Override.as_dict()``) sets the field at `loc` (or a table above it)."""
    return _at(override, loc) is not _UNSET


def _recipe_place(preset: Preset, variant: Variant, quick: bool) -> Callable[[tuple], tuple[str, str]]:
    """For an error at a recipe field: which part of the file set it (the variant, the preset's
    ``[quick]`` table, or the base recipe) as words, and the table its line is looked for in.

    The last layer that sets the field is the one to fix: a variant's own ``quick`` table, the
    variant, ``[quick]`` (quick form only), then the base. A field no layer sets (missing, or an
    error of the whole recipe) is the variant's: that is the recipe that failed."""
    index = preset.variants.index(variant)
    name = f"variant {variant.name!r}"
    form = " (quick form)" if quick else ""

    def place(loc: tuple) -> tuple[str, str]:
        if quick and _sets(variant.quick.as_dict(), loc) or _sets(variant.as_dict(), loc):
            return f"{name}{form}", f"variants#{index}"
        if quick and _sets(preset.quick.as_dict(), loc):
            return "quick form ([quick] table)", "quick"
        if _sets(preset.base.as_dict(), loc):
            return f"base recipe{form}", "base"
        return f"{name}{form}", f"variants#{index}"

    return place


def _format_errors(exc: ValidationError | list[Any], path: Path, source: str,
                   where: str | Callable[[tuple], tuple[str, str]] = "") -> str:
    """One line per error (at most 5 and a count): file, place, field, line, what is allowed.

    `exc`: a ValidationError, or some of its ``errors()``. `where`: the place in words for every
    error, or a function of an error's location giving the place and the table to find its line in
    (see ``_recipe_place``). Values and names from the file are quoted short (``_quote``)."""
    errors = exc.errors() if isinstance(exc, ValidationError) else exc
    lines = []
    for err in errors[:5]:
        named = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        loc = ".".join(_field_name(p) for p in named)
        place, table = where(named) if callable(where) else (where, None)
        msg = _clip(err["msg"], 4 * QUOTE_LIMIT)  # a validator's words may quote a value whole
        if err["type"] == "value_error":  # a model validator's own words, without pydantic's prefix
            msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
            allowed = _allowed_fields(err["loc"])
            key = str(err["loc"][-1])
            close = close_fields(key, allowed) if len(key) <= QUOTE_LIMIT else []
            if close:
                msg += f"; did you mean {' or '.join(close)}?"
            elif allowed:
                msg += f" (allowed: {', '.join(allowed)})"
        elif err["type"] == "literal_error":
            msg = f"{msg}, got {_quote(err.get('input'))}"
        elif err["type"] == "string_pattern_mismatch":
            msg = f"{pattern_words(err)} (got {_quote(err.get('input'))})"
        elif "input" in err and not isinstance(err["input"], dict):
            msg = f"{msg} (got {_quote(err['input'])})"
        line = _line_of(source, err["loc"], err.get("input"), table)
        at = f" (line {line})" if line else ""
        prefix = f"{place}: " if place else ""
        field = f"{loc}{at}: " if loc else ""
        lines.append(f"{path}: {prefix}{field}{msg}")
    more = len(errors) - 5
    if more > 0:
        lines.append(f"... and {more} more")
    return "\n".join(lines)


def pattern_words(err: Any) -> str:
    """A pydantic ``string_pattern_mismatch`` error's rule in words (`PATTERN_WORDS`), not its regex."""
    pattern = (err.get("ctx") or {}).get("pattern", "")
    return PATTERN_WORDS.get(pattern, str(err.get("msg", "")))


def _field_name(part: Any) -> str:
    """A part of a field's location as a message names it: a key that is not a plain name (control
    characters, a huge key) is quoted short."""
    text = str(part)
    return text if len(text) <= QUOTE_LIMIT and text.isprintable() else _quote(text)


def _allowed_fields(loc: tuple) -> list[str]:
    for part in reversed(loc[:-1]):
        if part in SECTIONS:
            return section_fields(part)
    if len(loc) == 1:
        return sorted(Preset.model_fields)
    if "claims" in loc:
        return sorted(Claim.model_fields)
    if "variants" in loc:
        return sorted(Variant.model_fields)
    return []


_HEADER = re.compile(r'^\s*(\[\[?)\s*([\w.\-" ]+?)\s*\]')


def _line_of(source: str, loc: tuple, value: Any = None, table: str | None = None) -> int | None:
    """Best effort: the line that sets the innermost named key (to the offending value, if seen).

    `table`: where to look first, a table's dotted name (``base``, ``quick``) or an element of an
    array of tables (``variants#1``, ``claims#0``, counted from 0); lines elsewhere are a fallback
    (a key can also sit in an inline table under another header)."""
    names = [p for p in loc if isinstance(p, str)]
    if not names or len(names[-1]) > QUOTE_LIMIT:  # no key that long is written as a plain name
        return None
    pattern = re.compile(rf"(^|[\s{{,])\"?{re.escape(names[-1])}\"?\s*=\s*(.*)")
    hits, inside = [], []
    current, counts = "", {}
    for i, line in enumerate(source.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        if header := _HEADER.match(line):
            name = header.group(2).replace('"', "")
            top = name.split(".")[0]
            if header.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                current = f"{name}#{counts[name]}"
            elif top in counts:  # a sub-table of an array's latest element ([variants.train])
                current = f"{top}#{counts[top]}"
            else:
                current = name
            continue
        m = pattern.search(line)
        if m:
            hits.append((i, m.group(2)))
            if table and (current == table or current.startswith(f"{table}.")):
                inside.append((i, m.group(2)))
    scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
    for candidates in (inside, hits):
        if scalar:
            for i, rest in candidates:
                if str(value) in rest:
                    return i
        if candidates:
            return candidates[0][0]
    return None


def _check_metrics(preset: Preset, path: Path, source: str) -> None:
    """Every metric the claims (and a [search] table's score) name must be one some run can report.

    Checked against the names of any kind of run (``engine.catalogue.metric_names``): which kind a variant
    trains is only settled when its data is built, and a metric a variant's runs do not record is
    still reported when the claim is checked."""
    from engine.catalogue.metric_names import unknown_metric

    for i, claim in enumerate(preset.claims):
        for key, metric in (("metric", claim.metric), ("right_metric", claim.right_metric)):
            if metric and (problem := unknown_metric(metric)):
                line = _line_of(source, ("claims", i, key), metric, f"claims#{i}")
                at = f", line {line}" if line else ""
                raise PresetError(f"{path}: claim {_quote(claim.text)} (claims[{i}].{key}{at}): {problem}")
    if preset.search is not None:
        for variant in preset.variants:
            score = preset.search_settings(variant).score
            if problem := unknown_metric(score, numeric=True):
                line = _line_of(source, ("search", "score"), score)
                where = f"variant {variant.name!r}: search.score" if "score" in variant.search else "search.score"
                raise PresetError(f"{path}: {where}{f' (line {line})' if line else ''}: {problem}")


def _multiline(loc: tuple) -> bool:
    """Whether the field at `loc` may hold text of several lines (newlines and tabs): the
    explanation and a variant's description. Every other string and key is one line."""
    return loc == ("explain",) or (len(loc) == 3 and loc[0] == "variants" and loc[2] == "description")


def _check_shape(raw: dict[str, Any], path: Path, source: str) -> None:
    """What holds for the parsed file as a whole, before the schema: it nests at most MAX_DEPTH
    levels (deeper data would overflow the stack of what reads it), and no key or text in it has a
    control character (a title that sets the terminal's title, a name that clears the screen)."""
    stack: list[tuple[tuple, Any]] = [((), raw)]
    while stack:
        loc, node = stack.pop()
        if len(loc) > MAX_DEPTH:
            raise PresetError(f"{path}: the file nests too deeply (more than {MAX_DEPTH} levels of tables "
                              "or arrays); a preset needs a few")
        if isinstance(node, str):
            if bad := (_CONTROL_IN_LINES if _multiline(loc) else _CONTROL).search(node):
                _refuse_control(path, source, loc, node, bad.group())
        elif isinstance(node, dict):
            for key, value in node.items():
                if bad := _CONTROL.search(key):
                    _refuse_control(path, source, (*loc, key), None, bad.group())
                stack.append(((*loc, key), value))
        elif isinstance(node, list):
            stack.extend(((*loc, i), value) for i, value in enumerate(node))


def _refuse_control(path: Path, source: str, loc: tuple, value: str | None, char: str) -> None:
    field = ".".join(_field_name(p) for p in loc)
    line = _line_of(source, loc) if value is not None else None
    at = f" (line {line})" if line else ""
    what = "its name has" if value is None else "its text has"
    raise PresetError(f"{path}: {field}{at}: {what} a control character (U+{ord(char):04X}); "
                      "a preset holds plain text: remove it")


def parse_preset(source: str, path: Path, preset_id: str | None = None) -> LoadedPreset:
    """Validate a preset's text; every variant is expanded once (full and quick) to check it."""
    try:
        raw = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # arrays or inline tables a few hundred levels deep
        raise PresetError(f"{path}: the file nests too deeply (more than {MAX_DEPTH} levels of tables or "
                          "arrays); a preset needs a few") from None
    _check_shape(raw, path, source)
    _resolve_data_paths(raw, path.parent)
    try:
        preset = Preset.model_validate(raw)
    except ValidationError as exc:
        raise PresetError(_format_errors(exc, path, source)) from None
    _check_metrics(preset, path, source)
    if bad := _CONTROL.search(preset_id or path.stem):
        raise PresetError(f"{_quote(str(path))}: the preset's id (its file's name) has a control character "
                          f"(U+{ord(bad.group()):04X}); rename the file")
    loaded = LoadedPreset(id=preset_id or path.stem, path=path, preset=preset, source=source)
    _check_layers(loaded)
    for quick in (False, True):
        for variant in preset.variants:
            _validate_recipe(preset.recipe_dict(variant, quick), loaded, variant, quick)
    _no_code_in_catalogue(loaded)
    return loaded


def _no_code_in_catalogue(loaded: LoadedPreset) -> None:
    """A shipped preset never names code to import (``model.factory``): only a person's own
    recipe can, and only with their opt-in (``engine.models.custom``)."""
    if loaded.path.parent.resolve() != builtin_dir().resolve():
        return
    for quick in (False, True):
        for variant in loaded.preset.variants:
            if loaded.preset.recipe_dict(variant, quick).get("model", {}).get("kind") == "custom":
                raise PresetError(f"{loaded.path}: variant {variant.name!r}: a catalogue preset cannot use "
                                  "model.kind = 'custom' (it would import code)")


def _resolve_data_paths(raw: dict[str, Any], folder: Path) -> None:
    """A user's own data named by a relative path (``data.path``, ``data.targets``) is found beside
    the preset file, wherever the command (or the runs service) runs: the path becomes absolute."""
    tables = [raw.get("base"), raw.get("quick")]
    for variant in raw.get("variants") or []:
        if isinstance(variant, dict):
            tables += [variant, variant.get("quick")]
    for table in tables:
        data = table.get("data") if isinstance(table, dict) else None
        if not isinstance(data, dict):
            continue
        for key in ("path", "targets"):
            value = data.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                data[key] = str(folder.resolve() / value)


def _check_layers(loaded: LoadedPreset) -> None:
    """The base recipe as written (and the quick form's ``[quick]`` table over it) is validated
    too, not only the variants' recipes: a base value that every variant overrides is never part
    of a recipe that trains, but it is still wrong in the file (an ``activation = "swishy"`` would
    wait there for the next variant that does not set its own). Only the fields the layer sets are
    judged: a partial recipe misses fields, and its whole-recipe checks belong to the variants."""
    preset = loaded.preset
    base = preset.base.as_dict()
    for quick, layer in ((False, base), (True, deep_merge(base, preset.quick.as_dict()))):
        try:
            Recipe.model_validate(layer)
        except ValidationError as exc:
            errors = [e for e in exc.errors() if e["type"] != "missing" and _sets_value(layer, e["loc"])]
            if errors:
                def place(loc: tuple, quick: bool = quick) -> tuple[str, str]:
                    if quick and _sets(preset.quick.as_dict(), loc):
                        return "quick form ([quick] table)", "quick"
                    return "base recipe", "base"

                raise PresetError(_format_errors(errors, loaded.path, loaded.source, place)) from None


def _sets_value(layer: dict[str, Any], loc: tuple) -> bool:
    """Whether `layer` sets the field at `loc` to a value (not a table of fields)."""
    node = _at(layer, loc)
    return node is not _UNSET and not isinstance(node, dict)


def builtin_dir() -> Path:
    return Path(str(resources.files("presets")))


def builtin_ids() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def saved_dir() -> Path:
    """Where the Builder saves recipes: ``$DLLAB_HOME/presets`` (``engine.runs.store.default_home``)."""
    from engine.runs.store import default_home

    return default_home() / "presets"


def saved_ids() -> list[str]:
    """The ids of the recipes saved from the Builder (their file names), whether or not they load."""
    folder = saved_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load_preset(ref: str | Path) -> LoadedPreset:
    """A catalogue id (``optimizers``), the id of a recipe saved from the Builder (a file in
    :func:`saved_dir`; the catalogue's id wins when both have it), or a path to a TOML file."""
    ref_str = str(ref)
    try:
        found = _find(ref_str)
    except (OSError, ValueError) as exc:  # a name too long for a path, a NUL in it, a folder not readable
        raise PresetError(f"cannot look for preset {_quote(ref_str)}: {_reason(exc)}") from None
    if found is not None:
        return _load_file(*found)
    ids = builtin_ids()
    close = difflib.get_close_matches(ref_str, sorted({*ids, *saved_ids()}), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise PresetError(f"unknown preset {_quote(ref_str)}; {hint}`dllab presets` lists the catalogue "
                      f"({len(ids)} presets), or give a path to a TOML file")


def _find(ref: str) -> tuple[Path, str | None] | None:
    """The file `ref` names and the id it gets (None: the file's name), or None for no preset."""
    path = Path(ref).expanduser()
    if ref.endswith(".toml") or path.exists() or "/" in ref:
        if not path.exists() and (toml := path.with_name(f"{path.name}.toml")).is_file():
            path = toml  # a path given without its .toml (the Builder's open box, in the saved folder)
        return path, None
    builtin = builtin_dir() / f"{ref}.toml"
    if builtin.is_file():
        return builtin, ref
    saved = saved_dir() / f"{ref}.toml"
    if ref and saved.is_file():
        return saved, ref
    return None


def _reason(exc: BaseException) -> str:
    """An OSError in words ("Permission denied"), without the path it repeats."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _load_file(path: Path, preset_id: str | None = None) -> LoadedPreset:
    if path.is_dir():
        raise PresetError(f"{path}: a folder, not a preset file; give a .toml file in it")
    if not path.is_file():
        raise PresetError(f"{path}: no such preset file")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:  # permissions, a file that went away, a read error
        raise PresetError(f"{path}: cannot read the file ({_reason(exc)})") from None
    except UnicodeDecodeError as exc:
        raise PresetError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return parse_preset(text, path, preset_id)


def catalogue() -> list[LoadedPreset]:
    """Every built-in preset, ordered by chapter then id."""
    loaded = [load_preset(i) for i in builtin_ids()]
    return sorted(loaded, key=lambda p: (CHAPTERS.index(p.preset.chapter), p.id))
