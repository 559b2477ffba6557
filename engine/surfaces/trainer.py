"""Training a point on a 2-D surface, with the same events as the training loop.

A `surface` run (``DataSpec.name = "surface"``) has no data and no network: its parameters are
one point (x, y) and its loss is the test function f(x, y) (full-batch gradient descent on a
known landscape, so one step is one epoch). ``engine.training.loop.train`` hands such a spec to
:func:`train_surface`, which emits what every run emits:

* ``RunStarted`` (``spec["data_info"]`` holds the function, its formula, minima, window and the
  actual start point, for the dashboard's surface view);
* ``StepMetrics`` every ``log_every`` steps (``train_loss`` = mean f over the window);
* ``EvalMetrics`` at step 0, every ``eval_every`` steps (default: about 200 points per path) and at
  the end, with ``loss`` = ``train_loss`` = f, ``dist_to_min``, ``x``, ``y`` and ``lr``;
* ``RunFinished`` with the path's measures in ``final`` (see below).

Seeds: ``start_jitter`` > 0 adds a Gaussian offset to the start drawn from the run's seed (and
the seed draws the random starts of ``sweep_starts``); with no jitter every seed is the same run.

All paths of a run (the main path, ``sweep_lrs`` paths, ``sweep_starts`` paths) move together as
one (paths × 2) tensor; :func:`train_surfaces` goes further and moves every spec of a comparison
that shares a function and a step budget in one tensor, emitting each run's events.

Final metrics: ``loss``, ``train_loss``, ``dist_to_min``, ``x``/``y`` (= ``final_x``/``final_y``),
``min_dist`` (closest approach), ``travel`` (‖end − start‖), ``zigzag`` (sign flips of the steep
axis's steps; also ``zigzag_x``, ``zigzag_y``), ``overshoot`` (largest crossing past the minimum;
``overshoot_x``, ``overshoot_y``), ``steps_to_escape`` (saddle: first step with |y| > 1),
``grad_norm``, ``hess_min_eig``, ``hess_max_eig`` (the Hessian at the end point),
``lr_hit_share``, ``start_hit_share``, ``start_mean_loss`` (sweeps), ``escape_loss`` and
``escape_at`` (``escape_step``), ``epoch``, ``steps``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from engine.events import EvalMetrics, Event, Message, RunFinished, StepMetrics
from engine.recipe.config import RunSpec
from engine.surfaces.functions import SurfaceFunction, get_surface
from engine.surfaces.optim import PathOptimizer, path_hparams
from engine.surfaces.paths import overshoot, steps_to_escape, zigzag
from engine.training.runbook import (
    cancelled_reason,
    diverged_reason,
    finished_reason,
    numeric,
    out_of_memory_reason,
    run_started,
)

MAX_EVAL_POINTS = 200
ESCAPE_RADIUS = 1.0
GRAD_ZERO = 1e-8
"""‖∇f‖ below which `escape_step` looks for negative curvature."""
CRITICAL_GRAD = 1e-6
"""‖∇f‖ below which a run's end point is labelled as a critical point (a Message)."""
DTYPE = torch.float64


def _budget(spec: RunSpec) -> int:
    t = spec.recipe.train
    return t.steps if t.steps is not None else (t.epochs or 1000)


def _eval_every(spec: RunSpec, total: int) -> int:
    return spec.recipe.train.eval_every or max(1, math.ceil(total / MAX_EVAL_POINTS))


def function_of(spec: RunSpec) -> SurfaceFunction:
    d = spec.recipe.data
    if d.name != "surface" or d.surface is None:
        raise ValueError("not a surface run: set data.name = 'surface' and data.surface")
    return get_surface(d.surface, d.kappa if d.surface == "quadratic" else None)


def start_point(spec: RunSpec) -> tuple[float, float]:
    """The run's start: the given (or usual) start plus its seeded jitter."""
    d = spec.recipe.data
    fn = function_of(spec)
    x, y = d.start if d.start is not None else fn.start
    if d.start_jitter > 0:
        g = torch.Generator().manual_seed(spec.seed)
        dx, dy = (d.start_jitter * torch.randn(2, generator=g, dtype=DTYPE)).tolist()
        x, y = x + dx, y + dy
    return float(x), float(y)


