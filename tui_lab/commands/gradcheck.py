"""`dllab gradcheck`: analytic against numerical gradients, per parameter tensor."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    from tui_lab.commands.args import non_negative_int, positive_float, positive_int

    p = subparsers.add_parser(
        "gradcheck",
        help="check backprop's gradients against centred differences (float64), per parameter tensor",
        description="Without a preset: a small tanh MLP on the spiral data, checked twice, with a hand-written "
                    "linear layer whose backward is correct and with one whose backward is wrong. With a preset: "
                    "the network of each of its variants (dropout off, penalties left out). Relative error per "
                    "tensor ‖a − n‖ / max(‖a‖, ‖n‖); thresholds from CS231n: ≤ 1e-7 correct, ≤ 1e-4 fine with "
                    "kinks, ≤ 1e-2 uncomfortable, > 1e-2 wrong.",
    )
    p.add_argument("preset", nargs="?", help="a preset id or TOML path whose networks to check (default: the demo)")
    p.add_argument("--variant", help="check only this variant of the preset")
    p.add_argument("--layer", choices=["none", "custom", "broken"],
                   help="replace the first linear layer by a hand-written one (correct or broken backward)")
    p.add_argument("--dtype", choices=["float64", "float32"], help="precision (default float64)")
    p.add_argument("--h", type=positive_float,
                   help="finite-difference step, above 0 (default 1e-5 in float64, 1e-3 in float32)")
    p.add_argument("--max-elements", type=positive_int, help="entries checked per tensor, 1 or more (default 200)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from engine.checks.gradcheck import THRESHOLDS
    from tui_lab.data.fmt import clean
    from tui_lab.tools.gradcheck import NothingToCheck, check_all, check_specs, result_notes, unexpected

    try:
        specs = check_specs(args.preset, args.variant, seed=args.seed, layer=args.layer, dtype=args.dtype, h=args.h,
                            max_elements=args.max_elements)
    except NothingToCheck as exc:
        print(clean(f"dllab: {exc}"), file=sys.stderr)  # it may name a variant of the file
        return 2

    results = check_all(specs)
    code = 1 if any(unexpected(s, r) for s, r, _ in results) else 0
    if args.json:
        print(json.dumps([{"variant": s.variant, "replaced": rep, **r.as_dict()} for s, r, rep in results], indent=2))
        return code

    console = Console(highlight=False)
    style = {"pass": "green", "warn": "yellow", "fail": "bold red"}
    for spec, result, replaced in results:
        m, t = spec.recipe.model, spec.recipe.train
        title = (f"{spec.variant}: {m.kind} {m.hidden_sizes} {m.activation}, {spec.recipe.data.name}, "
                 f"{result.dtype}, h = {result.h:g}, loss {result.loss:.4g}")
        table = Table(title=Text(clean(title)), title_justify="left")  # the variant's name as written
        for col in ("tensor", "shape", "checked", "rel. error", "worst entry", "verdict"):
            table.add_column(col, justify="right" if col in ("checked", "rel. error", "worst entry") else "left",
                             no_wrap=col in ("tensor", "verdict"))
        for tc in result.tensors:
            table.add_row(
                Text(tc.name + (" *" if replaced and tc.name.startswith(replaced + ".") else "")),
                "×".join(map(str, tc.shape)), f"{tc.n_checked}/{tc.n_total}", f"{tc.rel_error:.1e}",
                f"{tc.max_entry_rel:.0e}", f"[{style[tc.status]}]{tc.status.upper()}[/] {escape(tc.words)}",
            )
        console.print(table)
        for line in result_notes(result, replaced, t.gradcheck_layer):
            console.print(f"  {line}")
        if t.gradcheck_layer == "broken":
            console.print("  the hand-written backward averages the bias gradient over the batch instead of "
                          "summing it: the check should (and does) single out that tensor"
                          if result.count("fail") else "  [red]the broken layer was NOT caught[/]")
    console.print("thresholds (relative error per tensor): " + "; ".join(words for _, words in THRESHOLDS))
    return code
