"""`dllab run` and `dllab check`: a comparison headless, its results, and (check) whether each claim
holds."""

from __future__ import annotations

import argparse
import contextlib
import sys

from rich.console import Console

from tui_lab.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, stdout_console
from tui_lab.commands.args import seeds, workers


def register(subparsers) -> None:
    p_run = subparsers.add_parser("run", help="run a comparison headless and print the results")
    _add_run_options(p_run)
    p_run.set_defaults(func=run)
    p_check = subparsers.add_parser("check", help="run a comparison and say whether each claim holds")
    _add_run_options(p_check)
    p_check.set_defaults(func=check)


def run(args: argparse.Namespace) -> int:
    return _run(args, check=False)


def check(args: argparse.Namespace) -> int:
    return _run(args, check=True)


def _fast(text: str) -> str:
    from engine.batched.accel import FastPaths

    try:
        FastPaths.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", help="a catalogue id (see `dllab presets`), the id of a recipe saved "
                   "from the Builder, or a path to a preset TOML file")
    p.add_argument("--quick", action="store_true", help="the short form of the comparison (seconds on a CPU)")
    p.add_argument("--seeds", type=seeds, help="comma-separated seeds, e.g. 0,1,2 (each variant runs per seed)")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--workers", type=workers,
                   help="worker processes; 0 trains in this process (default: fitted to devices and cores)")
    p.add_argument("--fast", type=_fast, default="",
                   help="opt-in fast paths for batched variants, comma-separated: bf16, compile, cuda_graphs "
                        "(CUDA; see docs/performance.md)")
    p.add_argument("--solo", action="store_true",
                   help="train every run on its own, not in batched groups: slower, but a run's numbers then "
                        "do not depend on which runs shared its group (float sums in another order)")
    p.add_argument("--json", action="store_true", help="print results and claims as JSON on stdout")


def _run(args: argparse.Namespace, check: bool) -> int:
    from engine.batched.accel import FastPaths
    from engine.catalogue.presets import load_preset
    from tui_lab.headless import print_result, run_comparison

    loaded = load_preset(args.preset)
    if loaded.preset.search is not None:  # a search comparison: each variant is a whole search
        from tui_lab.commands.search import run_search_comparison

        return run_search_comparison(loaded, args)
    console = stdout_console()
    if FastPaths.parse(args.fast).cuda_graphs:
        from engine.runs.device import resolve_device

        with contextlib.suppress(ValueError):  # a bad --device is reported by the run itself
            if (dev := resolve_device(args.device)).type != "cuda":
                print(f"dllab: note: cuda_graphs needs a CUDA device; on {dev} the steps run eagerly",
                      file=sys.stderr)
    result = run_comparison(
        loaded, quick=args.quick, seeds=args.seeds, device=args.device, workers=args.workers,
        console=Console(stderr=True), live=not args.json, fast=args.fast, batch=not args.solo,
    )
    print_result(result, console, as_json=args.json)
    if result.interrupted:
        if not args.json:
            console.print("[yellow]interrupted: unfinished runs were marked cancelled[/]")
        return EXIT_INTERRUPTED
    if check:
        if not args.json:
            held = sum(c.holds for c in result.claims)
            unchecked = sum(bool(c.problem) for c in result.claims)
            more = f" ({unchecked} not checked)" if unchecked else ""
            console.print(f"{held}/{len(result.claims)} claims hold{more}")
        return EXIT_OK if result.claims_hold and not result.any_failed else EXIT_FAILED
    return EXIT_FAILED if result.any_failed else EXIT_OK
