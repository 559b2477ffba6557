"""The `dllab` command line.

`dllab` with no arguments opens the lab; the subcommands run comparisons headless, list and
show stored runs, and run the tools. Exit codes: 0 success, 1 a run failed (or, for `check`, a
claim does not hold), 2 invalid input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence

from tui_lab.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dllab",
        description="A terminal training lab: run deep-learning training techniques side by side.",
    )
    from tui_lab.commands import open as open_lab
    from tui_lab.commands import register_all
    from tui_lab.commands.args import allow_code_option

    parser.set_defaults(func=open_lab.run)  # `dllab` alone opens the lab
    allow_code_option(parser)  # `dllab --allow-code`: the lab may run recipes with your own model
    sub = parser.add_subparsers(dest="command")
    register_all(sub)
    _plugin_commands(sub)
    return parser


def _plugin_commands(subparsers) -> None:
    """Subcommands other packages add (`dllab bench`, from the bench package): each entry point of
    the `dllab.commands` group names a `register(subparsers)`, as the modules of tui_lab.commands do."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="dllab.commands"), key=lambda ep: ep.name):
        ep.load()(subparsers)


def _invalid(exc: Exception) -> str:
    """The message of an invalid-input error. A pydantic ValidationError (a setting no option check
    caught) reads as its fields and problems, without pydantic's own header and links."""
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ != "ValidationError" or not callable(errors):
        return str(exc)
    parts = [f"{'.'.join(map(str, e.get('loc', ()))) or 'value'}: {e.get('msg', '')}" for e in errors()]
    return "invalid setting: " + "; ".join(parts)


def _say(message: str) -> None:
    """An error line on stderr, its control characters removed (it may quote a file or the store)."""
    from tui_lab.data.fmt import clean

    print(f"dllab: {clean(message, lines=True)}", file=sys.stderr)


def _stop_resource_tracker() -> None:
    """Stop multiprocessing's resource tracker if this process started it, and reap it.

    A Runner's spawned workers start the tracker (a child process that unlinks leaked semaphores).
    Left alone it outlives the command: it only sees its pipe close when this process is gone, then
    exits as an orphan, a zombie under init for a moment. Closing the pipe ourselves and waiting
    (a bounded wait: a process that still holds the pipe keeps it alive) ends it first.
    """
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker, "_resource_tracker", None)
    pid, fd = getattr(tracker, "_pid", None), getattr(tracker, "_fd", None)
    if pid is None or fd is None:  # not started, or started by another process (a worker)
        return
    with contextlib.suppress(OSError):
        os.close(fd)
    tracker._fd = tracker._pid = None
    deadline = time.monotonic() + 2.0
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.01)


_tracker_stop_registered = False


def stop_resource_tracker_at_exit() -> None:
    """Stop the resource tracker as this process exits, after multiprocessing's own finalizers
    (priority 0: the semaphores, unregistered from the tracker while it still runs). Once a process."""
    global _tracker_stop_registered
    from multiprocessing import util

    if not _tracker_stop_registered:
        util.Finalize(None, _stop_resource_tracker, exitpriority=-100)
        _tracker_stop_registered = True


def main(argv: Sequence[str] | None = None) -> int:
    from engine.catalogue.presets import PresetError
    from engine.runs.store import StoreError

    stop_resource_tracker_at_exit()  # nothing the command started outlives it
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # Ctrl+C while the parser starts: no traceback
        print("dllab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if getattr(args, "allow_code", False):  # --allow-code: this process and what it starts may import model code
        from tui_lab.commands.args import ALLOW_CODE_ENV

        os.environ[ALLOW_CODE_ENV] = "1"
    try:
        return args.func(args)
    except (PresetError, StoreError) as exc:  # a preset or a run store that cannot be used: before any work
        _say(str(exc))
        return EXIT_INVALID
    except (ValueError, FileNotFoundError) as exc:
        _say(_invalid(exc))
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("dllab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `dllab ... | head`: the reader left; say nothing more, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
