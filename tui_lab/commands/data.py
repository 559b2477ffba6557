"""`dllab data get NAME`, `dllab data list`: the standard image sets, fetched on request.

`get` downloads mnist, fashion-mnist or cifar10 into the data folder (``$DLLAB_DATA``, else
``$DLLAB_HOME/data``; ``--root`` for another) with a progress bar on stderr, checks every file's
md5, resumes a partial download and unpacks what the loaders read (``engine.data.fetch``). Exit
codes: 0 ready, 1 the download failed (the network, a checksum), 2 an unknown name or a folder
that cannot be written, 130 interrupted (the partial file is kept: the next `get` resumes it).
`list` (and `dllab data` alone) shows each set: whether the loaders find it, where, its size.
A run never downloads: only this command does.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from tui_lab.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, stdout_console


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="the standard image sets: fetch them (get), see what is there (list)")
    p.set_defaults(func=list_sets, root=None)
    sub = p.add_subparsers(dest="data_command")
    g = sub.add_parser("get", help="download, check and unpack mnist, fashion-mnist or cifar10")
    g.add_argument("name", type=_set_name, metavar="NAME", help="mnist, fashion-mnist or cifar10")
    g.add_argument("--root", metavar="DIR", help="the data folder to fill (default: $DLLAB_DATA, else "
                   "$DLLAB_HOME/data, where runs look)")
    g.set_defaults(func=get)
    ls = sub.add_parser("list", help="each set: whether it is there, its folder, its size")
    ls.add_argument("--root", metavar="DIR", help="the data folder to look in (default: as the runs do)")
    ls.set_defaults(func=list_sets)


def _set_name(text: str) -> str:
    from engine.data.fetch import UnknownSetError, source

    try:
        return source(text).name
    except UnknownSetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _say(message: str) -> None:
    from tui_lab.data.fmt import clean

    print(f"dllab: {clean(message, lines=True)}", file=sys.stderr)


def get(args: argparse.Namespace) -> int:
    from rich.console import Console

    from engine.data.fetch import DataFolderError, FetchError, fetch

    console = Console(stderr=True, highlight=False)
    again = f"dllab data get {args.name}" + (f" --root {shlex.quote(args.root)}" if args.root else "")
    try:
        with _Bars(console) as bars:
            folder = fetch(args.name, args.root, progress=bars.update)
    except DataFolderError as exc:
        _say(str(exc))
        return EXIT_INVALID
    except FetchError as exc:
        _say(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _say(f"interrupted; what was downloaded is kept: `{again}` resumes it")
        return EXIT_INTERRUPTED
    where = "" if not args.root else (f" (runs look there when a recipe sets data.root = {str(args.root)!r} "
                                      "or $DLLAB_DATA names it)")
    print(f"{args.name} is ready in {folder}{where}")
    return EXIT_OK


class _Bars:
    """A Rich progress bar per file on stderr: bytes, speed, time left; then checking and unpacking."""

    def __init__(self, console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[stage]}"),
                                 console=console)
        self.tasks: dict[str, int] = {}
        self.started = False

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.progress.stop()

    def update(self, p) -> None:
        from rich.markup import escape

        if not self.started:  # shown from the first file on: an error before that is one line
            self.progress.start()
            self.started = True
        task = self.tasks.get(p.file)
        if task is None:
            task = self.tasks[p.file] = self.progress.add_task(escape(p.file), total=p.total, stage="")
        if p.stage == "download":
            self.progress.update(task, completed=p.done, total=p.total, stage="resumed" if p.resumed else "")
        elif p.stage in ("verify", "unpack"):
            self.progress.update(task, stage="checking" if p.stage == "verify" else "unpacking")
        else:
            total = p.total or self.progress.tasks[task].total or 1
            stage = "already there" if p.stage == "have" else "checked"
            self.progress.update(task, completed=total, total=total, stage=stage)

def list_sets(args: argparse.Namespace) -> int:
    from rich.filesize import decimal
    from rich.table import Table
    from rich.text import Text

    from engine.data.fetch import states
    from engine.paths import DATA_ENV, default_data_folder

    if args.root:
        base = f"data folder {args.root} (--root)"
    elif os.environ.get(DATA_ENV):
        base = f"data folder {default_data_folder()} (${DATA_ENV})"
    else:
        base = f"data folder {default_data_folder()} (the default; ${DATA_ENV} names another)"
    table = Table(title=Text(base), title_justify="left", caption_justify="left",
                  caption="`dllab data get NAME` fetches a set, or resumes a partial download")
    table.add_column("set", no_wrap=True)
    table.add_column("there", no_wrap=True)
    table.add_column("folder", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    for s in states(args.root):
        if s.present:
            there = Text("yes", style="green")
        elif s.partial:
            there = Text("partial", style="yellow")
        else:
            there = Text("no", style="dim")
        table.add_row(s.source.name, there, Text(str(s.folder)), decimal(s.size) if s.size else "–")
    stdout_console().print(table)
    return EXIT_OK
