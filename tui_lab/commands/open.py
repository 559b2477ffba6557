"""`dllab open` (and `dllab` alone): the lab, opened on a comparison and started (or on the Library)."""

from __future__ import annotations

import argparse

from tui_lab.commands.args import allow_code_option, seeds


def register(subparsers) -> None:
    p = subparsers.add_parser("open", help="open the lab's dashboard on a comparison and start it")
    p.add_argument("preset")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=seeds)
    p.add_argument("--device", default="auto")
    allow_code_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`dllab open PRESET`: the Dashboard on it, started; `dllab` alone (the parser's default): the Library."""
    from tui_lab.app import run_app

    if args.command == "open":
        from engine.catalogue.presets import load_preset
        from tui_lab.commands.run import refuse_before_start

        loaded = load_preset(args.preset)  # a bad preset: PresetError, exit 2, before the app opens
        if (refused := refuse_before_start(loaded, quick=args.quick, seeds=args.seeds,
                                           device=args.device)) is not None:
            return refused
        return run_app(open_preset=args.preset, quick=args.quick, seeds=args.seeds, device=args.device)
    return run_app()
