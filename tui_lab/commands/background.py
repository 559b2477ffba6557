"""`dllab ps`, `dllab cancel`, `dllab attach`: comparisons that run in the background runs service.

`dllab run --detach` hands a comparison to the runs service (``engine.runs.service``) and returns;
these commands list what it runs, cancel a comparison or a run, and open the Dashboard on one to
follow it to its end (its curves from the store, then live).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tui_lab.commands import EXIT_INVALID, EXIT_OK, stdout_console


def register(subparsers) -> None:
    p = subparsers.add_parser("ps", help="list the comparisons running in the background runs service")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=ps)
    p = subparsers.add_parser("cancel", help="cancel a comparison (or one run) running in the background")
    p.add_argument("id", help="a comparison id (or a unique prefix), or a run id")
    p.set_defaults(func=cancel)
    p = subparsers.add_parser("attach", help="open the Dashboard on a comparison and follow it to its end")
    p.add_argument("id", nargs="?", default="latest",
                   help="a comparison id (or a unique prefix), a run id, or 'latest' (the default)")
    p.set_defaults(func=attach)


def _home():
    from engine.runs.store import default_home

    return default_home()


def ps(args: argparse.Namespace) -> int:
    from rich.table import Table

    from engine.runs.client import running_service

    client = running_service(_home())
    live = client.ps() if client is not None else []
    if args.json:
        print(json.dumps(live, indent=2))
        return EXIT_OK
    if not live:
        print("nothing runs in the background" + ("" if client else " (no runs service is running)"))
        return EXIT_OK
    table = Table(title="running in the background", title_justify="left")
    for column in ("comparison", "preset", "runs", "ended", "device", "for"):
        table.add_column(column, justify="right" if column in ("runs", "ended", "for") else "left")
    for c in live:
        minutes, seconds = divmod(int(time.time() - c["started"]), 60)
        table.add_row(c["comparison"], c["preset"], str(c["runs"]), str(c["ended"]), c["device"],
                      f"{minutes}:{seconds:02d}")
    stdout_console().print(table)
    return EXIT_OK


def cancel(args: argparse.Namespace) -> int:
    from engine.runs.client import ServiceError, running_service

    client = running_service(_home())
    if client is None:
        print(f"dllab: nothing runs in the background, so nothing to cancel ({args.id!r})", file=sys.stderr)
        return EXIT_INVALID
    try:
        answer = client.cancel(args.id)
    except ServiceError as exc:
        print(f"dllab: {exc}", file=sys.stderr)
        return EXIT_INVALID
    n = answer["cancelled"]
    print(f"cancelling {n} run{'s' if n != 1 else ''} of comparison {answer['comparison']}")
    return EXIT_OK


def resolve_comparison(store, target: str, live: list[dict]) -> str | None:
    """The comparison `target` names: 'latest' (the newest live one, else the newest stored), a
    comparison id or unique prefix, or a run id."""
    if target == "latest":
        if live:
            return max(live, key=lambda c: c["started"])["comparison"]
        rows = store.list_runs(limit=1)
        return rows[0].comparison if rows else None
    comparisons = {c["comparison"] for c in live} | {r.comparison for r in store.list_runs() if r.comparison}
    if target in comparisons:
        return target
    prefixed = sorted(c for c in comparisons if c.startswith(target))
    if len(prefixed) == 1:
        return prefixed[0]
    from engine.runs.store import RunNotFound

    try:
        return store.get_run(target).comparison or None
    except RunNotFound:
        return None


def attach(args: argparse.Namespace) -> int:
    from engine.runs.client import running_service
    from engine.runs.store import RunStore
    from tui_lab.app import run_app

    home = _home()
    client = running_service(home)
    with RunStore(home) as store:
        store.settle_orphans()
        comparison = resolve_comparison(store, args.id, client.ps() if client else [])
    if comparison is None:
        what = "no comparison is stored yet" if args.id == "latest" else f"no comparison or run {args.id!r}"
        print(f"dllab: {what}; `dllab ps` lists what runs in the background, `dllab runs` what is stored",
              file=sys.stderr)
        return EXIT_INVALID
    return run_app(follow=comparison)
