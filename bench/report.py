"""The benchmark table: printed for a person (rich) or as JSON rows for a machine."""

from __future__ import annotations

import json
import platform
from typing import Any

import torch

from bench.rows import Row


def machine(device: str) -> dict[str, Any]:
    from engine.runs.device import cpu_cores, describe

    return {"device": describe(device), "torch": torch.__version__, "python": platform.python_version(),
            "cores": cpu_cores(), "threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine()}


def as_json(rows: list[Row], info: dict[str, Any]) -> str:
    return json.dumps({"machine": info, "rows": [r.as_dict() for r in rows]}, indent=2)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def table(rows: list[Row], info: dict[str, Any]):
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"dllab bench — {info['device']}, torch {info['torch']}, {info['threads']} thread(s)",
              caption="ratio: wall time, left ÷ right, median over interleaved rounds; CPU: the same in CPU time")
    for col in ("comparison", "ratio", "CPU", "target", ""):
        t.add_column(col, justify="left" if col == "comparison" else "right", overflow="fold")
    for r in rows:
        what = Text(r.comparison, style="bold")
        if r.status != "measured":
            what.append(f"\n{r.case}\n{r.note}", style="dim")
            t.add_row(what, r.status, "", _target(r), "")
            continue
        what.append(f"\n{r.case}\n{_fmt(r.left_s)} vs {_fmt(r.right_s)} {r.unit}, {r.repeats} repeats", style="dim")
        if r.note:
            what.append(f"\n{r.note}", style="dim")
        ok = "" if r.meets is None else ("✔" if r.meets else "✘")
        t.add_row(what, _fmt(r.ratio), _fmt(r.cpu_ratio), _target(r), ok)
    return t


def _target(r: Row) -> str:
    return "" if r.target is None else f"≤ {r.target:.3g}"
