"""Form fields generated from the recipe's pydantic models.

Each model field becomes a :class:`FieldSpec`: what kind of widget suits it (a choice for a
``Literal``, a switch for a ``bool``, a checked text box for numbers, lists and text), its
default, its docstring (read from the model's source, as pydantic does with
``use_attribute_docstrings``) and a parser that validates text with the field's own pydantic
constraints, so the Builder says exactly what the engine would.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class FieldSpec:
    section: str
    """``data``, ``model``, ``train`` (or ``preset`` for the preset's own fields)."""
    name: str
    kind: str
    """``choice``, ``bool``, ``int``, ``float``, ``int_list``, ``float_list``, ``choice_list``,
    ``text``, or ``toml`` (any other value, written as a TOML value: ``{ steps = 500 }``)."""
    choices: tuple[Any, ...]
    optional: bool
    required: bool
    default: Any
    doc: str
    adapter: TypeAdapter

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    def parse(self, text: str) -> Any:
        """A value from what a person typed; ``ValueError`` with the pydantic message if invalid."""
        raw = text.strip()
        if raw == "" and self.optional:
            return None
        if raw == "" and self.kind in ("int_list", "float_list", "choice_list"):
            return self.validate([])
        if raw == "" and self.kind != "text":
            raise ValueError("a value is required")
        value: Any
        if self.kind == "choice_list":
            words = [w.strip("\"' ") for w in raw.strip("[]() ").replace(",", " ").split()]
            bad = [w for w in words if w not in map(str, self.choices)]
            if bad:
                raise ValueError(f"{bad[0]!r} is not one of: {', '.join(map(str, self.choices))}")
            value = words
        elif self.kind == "toml":
            import tomllib

            try:
                value = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"not a TOML value ({exc})") from None
            except RecursionError:  # brackets a few hundred deep
                raise ValueError("the value nests too deeply") from None
            self.validate(value)
            return value  # plain data (what a preset file holds), checked against the field
        elif self.kind == "choice":
            matches = [c for c in self.choices if str(c) == raw.strip("\"'")]
            if not matches:
                raise ValueError(f"must be one of: {', '.join(map(str, self.choices))}")
            value = matches[0]
        elif self.kind == "bool":
            low = raw.lower()
            if low not in _TRUE | _FALSE:
                raise ValueError("must be true or false")
            value = low in _TRUE
        elif self.kind == "int":
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"must be a whole number (got {raw!r})") from None
        elif self.kind == "float":
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"must be a number (got {raw!r})") from None
        elif self.kind in ("int_list", "float_list"):
            parts = [p for p in raw.strip("[]() ").replace(",", " ").split() if p]
            cast = int if self.kind == "int_list" else float
            try:
                value = [cast(p) for p in parts]
            except ValueError:
                what = "whole numbers" if cast is int else "numbers"
                raise ValueError(f"must be {what} separated by commas (got {raw!r})") from None
        else:
            value = raw
        return self.validate(value)

    def validate(self, value: Any) -> Any:
        try:
            return self.adapter.validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            if err["type"] == "string_pattern_mismatch":  # the rule in words, not the regex
                from engine.catalogue.presets import pattern_words

                raise ValueError(pattern_words(err)) from None
            raise ValueError(err["msg"]) from None

    def format(self, value: Any) -> str:
        """The text a box shows for a value (what :meth:`parse` reads back to the same value)."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return repr(value)
        if self.kind == "toml":
            from tui_lab.data.toml_writer import value as toml_value

            data = value.model_dump(mode="json", exclude_defaults=True) if isinstance(value, BaseModel) else value
            return toml_value(data)
        if isinstance(value, list):
            return ", ".join(self.format(v) for v in value)
        return str(value)

    def hint(self) -> str:
        """Allowed values in a few words."""
        if self.kind == "choice":
            return "one of: " + ", ".join(map(str, self.choices))
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice_list":
            return "any of: " + ", ".join(map(str, self.choices))
        if self.kind == "toml":
            return "a TOML value, e.g. { key = 1 }" + ("; empty for none" if self.optional else "")
        limits = _limits(self.adapter)
        base = {"int": "a whole number", "float": "a number", "int_list": "whole numbers, comma-separated",
                "float_list": "numbers, comma-separated", "text": "text"}[self.kind]
        if limits:
            base += f" ({limits})"
        if self.optional:
            base += "; empty for none"
        return base


def _limits(adapter: TypeAdapter) -> str:
    schema = adapter.json_schema()
    options = schema.get("anyOf", [schema])
    words = []
    for opt in options:
        for k, sym in (("exclusiveMinimum", ">"), ("minimum", "≥"), ("exclusiveMaximum", "<"), ("maximum", "≤")):
            if k in opt:
                words.append(f"{sym} {opt[k]}")
        items = opt.get("items", {})
        for k, sym in (("exclusiveMinimum", ">"), ("minimum", "≥")):
            if k in items:
                words.append(f"each {sym} {items[k]}")
    return ", ".join(words)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) < len(get_args(annotation)) and len(args) == 1:
            return args[0], True
    return annotation, False


def _base_type(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _kind(annotation: Any) -> tuple[str, tuple[Any, ...]]:
    base = _base_type(annotation)
    if get_origin(base) is Literal:
        return "choice", tuple(get_args(base))
    if base is bool:
        return "bool", ()
    if base is int:
        return "int", ()
    if base is float:
        return "float", ()
    if get_origin(base) is list:
        (item,) = get_args(base)
        item = _base_type(item)
        if get_origin(item) is Literal:
            return "choice_list", tuple(get_args(item))
        if item is int:
            return "int_list", ()
        if item is float:
            return "float_list", ()
        return "toml", ()
    if base is str:
        return "text", ()
    return "toml", ()


@cache
def attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """Docstrings written under fields (``x: int = 0`` then ``\"\"\"...\"\"\"``), by field name."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


@cache
def model_fields(model: type[BaseModel], section: str) -> tuple[FieldSpec, ...]:
    """A FieldSpec for each field of a pydantic model, in declaration order."""
    docs = attribute_docs(model)
    out = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        full = Annotated[annotation, *info.metadata] if info.metadata else annotation
        inner, optional = _unwrap_optional(annotation)
        kind, choices = _kind(inner)
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        out.append(FieldSpec(section, name, kind, choices, optional, required, default,
                             docs.get(name, ""), TypeAdapter(full)))
    return tuple(out)


def recipe_fields() -> dict[str, tuple[FieldSpec, ...]]:
    from engine.recipe.config import DataSpec, ModelSpec, TrainSpec

    return {
        "data": model_fields(DataSpec, "data"),
        "model": model_fields(ModelSpec, "model"),
        "train": model_fields(TrainSpec, "train"),
    }


def field_by_key(key: str) -> FieldSpec:
    """``train.lr`` → its FieldSpec (KeyError when there is none)."""
    section, _, name = key.partition(".")
    for f in recipe_fields().get(section, ()):
        if f.name == name:
            return f
    raise KeyError(key)


@dataclass(frozen=True)
class When:
    """A field applies when another field of its section has one of `values` (None: is on: true, above
    0, not empty). A list field (``augment``) has one of them in it."""

    field: str
    values: tuple[Any, ...] | None = None

    def holds(self, section: dict[str, Any]) -> bool:
        value = section.get(self.field)
        if self.values is None:
            return bool(value)
        if isinstance(value, list | tuple):
            return any(v in self.values for v in value)
        return value in self.values

    def words(self) -> str:
        if self.values is None:
            return f"{self.field} on"
        return f"{self.field} {' or '.join(map(str, self.values))}"


_NETWORK = When("kind", ("mlp", "cnn"))
_CNN = When("kind", ("cnn",))
_MOMENTUM = When("optimizer", ("momentum", "nesterov"))
_ADAM = When("optimizer", ("adam", "adamw"))
_UNLABELED = When("unlabeled_loss", ("entropy", "pseudo_label", "consistency"))
_GRADCHECK = When("gradcheck")
_SURFACE = When("name", ("surface",))
APPLIES: dict[str, tuple[When, ...]] = {
    **{f"model.{name}": (_NETWORK,) for name in ("hidden", "depth", "width", "activation", "norm", "dropout",
                                                 "dropconnect", "residual")},
    "model.factory": (When("kind", ("custom",)),),
    "model.leaky_slope": (_NETWORK, When("activation", ("leaky_relu",))),
    "model.maxout_pieces": (_NETWORK, When("activation", ("maxout",))),
    **{f"model.{name}": (_CNN,) for name in ("channels", "kernel_size", "stride", "padding", "kernel_sizes")},
    "model.init_std": (When("init", ("normal", "uniform")),),
    "model.init_value": (When("init", ("constant",)),),
    "model.init_gain": (When("init", ("xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform")),),
    "model.sparse_fraction": (When("init", ("sparse",)),),
    "train.momentum": (_MOMENTUM,),
    "train.dampening": (_MOMENTUM,),
    "train.beta1": (_ADAM,),
    "train.beta2": (_ADAM,),
    "train.amsgrad": (_ADAM,),
    "train.alpha": (When("optimizer", ("rmsprop",)),),
    "train.rmsprop_momentum": (When("optimizer", ("rmsprop",)),),
    "train.eps": (When("optimizer", ("adagrad", "rmsprop", "adam", "adamw")),),
    "train.adagrad_lr_decay": (When("optimizer", ("adagrad",)),),
    "train.weight_decay": (When("optimizer", ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")),),
    **{f"train.lbfgs_{name}": (When("optimizer", ("lbfgs",)),) for name in ("history", "max_iter", "line_search")},
    "train.step_size": (When("schedule", ("step",)),),
    "train.gamma": (When("schedule", ("step", "exponential", "plateau")),),
    "train.decay": (When("schedule", ("inverse_time",)),),
    "train.min_lr": (When("schedule", ("step", "exponential", "inverse_time", "cosine", "plateau")),),
    "train.plateau_patience": (When("schedule", ("plateau",)),),
    "train.hinge_margin": (When("loss", ("hinge",)),),
    "train.smooth_l1_beta": (When("loss", ("smooth_l1",)),),
    "train.patience": (When("early_stopping"),),
    "train.restore_best": (When("early_stopping"),),
    **{f"train.augment_{name}": (When("augment", (name,)),) for name in ("noise", "scale", "shift", "cutout")},
    "train.importance_clip": (When("importance_weighting"),),
    **{f"train.unlabeled_{name}": (_UNLABELED,) for name in ("weight", "rampup", "batch_size")},
    "train.pseudo_threshold": (When("unlabeled_loss", ("pseudo_label",)),),
    "train.unlabeled_noise": (When("unlabeled_loss", ("consistency",)),),
    "train.checkpoint_every": (When("checkpoint_ensemble"),),
    **{f"train.gradcheck_{name}": (_GRADCHECK,) for name in ("layer", "dtype", "h", "max_elements")},
    **{f"data.{name}": (_SURFACE,) for name in ("surface", "start", "start_jitter", "sweep_lrs", "sweep_starts",
                                                "hit_radius", "escape_step")},
    "data.kappa": (_SURFACE, When("surface", ("quadratic",))),
    **{f"data.{name}": (When("name", ("file",)),) for name in ("path", "targets", "label", "features", "task",
                                                               "image_size")},
    "data.pca_components": (When("preprocess", ("pca", "pca_whiten")),),
    "data.outlier_fraction": (When("name", ("regression_outliers",)),),
}
"""Fields that only some settings use (what the engine reads: ``engine.recipe.optim``,
``engine.recipe.schedules``, ``engine.models``, ...), by ``section.name``: the Builder shows such a
field only where a recipe uses it (the base's or a variant's). A field not listed always applies."""


def applies(key: str, sections: list[dict[str, Any]]) -> bool:
    """Whether field `key` (``train.momentum``) is used by any of `sections` (one section's values,
    its defaults filled in: the base recipe's, each variant's)."""
    rules = APPLIES.get(key, ())
    return not rules or any(all(rule.holds(values) for rule in rules) for values in sections)


def unused_words(key: str, values: dict[str, Any]) -> str:
    """Why `key` is not used in `values` (the base recipe's section): "optimizer is adam (it is used
    with optimizer momentum or nesterov)"."""
    failed = [rule for rule in APPLIES.get(key, ()) if not rule.holds(values)]
    if not failed:
        return ""
    rule = failed[0]
    now = values.get(rule.field)
    shown = ", ".join(map(str, now)) if isinstance(now, list | tuple) else ("off" if now in (None, False, 0) else now)
    return f"not used: {rule.field} is {shown or 'empty'} (it is used with {rule.words()})"
