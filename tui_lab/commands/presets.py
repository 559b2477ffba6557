"""`dllab presets` (alias `dllab list`): the catalogue, or one preset's card."""

from __future__ import annotations

import argparse
import json

from rich.table import Table
from rich.text import Text

from tui_lab.commands import EXIT_OK, stdout_console
from tui_lab.data.fmt import clean


def register(subparsers) -> None:
    p = subparsers.add_parser("presets", aliases=["list"], help="list the catalogue, or read one preset's card")
    p.add_argument("preset", nargs="?", help="a catalogue id, a saved recipe's id or a preset file: print its card "
                   "(explanation, variants, claims)")
    p.add_argument("--json", action="store_true", help="print the list (or the card) as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.catalogue.presets import catalogue

    if args.preset:
        return _print_card(args.preset, args.json)
    presets = catalogue()
    if args.json:
        print(json.dumps([
            {"id": p.id, "title": p.preset.title, "chapter": p.preset.chapter, "step": p.preset.step,
             "benefit": p.preset.benefit, "summary": p.preset.summary,
             "variants": [v.name for v in p.preset.variants]}
            for p in presets
        ], indent=2))
        return EXIT_OK
    console = stdout_console()
    # ids whole (they are typed); the step and benefit columns only where the summary keeps room
    cols = ("id", "title", "step", "benefit", "summary") if console.width >= 140 else ("id", "title", "summary")
    table = Table(title="dllab catalogue", caption="dllab presets ID: a preset's card · dllab run ID --quick: run it")
    id_width = max(len(p.id) for p in presets) if presets else 2
    for col in cols:
        table.add_column(col, no_wrap=col == "id", min_width=id_width if col == "id" else None,
                         ratio={"title": 2, "summary": 3}.get(col))
    chapter = None
    for p in presets:
        if p.preset.chapter != chapter:
            chapter = p.preset.chapter
            table.add_section()
            table.add_row(f"[bold]{chapter}[/]", *[""] * (len(cols) - 1))
        cells = {"id": Text(clean(p.id)), "title": Text(clean(p.preset.title)), "step": p.preset.step,
                 "benefit": p.preset.benefit, "summary": Text(clean(p.preset.summary))}
        table.add_row(*(cells[c] for c in cols))
    console.print(table)
    return EXIT_OK


def _print_card(preset: str, as_json: bool) -> int:
    """A preset's card, as the Library shows it: what it compares and why, its variants and claims."""
    from rich.markdown import Markdown

    from engine.catalogue.presets import builtin_dir, load_preset, saved_dir
    from tui_lab.data.frame import BENEFIT_WORDS, STEP_WORDS

    loaded = load_preset(preset)
    p = loaded.preset
    if as_json:
        print(json.dumps({"id": loaded.id, "path": str(loaded.path), **p.model_dump(mode="json")}, indent=2))
        return EXIT_OK
    console = stdout_console()
    # which file an id names: the catalogue's, or a recipe saved from the Builder (and one it hides)
    where = ""
    if loaded.path.parent == saved_dir():
        where = f" · saved recipe ({loaded.path})"
    elif loaded.path.parent == builtin_dir() and (hidden := saved_dir() / loaded.path.name).is_file():
        where = f" · catalogue (a saved recipe of this id, {hidden}, is run by its path)"
    # the preset's text, control characters removed (fmt.clean; validation refuses them already)
    console.print(Text(clean(p.title), style="bold"), Text(clean(f"  {loaded.id} · {p.chapter}{where}"), style="dim"))
    console.print(Text(f"step it changes: {STEP_WORDS.get(p.step, p.step)}\n"
                       f"what it buys:    {BENEFIT_WORDS.get(p.benefit, p.benefit)}"))
    console.print(Text(clean(p.summary)), "")
    console.print(Markdown(clean(p.explain, lines=True)))
    seeds = ", ".join(map(str, p.default_seeds(False)))
    quick = ", ".join(map(str, p.default_seeds(True)))
    console.print(Text(f"\nVariants ({len(p.variants)}; seeds {seeds}, quick {quick})", style="bold"))
    for v in p.variants:
        console.print(Text(f"  • {clean(v.name)}" + (f": {clean(v.description, lines=True)}" if v.description else "")))
    if p.claims:
        console.print(Text("\nClaims (checked when the runs end)", style="bold"))
        for c in p.claims:
            console.print(Text(f"  • {clean(c.text)}"))
    console.print(Text(clean(f"\ndllab run {preset} --quick  ·  dllab check {preset} --quick  ·  "
                             f"dllab open {preset}", lines=True), style="dim"))
    return EXIT_OK