def sweep_starts(spec: RunSpec) -> Tensor:
    """The `sweep_starts` random starts, uniform in the function's window, seeded by the run."""
    d = spec.recipe.data
    fn = function_of(spec)
    g = torch.Generator().manual_seed(10_007 + spec.seed)
    u = torch.rand(d.sweep_starts, 2, generator=g, dtype=DTYPE)
    lo = torch.tensor([fn.xlim[0], fn.ylim[0]], dtype=DTYPE)
    hi = torch.tensor([fn.xlim[1], fn.ylim[1]], dtype=DTYPE)
    return lo + u * (hi - lo)


def surface_info(spec: RunSpec, start: tuple[float, float]) -> dict[str, Any]:
    """What the dashboard needs to draw the surface and the path (goes into RunStarted.spec)."""
    fn = function_of(spec)
    return {
        "name": "surface", "task": "surface", "function": fn.name, "formula": fn.formula,
        "description": fn.description, "kappa": fn.kappa, "minima": [list(m) for m in fn.minima],
        "targets": [list(m) for m in fn.targets], "xlim": list(fn.xlim), "ylim": list(fn.ylim),
        "start": list(start), "run_seed": spec.seed,
    }


@dataclass
class _Run:
    """One spec's bookkeeping inside a batch."""

    spec: RunSpec
    run_id: str
    k: int
    """Its index among the batch's runs (column of the traces)."""
    row: int
    """Its main path's row in the batch."""
    lr_rows: list[int]
    start_rows: list[int]
    start: tuple[float, float]
    total: int
    eval_every: int
    t0: float = 0.0
    status: str = "running"
    reason: str = ""
    end_step: int = 0
    logged: int = 0
    """The last step whose loss went out in a StepMetrics."""
    last_read: tuple[int, float] = (0, 0.0)
    history: list[dict[str, float]] = field(default_factory=list)
    escape: dict[str, float] = field(default_factory=dict)


def train_surface(
    spec: RunSpec,
    emit: Callable[[Event], None],
    should_stop: Callable[[], bool] = lambda: False,
    *,
    device: str | torch.device = "cpu",
    run_id: str | None = None,
    data: Any = None,
) -> RunFinished:
    """Train one surface run (all its paths in one tensor); the loop's entry for `surface` specs."""
    return train_surfaces([spec], emit, should_stop, device=device, run_ids=[run_id] if run_id else None)[0]


def train_surfaces(
    specs: Sequence[RunSpec],
    emit: Callable[[Event], None],
    should_stop: Callable[[], bool] | Sequence[Callable[[], bool]] = lambda: False,
    *,
    device: str | torch.device = "cpu",
    run_ids: Sequence[str] | None = None,
) -> list[RunFinished]:
    """Train many surface runs; specs with the same function and budget share one tensor.

    Every run gets its own event stream (RunStarted first, RunFinished last), as if trained
    alone; results are returned in spec order. `should_stop`: one function for every run, or one
    per spec (a run whose function says yes is cancelled, the others go on).
    """
    ids = list(run_ids) if run_ids is not None else [uuid.uuid4().hex[:10] for _ in specs]
    if len(ids) != len(specs):
        raise ValueError(f"{len(ids)} run ids for {len(specs)} specs")
    stops = None if callable(should_stop) else list(should_stop)
    if stops is not None and len(stops) != len(specs):
        raise ValueError(f"{len(stops)} should_stop functions for {len(specs)} specs")
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        fn = function_of(spec)
        groups.setdefault((fn.name, fn.kappa, _budget(spec)), []).append(i)
    results: list[RunFinished | None] = [None] * len(specs)
    for members in groups.values():
        group_stop = should_stop if stops is None else [stops[i] for i in members]
        for i, finished in zip(members, _train_group([specs[i] for i in members], [ids[i] for i in members],
                                                      emit, group_stop, torch.device(device)), strict=True):
            results[i] = finished
    return results  # type: ignore[return-value]


