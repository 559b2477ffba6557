"""Checking a preset's declarative claims against measured runs."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from engine.catalogue.metric_names import is_fraction
from engine.catalogue.presets import Claim
from engine.runs.outcomes import RunOutcome

_OPS = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Comparison:
    """One left-vs-right check for one seed (or for the means)."""

    left: str
    seed: int | None
    left_value: float | str
    right_value: float | str
    threshold: float | str
    holds: bool


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    holds: bool
    checks: list[Comparison] = field(default_factory=list)
    problem: str = ""
    """Why the claim could not be checked (a variant missing, a metric not recorded)."""

    def describe(self) -> str:
        """The measured numbers in a line, naming the metric and the margin, e.g.
        "final train_loss: Adam 0.041 < 0.9 × SGD 1.13 = 1.017 [seed 0]"."""
        if self.problem:
            return self.problem
        c = self.claim
        parts = []
        for check in self.checks:
            seed = "mean" if check.seed is None else f"seed {check.seed}"
            mark = "" if check.holds else " ✗"
            fmt = _pct if is_fraction(c.metric) else _fmt
            parts.append(f"{check.left} {fmt(check.left_value)} {c.op} {_bound(c, check, fmt)} [{seed}]{mark}")
        at = "" if c.at == "final" else f"{c.at} "
        return f"{at}{c.metric}: " + "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.claim.text,
            "holds": self.holds,
            "problem": self.problem,
            "measured": self.describe(),
            "checks": [check.__dict__ for check in self.checks],
        }


def _bound(c: Claim, check: Any, fmt: Callable[[float | str], str]) -> str:
    """The right-hand side of one check: a fixed value, or the other variant's figure with the
    claim's margin written out ("0.9 × SGD 1.13 = 1.017", "SGD 1.13 + 0.05 = 1.18"; for a share
    shown in percent, "3 units 70.5% + 15 points = 85.5%")."""
    if c.right is None:
        return fmt(check.threshold)
    name = c.right if not c.right_metric or c.right_metric == c.metric else f"{c.right} {c.right_metric}"
    value = check.right_value
    if isinstance(value, str) or (c.margin == 0 and c.abs_margin == 0) or not math.isfinite(value):
        return f"{name} {fmt(value)}"
    shrink = c.op in ("<", "<=")
    factor = (1 - c.margin if value >= 0 else 1 + c.margin) if shrink else (1 + c.margin if value >= 0 else 1 - c.margin)
    text = f"{name} {fmt(value)}" if c.margin == 0 else f"{factor:g} × {name} {fmt(value)}"
    if c.abs_margin:
        margin = f"{100 * c.abs_margin:g} points" if fmt is _pct else f"{c.abs_margin:g}"
        text += f" {'−' if shrink else '+'} {margin}"
    return f"{text} = {fmt(check.threshold)}"


def _fmt(x: float | str) -> str:
    if isinstance(x, str):
        return x
    if math.isinf(x) or math.isnan(x):
        return str(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4):
        return f"{x:.3g}"
    return f"{x:.4g}"


def _pct(x: float | str) -> str:
    """A share in percent, to the precision it was measured at ("99.83%", "97%", "0.5%")."""
    if isinstance(x, str) or not math.isfinite(x):
        return _fmt(x)
    return f"{100 * x:.4g}%"


def _threshold(claim: Claim, right: float | str) -> float | str:
    if isinstance(right, str):
        return right
    if claim.op in ("<", "<="):
        return right * (1 - claim.margin) - claim.abs_margin if right >= 0 else right * (1 + claim.margin) - claim.abs_margin
    if claim.op in (">", ">="):
        return right * (1 + claim.margin) + claim.abs_margin if right >= 0 else right * (1 - claim.margin) + claim.abs_margin
    return right


def _compare(claim: Claim, left: float | str, threshold: float | str) -> bool:
    if claim.op == "==":
        return left == threshold
    if claim.op == "!=":
        return left != threshold
    if isinstance(left, str) or isinstance(threshold, str):
        return False
    if math.isnan(left) or math.isnan(threshold):
        return False
    return bool(_OPS[claim.op](left, threshold))


def check_claim(claim: Claim, outcomes: list[RunOutcome]) -> ClaimResult:
    by_variant: dict[str, dict[int, RunOutcome]] = {}
    for run in outcomes:
        by_variant.setdefault(run.variant, {})[run.seed] = run
    names = claim.variants
    missing = [n for n in names if n not in by_variant]
    if missing:
        return ClaimResult(claim, False, problem=f"no runs of {', '.join(missing)}")
    unfinished = [r for n in names for r in by_variant[n].values() if r.status in ("cancelled", "interrupted", "failed", "running", "pending")]
    if unfinished:
        r = unfinished[0]
        return ClaimResult(claim, False, problem=f"{r.variant} (seed {r.seed}) is {r.status}: not checked")
    try:
        checks = _checks(claim, by_variant)
    except KeyError as exc:
        return ClaimResult(claim, False, problem=f"metric {exc.args[0]!r} was not recorded")
    return ClaimResult(claim, bool(checks) and all(c.holds for c in checks), checks)


def _checks(claim: Claim, by_variant: dict[str, dict[int, RunOutcome]]) -> list[Comparison]:
    checks = []
    for left in claim.lefts:
        seeds = sorted(by_variant[left])
        if claim.right is not None:
            seeds = [s for s in seeds if s in by_variant[claim.right]]
        if claim.seeds == "mean":
            lv = fmean(float(by_variant[left][s].value(claim.metric, claim.at)) for s in seeds)
            rv: float | str = (
                fmean(float(by_variant[claim.right][s].value(claim.right_metric or claim.metric, claim.at)) for s in seeds)
                if claim.right is not None
                else claim.value  # type: ignore[assignment]
            )
            t = _threshold(claim, rv)
            checks.append(Comparison(left, None, lv, rv, t, _compare(claim, lv, t)))
            continue
        for s in seeds:
            lv2 = by_variant[left][s].value(claim.metric, claim.at)
            rv2 = (
                by_variant[claim.right][s].value(claim.right_metric or claim.metric, claim.at)
                if claim.right is not None
                else claim.value
            )
            t = _threshold(claim, rv2)  # type: ignore[arg-type]
            checks.append(Comparison(left, s, lv2, rv2, t, _compare(claim, lv2, t)))  # type: ignore[arg-type]
    return checks


def check_claims(claims: list[Claim], outcomes: list[RunOutcome]) -> list[ClaimResult]:
    return [check_claim(c, outcomes) for c in claims]
