"""Train a group of runs as one batched model, with the events each would emit solo.

``train_batched(specs, emit, should_stop, device=, run_ids=)`` is the batched twin of
:func:`engine.training.loop.train`: the runs of a group (see :func:`engine.batched.plan.plan`) share one
stacked model (:class:`engine.batched.stacked.StackedMLP`) and step together, and every member
emits the event sequence its solo run emits: RunStarted, StepMetrics every ``log_every`` steps,
EvalMetrics and Diagnostics at the same steps with the same keys, RunFinished with the same
final / best / summary. Numbers agree with the solo run within float rounding (batched matrix
products sum in another order); tests hold every member's curve to its solo run.

What each member keeps of its own:

* its data: members with different seeds (or data settings that keep the shapes, such as the
  preprocessing) have their own splits and batch orders (one generator per dataset, seeded as the
  solo loop seeds its own); members with the same data and seed share them;
* its initial weights (built by the solo model builder under its seed), optimizer,
  hyperparameters and LR schedule (:class:`engine.batched.optim.StackedOptimizer`), penalties,
  clipping and divergence threshold; its activation, loss, skips, norm statistics, dropout and
  DropConnect streams and augmentation (:mod:`engine.batched.stacked`, :mod:`engine.batched.losses`);
* its ending: a member that diverges, is cancelled or stops early finishes at that step (final
  evaluation, RunFinished) while the others go on; its row is zeroed and drops out of the
  objective, and once half the stack has ended the finished rows leave it (``compact``).

The loop reads the losses of every member at once every ``log_every`` steps (one host sync for
the group) and evaluates every member at once. The training step is written out without autograd
where it can be (:mod:`engine.batched.manual`); the per-layer diagnostics and decision grids come
from the stack for all members at once after a check against the solo functions
(:mod:`engine.batched.diagnostics`). Everything else a solo run reports per run (extra metrics,
weight images, the summary, whole-run figures) is computed by the solo loop's own functions.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from engine.batched.accel import FastPaths, StepGraph, autocast, maybe_compile, tune_allocator
from engine.batched.diagnostics import (
    HealthPath,
    MemberModel,
    boundary_events,
    stacked_layer_health,
    stacked_update_ratios,
)
from engine.batched.losses import member_loss, per_sample_correct
from engine.batched.manual import ManualStep
from engine.batched.manual import supported as manual_supported
from engine.batched.optim import RULE_ORDER, StackedOptimizer, rule_of
from engine.batched.plan import group_key, why_solo
from engine.batched.stacked import MemberDropout, StackedMLP, quiet_layout_warning
from engine.data import DataSplits, load_data
from engine.diagnostics.boundary import boundary_event
from engine.diagnostics.health import (
    IMAGE_EVERY,
    _weight_layers,
    add_weight_images,
    layer_health,
    model_summary,
    update_ratios,
)
from engine.diagnostics.run_stats import RunStats
from engine.models import build_model, count_params
from engine.recipe.config import DataSpec, RunSpec
from engine.recipe.losses import build_loss
from engine.recipe.schedules import LRSchedule
from engine.runs.events import Diagnostics, EvalMetrics, Event, Message, RunFinished, RunStarted, StepMetrics
from engine.runs.versions import library_versions
from engine.techniques.augment import Augmenter, build_augmenter
from engine.training.loop import MAX_EVAL_TRAIN, PROBE_SIZE, eval_chunk, widest_layer
from engine.training.metrics import extra_metrics
from engine.training.runbook import budget, diagnostics_every
from engine.training.runbook import eval_every as _eval_every

StopFn = Callable[[], bool]
log = logging.getLogger(__name__)
GRAPH_WARMUP = 3
"""Eager steps before the training step is captured in a CUDA graph (they build the optimizer state)."""


@dataclass
class _Member:
    """One run of the group: its spec, its own bookkeeping, and how it ended."""

    index: int  # position in the caller's spec list
    row: int  # row in the stacked model
    spec: RunSpec
    run_id: str
    stop: StopFn
    schedule: LRSchedule
    data: int  # which dataset (distinct seed)
    stats: RunStats | None = None
    augmenter: Augmenter | None = None  # its own augmentation of each training batch (its own stream)
    proxy: MemberModel | None = None  # its solo model, read from the stack (for the solo loop's functions)
    solo_loss: Callable | None = None  # its loss as the solo loop builds it (for the same functions)
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    finished: RunFinished | None = None
    diagnosed_at: int = -1  # the step of the last Diagnostics
    evals_since_best: int = 0
    best_state: list[Tensor] | None = None  # with early stopping and restore_best: its best weights

    @property
    def train(self):
        return self.spec.recipe.train


def _check_group(specs: Sequence[RunSpec]) -> None:
    if not specs:
        raise ValueError("train_batched needs at least one spec")
    for spec in specs:
        if (reason := why_solo(spec)) is not None:
            raise ValueError(f"run {spec.variant!r} cannot train batched: {reason}")
    keys = {group_key(s) for s in specs}
    if len(keys) > 1:
        raise ValueError("these runs cannot share one batched model (data, architecture or budget differ); "
                         "use engine.batched.plan() to group them")


def _nbytes(d: DataSplits) -> int:
    return sum(t.numel() * t.element_size() for t in (d.x_train, d.y_train, d.x_val, d.y_val, d.x_test, d.y_test))


def _stack_budget(dev: torch.device) -> int:
    """Bytes the stacked datasets of a group may take: half the GPU's free memory, or a quarter of
    the machine's RAM (the loaded datasets and their stacked copy both stay in memory)."""
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return free // 2
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):  # not a POSIX system: 4 GiB
        return 4 << 30


