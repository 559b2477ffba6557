"""`dllab sanity`: CS231n's checks before a long run, on a preset's recipe."""

from __future__ import annotations

import argparse
import json

SAMPLES_WHY = ("one sample standardizes to all-zero inputs, so only the biases could learn and the check "
               "would fail without a bug")


def register(subparsers) -> None:
    from tui_lab.commands.args import integer, non_negative_int, steps
    from tui_lab.tools.limits import LIMIT, MIN_SAMPLES

    p = subparsers.add_parser(
        "sanity",
        help="checks before training: initial loss ≈ ln C, a penalty raises the loss, 20 samples overfit",
        description="Runs three checks on a variant's recipe (default: the first variant): the loss at the initial "
                    "weights against its expected value (ln C for cross-entropy), the objective rising with an L2 "
                    "penalty, and a tiny subset of 20 training samples overfit to near-zero loss with "
                    "regularization off (full-batch Adam). Exit 0 when no check fails (a warning is not a failure), 1 otherwise.",
    )
    p.add_argument("preset", help="a catalogue id or a path to a preset TOML file")
    p.add_argument("--variant", help="the variant whose recipe to check (default: the first)")
    p.add_argument("--all-variants", action="store_true", help="check every variant")
    p.add_argument("--quick", action="store_true", help="use the preset's quick form")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--steps", type=steps, default=300, help=f"steps of the overfitting check, 1 to {LIMIT} (default 300)")
    p.add_argument("--samples", type=integer(MIN_SAMPLES, LIMIT, why=SAMPLES_WHY), default=20,
                   help=f"samples of the overfitting check, {MIN_SAMPLES} to {LIMIT} (default 20)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from engine.catalogue.presets import load_preset
    from engine.checks.sanity import run_sanity
    from engine.runs.device import resolve_device
    from tui_lab.data.fmt import clean
    from tui_lab.tools.specs import pick_spec

    torch.set_num_threads(1)
    if args.all_variants:
        if args.variant is not None:
            raise ValueError("give --variant or --all-variants, not both")
        loaded = load_preset(args.preset)
        specs = loaded.expand(quick=args.quick, seeds=[args.seed])
    else:
        loaded, spec = pick_spec(args.preset, args.variant, args.quick, args.seed)
        specs = [spec]
    device = str(resolve_device(args.device))
    results = [(spec, run_sanity(spec, device=device, overfit_steps=args.steps, n_samples=args.samples))
               for spec in specs]
    failed = any(c.failed for _, checks in results for c in checks)
    if args.json:
        print(json.dumps([{"variant": spec.variant, "checks": [
            {"name": c.name, "status": c.status, "message": c.message, "advice": c.advice, "measured": c.measured}
            for c in checks]} for spec, checks in results], indent=2, default=str))
        return 1 if failed else 0
    console = Console(highlight=False)
    style = {"pass": "green", "FAIL": "bold red", "warn": "bold yellow", "skipped": "yellow"}
    for spec, checks in results:
        # Text: the names are shown as written (a variant called "[bold]x" stays that), never read as markup
        table = Table(title=Text(clean(f"sanity checks: {loaded.id} / {spec.variant}")), show_lines=True)
        table.add_column("check")
        table.add_column("result")
        table.add_column("measured", overflow="fold")
        table.add_column("advice", overflow="fold")
        for c in checks:
            table.add_row(Text(clean(c.name)), Text(c.status, style=style[c.status]), Text(clean(c.message)),
                          Text(clean(c.advice or "–")))
        console.print(table)
    return 1 if failed else 0
