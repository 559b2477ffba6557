"""Per-layer health of every member at once, checked against the solo functions before it is trusted.

The solo loop measures each run's layers with :func:`engine.diagnostics.health.layer_health`:
a probe forward pass with hooks, a dozen small statistics per layer, a few host reads. Run per
member on a solo model, that is most of a batched group's time for small networks (32 tiny MLPs:
about 80% of the wall time). :func:`stacked_layer_health` computes the same figures for all members
with tensors that carry a leading member axis, and one host read.

It is a second implementation of another module's figures, so it is *verified*, not assumed:
:class:`HealthPath` computes the first measurement of a group both ways for one member and uses
the stacked path only when every key and value agrees (within float rounding; histogram counts
within two). When ``engine.diagnostics.health`` changes (a new figure, a new definition), the check
fails and the group quietly keeps the solo functions: slower, never different.

:class:`MemberModel` stands in for a member's solo model where a function only calls the model
or reads its parameters (decision boundaries, extra metrics, the model summary), so no weights
are copied unless something needs the real module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from engine.batched.stacked import StackedMLP
from engine.diagnostics.health import GRAD_LOG_RANGE, NEAR_ZERO, act_hist_range, histograms, sample_std

Layers = dict[str, dict[str, Any]]


def _histograms(values: Tensor, lo: float, hi: float) -> Tensor:
    """``health.histograms`` of each row of (M, n) `values` already clamped to [lo, hi] → (M, bins)."""
    return histograms(list(values), lo, hi).to(values.dtype)


def _saturated(u: Tensor, activation: str) -> Tensor:
    """Each member's share of saturated units (``layer_health``'s rule for `activation`): (M,)."""
    if activation == "tanh":
        return (u.abs() > 0.99).float().flatten(1).mean(dim=1)
    if activation == "sigmoid":
        return ((u < 0.01) | (u > 0.99)).float().flatten(1).mean(dim=1)
    return torch.zeros(u.shape[0], device=u.device)


def _per_member(activations: Sequence[str], fn: Callable[[str], Tensor]) -> Tensor:
    """``fn(activation)`` (an (M, ...) tensor) taken for each member from its own activation."""
    kinds = list(dict.fromkeys(activations))
    out = fn(kinds[0])
    for kind in kinds[1:]:
        mine = torch.tensor([a == kind for a in activations], device=out.device)
        out = torch.where(mine.view(-1, *[1] * (out.dim() - 1)), fn(kind), out)
    return out


def stacked_layer_health(model: StackedMLP, probe: Tensor, activations: Sequence[str], with_grads: bool,
                         names: list[str]) -> list[Layers]:
    """``layer_health`` of every member: `probe` is (N, ...) shared or (M, N, ...) per member.

    `activations`: each member's activation name (saturation and histogram ranges depend on it);
    `names` are the solo model's layer names (``block1`` ... ``head``); `with_grads` adds
    ``grad_norm`` / ``grad_hist`` from the gradients of the last step.
    """
    M = model.n_members
    with torch.no_grad():
        pre, post = model.capture(probe)
    stats: list[Tensor] = []  # (M, k) blocks, stacked then read once
    hists: list[Tensor] = []
    for z, a in zip(pre, post, strict=True):
        u = a.float()
        dead = (u.amax(dim=1) <= 0).float().mean(dim=1)
        sat = _per_member(activations, lambda act, u=u: _saturated(u, act))
        zg = z.float().detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(model.act(zg).sum(), zg)
        zero = (grad.abs().amax(dim=1) == 0).float().mean(dim=1)
        flat = u.flatten(1)
        stats.append(torch.stack([flat.mean(dim=1), sample_std(flat, 1), dead, sat, zero], dim=1))
        hists.append(_per_member(activations, lambda act, flat=flat: _histograms(
            flat.clamp(*act_hist_range(act)), *act_hist_range(act))))
    weights = [w for w, _, _ in model.blocks] + [model.head[0]]
    wstats, ghists = [], []
    glo, ghi = GRAD_LOG_RANGE
    for w in weights:
        wd = w.detach().flatten(1)
        rows = w.detach()
        spread = sample_std(rows, 1).mean(dim=1) if rows.shape[1] >= 2 else torch.zeros(M, device=w.device)
        parts = [wd.norm(dim=1), (wd.abs() < NEAR_ZERO).float().mean(dim=1), spread]
        if with_grads:
            g = w.grad.flatten(1)
            parts.append(g.norm(dim=1))
            logs = torch.log10(g.float().abs().clamp_min(10.0**glo)).clamp(glo, ghi)
            ghists.append(_histograms(logs, glo, ghi))
        wstats.append(torch.stack(parts, dim=1))
    # one host read for everything
    blocks = [torch.stack(stats, dim=1), torch.stack(hists, dim=1)] if stats else []
    head = [torch.stack(wstats, dim=1)] + ([torch.stack(ghists, dim=1)] if ghists else [])
    values = [t.tolist() for t in blocks + head]
    out: list[Layers] = []
    hidden = names[: len(stats)]
    for m in range(M):
        layers: Layers = {}
        if stats:
            for k, name in enumerate(hidden):
                mean, std, dead, sat, zero = values[0][m][k]
                layers[name] = {"act_mean": mean, "act_std": std, "dead": dead, "saturated": sat,
                                "zero_grad": zero, "act_hist": values[1][m][k]}
        w_values = values[len(blocks)]
        g_values = values[len(blocks) + 1] if ghists else None
        for k, name in enumerate(names[: len(weights)]):
            entry = layers.setdefault(name, {})
            row = w_values[m][k]
            entry.update({"weight_norm": row[0], "near_zero": row[1], "unit_spread": row[2]})
            if with_grads:
                entry["grad_norm"] = row[3]
                entry["grad_hist"] = g_values[m][k]  # type: ignore[index]
        out.append(layers)
    return out


def stacked_update_ratios(before: Tensor, model: StackedMLP, names: list[str]) -> list[dict[str, float]]:
    """``update_ratios`` of every member: ‖w − w_before‖ / ‖w_before‖ per weight layer."""
    weights = [w for w, _, _ in model.blocks] + [model.head[0]]
    offsets = model.offsets_of(weights)
    ratios = []
    for w, (a, b) in zip(weights, offsets, strict=True):
        w0 = before[:, a:b]
        ratios.append((w.detach().flatten(1) - w0).norm(dim=1) / w0.norm(dim=1).clamp_min(1e-12))
    table = torch.stack(ratios, dim=1).tolist()
    return [dict(zip(names[: len(weights)], row, strict=True)) for row in table]


class MemberModel:
    """One member's solo model, lazily: its parameters and modules are read from the stack, and
    anything else (calling it, its layers) loads the member into the shared solo `shadow` first."""

    def __init__(self, stacked: StackedMLP, shadow: nn.Module, row: int, load: Callable[[], None]) -> None:
        self._stacked, self._shadow, self._row, self._load = stacked, shadow, row, load
        self._inputs: list[Tensor] | None = None

    def __getattr__(self, name: str) -> Any:  # only for what is not defined here
        if name.startswith("_"):
            raise AttributeError(name)
        self._load()
        return getattr(self._shadow, name)

    def moved(self, row: int) -> MemberModel:
        """This member at its new `row` (after the stack dropped finished members); returns self."""
        self._row = row
        return self

    # Modes are the shadow's own, set on all its modules as on a solo model: a caller may switch
    # some modules back (evaluate_with_batch_stats puts BatchNorm in training mode in an eval-mode
    # model), and every solo-loop function that changes a mode restores it.
    @property
    def training(self) -> bool:
        return self._shadow.training

    def eval(self) -> MemberModel:
        self._shadow.eval()
        return self

    def train(self, mode: bool = True) -> MemberModel:
        self._shadow.train(mode)
        return self

    def __call__(self, x: Tensor) -> Tensor:
        if self._inputs is not None:
            self._inputs.append(x)
        self._load()
        return self._shadow(x)

    def parameters(self) -> Iterator[Tensor]:
        """The member's parameters (views of its row; they require grad like the solo ones)."""
        return (v[self._row] for v in self._stacked.views)

    def modules(self) -> Iterator[nn.Module]:
        """The shadow's modules, holding this member (a caller may save and restore their buffers)."""
        self._load()
        return self._shadow.modules()


