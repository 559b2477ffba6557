"""`dllab lr-find`: the learning-rate range test on a preset's recipe (one of its variants)."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    from tui_lab.commands.args import integer, non_negative_int, positive_float
    from tui_lab.tools.limits import LIMIT

    p = subparsers.add_parser(
        "lr-find",
        help="LR range test: sweep the learning rate exponentially, plot the loss, suggest a rate",
        description="Trains the variant's network from its initial weights for a short sweep with the learning "
                    "rate growing exponentially from --min to --max (one mini-batch per step, the variant's "
                    "optimizer), smooths the loss (bias-corrected EMA), stops when it exceeds 4x its best, and "
                    "suggests a rate: one tenth of the rate at the minimum (or --rule steepest). The network and "
                    "optimizer are restored afterwards; nothing is stored.",
    )
    p.add_argument("preset", help="a catalogue id or a path to a preset TOML file")
    p.add_argument("--variant", help="the variant whose recipe to test (default: the first)")
    p.add_argument("--quick", action="store_true", help="use the preset's quick form")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--min", dest="lr_min", type=positive_float, default=None,
                   help="first learning rate, above 0 (default 1e-5)")
    p.add_argument("--max", dest="lr_max", type=positive_float, default=None,
                   help="last learning rate, above --min (default 10)")
    p.add_argument("--steps", type=integer(2, LIMIT, why="the sweep needs a first and a last rate"), default=None,
                   help=f"steps of the sweep, 2 to {LIMIT} (default 100)")
    p.add_argument("--rule", choices=["min/10", "steepest"], default="min/10")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    p.add_argument("--json", action="store_true", help="print the curve and the suggestion as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.markup import escape

    from engine.diagnostics.lr_find import LR_MAX, LR_MIN, STEPS, find_lr
    from engine.runs.device import resolve_device
    from tui_lab.data.fmt import clean
    from tui_lab.tools.specs import pick_spec
    from tui_lab.widgets.text_chart import ansi_text, chart

    torch.set_num_threads(1)
    lr_min = LR_MIN if args.lr_min is None else args.lr_min  # `or` would take an explicit 0 for the default
    lr_max = LR_MAX if args.lr_max is None else args.lr_max
    if lr_min >= lr_max:
        raise ValueError(f"--min ({lr_min:g}) must be below --max ({lr_max:g})")
    loaded, spec = pick_spec(args.preset, args.variant, args.quick, args.seed)
    t = spec.recipe.train
    result = find_lr(spec, device=str(resolve_device(args.device)), lr_min=lr_min, lr_max=lr_max,
                     steps=STEPS if args.steps is None else args.steps, rule=args.rule)
    if args.json:
        print(json.dumps({"preset": loaded.id, "variant": spec.variant, "current_lr": t.lr, **result.as_dict()},
                         indent=2))
        return 0
    console = Console(highlight=False)
    # the preset's and the variant's names are shown as written: no control characters, no markup read in them
    console.print(f"[bold]LR range test[/]: {escape(clean(f'{loaded.id} / {spec.variant}'))} ({t.optimizer}, "
                  f"batch {t.batch_size or 'full'}, seed {args.seed})")
    marks = [("suggestion", result.suggestion), ("minimum", result.minimum)]
    xs, ys = zip(*result.display_curve(), strict=True)
    console.print(ansi_text(chart([("smoothed loss", xs, ys)], log_x=True, xlabel="learning rate (log)",
                        ylabel="loss", marks=marks, color=console.is_terminal)))
    console.print(f"vertical lines: the suggestion {result.suggestion:.3g} and the minimum {result.minimum:.3g}")
    console.print(f"stopped: {result.stopped}")
    steep = result.steepest_text()
    console.print(f"lowest smoothed loss {result.best_loss:.4g} at lr {result.minimum:.3g}; steepest descent at {steep}")
    console.print(f"[bold]suggested lr: {result.suggestion:.3g}[/]  (rule: {result.rule}); the recipe has lr {t.lr:g}")
    if result.warning:  # a number read off a coarse sweep is not one to apply: no "apply it" line
        console.print(f"[bold yellow]warning[/]: {result.warning}")
    else:
        console.print(f"[dim]apply it: set lr = {result.suggestion:.3g} in the variant, or train.lr_find = true to "
                      "find it at the start of every run[/]")
    return 0
