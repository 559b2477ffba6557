"""Run a preset in this process and check its claims (the preset tests and `dllab check` use it).

The runs go through the in-process executor (``engine.runs.inline``), batched where they can be, as
a user's runs are: a claim is checked on the numbers a user sees."""

from __future__ import annotations

from dataclasses import dataclass

from engine.catalogue.claims import ClaimResult, check_claims
from engine.catalogue.preflight import preflight
from engine.catalogue.presets import LoadedPreset, PresetError, load_preset
from engine.runs.inline import run_outcomes
from engine.runs.outcomes import RunOutcome


@dataclass
class PresetCheck:
    preset: LoadedPreset
    outcomes: list[RunOutcome]
    claims: list[ClaimResult]

    @property
    def holds(self) -> bool:
        return all(c.holds for c in self.claims)

    def report(self) -> str:
        lines = [f"{self.preset.id}:"]
        for c in self.claims:
            lines.append(f"  [{'holds' if c.holds else 'FAILS'}] {c.claim.text}\n      {c.describe()}")
        for o in self.outcomes:
            if o.status not in ("done", "early-stopped"):
                lines.append(f"  {o.variant} seed {o.seed}: {o.status}: {o.reason}")
        return "\n".join(lines)


def check_preset(ref: str, *, quick: bool = True, seeds: list[int] | None = None, device: str = "cpu") -> PresetCheck:
    """Run a preset and check its claims; a PresetError, before any run, naming what would stop its
    runs (``engine.catalogue.preflight``)."""
    loaded = load_preset(ref)
    form = " (quick form)" if quick else ""
    if problems := preflight(loaded.expand(quick=quick, seeds=seeds), device=device):
        raise PresetError("\n".join(f"{loaded.id}{form}: {p}" for p in problems))
    if loaded.preset.search is not None:  # a search comparison: each variant is a search (engine.catalogue.search)
        return _check_search(loaded, quick, seeds, device)
    outcomes = run_outcomes(loaded.expand(quick=quick, seeds=seeds), device=device)
    return PresetCheck(loaded, outcomes, check_claims(loaded.preset.claims, outcomes))


def _check_search(loaded: LoadedPreset, quick: bool, seeds: list[int] | None, device: str) -> PresetCheck:
    from engine.catalogue.search import inline_executor, run_search_preset

    outcomes, _ = run_search_preset(loaded, quick=quick, seeds=seeds, executor=inline_executor(device))
    return PresetCheck(loaded, outcomes, check_claims(loaded.preset.claims, outcomes))