def _train_group(specs: list[RunSpec], ids: list[str], emit: Callable[[Event], None],
                 should_stop: Callable[[], bool] | list[Callable[[], bool]], dev: torch.device) -> list[RunFinished]:
    fn = function_of(specs[0])
    total = _budget(specs[0])
    rows_hp: list[Any] = []
    starts: list[Tensor] = []
    runs: list[_Run] = []
    for k, (spec, run_id) in enumerate(zip(specs, ids, strict=True)):
        d, t = spec.recipe.data, spec.recipe.train
        start = start_point(spec)
        row = len(rows_hp)
        rows_hp.append(t)
        starts.append(torch.tensor([start], dtype=DTYPE))
        lr_rows = list(range(len(rows_hp), len(rows_hp) + len(d.sweep_lrs)))
        rows_hp += [t.model_copy(update={"lr": lr}) for lr in d.sweep_lrs]
        starts += [torch.tensor([start], dtype=DTYPE)] * len(d.sweep_lrs)
        start_rows = list(range(len(rows_hp), len(rows_hp) + d.sweep_starts))
        if d.sweep_starts:
            rows_hp += [t] * d.sweep_starts
            starts.append(sweep_starts(spec))
        runs.append(_Run(spec, run_id, k, row, lr_rows, start_rows, start, total, _eval_every(spec, total)))

    kwargs = path_hparams(rows_hp)  # raises ValueError for what the batch cannot run
    p = torch.cat(starts).to(dev)
    opt = PathOptimizer([p], **kwargs)
    main = torch.tensor([r.row for r in runs], device=dev)
    trace = torch.full((total + 1, len(runs), 2), math.nan, dtype=DTYPE, device=dev)  # every main point
    ftrace = torch.full((total + 1, len(runs)), math.nan, dtype=DTYPE, device=dev)  # f at those points
    trace[0] = p[main]
    active = torch.ones(len(rows_hp), 1, dtype=torch.bool, device=dev)
    escapers = [r for r in runs if r.spec.recipe.data.escape_step is not None]
    lo = torch.tensor([fn.xlim[0], fn.ylim[0]], dtype=DTYPE, device=dev)
    hi = torch.tensor([fn.xlim[1], fn.ylim[1]], dtype=DTYPE, device=dev)

    for r in runs:
        r.t0 = time.perf_counter()
        r.last_read = (0, r.t0)
        emit(run_started(r.spec, r.run_id, dev, 2, total, 1, surface_info(r.spec, r.start)))

    def evaluate(step: int, which: list[_Run]) -> None:
        cols = [r.k for r in which]
        pts = trace[step, cols]
        fs, ds = fn.value(pts).tolist(), fn.dist_to_min(pts).tolist()  # host sync
        for r, point, f, dist in zip(which, pts.tolist(), fs, ds, strict=True):
            metrics = {"loss": f, "train_loss": f, "dist_to_min": dist, "x": point[0], "y": point[1],
                       "lr": r.spec.recipe.train.lr}
            emit(EvalMetrics(r.run_id, step, float(step), metrics, time.perf_counter() - r.t0))
            r.history.append({"step": step, **metrics})

    def end(r: _Run, status: str, reason: str, step: int) -> None:
        r.status, r.reason, r.end_step = status, reason, step
        active[r.row] = False

    def read(step: int, which: list[_Run]) -> None:
        """Emit each run's mean loss since its last read (one host sync); end runs that broke.

        The loss of step s is f at the point the s-th gradient was taken (trace[s − 1]), as the
        training loop reports the batch loss before its update.
        """
        which = [r for r in which if r.logged < step]
        if not which:
            return
        first = min(r.logged for r in which)
        cols = [r.k for r in which]
        losses_all = ftrace[first:step, cols].T.tolist()
        outside = None
        if fn.unbounded:  # points 1..step of the window: has the path left the window?
            pts = trace[first + 1 : step + 1, cols]
            outside = ((pts < lo) | (pts > hi)).any(-1).T.tolist()
        now = time.perf_counter()
        for j, r in enumerate(which):
            offset = r.logged - first
            losses = losses_all[j][offset:]
            threshold = r.spec.recipe.train.diverge_threshold
            bad = next((i for i, v in enumerate(losses)
                        if not math.isfinite(v) or (not fn.unbounded and abs(v) > threshold)), None)
            left = next((i for i, v in enumerate(outside[j][offset:]) if v), None) if outside else None
            rate = (step - r.last_read[0]) / max(now - r.last_read[1], 1e-9)
            r.last_read = (step, now)
            if left is not None and (bad is None or left < bad):
                at = r.logged + left + 1
                window = losses[: left + 1]
                emit(StepMetrics(r.run_id, at, float(at), sum(window) / len(window), r.spec.recipe.train.lr,
                                 now - r.t0, rate))
                end(r, "done", f"left the window at step {at}: the path escaped down the unbounded surface", at)
            elif bad is not None:
                at = r.logged + bad + 1
                end(r, "diverged", diverged_reason(losses[bad], at), at)
            else:
                emit(StepMetrics(r.run_id, step, float(step), sum(losses) / len(losses), r.spec.recipe.train.lr,
                                 now - r.t0, rate))
            r.logged = step

    live = list(runs)
    step = 0
    try:
        evaluate(0, live)
        while step < total and live:
            if callable(should_stop):
                cancelled = list(live) if should_stop() else []
            else:  # one function per run: only those that say so end
                cancelled = [r for r in live if should_stop[r.k]()]
            for r in cancelled:
                end(r, "cancelled", cancelled_reason(step), step)
            live = [r for r in live if r.status == "running"]
            if not live:
                break
            f_now, g = fn.value(p), fn.grad(p)
            ftrace[step] = f_now[main]
            p.grad = g
            before = p.clone()
            opt.update()  # = opt.step() without torch.optim's per-call hooks
            p.copy_(torch.where(active, p, before))
            for r in escapers:
                if r.status == "running":
                    _maybe_escape(r, fn, p, g, step)
            step += 1
            trace[step] = p[main]
            read(step, [r for r in live if step % r.spec.recipe.train.log_every == 0 or step == total
                        or step % r.eval_every == 0])
            live = [r for r in live if r.status == "running"]
            due_eval = [r for r in live if step % r.eval_every == 0 or step == total]
            if due_eval:
                evaluate(step, due_eval)
        for r in live:
            if r.status == "running":
                r.status, r.reason, r.end_step = "done", finished_reason(total), step
    except torch.cuda.OutOfMemoryError:
        for r in runs:
            if r.status == "running":
                r.status, r.reason, r.end_step = "failed", out_of_memory_reason(dev, hint=""), step
    p.grad = None
    return [_finish(r, fn, trace, p, emit) for r in runs]


