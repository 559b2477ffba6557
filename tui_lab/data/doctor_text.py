"""The doctor's report as lines of plain text: what `dllab doctor` prints and the app's Doctor
dialog shows (``engine.diagnostics.doctor``). No Textual, no markup: the caller styles it."""

from __future__ import annotations

from typing import Any

from tui_lab.data.fmt import clean

HEALTHY = "No problem found: the curves and the layers' signals look as a healthy run's do."


def run_heading(row: Any) -> str:
    return clean(f"{row.run_id}  {row.preset} / {row.variant} (seed {row.seed})  {row.status}")


def report_lines(report: Any) -> list[str]:
    """Each finding: its numbered title and frame, its evidence, its remedies with their presets."""
    if report.healthy:
        return [HEALTHY]
    lines: list[str] = []
    for k, finding in enumerate(report.findings, 1):
        lines += ["", f"{k}. {finding.title}  ({finding.frame})", f"   evidence: {clean(finding.evidence)}"]
        for remedy in finding.remedies:
            lines.append(f"   • {remedy.text}" + (f"  → dllab presets {remedy.preset}" if remedy.preset else ""))
    return lines
