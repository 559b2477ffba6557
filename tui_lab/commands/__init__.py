"""Tool subcommands of `dllab` (lr-find, gradcheck, sanity, critical, search, bench, ...).

Each module here defines ``register(subparsers) -> None``, which adds its subparser and sets
``func`` (a callable taking the parsed args and returning an exit code) with
``parser.set_defaults(func=...)``. Add the module's name to TOOL_MODULES to make it appear.
Keep heavy imports (torch, the engine) inside ``func`` so `dllab --help` stays fast.
"""

from __future__ import annotations

import importlib

TOOL_MODULES: list[str] = [
    "critical",
    "gradcheck",
    "lr_find",
    "sanity",
    "search",
    "bench",
]


def register_all(subparsers) -> None:
    for name in TOOL_MODULES:
        importlib.import_module(f"tui_lab.commands.{name}").register(subparsers)
