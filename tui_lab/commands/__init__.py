"""The subcommands of `dllab`: the lab's own (presets, run, check, open, runs, show; ps, cancel,
attach in `background`; resume; data; doctor) and the tools (lr-find, gradcheck, sanity, critical, search, ...).

Each module here defines ``register(subparsers) -> None``, which adds its subparser(s) and sets
``func`` (a callable taking the parsed args and returning an exit code) with
``parser.set_defaults(func=...)``; `dllab` calls ``args.func(args)``. Add the module's name to
CORE_MODULES or TOOL_MODULES to make it appear (in that order in ``dllab --help``); another
package adds a subcommand through the ``dllab.commands`` entry-point group (the bench does).
Keep heavy imports (torch, the engine) inside ``func`` so `dllab --help` stays fast. What a tool's
command shares with the app's Tools screen lives in ``tui_lab.tools``, not here.
"""

from __future__ import annotations

import importlib

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
"""The exit codes: success, a run failed (or, for `check`, a claim does not hold), invalid input,
interrupted."""

CORE_MODULES: list[str] = [
    "presets",
    "run",
    "open",
    "runs",
    "show",
    "background",
    "resume",
    "data",
    "doctor",
]

TOOL_MODULES: list[str] = [
    "critical",
    "gradcheck",
    "lr_find",
    "sanity",
    "search",
]


def stdout_console():
    """The console a command prints its tables on: stdout, numbers not highlighted."""
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def register_all(subparsers) -> None:
    for name in [*CORE_MODULES, *TOOL_MODULES]:
        importlib.import_module(f"tui_lab.commands.{name}").register(subparsers)
