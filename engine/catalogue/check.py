"""Run a preset in this process and check its claims (the preset tests and `dllab check` use it)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

from engine.catalogue.claims import ClaimResult, check_claims
from engine.catalogue.presets import LoadedPreset, load_preset
from engine.recipe.config import RunSpec
from engine.runs.outcomes import OutcomeCollector, RunOutcome


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


def run_inline(specs: list[RunSpec], device: str = "cpu", *, batch: bool = True) -> list[RunOutcome]:
    """Train the specs here, in order, batching those that can share a model, as `dllab check`
    does through its workers (engine.batched); the runs go to a throwaway store."""
    from engine.runs.runner import new_run_id
    from engine.runs.runner import run_inline as run_here

    collector = OutcomeCollector()
    ids = [new_run_id() for _ in specs]
    for run_id, spec in zip(ids, specs, strict=True):  # outcomes in spec order, however they train
        collector.register(run_id, spec.variant, spec.seed)
    with tempfile.TemporaryDirectory(prefix="dllab-check-") as home:
        run_here(specs, emit=collector.add, device=device, store=home, batch=batch, run_ids=ids)
    return collector.outcomes()


def check_preset(ref: str, *, quick: bool = True, seeds: list[int] | None = None, device: str = "cpu") -> PresetCheck:
    loaded = load_preset(ref)
    if loaded.preset.search is not None:  # a search comparison: each variant is a search (engine.catalogue.search)
        return _check_search(loaded, quick, seeds, device)
    outcomes = run_inline(loaded.expand(quick=quick, seeds=seeds), device=device)
    return PresetCheck(loaded, outcomes, check_claims(loaded.preset.claims, outcomes))


def _check_search(loaded: LoadedPreset, quick: bool, seeds: list[int] | None, device: str) -> PresetCheck:
    from engine.catalogue.search import inline_executor, run_search_preset

    outcomes, _ = run_search_preset(loaded, quick=quick, seeds=seeds, executor=inline_executor(device))
    return PresetCheck(loaded, outcomes, check_claims(loaded.preset.claims, outcomes))
