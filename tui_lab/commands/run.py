"""`dllab run` and `dllab check`: a comparison headless, its results, and (check) whether each claim
holds."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from typing import TYPE_CHECKING

from rich.console import Console

from tui_lab.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, stdout_console
from tui_lab.commands.args import allow_code_option, fast_paths, seeds, workers

if TYPE_CHECKING:
    from engine.catalogue.presets import LoadedPreset


def register(subparsers) -> None:
    p_run = subparsers.add_parser("run", help="run a comparison headless and print the results")
    _add_run_options(p_run)
    p_run.add_argument("--detach", action="store_true",
                       help="hand the comparison to the background runs service and return at once "
                            "(`dllab ps`, `dllab attach ID`, `dllab cancel ID`)")
    p_run.set_defaults(func=run)
    p_check = subparsers.add_parser("check", help="run a comparison and say whether each claim holds")
    _add_run_options(p_check)
    p_check.set_defaults(func=check)


def run(args: argparse.Namespace) -> int:
    return _run(args, check=False)


def check(args: argparse.Namespace) -> int:
    return _run(args, check=True)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", help="a catalogue id (see `dllab presets`), the id of a recipe saved "
                   "from the Builder, or a path to a preset TOML file")
    p.add_argument("--quick", action="store_true", help="the short form of the comparison (seconds on a CPU)")
    p.add_argument("--seeds", type=seeds, help="comma-separated seeds, e.g. 0,1,2 (each variant runs per seed)")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--workers", type=workers,
                   help="worker processes; 0 trains in this process (default: fitted to devices and cores)")
    p.add_argument("--fast", type=fast_paths, default="",
                   help="opt-in fast paths for batched variants, comma-separated: bf16, compile, cuda_graphs "
                        "(CUDA; see docs/performance.md)")
    p.add_argument("--solo", action="store_true",
                   help="train every run on its own, not in batched groups: slower, but a run's numbers then "
                        "do not depend on which runs shared its group (float sums in another order)")
    p.add_argument("--json", action="store_true", help="print results and claims as JSON on stdout")
    allow_code_option(p)


def _run(args: argparse.Namespace, check: bool) -> int:
    from engine.catalogue.presets import load_preset

    loaded = load_preset(args.preset)
    if (refused := refuse_before_start(loaded, quick=args.quick, seeds=args.seeds, device=args.device)) is not None:
        return refused
    if getattr(args, "detach", False):
        return _detach(loaded, args)
    import engine.runs.store as store

    store.OWNER_KIND = "`dllab run`"  # the reason its runs give should it be killed
    _interrupt_on_hangup()
    from engine.batched.accel import FastPaths  # torch: only once the input is known to be good
    from tui_lab.headless import print_result, run_comparison

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
            console.print(f"[yellow]interrupted: unfinished runs were marked "
                          f"{'interrupted' if result.stopped_by else 'cancelled'}[/]")
        return EXIT_INTERRUPTED
    if check:
        if not args.json:
            held = sum(c.holds for c in result.claims)
            unchecked = sum(bool(c.problem) for c in result.claims)
            more = f" ({unchecked} not checked)" if unchecked else ""
            console.print(f"{held}/{len(result.claims)} claims hold{more}")
        return EXIT_OK if result.claims_hold and not result.any_failed else EXIT_FAILED
    return EXIT_FAILED if result.any_failed else EXIT_OK


def _interrupt_on_hangup() -> None:
    """SIGTERM and SIGHUP (a closed terminal, `kill`) end `dllab run` as Ctrl+C does: its runs
    stopped (and checkpointed: they end ``interrupted``, saying which signal), what they measured
    printed, exit 130."""

    from engine.runs.runner import SignalStop

    def interrupt(signum: int, frame: object) -> None:
        raise SignalStop(signal.Signals(signum).name)

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)


def _detach(loaded: LoadedPreset, args: argparse.Namespace) -> int:
    """`dllab run --detach`: the comparison goes to the runs service; its id is printed (stdout:
    a script can take it), what to do next on stderr."""
    import json

    from engine.runs.client import ServiceError, connect
    from engine.runs.store import default_home

    if loaded.preset.search is not None:
        print(f"dllab: {loaded.id} is a search comparison; --detach runs plain comparisons only", file=sys.stderr)
        return EXIT_INVALID
    specs = loaded.expand(quick=args.quick, seeds=args.seeds)
    try:
        answer = connect(default_home()).submit(specs, device=args.device, workers=args.workers or None,
                                                batch=not args.solo, fast=args.fast)
    except ServiceError as exc:
        print(f"dllab: {exc}", file=sys.stderr)
        return EXIT_FAILED
    comparison = answer["comparison"]
    if args.json:
        print(json.dumps({"comparison": comparison, "run_ids": answer["run_ids"]}))
    else:
        print(comparison)
        n = len(answer["run_ids"])
        print(f"{loaded.id}: {n} run{'s' if n != 1 else ''} started in the background runs service; "
              f"`dllab attach {comparison}` follows them, `dllab cancel {comparison}` stops them", file=sys.stderr)
    return EXIT_OK


def refuse_before_start(loaded: LoadedPreset, *, quick: bool, seeds: list[int] | None, device: str) -> int | None:
    """EXIT_INVALID, the problems said on stderr one a line, when the runs of `loaded` cannot start
    (``engine.catalogue.preflight``: the data, the recipe against its data, the device's memory);
    None when they can. Before any worker starts and before anything is written to the store."""
    from engine.catalogue.preflight import preflight

    problems = preflight(loaded.expand(quick=quick, seeds=seeds), device=device)
    form = " (quick form)" if quick else ""
    for problem in problems:
        print(f"dllab: {loaded.id}{form}: {problem}", file=sys.stderr)
    return EXIT_INVALID if problems else None
