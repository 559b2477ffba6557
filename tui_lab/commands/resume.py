"""`dllab resume RUN`: go on with a stopped run (cancelled, or its process gone) from its checkpoint."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tui_lab.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK


def register(subparsers) -> None:
    p = subparsers.add_parser("resume", help="go on with a stopped run from its checkpoint")
    p.add_argument("run", help="a run id (or a unique prefix)")
    p.add_argument("--device", help="where to train (default: the device it trained on)")
    p.add_argument("--detach", action="store_true",
                   help="go on in the background runs service and return at once (`dllab attach` follows it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from engine.events import EvalMetrics, StepMetrics
    from engine.runs.client import running_service
    from engine.runs.resume import resumable, resume_inline
    from engine.runs.store import RunNotFound, RunStore, default_home

    home = default_home()
    with RunStore(home) as store:
        store.settle_orphans()
        try:
            row = store.get_run(args.run)
        except RunNotFound as exc:
            print(f"dllab: {exc}", file=sys.stderr)
            return EXIT_INVALID
        client = running_service(home)
        live_runs = {r for c in (client.ps() if client else []) for r in c.get("run_ids", [])}
        if (why := resumable(row, home, live_runs)) is not None:
            print(f"dllab: {why}", file=sys.stderr)
            return EXIT_INVALID
        if args.detach:
            from engine.runs.client import ServiceError, connect

            try:
                answer = connect(home).resume(row.run_id)
            except ServiceError as exc:
                print(f"dllab: {exc}", file=sys.stderr)
                return EXIT_INVALID
            print(answer["comparison"])
            print(f"{row.run_id} goes on in the background runs service; `dllab attach {row.run_id}` follows it",
                  file=sys.stderr)
            return EXIT_OK
        console = Console(stderr=True, highlight=False)
        line = Text(f"resuming {row.preset} · {row.variant} · seed {row.seed} ({row.run_id}) …")
        figures: dict[str, float] = {}

        def note(event) -> None:  # the line follows the run asked for (its group trains beside it)
            if event.run_id != row.run_id:
                return
            if isinstance(event, StepMetrics):
                figures["step"], figures["loss"] = event.step, event.train_loss
            elif isinstance(event, EvalMetrics) and "val_acc" in event.metrics:
                figures["val_acc"] = event.metrics["val_acc"]
            if "step" in figures:
                acc = f" · val acc {figures['val_acc']:.1%}" if "val_acc" in figures else ""
                line.plain = (f"{row.variant} · seed {row.seed}: step {figures['step']:.0f}/{row.total_steps}"
                              f" · batch loss {figures['loss']:.4g}{acc}")

        stop = threading.Event()

        def first_ctrl_c(signum, frame) -> None:  # the run stops at its next step and checkpoints there;
            stop.set()  # a second Ctrl+C interrupts at once
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = signal.signal(signal.SIGINT, first_ctrl_c)
        try:
            with Live(line, console=console, refresh_per_second=4, transient=False):
                everything, start = resume_inline(row, store, note, stop.is_set, device=args.device)
            if not console.is_terminal:  # Live ends its line only in a terminal
                console.line()
        except ValueError as exc:  # its group cannot go on (a run of it is going elsewhere)
            print(f"dllab: {exc}", file=sys.stderr)
            return EXIT_INVALID
        except KeyboardInterrupt:
            print("dllab: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            signal.signal(signal.SIGINT, previous)
        if stop.is_set():
            step = min(f.step for f in everything)
            print(f"dllab: interrupted at step {step}; the {'runs' if len(everything) > 1 else 'run'} "
                  f"checkpointed there (`dllab resume {row.run_id}` goes on)", file=sys.stderr)
            return EXIT_INTERRUPTED
    if len(everything) > 1:
        print(f"{row.run_id} trained in a batched group: its {len(everything)} runs went on together",
              file=sys.stderr)
    for finished in everything:
        final = finished.final
        acc = f", val acc {final['val_acc']:.1%}" if "val_acc" in final else ""
        loss = f", train loss {final['train_loss']:.4g}" if "train_loss" in final else ""
        print(f"{finished.run_id}: {finished.status} at step {finished.step} (went on from step {start['step']}): "
              f"{finished.reason}{loss}{acc}")
    good = all(f.status in ("done", "early-stopped") for f in everything)
    return EXIT_OK if good else EXIT_FAILED