def _close(a: Any, b: Any, path: str, problems: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            problems.append(f"{path}: keys {list(a)} != {list(b)}")
            return
        for k in a:
            _close(a[k], b[k], f"{path}.{k}", problems)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            problems.append(f"{path}: length {len(a)} != {len(b)}")
        elif all(isinstance(x, (int, float)) for x in a + b):
            if sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 2.0:
                problems.append(f"{path}: {a} != {b}")
        else:
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                _close(x, y, f"{path}[{i}]", problems)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not (math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))):
            problems.append(f"{path}: {a} != {b}")
    elif a != b:
        problems.append(f"{path}: {a!r} != {b!r}")


def differences(fast: Any, solo: Any) -> list[str]:
    """Where two nested results (dicts, lists, numbers) disagree beyond float rounding."""
    problems: list[str] = []
    _close(fast, solo, "", problems)
    return problems


class HealthPath:
    """Chooses, per group, between the stacked figures and the solo functions run per member.

    Each kind of measurement (without gradients at step 0; with gradients and update ratios in
    training; with gradients only at the end) is checked the first time it comes: one member's
    stacked figures against the solo functions' (:func:`differences`). One failed check sends the
    group back to the solo functions for good (``problems`` says why).
    """

    def __init__(self) -> None:
        self.state: dict[Any, bool] = {}
        self.problems: list[str] = []

    def usable(self, kind: Any) -> bool:
        return not self.problems and self.state.get(kind, True)

    def checked(self, kind: Any) -> bool:
        return kind in self.state

    def decide(self, kind: Any, fast: Layers, solo: Layers) -> bool:
        problems = differences(fast, solo)
        self.state[kind] = not problems
        self.problems.extend(problems)
        return not problems


