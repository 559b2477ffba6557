"""`dllab show`: one stored run, its recipe, evaluations and curve diagnosis."""

from __future__ import annotations

import argparse
import json
import sys

from rich.markup import escape
from rich.table import Table

from tui_lab.commands import EXIT_INVALID, EXIT_OK, stdout_console
from tui_lab.data.fmt import clean


def register(subparsers) -> None:
    p = subparsers.add_parser("show", help="show one stored run (an id or a unique prefix)")
    p.add_argument("run", help="a run id, or a unique prefix of one (dllab runs lists them)")
    p.add_argument("--json", action="store_true", help="print the run and its evaluations as JSON")
    p.set_defaults(func=run)


ALWAYS_SHOWN = {
    "data": ("name",),
    "model": ("kind",),
    "train": ("optimizer", "lr", "batch_size", "steps", "epochs"),
}
"""Recipe fields `dllab show` prints even at their defaults: what the run was (steps or epochs: the
one given)."""


def recipe_fields_shown(section: str, fields: dict[str, object]) -> tuple[dict[str, object], int]:
    """A stored recipe section's fields worth printing: the always relevant ones (an MLP's hidden
    sizes unless depth and width set them, a CNN's channels, a momentum optimizer's momentum too)
    and the others that differ from their defaults; and how many were left out."""
    from engine.recipe.config import section_spec

    model = section_spec(section)
    always = set(ALWAYS_SHOWN[section])
    if section == "model" and fields.get("kind") == "mlp" and fields.get("depth") is fields.get("width") is None:
        always.add("hidden")
    elif section == "model" and fields.get("kind") == "cnn":
        always.add("channels")
    elif section == "train" and fields.get("optimizer") in ("momentum", "nesterov"):
        always.add("momentum")
    shown = {}
    for name, value in fields.items():
        info = model.model_fields.get(name)
        if (info is None or info.is_required()  # no default to compare with
                or value != info.get_default(call_default_factory=True) or (name in always and value is not None)):
            shown[name] = value
    return shown, len(fields) - len(shown)


def _eval_cell(key: str, value: object) -> str:
    """An evaluation's figure: accuracies in percent (as the app shows them), the rest to 4 digits."""
    if key.endswith("_acc") and isinstance(value, float):
        from tui_lab.data import fmt

        return fmt.pct(value)
    return f"{value:.4g}" if isinstance(value, float) else clean(escape(str("–" if value is None else value)))


def run(args: argparse.Namespace) -> int:
    from engine.diagnostics.curves import diagnose
    from engine.runs.store import RunStore

    store = RunStore()
    store.settle_orphans()
    try:
        row = store.get_run(args.run)
    except KeyError as exc:
        from engine.catalogue.presets import builtin_ids, saved_ids

        hint = (f"; {args.run!r} is a preset: `dllab presets {args.run}` reads its card, "
                f"`dllab runs --preset {args.run}` lists its runs") if args.run in {*builtin_ids(), *saved_ids()} else ""
        print(clean(f"dllab: {exc.args[0]}{hint}"), file=sys.stderr)
        return EXIT_INVALID
    evals = store.series(row.run_id).eval_rows()
    if args.json:
        print(json.dumps({"run": row.__dict__, "evals": evals}, indent=2, default=str))
        return EXIT_OK
    console = stdout_console()
    # text from the store: control characters removed (clean), markup characters shown as written (escape)
    console.print(f"[bold]{escape(clean(row.run_id))}[/]  {escape(clean(f'{row.preset} / {row.variant}'))} "
                  f"(seed {row.seed})  {escape(clean(f'[{row.status}] {row.reason}'))}")
    recipe = row.spec.get("recipe", {})
    at_default = 0
    for section in ("data", "model", "train"):
        shown, rest = recipe_fields_shown(section, recipe.get(section, {}))
        at_default += rest
        console.print(f"[bold]{section}[/]: " + escape(clean(", ".join(f"{k}={v}" for k, v in shown.items()))))
    if at_default:
        console.print(f"[dim]the other {at_default} fields are at their defaults (--json lists every field)[/]")
    table = Table(title="evaluations")
    keys = ["step", "epoch", "train_loss", "val_loss", "train_acc", "val_acc"]
    for k in keys:
        table.add_column(k, justify="right")
    stride = max(1, len(evals) // 15)
    for e in evals[::stride] + ([evals[-1]] if evals and (len(evals) - 1) % stride else []):
        table.add_row(*[_eval_cell(k, e.get(k)) for k in keys])
    console.print(table)
    console.print("final: " + escape(clean(", ".join(f"{k}={_eval_cell(k, v)}" for k, v in row.final.items()
                                                    if isinstance(v, float)))))
    console.print("curves: " + escape(clean(diagnose(evals, row.status, row.reason).text)))
    if row.spec.get("kind", "network") == "network" and recipe:
        _print_architecture(console, row.spec)
    return EXIT_OK


def _print_architecture(console, stored_spec: dict) -> None:
    """The run's model: its layers, their output shapes and parameters, and the totals."""
    from engine.data.base import DatasetError
    from engine.diagnostics.architecture import architecture_of
    from engine.recipe.config import RunSpec
    from engine.recipe.footprint import size as size_bytes

    try:
        arch = architecture_of(RunSpec.from_stored(stored_spec))
    except (DatasetError, ValueError) as exc:  # its data is gone (a file moved), or a recipe of another version
        console.print(f"[dim]model: not shown ({escape(clean(str(exc)))})[/]")
        return
    table = Table(title=f"model: {arch.params:,} parameters ({size_bytes(arch.param_bytes)}), "
                        f"{size_bytes(arch.activation_bytes)} of activations per sample")
    for name, justify in (("layer", "left"), ("type", "left"), ("output", "right"), ("parameters", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for layer in arch.layers:
        table.add_row(escape(layer.name), escape(layer.kind), "×".join(map(str, layer.output_shape)) or "–",
                      f"{layer.params:,}" if layer.params else "–")
    console.print(table)
