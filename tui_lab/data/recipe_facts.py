"""What the Builder shows of a recipe before any run: the facts of a person's own data file
(``data.name = "file"``: "table: 240 samples, 2 features → classification, 2 classes (cat 120, dog
120)") and the model a variant trains ("model: 3 layers, 5,210 parameters (20.4 KiB), 1.2 KiB of
activations per sample", and its layer table).

No Textual here. Both read the engine (a whole data file, a model built with torch): the Builder
calls them in a thread worker. Every message from the engine goes through ``fmt.clean``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_lab.data.fmt import clean

if TYPE_CHECKING:
    from engine.diagnostics.architecture import Architecture

MAX_CLASSES_SHOWN = 6
"""Classes named with their counts on the facts line; more read "… and 4 more"."""


def resolve_path(text: str, folder: Path) -> str:
    """A data path as the engine finds it once the recipe is saved in `folder`: a relative path is
    relative to the preset file (``engine.catalogue.presets._resolve_data_paths``)."""
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else folder.resolve() / path)


def file_kind(path: str) -> str:
    """What kind of file the engine reads `path` as: table, arrays or images."""
    p = Path(path)
    if p.is_dir():
        return "images"
    return {".csv": "table", ".tsv": "table", ".npz": "arrays", ".npy": "arrays"}.get(p.suffix.lower(), "file")


@dataclass(frozen=True)
class Facts:
    ok: bool
    text: str
    """The facts line, or the problem (cleaned: no control characters, to show as plain text)."""


def data_facts(data: dict[str, Any], folder: Path) -> Facts:
    """The facts of the base recipe's own data file (`data`: the recipe's data section, as typed),
    its relative paths read from `folder` (where the recipe is saved). Reads the whole file: call
    it off the UI thread."""
    from pydantic import ValidationError

    from engine.data.base import DatasetError
    from engine.data.facts import describe
    from engine.data.files import read_file_data
    from engine.recipe.config import DataSpec

    values = dict(data)
    for key in ("path", "targets"):
        if isinstance(values.get(key), str) and values[key].strip():
            values[key] = resolve_path(values[key].strip(), folder)
    try:
        spec = DataSpec.model_validate(values)
        facts = describe(spec)
        balance = read_file_data(spec).balance()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return Facts(False, clean(f"{where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}"))
    except DatasetError as exc:
        return Facts(False, clean(str(exc)))
    except (OSError, ValueError) as exc:  # what a reader lets through: said, never a traceback
        return Facts(False, clean(f"{values.get('path')}: {exc}"))
    return Facts(True, clean(facts_words(file_kind(spec.path or ""), facts, balance)))


def facts_words(kind: str, facts: Any, balance: dict[str, int]) -> str:
    """"table: 240 samples, 2 features → classification, 2 classes (cat 120, dog 120)"."""
    shape = facts.raw_shape
    inputs = (f"{shape[0]:,} feature{'s' if shape[0] != 1 else ''}" if len(shape) == 1
              else f"inputs {'×'.join(map(str, shape))}")
    head = f"{kind}: {facts.n_total:,} samples, {inputs} → {facts.task}"
    if facts.task != "classification":
        return head
    names = list(balance.items())
    shown = ", ".join(f"{name} {n:,}" for name, n in names[:MAX_CLASSES_SHOWN])
    if len(names) > MAX_CLASSES_SHOWN:
        shown += f", … and {len(names) - MAX_CLASSES_SHOWN} more"
    return f"{head}, {facts.n_classes} classes ({shown})"


def pick_spec(loaded: Any, variant: str | None) -> Any:
    """The RunSpec whose model the Builder describes: `variant`'s (None or unknown: the first
    variant's), its first seed, the full form. ValueError when it trains no network."""
    specs = loaded.expand(quick=False)
    if not specs:
        raise ValueError("no variant to describe")
    spec = next((s for s in specs if s.variant == variant), specs[0])
    if spec.kind != "network":
        raise ValueError(f"variant {clean(spec.variant)!r} trains no network (a {spec.kind} run)")
    return spec


def architecture(spec: Any) -> Architecture:
    """The summary of the model `spec` trains (``architecture_of``). Builds it with torch (and reads
    the data's facts: a whole file for your own data): call it off the UI thread. DatasetError /
    ValueError when it cannot be built."""
    import torch

    from engine.diagnostics.architecture import architecture_of

    torch.set_num_threads(1)
    return architecture_of(spec)


def weight_layers(arch: Architecture) -> int:
    """The layers that hold parameters (an MLP of two hidden layers has 3)."""
    return sum(1 for row in arch.layers if row.params)


def summary_line(arch: Architecture) -> str:
    """"model: 3 layers, 5,210 parameters (20.4 KiB), 1.2 KiB of activations per sample"."""
    from engine.recipe.footprint import size

    n = weight_layers(arch)
    return (f"model: {n} layer{'s' if n != 1 else ''}, {arch.params:,} parameters ({size(arch.param_bytes)}), "
            f"{size(arch.activation_bytes)} of activations per sample")


def layer_rows(arch: Architecture) -> list[tuple[str, str, str, str]]:
    """(layer, type, output shape, parameters) per leaf layer, as text (cleaned: a custom model
    names its own layers)."""
    return [(clean(r.name), clean(r.kind), "×".join(map(str, r.output_shape)) or "–",
             f"{r.params:,}" if r.params else "–") for r in arch.layers]


def layer_table(arch: Architecture) -> str:
    """The layer table as aligned plain text, with a header and the input's shape."""
    rows = [("layer", "type", "output", "parameters"), *layer_rows(arch)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"input {'×'.join(map(str, arch.input_shape))}, {arch.n_outputs} output{'s' if arch.n_outputs != 1 else ''}"]
    for r in rows:
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}")
    return "\n".join(lines)