BOUNDARY_FIELDS = frozenset({"run_id", "step", "x_range", "y_range", "grid", "points", "n_classes", "raw", "time"})
"""The Boundary fields this module knows: only ``grid`` depends on the model."""
GRID_TOLERANCE = 0.005
"""Share of grid cells that may differ (points exactly on a decision boundary) in the check."""


def boundary_events(model: StackedMLP, proxies: dict[int, MemberModel], rows_by_data: dict[int, list[tuple[int, str]]],
                    splits: list[Any], step: int, make_event: Callable[..., Any], state: dict[str, Any]) -> list[Any]:
    """Decision-boundary events of every member (`make_event` is ``boundary_event``).

    Per dataset, the first member's event comes from `make_event` itself (its model calls are
    recorded); the others take that event with their own grid, predicted by the stacked model on
    the same inputs in one pass. The first time, that member's grid is also predicted by the stack
    and compared; if they differ, or the event has fields this module does not know, every member
    gets its event from `make_event` from then on (``state["solo"] = True``).
    """
    import dataclasses

    events = []
    for d, rows in rows_by_data.items():
        first_row, first_id = rows[0]
        proxy = proxies[first_row]
        proxy._inputs = [] if not state.get("solo") else None
        try:
            first = make_event(first_id, step, proxy, splits[d])
        finally:
            inputs, proxy._inputs = proxy._inputs, None
        if first is None:
            continue
        events.append(first)
        fields = {f.name for f in dataclasses.fields(first)}
        if state.get("solo") or not inputs or not fields <= BOUNDARY_FIELDS:
            state["solo"] = True
            events += [make_event(run_id, step, proxies[row], splits[d]) for row, run_id in rows[1:]]
            continue
        ny, nx = len(first.grid), len(first.grid[0]) if first.grid else 0
        with torch.no_grad():
            pred = model(inputs[-1]).argmax(dim=-1).reshape(model.n_members, ny, nx)
        grids = pred.tolist()
        if "checked" not in state:
            cells = max(1, ny * nx)
            wrong = sum(a != b for ra, rb in zip(grids[first_row], first.grid, strict=True)
                        for a, b in zip(ra, rb, strict=True))
            state["checked"] = True
            if wrong / cells > GRID_TOLERANCE:
                state["solo"] = True
                events += [make_event(run_id, step, proxies[row], splits[d]) for row, run_id in rows[1:]]
                continue
        events += [dataclasses.replace(first, run_id=run_id, grid=grids[row]) for row, run_id in rows[1:]]
    return events