def _maybe_escape(r: _Run, fn: SurfaceFunction, p: Tensor, g: Tensor, step: int) -> None:
    """`escape_step`: at a vanishing gradient with negative curvature, step along that eigenvector."""
    if r.escape or float(g[r.row].norm()) >= GRAD_ZERO:
        return
    from engine.diagnostics.critical import hessian_eigs

    point = p[r.row].detach().clone()
    ev, vecs = hessian_eigs(fn.value, point, "autograd")
    if float(ev[0]) >= 0:
        return
    u = vecs[:, 0] if float(vecs[:, 0].sum()) >= 0 else -vecs[:, 0]
    with torch.no_grad():
        p[r.row] = point + r.spec.recipe.data.escape_step * u.to(p.device)
    r.escape = {"escape_at": float(step + 1), "escape_loss": float(fn.value(p[r.row])),
                "escape_from_loss": float(fn.value(point)), "escape_eig": float(ev[0])}


def _finish(r: _Run, fn: SurfaceFunction, trace: Tensor, p: Tensor, emit: Callable[[Event], None]) -> RunFinished:
    from engine.diagnostics.critical import classify, hessian_eigs

    d = r.spec.recipe.data
    path = trace[: r.end_step + 1, r.k].cpu()
    last = path[-1]
    if not r.history or r.history[-1]["step"] != r.end_step:
        if r.status != "failed":
            fs, ds = fn.value(last).item(), fn.dist_to_min(last).item()
            metrics = {"loss": fs, "train_loss": fs, "dist_to_min": ds, "x": float(last[0]), "y": float(last[1]),
                       "lr": r.spec.recipe.train.lr}
            emit(EvalMetrics(r.run_id, r.end_step, float(r.end_step), metrics, time.perf_counter() - r.t0))
            r.history.append({"step": r.end_step, **metrics})
    f_last = float(fn.value(last))
    dists = fn.dist_to_min(path)
    target = fn.targets[int((last.unsqueeze(0) - torch.tensor(fn.targets, dtype=DTYPE)).norm(dim=-1).argmin())]
    final: dict[str, float] = {
        "loss": f_last, "train_loss": f_last, "dist_to_min": float(dists[-1]),
        "x": float(last[0]), "y": float(last[1]), "final_x": float(last[0]), "final_y": float(last[1]),
    }
    summary: dict[str, float] = {
        "min_dist": float(dists[torch.isfinite(dists)].min()) if torch.isfinite(dists).any() else math.inf,
        "travel": float((last - path[0]).norm()),
        "zigzag": float(zigzag(path, fn.steep_axis)),
        "zigzag_x": float(zigzag(path, 0)), "zigzag_y": float(zigzag(path, 1)),
        "overshoot_x": overshoot(path, target, 0), "overshoot_y": overshoot(path, target, 1),
    }
    summary["overshoot"] = max(summary["overshoot_x"], summary["overshoot_y"])
    if fn.reference is not None:
        summary["steps_to_escape"] = steps_to_escape(path, fn.reference, fn.steep_axis, ESCAPE_RADIUS)
    critical_note = ""
    if torch.isfinite(last).all():
        summary["grad_norm"] = float(fn.grad(last).norm())
        ev, _ = hessian_eigs(fn.value, last.clone(), "autograd")
        summary["hess_min_eig"], summary["hess_max_eig"] = float(ev[0]), float(ev[-1])
        if summary["grad_norm"] < CRITICAL_GRAD:
            kind, detail = classify(ev)
            critical_note = (f"the path ends at a critical point (‖∇f‖ = {summary['grad_norm']:.1e}): {kind}, "
                             f"Hessian eigenvalues {', '.join(f'{float(e):.3g}' for e in ev)} ({detail})")
    ends = p.detach()
    if r.lr_rows:
        dl = fn.dist_to_min(ends[r.lr_rows]).cpu()
        summary["lr_hit_share"] = float(((dl < d.hit_radius) & torch.isfinite(dl)).double().mean())
    if r.start_rows:
        ds = fn.dist_to_min(ends[r.start_rows]).cpu()
        fs = fn.value(ends[r.start_rows]).cpu()
        summary["start_hit_share"] = float(((ds < d.hit_radius) & torch.isfinite(ds)).double().mean())
        summary["start_mean_loss"] = float(torch.where(torch.isfinite(fs), fs, math.inf).mean())
    summary.update(r.escape)
    if r.status == "diverged":
        final = {k2: (math.inf if k2 in ("loss", "train_loss", "dist_to_min") else v) for k2, v in final.items()}
    finite_hist = [h for h in r.history if math.isfinite(h["loss"])]
    best: dict[str, float] = {}
    if finite_hist:
        b = min(finite_hist, key=lambda h: h["loss"])
        best = {"min_train_loss": b["loss"], "best_step": float(b["step"]), "min_dist": summary["min_dist"]}
    final.update(summary)
    final["epoch"] = float(r.end_step)
    final["steps"] = float(r.end_step)
    if critical_note:
        emit(Message(r.run_id, critical_note))
    if r.escape:
        emit(Message(r.run_id, f"escaped the saddle at step {int(r.escape['escape_at'])}: "
                               f"loss {r.escape['escape_from_loss']:.3g} → {r.escape['escape_loss']:.3g}"))
    finished = RunFinished(r.run_id, r.status, r.end_step, r.reason, final, best,  # type: ignore[arg-type]
                           time.perf_counter() - r.t0, numeric(summary))
    emit(finished)
    return finished
