"""``dllab bench``: dllab's speed, measured side by side against plain PyTorch loops and sequential runs.

Prints a table of ratios (median over several interleaved rounds after a warm-up); ``--json``
prints the rows for a machine; ``--quick`` is a short form (seconds, for smoke tests).

The subcommand is a plugin: pyproject.toml names :func:`register` in the ``dllab.commands``
entry-point group, and `dllab` registers every command of that group. The bench sits above the
app and the engine (it imports both; neither imports it). ``python -m bench`` runs :func:`main`.
"""

from __future__ import annotations

import argparse
import sys

SECTIONS = ("loops", "batched", "runner", "presets", "vmap", "conv", "surfaces", "app", "service", "fast")


def register(subparsers) -> None:
    """The ``dllab.commands`` entry point: add ``bench`` to `dllab`'s subcommands."""
    p = subparsers.add_parser("bench", help="measure dllab's speed against plain PyTorch loops and sequential runs")
    add_options(p)
    p.set_defaults(func=run)


def add_options(p: argparse.ArgumentParser) -> None:
    from tui_lab.commands.args import non_negative_int, positive_int

    p.add_argument("--quick", action="store_true", help="a short form (small sizes, 2 repeats): a smoke test, not a measurement")
    p.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps, auto")
    p.add_argument("--repeats", type=positive_int, help="timed repeats of each side, 1 or more (default 5, quick 2)")
    p.add_argument("--threads", type=non_negative_int, default=1,
                   help="torch threads (default 1; 0 keeps torch's choice)")
    p.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections (repeatable)")


def run(args: argparse.Namespace) -> int:
    from bench import cases, report
    from engine.runs.device import resolve_device

    device = str(resolve_device(args.device))
    progress = None if args.json else (lambda name: print(f"measuring {name} ...", file=sys.stderr))
    rows = cases.run_bench(quick=args.quick, device=device, repeats=args.repeats, threads=args.threads or None,
                           only=args.only, progress=progress)
    info = report.machine(device)
    if args.json:
        sys.stdout.write(report.as_json(rows, info) + "\n")
    else:
        from rich.console import Console

        Console().print(report.table(rows, info))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    add_options(p)
    return run(p.parse_args(argv))