def _mismatch(splits: Sequence[DataSplits]) -> str | None:
    """Why these datasets cannot be stacked member by member (None when they can)."""
    d0 = splits[0]
    for d in splits[1:]:
        if (d.task, d.n_classes, d.input_shape) != (d0.task, d0.n_classes, d0.input_shape):
            return f"{d.task} {d.input_shape} → {d.n_classes} against {d0.task} {d0.input_shape} → {d0.n_classes}"
        sizes, sizes0 = [len(d.x_train), len(d.x_val), len(d.x_test)], [len(d0.x_train), len(d0.x_val), len(d0.x_test)]
        if sizes != sizes0:
            return f"split sizes {sizes} against {sizes0}"
    return None


def _stops(should_stop: StopFn | Sequence[StopFn], n: int) -> list[StopFn]:
    if callable(should_stop):
        return [should_stop] * n
    stops = list(should_stop)
    if len(stops) != n:
        raise ValueError(f"{len(stops)} should_stop functions for {n} runs")
    return stops


def train_batched(
    specs: Sequence[RunSpec],
    emit: Callable[[Event], None],
    should_stop: StopFn | Sequence[StopFn] = lambda: False,
    *,
    device: str | torch.device = "cpu",
    run_ids: Sequence[str] | None = None,
    data: Mapping[int, DataSplits] | None = None,
    fast: FastPaths | None = None,
) -> list[RunFinished]:
    """Train `specs` (one batchable group) together; returns each run's RunFinished in spec order.

    `should_stop` is one function for the whole group or one per spec. `data` optionally gives
    the loaded DataSplits by seed (as ``load_data(spec.recipe.data, seed)`` would build them).
    `fast` turns on opt-in speed switches (:class:`engine.batched.accel.FastPaths`).
    """
    _check_group(specs)
    tune_allocator()
    fast = fast or FastPaths()
    t0 = time.perf_counter()
    n = len(specs)
    run_ids = list(run_ids) if run_ids is not None else [uuid.uuid4().hex[:10] for _ in specs]
    if len(run_ids) != n:
        raise ValueError(f"{len(run_ids)} run ids for {n} specs")
    stops = _stops(should_stop, n)
    stop_all = should_stop if callable(should_stop) else None  # one function: asked once per step
    dev = torch.device(device)
    first = specs[0].recipe

    # Data: one DataSplits per distinct (data settings, seed), stacked along a leading axis.
    datasets: list[tuple[DataSpec, int]] = []
    for s in specs:
        if (s.recipe.data, s.seed) not in datasets:
            datasets.append((s.recipe.data, s.seed))
    given = dict(data or {})  # by seed, for `first`'s data settings

    def load(spec: DataSpec, seed: int) -> DataSplits:
        return (given[seed] if seed in given and spec == first.data else load_data(spec, seed=seed, device=dev)).to(dev)

    splits = [load(*datasets[0])]
    if len(datasets) > 1 and (need := 2 * len(datasets) * _nbytes(splits[0])) > (room := _stack_budget(dev)):
        raise ValueError(f"the group's {len(datasets)} datasets would take {need / 2**30:.1f} GiB stacked on {dev} "
                         f"(more than {room / 2**30:.1f} GiB): its runs train one by one instead")
    splits += [load(*key) for key in datasets[1:]]
    d0 = splits[0]
    if problem := _mismatch(splits):
        raise ValueError(f"the data of this group cannot be stacked: {problem}")
    classify = d0.task == "classification"
    n_out = d0.n_classes if classify else 1
    n_train = len(d0.x_train)
    bs, per_epoch, total = budget(specs[0], n_train)
    eval_every = _eval_every(specs[0], per_epoch, total)
    diag_every = diagnostics_every(specs[0], eval_every)
    log_every = first.train.log_every

    def stacked(name: str, limit: int | None = None) -> Tensor:
        parts = [getattr(d, name)[:limit] for d in splits]
        return torch.stack(parts)

    x_train, y_train = stacked("x_train"), stacked("y_train")
    eval_sets = {
        "train": (stacked("x_train", MAX_EVAL_TRAIN), stacked("y_train", MAX_EVAL_TRAIN)),
        "val": (stacked("x_val"), stacked("y_val")),
        "test": (stacked("x_test"), stacked("y_test")),
    }

    # Members, ordered so that each optimizer update rule owns a block of rows.
    order = sorted(range(n), key=lambda i: RULE_ORDER.index(rule_of(specs[i].recipe.train)))
    members: list[_Member] = []
    models = []
    for row, i in enumerate(order):
        spec = specs[i]
        t = spec.recipe.train
        members.append(_Member(i, row, spec, run_ids[i], stops[i], LRSchedule(t, total),
                               datasets.index((spec.recipe.data, spec.seed)),
                               augmenter=build_augmenter(t, d0.input_shape, dev),  # None unless it augments
                               solo_loss=build_loss(t, d0.task, d0.n_classes)))
        torch.manual_seed(t.seed)
        models.append(build_model(spec.recipe.model, d0.input_shape, n_out).to(dev))
    M = len(members)
    member_models = [m.spec.recipe.model for m in members]
    model = StackedMLP(models, first.model, dev, member_specs=member_models)
    model.dropout = MemberDropout.of(member_models, [m.train.seed for m in members], dev)
    dropout = model.dropout is not None
    shadow = models[0]  # a solo model to load one member into, for the diagnostics
    shadow.train()
    n_params = count_params(shadow)
    del models
    loss_fn = member_loss([m.train for m in members], d0.task, d0.n_classes, dev)
    use_graphs = fast.cuda_graphs and dev.type == "cuda" and not dropout  # masks are drawn on the host side
    optimizer = StackedOptimizer(model.params, model.grads, [m.train for m in members],
                                 [m.schedule for m in members], device_step=use_graphs)
    member_data = torch.tensor([m.data for m in members], device=dev)
    dataset_index = torch.arange(len(splits), device=dev).unsqueeze(1)
    one_dataset = len(splits) == 1
    same_order = not one_dataset and [m.data for m in members] == list(range(len(splits)))

    def member_rows(x: Tensor) -> Tensor:
        """(D, ...) per-dataset tensors → what the stacked model takes: shared or (M, ...)."""
        if one_dataset:
            return x[0]
        return x if same_order else x.index_select(0, member_data)

    def column(values: list[float | None], empty: float) -> Tensor | None:
        if all(v is None or v == empty for v in values):
            return None
        return torch.tensor([empty if v is None else v for v in values], device=dev, dtype=model.params.dtype)

    # An EMA of the weights per member that asks for one (decay 0 elsewhere: the row just follows the
    # weights), updated after each step with the solo EMA's arithmetic: a = d·a + (1 − d)·w
    ema_decay = column([m.train.ema for m in members], 0.0)
    ema_keep = ema_params = None
    if ema_decay is not None:
        ema_decay = ema_decay.unsqueeze(1)
        ema_keep = torch.tensor([[1.0 - (m.train.ema or 0.0)] for m in members], device=dev, dtype=model.params.dtype)
        ema_params = model.params.detach().clone()
    l1 = column([m.train.l1 for m in members], 0.0)
    l2 = column([m.train.l2 for m in members], 0.0)
    clip_value = column([m.train.clip_value for m in members], math.inf)
    clip_norm = column([m.train.clip_norm for m in members], math.inf)
    if clip_value is not None:
        clip_value = clip_value.unsqueeze(1)
    if clip_norm is not None:
        has_clip_norm = torch.isfinite(clip_norm).unsqueeze(1)
        clip_norm = clip_norm.unsqueeze(1)
    alive = torch.ones(M, device=dev, dtype=model.params.dtype)
    batches = [torch.Generator(device="cpu").manual_seed(seed) for _, seed in datasets]
    chunk = eval_chunk(widest_layer(shadow, d0.input_shape), dev, M)

    versions = library_versions()
    for m in members:
        spec_json: dict[str, Any] = m.spec.model_dump(mode="json")
        spec_json["versions"] = versions
        spec_json["data_info"] = splits[m.data].info
        t = m.train
        emit(RunStarted(m.run_id, m.spec.variant, t.seed, m.spec.preset, m.spec.comparison, spec_json,
                        str(dev), n_params, total, per_epoch))

    step = 0
    before: Tensor | None = None  # the parameters before a step whose update ratios are measured
    window: list[Tensor] = []
    last_read = (0, time.perf_counter())
    perm = torch.empty(0, dtype=torch.long, device=dev)
    active = list(members)

    # -- evaluation and diagnostics ---------------------------------------------------------------
    # Losses and accuracies of every member come from one batched forward pass per chunk. What the
    # solo loop computes per run on its model (extra metrics, weight images, decision boundaries,
    # the model summary, whole-run figures) runs the very same functions on a MemberModel: a stand-in
    # that reads the member's parameters from the stack and, when called, loads the member into
    # `shadow` (a solo model). Per-layer health and decision grids come from the stack for every
    # member at once, once they have been checked against the solo functions (see diagnostics.py).

    loaded: tuple[int, int] | None = None  # (row, steps taken) of the member in the shadow model

    def load(m: _Member) -> None:
        nonlocal loaded
        key = (m.row, optimizer.steps_taken)
        if loaded != key:
            model.load_member(m.row, shadow, grads=optimizer.steps_taken > 0)
            loaded = key

    health = HealthPath()
    boundary_state: dict[str, Any] = {}
    layer_names = shadow.layer_names()
    for m in members:  # the loop's whole-run figures, from each member's initial weights
        m.proxy = MemberModel(model, shadow, m.row, lambda m=m: load(m))
        m.stats = RunStats(m.proxy, m.train, per_epoch, None, {})  # type: ignore[arg-type]

    shadow_params = list(shadow.parameters())
    offsets = [0]
    for p in shadow_params:
        offsets.append(offsets[-1] + p.numel())
    weight_slots = {name: next(k for k, p in enumerate(shadow_params) if p is layer.weight)
                    for name, layer in _weight_layers(shadow)}

    def weights_of(row: Tensor) -> dict[str, Tensor]:
        """What ``snapshot_weights`` gives for a member, read from a row of stacked parameters."""
        return {name: row[offsets[k] : offsets[k + 1]].view_as(shadow_params[k]) for name, k in weight_slots.items()}

    @torch.no_grad()
    def evaluate_all(final: bool) -> tuple[list[str], list[str], list[list[float]]]:
        """(splits, keys, one row of values per member): each split's loss and accuracy, all members."""
        tensors: dict[str, Tensor] = {}
        splits_done = []
        for split in ("train", "val", *(["test"] if final else [])):
            x, y = eval_sets[split]
            size = x.shape[1]
            if size == 0:
                continue
            splits_done.append(split)
            loss_sum = torch.zeros(M, device=dev)
            correct = torch.zeros(M, device=dev)
            for i in range(0, size, chunk):
                out = model(member_rows(x[:, i : i + chunk]))
                yb = member_rows(y[:, i : i + chunk])
                loss_sum += loss_fn(out, yb).sum(dim=1)
                if classify:
                    correct += per_sample_correct(out, yb).sum(dim=1)
            tensors[f"{split}_loss"] = loss_sum / size
            if classify:
                tensors[f"{split}_acc"] = correct / size
        names = list(tensors)
        table = torch.stack([tensors[k] for k in names], dim=1).tolist() if names else [[] for _ in range(M)]
        return splits_done, names, table

    @torch.no_grad()
    def evaluate_ema(final: bool) -> tuple[list[str], list[str], list[list[float]]] | None:
        """``evaluate_all`` with each EMA member's averaged weights in its row (None: no member has
        an EMA); the rows are put back after."""
        if ema_params is None or not any(m.train.ema for m in active):
            return None
        rows = torch.tensor([m.row for m in active if m.train.ema], dtype=torch.long, device=dev)
        saved = model.params.index_select(0, rows)
        model.params.index_copy_(0, rows, ema_params.index_select(0, rows))
        try:
            return evaluate_all(final)
        finally:
            model.params.index_copy_(0, rows, saved)

    def member_values(m: _Member, evaluated: tuple[list[str], list[str], list[list[float]]], final: bool,
                      step: int, with_ema: tuple[list[str], list[str], list[list[float]]] | None = None
                      ) -> dict[str, float]:
        """One member's evaluation as the solo loop's run_eval gives it (the shadow holds the member);
        `with_ema`: the same evaluation of the members' averaged weights (its ``ema_`` figures)."""
        splits_done, names, table = evaluated
        base = dict(zip(names, table[m.row], strict=True))
        extras: dict[str, Tensor] = {}
        for split in splits_done:
            x, y = eval_sets[split]
            extras.update(extra_metrics(m.proxy, m.solo_loss, x[m.data], y[m.data], split,  # type: ignore[arg-type]
                                        d0.task, final=final, batch_size=bs))
        extra_values = dict(zip(extras, torch.stack(list(extras.values())).tolist(), strict=True)) if extras else {}
        values: dict[str, float] = {}
        for split in splits_done:  # the solo loop's key order: each split's loss, acc, extras
            for key in (f"{split}_loss", f"{split}_acc"):
                if key in base:
                    values[key] = base[key]
            values.update({k: v for k, v in extra_values.items() if k.startswith(f"{split}_")})
        values.update({k: v for k, v in extra_values.items() if k not in values})
        if with_ema is not None and m.train.ema:
            averaged = dict(zip(with_ema[1], with_ema[2][m.row], strict=True))
            for split in splits_done:
                for key in (f"{split}_loss", f"{split}_acc"):
                    if key in averaged:
                        values[f"ema_{key}"] = averaged[key]
        if "val_loss" in values and "train_loss" in values:
            values["gap"] = values["val_loss"] - values["train_loss"]
        if classify and "val_acc" in values:
            values["acc_gap"] = values["train_acc"] - values["val_acc"]
        values["lr"] = m.schedule.lr_at(min(step, total - 1))
        return values

    def solo_layers(m: _Member, before: Tensor | None) -> dict[str, dict[str, Any]]:
        """The solo loop's per-layer figures for one member, by the solo functions."""
        before_w = weights_of(before[m.row]) if before is not None else None
        load(m)
        layers = layer_health(shadow, x_train[m.data, :PROBE_SIZE], model.activations[m.row])
        if before_w is not None:
            for name, ratio in update_ratios(before_w, shadow).items():
                layers.setdefault(name, {})["update_ratio"] = ratio
        return layers

    def diagnose(group: list[_Member], step: int, before: Tensor | None) -> None:
        """The solo loop's record_diagnostics for each member (stacked figures once verified)."""
        if not group:
            return
        kind = (optimizer.steps_taken > 0, before is not None)
        fast: list[dict[str, dict[str, Any]]] | None = None
        if health.usable(kind):
            fast = stacked_layer_health(model, member_rows(x_train[:, :PROBE_SIZE]), model.activations, kind[0],
                                        layer_names)
            if before is not None:
                for layers, ratios in zip(fast, stacked_update_ratios(before, model, layer_names), strict=True):
                    for name, ratio in ratios.items():
                        layers.setdefault(name, {})["update_ratio"] = ratio
        for m in group:
            if fast is not None and health.usable(kind):
                layers = fast[m.row]
                checking = (*kind, model.activations[m.row])  # each activation of the group is checked
                if not health.checked(checking):
                    solo = solo_layers(m, before)
                    if not health.decide(checking, layers, solo):
                        log.info("batched diagnostics differ from engine.diagnostics.health (%s); "
                                 "using the solo functions for this group", "; ".join(health.problems[:3]))
                        layers = solo
            else:
                layers = solo_layers(m, before)
            proxy = m.proxy
            add_weight_images(layers, proxy, step, diag_every * IMAGE_EVERY, total)  # type: ignore[arg-type]
            m.summary.update(model_summary(proxy, layers))  # type: ignore[arg-type]
            emit(Diagnostics(m.run_id, step, layers, {k: v for k, v in m.summary.items() if "." not in k}))
            m.diagnosed_at = step
        rows_by_data: dict[int, list[tuple[int, str]]] = {}
        for m in group:
            rows_by_data.setdefault(m.data, []).append((m.row, m.run_id))
        proxies = {m.row: m.proxy for m in group}
        for plane in boundary_events(model, proxies, rows_by_data, splits, step, boundary_event, boundary_state):
            emit(plane)

    def record_eval(group: list[_Member], step: int, diagnostics: bool, before: Tensor | None = None
                    ) -> dict[int, dict[str, float]]:
        """The solo loop's record_eval (and record_diagnostics when `diagnostics`), for each member."""
        evaluated = evaluate_all(False)
        with_ema = evaluate_ema(False)
        out: dict[int, dict[str, float]] = {}
        now = time.perf_counter() - t0
        epoch = step / per_epoch
        for m in group:
            values = member_values(m, evaluated, False, step, with_ema)
            emit(EvalMetrics(m.run_id, step, epoch, values, now))
            m.history.append({"step": step, "epoch": epoch, **values})
            best = m.best
            val_loss = values.get("val_loss", values.get("train_loss", math.inf))
            if math.isfinite(val_loss) and val_loss < best.get("best_val_loss", math.inf):
                best.update(best_val_loss=val_loss, best_step=step, best_epoch=epoch)
                if classify:
                    best["best_val_acc_at_best_loss"] = values.get("val_acc", 0.0)
                m.evals_since_best = 0
                if m.train.early_stopping and m.train.restore_best:
                    m.best_state = model.member_state(m.row)
            else:
                m.evals_since_best += 1
            if classify:
                best["best_val_acc"] = max(best.get("best_val_acc", 0.0), values.get("val_acc", 0.0))
            best["min_train_loss"] = min(best.get("min_train_loss", math.inf), values.get("train_loss", math.inf))
            if m.schedule.kind == "plateau":
                factor = m.schedule.factor
                m.schedule.on_eval(val_loss)
                if m.schedule.factor != factor:
                    optimizer.refresh_lr(m.row, step)
            out[m.row] = values
        if diagnostics:
            diagnose(group, step, before)
        return out

    def finish(group: list[_Member], status: str, reasons: dict[int, str], step: int) -> None:
        """End these members at `step`: final evaluation, diagnostics, RunFinished; then freeze their rows."""
        if not group:
            return
        evaluated = evaluate_all(True)
        with_ema = evaluate_ema(True)
        wall = time.perf_counter() - t0
        finals = {m.row: member_values(m, evaluated, True, step, with_ema) for m in group}
        if status == "diverged":  # a diverged run's losses count as infinitely bad in claims
            finals = {row: {k: (math.inf if k.endswith("loss") or k.endswith("gap") else v) for k, v in final.items()}
                      for row, final in finals.items()}
        else:  # the end's diagnostics, unless the last evaluation already took them at this step
            diagnose([m for m in group if m.diagnosed_at != step], step, None)
        for m in group:
            final = finals[m.row]
            final["epoch"] = step / per_epoch
            final["steps"] = float(step)
            m.summary.update(m.stats.summary(m.history, final))
            m.finished = RunFinished(m.run_id, status, step, reasons[m.row], final, m.best, wall,  # type: ignore[arg-type]
                                     {k: v for k, v in m.summary.items() if isinstance(v, int | float)})
            emit(m.finished)
        for m in group:
            active.remove(m)
            model.freeze(m.row)
            m.best_state = None
            optimizer.reset_rows(m.row)
            alive[m.row] = 0.0
        if active and len(active) <= M // 2 and not use_graphs and total - step >= max(1, total // 10):
            compact()

    def compact() -> None:
        """Drop the finished members' rows (``StackedMLP.keep``): half the stack or more had
        finished, and their zeroed rows would go on costing FLOPs until the end."""
        nonlocal optimizer, manual, l1, l2, clip_value, clip_norm, has_clip_norm, alive, member_data, same_order
        nonlocal loaded, chunk, M, before, ema_params, ema_decay, ema_keep
        rows = [m.row for m in active]
        index = torch.tensor(rows, dtype=torch.long, device=dev)

        def pick(column: Tensor | None) -> Tensor | None:
            return None if column is None else column.index_select(0, index)

        model.keep(rows)
        optimizer = optimizer.kept(rows, model.params, model.grads)
        l1, l2, clip_value, clip_norm, before = pick(l1), pick(l2), pick(clip_value), pick(clip_norm), pick(before)
        ema_params, ema_decay, ema_keep = pick(ema_params), pick(ema_decay), pick(ema_keep)
        if clip_norm is not None:
            has_clip_norm = has_clip_norm.index_select(0, index)
        alive = alive.index_select(0, index)
        window[:] = [w.index_select(0, index) for w in window]  # losses not read yet
        for new, m in enumerate(active):
            m.row = new
            m.proxy.moved(new)  # type: ignore[union-attr]
        member_data = torch.tensor([m.data for m in active], device=dev)
        same_order = not one_dataset and [m.data for m in active] == list(range(len(splits)))
        M = len(rows)
        chunk = eval_chunk(widest_layer(shadow, d0.input_shape), dev, M)
        loaded = None
        if manual is not None:
            manual = ManualStep(model, first.model, [m.train for m in active], d0.task, l1, l2)

    def stop_early(group: list[_Member], step: int) -> None:
        """The solo loop's early stop for these members: best weights back (when kept), then finish."""
        nonlocal loaded
        reasons = {}
        for m in group:
            reasons[m.row] = (f"no val-loss improvement for {m.train.patience} evaluations; "
                              f"best at step {m.best.get('best_step', 0):.0f}")
            if m.best_state is not None:
                model.load_member_state(m.row, m.best_state)
                loaded = None  # the shadow may hold this member's later weights
                emit(Message(m.run_id, f"restored the best weights (step {m.best.get('best_step', 0):.0f})"))
        finish(group, "early-stopped", reasons, step)

    def read_window(step: int) -> None:
        nonlocal last_read
        losses = torch.stack(window, dim=1).tolist()  # host sync: once per log_every steps, all members
        window.clear()
        now = time.perf_counter()
        rate = (step - last_read[0]) / max(now - last_read[1], 1e-9)
        last_read = (step, now)
        diverged: dict[int, str] = {}
        for m in active:
            row = losses[m.row]
            m.stats.on_window(row, step)
            limit = m.train.diverge_threshold
            bad = next((i for i, v in enumerate(row) if not math.isfinite(v) or abs(v) > limit), None)
            if bad is not None:
                diverged[m.row] = f"loss became {row[bad]:.3g} at step {step - len(row) + bad + 1}"
                continue
            emit(StepMetrics(m.run_id, step, step / per_epoch, sum(row) / len(row),
                             m.schedule.lr_at(step - 1), now - t0, rate))
        finish([m for m in active if m.row in diverged], "diverged", diverged, step)

    def augment(xb: Tensor) -> Tensor:
        """The training batch with each augmenting member's own transform of its rows (as its solo
        run transforms its batch); the batch as it is when no member augments."""
        mine = [m for m in active if m.augmenter is not None]
        if not mine:
            return xb
        if xb.dim() == 1 + len(d0.input_shape):  # shared by every member: each gets its own copy
            xb = xb.expand(M, *xb.shape)
        rows = list(xb.unbind(0))
        for m in mine:
            rows[m.row] = m.augmenter(rows[m.row])
        return torch.stack(rows)

    # -- one training step (eager, compiled, or captured in a CUDA graph) ----------------------

    def forward_loss(xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        with autocast(dev, fast.bf16):
            data_loss = loss_fn(model(xb, train=True), yb).mean(dim=1)
        objective = data_loss
        pen = model.penalty(l1, l2)
        if pen is not None:
            objective = objective + pen
        return data_loss, (objective * alive).sum()

    forward_loss = maybe_compile(forward_loss, fast.compile)

    manual = None
    if not (fast.bf16 or fast.compile) and manual_supported(member_models, [m.train for m in members]):
        manual = ManualStep(model, first.model, [m.train for m in members], d0.task, l1, l2)

    def train_step(xb: Tensor, yb: Tensor, step: int) -> Tensor:
        if manual is not None:  # forward and backward written out (engine.batched.manual)
            data_loss = manual.step(xb, yb, alive)
        else:
            model.grads.zero_()
            data_loss, objective = forward_loss(xb, yb)
            with quiet_layout_warning():
                objective.backward()
        if clip_value is not None:
            model.grads.clamp_(min=-clip_value, max=clip_value)
        if clip_norm is not None:
            norms = model.grads.norm(dim=1, keepdim=True)
            coef = (clip_norm / (norms + 1e-6)).clamp(max=1.0)
            model.grads.mul_(torch.where(has_clip_norm, coef, torch.ones_like(coef)))
        optimizer.step(step)
        if ema_params is not None:
            ema_params.mul_(ema_decay).addcmul_(model.params, ema_keep)
        return data_loss.detach()

    graph: StepGraph | None = None
    if fast.cuda_graphs and not use_graphs:
        why = "a member has dropout or DropConnect" if dropout and dev.type == "cuda" else "CUDA graphs need a CUDA device"
        for m in members:
            emit(Message(m.run_id, f"{why}; training eagerly on {dev}", "info"))

    # -- the loop ------------------------------------------------------------------------------

    try:
        record_eval(active, 0, diagnostics=True)
        for m in active:
            m.stats.resume(0)
        while step < total and active:
            if stop_all is not None:
                cancelled = list(active) if stop_all() else []
            else:
                cancelled = [m for m in active if m.stop()]
            if cancelled:
                finish(cancelled, "cancelled", {m.row: f"cancelled at step {step}" for m in cancelled}, step)
                if not active:
                    break
            i = step % per_epoch
            if i == 0:
                perm = torch.stack([torch.randperm(n_train, generator=g) for g in batches]).to(dev)
            idx = perm[:, i * bs : (i + 1) * bs]
            xb = augment(member_rows(x_train[dataset_index, idx]))
            yb = member_rows(y_train[dataset_index, idx])
            diag_now = (step + 1) % diag_every == 0
            before = model.params.clone() if diag_now else None

            if graph is not None and graph.fits(xb, yb):
                data_loss = graph.run(xb, yb).clone()
            else:  # eagerly: before the capture, and for an epoch's short last batch after it
                data_loss = train_step(xb, yb, step)
                if graph is None and use_graphs and optimizer.steps_taken == GRAPH_WARMUP:
                    try:
                        graph = StepGraph.capture(lambda x, y: train_step(x, y, 0), (xb, yb), warmup=0)
                    except Exception as exc:  # noqa: BLE001 - fall back to eager steps, say why
                        use_graphs = False
                        for m in active:
                            emit(Message(m.run_id, f"CUDA graph capture failed, training eagerly: {exc}",
                                         "warning"))
            window.append(data_loss)
            step += 1
            if step % log_every == 0 or step == total:
                read_window(step)
            if step % eval_every == 0 or step == total:
                if window:
                    read_window(step)
                if not active:
                    break
                group = list(active)
                values = record_eval(group, step, diag_now or step == total, before)
                for m in group:
                    m.stats.resume(step)
                bad = [m for m in group if not math.isfinite(values[m.row].get("train_loss", 0.0))]
                patience_out = [m for m in group if m not in bad and m.train.early_stopping
                                and m.evals_since_best >= m.train.patience]
                finish(bad, "diverged", {m.row: f"evaluation loss became non-finite at step {step}" for m in bad}, step)
                stop_early(patience_out, step)  # rows may have moved: the lists hold the members
    except torch.cuda.OutOfMemoryError:
        reason = f"out of memory on {dev}: try a smaller batch_size or model (or fewer runs per batched group)"
        for m in list(active):
            final = {"epoch": step / per_epoch, "steps": float(step)}
            m.summary.update(m.stats.summary(m.history, final))
            m.finished = RunFinished(m.run_id, "failed", step, reason, final, m.best, time.perf_counter() - t0,
                                     {k: v for k, v in m.summary.items() if isinstance(v, int | float)})
            emit(m.finished)
            active.remove(m)

    if active:
        finish(list(active), "done", {m.row: f"finished {total} steps" for m in active}, step)
    by_index = {m.index: m.finished for m in members}
    return [by_index[i] for i in range(n)]  # type: ignore[misc]
