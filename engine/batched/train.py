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
* its bookkeeping: a :class:`engine.training.runbook.RunLedger` (the solo loop's own) holds its
  history, best figures, patience and summary, and words its RunStarted and RunFinished;
* its ending: a member that diverges, is cancelled or stops early finishes at that step (final
  evaluation, RunFinished) while the others go on; its row is zeroed and drops out of the
  objective, and once half the stack has ended the finished rows leave it (``BatchedRun.compact``).

:class:`BatchedRun` holds the group's state (the stacked model, its optimizer, the per-member
columns, the data, the loss window) and the loop's steps as methods; ``train_batched`` builds one
and runs it. The loop reads the losses of every member at once every ``log_every`` steps (one host
sync for the group) and evaluates every member at once. The training step is written out without
autograd where it can be (:mod:`engine.batched.manual`); the per-layer diagnostics and decision
grids come from the stack for all members at once after a check against the solo functions
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from engine.batched.accel import FastPaths, StepGraph, autocast, maybe_compile, tune_allocator
from engine.batched.checkpoint import KIND as CHECKPOINT_KIND
from engine.batched.checkpoint import GroupCheckpointer, group_specs
from engine.batched.checkpoint import restore as restore_group
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
    add_weight_images,
    layer_health,
    model_summary,
    update_ratios,
    weight_layers,
)
from engine.diagnostics.run_stats import RunStats
from engine.events import ENDED, Diagnostics, Event, Message, RunFinished, StepMetrics
from engine.models import build_model, count_params
from engine.recipe.config import DataSpec, RunSpec
from engine.recipe.losses import build_loss
from engine.recipe.schedules import LRSchedule
from engine.techniques.augment import Augmenter, build_augmenter
from engine.training.checkpoint import load as load_checkpoint
from engine.training.loop import MAX_EVAL_TRAIN, PROBE_SIZE, eval_chunk, widest_layer
from engine.training.metrics import extra_metrics
from engine.training.runbook import (
    RunLedger,
    budget,
    cancelled_reason,
    diagnostics_every,
    eval_every,
    finished_reason,
    nonfinite_eval_reason,
    out_of_memory_reason,
)

StopFn = Callable[[], bool]
Evaluation = tuple[list[str], list[str], list[list[float]]]
"""(splits evaluated, figure names, one row of figures per member row): what ``evaluate_all`` gives."""
log = logging.getLogger(__name__)
GRAPH_WARMUP = 3
"""Eager steps before the training step is captured in a CUDA graph (they build the optimizer state)."""
OOM_HINT = "try a smaller batch_size or model (or fewer runs per batched group)"


@dataclass
class _Member:
    """One run of the group: its spec, its row in the stack, its ledger (what it has reported)."""

    index: int  # position in the caller's spec list
    row: int  # row in the stacked model
    spec: RunSpec
    run_id: str
    stop: StopFn
    schedule: LRSchedule
    data: int  # which dataset (distinct seed)
    ledger: RunLedger
    augmenter: Augmenter | None = None  # its own augmentation of each training batch (its own stream)
    proxy: MemberModel | None = None  # its solo model, read from the stack (for the solo loop's functions)
    solo_loss: Callable | None = None  # its loss as the solo loop builds it (for the same functions)
    best_state: list[Tensor] | None = None  # with early stopping and restore_best: its best weights

    @property
    def train(self):
        return self.spec.recipe.train

    @property
    def stats(self) -> RunStats:
        """Its whole-run figures (the ledger's RunStats, set once the stack is built)."""
        assert self.ledger.stats is not None
        return self.ledger.stats


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
    tensors = (d.x_train, d.y_train, d.x_val, d.y_val, d.x_test, d.y_test)
    return sum(t.numel() * t.element_size() for t in tensors)


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
            return (f"{d.task} {d.input_shape} → {d.n_classes} against "
                    f"{d0.task} {d0.input_shape} → {d0.n_classes}")
        sizes = [len(d.x_train), len(d.x_val), len(d.x_test)]
        sizes0 = [len(d0.x_train), len(d0.x_val), len(d0.x_test)]
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
    checkpoints: str | Path | None = None,
    resume: bool = False,
) -> list[RunFinished]:
    """Train `specs` (one batchable group) together; returns each run's RunFinished in spec order.

    `should_stop` is one function for the whole group or one per spec. `data` optionally gives
    the loaded DataSplits by seed (as ``load_data(spec.recipe.data, seed)`` would build them).
    `fast` turns on opt-in speed switches (:class:`engine.batched.accel.FastPaths`).
    `checkpoints`: the folder the group checkpoints into (:mod:`engine.batched.checkpoint`: every
    few tens of seconds at an evaluation, and when it is cancelled); `resume`: `run_ids` go on from
    their group's checkpoint there (they are the runs it had training; `specs` are theirs).
    """
    saver = GroupCheckpointer(checkpoints) if checkpoints is not None else None
    if resume:
        return _resume(specs, emit, should_stop, device=device, run_ids=run_ids, fast=fast, saver=saver)
    _check_group(specs)
    tune_allocator()
    return BatchedRun(specs, emit, should_stop, device=device, run_ids=run_ids, data=data, fast=fast,
                      saver=saver).run()


def _resume(specs: Sequence[RunSpec], emit: Callable[[Event], None], should_stop: StopFn | Sequence[StopFn], *,
            device: str | torch.device, run_ids: Sequence[str] | None, fast: FastPaths | None,
            saver: GroupCheckpointer | None) -> list[RunFinished]:
    """Rebuild the group a checkpoint was taken of (every run it had, in its order), put it back
    where the checkpoint left it and train `run_ids` on; the runs that had ended stay silent."""
    if saver is None or not run_ids:
        raise ValueError("a resumed group needs its checkpoint folder and its run ids")
    ids = list(run_ids)
    path = saver.path(ids[0])
    if not path.exists():
        raise ValueError(f"run {ids[0]} has no checkpoint to resume from")
    state = load_checkpoint(path)
    if state.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"run {ids[0]}'s checkpoint is not a batched group's")
    group_ids = list(state["run_ids"])
    training = [group_ids[i] for i in state["active"]]
    if sorted(training) != sorted(ids):
        raise ValueError(f"the group's checkpoint goes on with runs {', '.join(training)}, not {', '.join(ids)}")
    own_stops = dict(zip(ids, _stops(should_stop, len(ids)), strict=True))
    stops = [own_stops.get(run_id, lambda: False) for run_id in group_ids]
    group = [RunSpec.from_stored(data) for data in group_specs(state)]
    mine = set(ids)

    def emit_mine(event: Event) -> None:  # the runs that had ended said their last word already
        if event.run_id in mine:
            emit(event)

    tune_allocator()
    run = BatchedRun(group, emit_mine, stops, device=device, run_ids=group_ids, data=None, fast=fast, saver=saver)
    restore_group(run, state)
    for m in run.active:
        emit(Message(m.run_id, f"resumed at step {run.step} from its group's checkpoint"))
    finished = run.run(resumed=True)
    by_id = {f.run_id: f for f in finished if f is not None}
    return [by_id[run_id] for run_id in ids]


class BatchedRun:
    """One batchable group in training: the stacked model and everything that steps with it.

    Built in order (the data, the members and their models under their seeds, the stack and its
    optimizer, the per-member columns, each member's RunStarted, the stand-ins for the solo
    functions), then :meth:`run` trains until every member has finished. Per-member settings live
    in columns with one row per member still in the stack (``l1``, ``l2``, ``clip_value``,
    ``clip_norm``, ``alive``, the EMA tensors …); :meth:`compact` replaces them (and the optimizer,
    the manual step) when finished members leave, so the step methods read them from ``self``
    on every call.
    """

    # -- building the group ------------------------------------------------------------------------

    def __init__(self, specs: Sequence[RunSpec], emit: Callable[[Event], None],
                 should_stop: StopFn | Sequence[StopFn], *, device: str | torch.device,
                 run_ids: Sequence[str] | None, data: Mapping[int, DataSplits] | None,
                 fast: FastPaths | None, saver: GroupCheckpointer | None = None) -> None:
        self.emit = emit
        self.saver = saver
        self.fast = fast or FastPaths()
        self.t0 = time.perf_counter()
        n = len(specs)
        ids = list(run_ids) if run_ids is not None else [uuid.uuid4().hex[:10] for _ in specs]
        if len(ids) != n:
            raise ValueError(f"{len(ids)} run ids for {n} specs")
        stops = _stops(should_stop, n)
        self.stop_all = should_stop if callable(should_stop) else None  # one function: asked once per step
        self.dev = torch.device(device)
        self.first = specs[0].recipe
        self._load_data(specs, data)
        solo_models = self._build_members(specs, ids, stops)
        self._build_stack(solo_models)
        self._build_columns()
        for m in self.members:
            self.emit(m.ledger.started(self.dev, self.n_params, self.splits[m.data].info))

        self.step = 0
        self.before: Tensor | None = None  # the parameters before a step whose update ratios are measured
        self.window: list[Tensor] = []  # each step's (M,) data losses, not read yet
        self.last_read = (0, time.perf_counter())
        self.perm = torch.empty(0, dtype=torch.long, device=self.dev)
        self.active = list(self.members)  # the members still training
        self.stacked = list(self.members)  # the members with a row in the stack, in row order
        self._prepare_diagnostics()

        self.objective = maybe_compile(self.forward_loss, self.fast.compile)
        self.manual: ManualStep | None = None
        if not (self.fast.bf16 or self.fast.compile) and manual_supported(
                self.member_models, [m.train for m in self.members]):
            self.manual = ManualStep(self.model, self.first.model, [m.train for m in self.members],
                                     self.d0.task, self.l1, self.l2)
        self.graph: StepGraph | None = None
        if self.fast.cuda_graphs and not self.use_graphs:
            why = ("a member has dropout or DropConnect" if self.has_dropout and self.dev.type == "cuda"
                   else "CUDA graphs need a CUDA device")
            for m in self.members:
                self.emit(Message(m.run_id, f"{why}; training eagerly on {self.dev}", "info"))

    def load_dataset(self, spec: DataSpec, seed: int, given: Mapping[int, DataSplits]) -> DataSplits:
        """One dataset of the group: the caller's (by seed, for the first run's data settings) or loaded."""
        if seed in given and spec == self.first.data:
            return given[seed].to(self.dev)
        return load_data(spec, seed=seed, device=self.dev).to(self.dev)

    def _load_data(self, specs: Sequence[RunSpec], data: Mapping[int, DataSplits] | None) -> None:
        """One DataSplits per distinct (data settings, seed), stacked along a leading axis."""
        dev = self.dev
        self.datasets: list[tuple[DataSpec, int]] = []
        for s in specs:
            if (s.recipe.data, s.seed) not in self.datasets:
                self.datasets.append((s.recipe.data, s.seed))
        given = dict(data or {})  # by seed, for the first run's data settings
        splits = [self.load_dataset(*self.datasets[0], given)]
        if len(self.datasets) > 1 and (need := 2 * len(self.datasets) * _nbytes(splits[0])) > (
                room := _stack_budget(dev)):
            raise ValueError(f"the group's {len(self.datasets)} datasets would take {need / 2**30:.1f} GiB "
                             f"stacked on {dev} (more than {room / 2**30:.1f} GiB): "
                             "its runs train one by one instead")
        splits += [self.load_dataset(*key, given) for key in self.datasets[1:]]
        self.splits = splits
        self.d0 = d0 = splits[0]
        if problem := _mismatch(splits):
            raise ValueError(f"the data of this group cannot be stacked: {problem}")
        self.classify = d0.task == "classification"
        self.n_out = d0.n_classes if self.classify else 1
        self.n_train = len(d0.x_train)
        self.bs, self.per_epoch, self.total = budget(specs[0], self.n_train)
        self.eval_every = eval_every(specs[0], self.per_epoch, self.total)
        self.diag_every = diagnostics_every(specs[0], self.eval_every)
        self.log_every = self.first.train.log_every

        def stacked(name: str, limit: int | None = None) -> Tensor:
            return torch.stack([getattr(d, name)[:limit] for d in splits])

        self.x_train, self.y_train = stacked("x_train"), stacked("y_train")
        self.eval_sets = {
            "train": (stacked("x_train", MAX_EVAL_TRAIN), stacked("y_train", MAX_EVAL_TRAIN)),
            "val": (stacked("x_val"), stacked("y_val")),
            "test": (stacked("x_test"), stacked("y_test")),
        }
        self.dataset_index = torch.arange(len(splits), device=dev).unsqueeze(1)
        self.one_dataset = len(splits) == 1

    def _build_members(self, specs: Sequence[RunSpec], ids: list[str], stops: list[StopFn]
                       ) -> list[nn.Module]:
        """The members, ordered so that each optimizer update rule owns a block of rows; returns their
        solo models, each built under its run's seed."""
        d0, dev = self.d0, self.dev
        order = sorted(range(len(specs)), key=lambda i: RULE_ORDER.index(rule_of(specs[i].recipe.train)))
        self.members: list[_Member] = []
        models = []
        for row, i in enumerate(order):
            spec = specs[i]
            t = spec.recipe.train
            self.members.append(_Member(
                i, row, spec, ids[i], stops[i], LRSchedule(t, self.total),
                self.datasets.index((spec.recipe.data, spec.seed)),
                RunLedger(spec, ids[i], self.classify, self.per_epoch, self.total),
                augmenter=build_augmenter(t, d0.input_shape, dev),  # None unless it augments
                solo_loss=build_loss(t, d0.task, d0.n_classes)))
            torch.manual_seed(t.seed)
            models.append(build_model(spec.recipe.model, d0.input_shape, self.n_out).to(dev))
        return models

    def _build_stack(self, models: list[nn.Module]) -> None:
        """The stacked model from the members' solo models, its loss and its optimizer."""
        members, dev = self.members, self.dev
        self.M = len(members)
        self.member_models = [m.spec.recipe.model for m in members]
        self.model = model = StackedMLP(models, self.first.model, dev, member_specs=self.member_models)
        model.dropout = MemberDropout.of(self.member_models, [m.train.seed for m in members], dev)
        self.has_dropout = model.dropout is not None
        self.shadow = models[0]  # a solo model to load one member into, for the diagnostics
        self.shadow.train()
        self.n_params = count_params(self.shadow)
        self.loss_fn = member_loss([m.train for m in members], self.d0.task, self.d0.n_classes, dev)
        # masks are drawn on the host side: no graphs with dropout
        self.use_graphs = self.fast.cuda_graphs and dev.type == "cuda" and not self.has_dropout
        self.optimizer = StackedOptimizer(model.params, model.grads, [m.train for m in members],
                                          [m.schedule for m in members], device_step=self.use_graphs)
        self.member_data = torch.tensor([m.data for m in members], device=dev)
        self.same_order = not self.one_dataset and [m.data for m in members] == list(range(len(self.splits)))

    def column(self, values: list[float | None], empty: float) -> Tensor | None:
        """One value per member as a device column (None when every member has `empty`)."""
        if all(v is None or v == empty for v in values):
            return None
        return torch.tensor([empty if v is None else v for v in values], device=self.dev,
                            dtype=self.model.params.dtype)

    def _build_columns(self) -> None:
        """The per-member settings of the step as columns, the alive mask, the batch generators."""
        members, dev, dtype = self.members, self.dev, self.model.params.dtype
        # An EMA of the weights per member that asks for one (decay 0 elsewhere: the row just follows the
        # weights), updated after each step with the solo EMA's arithmetic: a = d·a + (1 − d)·w
        self.ema_decay = self.column([m.train.ema for m in members], 0.0)
        self.ema_keep: Tensor | None = None
        self.ema_params: Tensor | None = None
        if self.ema_decay is not None:
            self.ema_decay = self.ema_decay.unsqueeze(1)
            self.ema_keep = torch.tensor([[1.0 - (m.train.ema or 0.0)] for m in members], device=dev,
                                         dtype=dtype)
            self.ema_params = self.model.params.detach().clone()
        self.l1 = self.column([m.train.l1 for m in members], 0.0)
        self.l2 = self.column([m.train.l2 for m in members], 0.0)
        self.clip_value = self.column([m.train.clip_value for m in members], math.inf)
        self.clip_norm = self.column([m.train.clip_norm for m in members], math.inf)
        self.has_clip_norm: Tensor | None = None
        if self.clip_value is not None:
            self.clip_value = self.clip_value.unsqueeze(1)
        if self.clip_norm is not None:
            self.has_clip_norm = torch.isfinite(self.clip_norm).unsqueeze(1)
            self.clip_norm = self.clip_norm.unsqueeze(1)
        self.alive = torch.ones(self.M, device=dev, dtype=dtype)
        self.batches = [torch.Generator(device="cpu").manual_seed(seed) for _, seed in self.datasets]
        self.chunk = eval_chunk(widest_layer(self.shadow, self.d0.input_shape), dev, self.M)

    def member_rows(self, x: Tensor) -> Tensor:
        """(D, ...) per-dataset tensors → what the stacked model takes: shared or (M, ...)."""
        if self.one_dataset:
            return x[0]
        return x if self.same_order else x.index_select(0, self.member_data)

    # -- evaluation and diagnostics ---------------------------------------------------------------
    # Losses and accuracies of every member come from one batched forward pass per chunk. What the
    # solo loop computes per run on its model (extra metrics, weight images, decision boundaries,
    # the model summary, whole-run figures) runs the very same functions on a MemberModel: a stand-in
    # that reads the member's parameters from the stack and, when called, loads the member into
    # `shadow` (a solo model). Per-layer health and decision grids come from the stack for every
    # member at once, once they have been checked against the solo functions (see diagnostics.py).

    def _prepare_diagnostics(self) -> None:
        """Each member's stand-in solo model and whole-run figures; where each weight sits in a row."""
        shadow = self.shadow
        self.in_shadow: tuple[int, int] | None = None  # (row, steps taken) of the member the shadow holds
        self.health_path = HealthPath()
        self.boundary_state: dict[str, Any] = {}
        self.layer_names = shadow.layer_names()
        for m in self.members:  # the loop's whole-run figures, from each member's initial weights
            m.proxy = MemberModel(self.model, shadow, m.row, lambda m=m: self.put_in_shadow(m))
            m.ledger.stats = RunStats(m.proxy, m.train, self.per_epoch, None, {})  # type: ignore[arg-type]
        self.shadow_params = list(shadow.parameters())
        self.offsets = [0]
        for p in self.shadow_params:
            self.offsets.append(self.offsets[-1] + p.numel())
        self.weight_slots = {name: next(k for k, p in enumerate(self.shadow_params) if p is layer.weight)
                             for name, layer in weight_layers(shadow)}

    def put_in_shadow(self, m: _Member) -> None:
        """Load member `m`'s weights (and gradients, once there are any) into the shadow model,
        unless it holds them already."""
        key = (m.row, self.optimizer.steps_taken)
        if self.in_shadow != key:
            self.model.load_member(m.row, self.shadow, grads=self.optimizer.steps_taken > 0)
            self.in_shadow = key

    def weights_of(self, row: Tensor) -> dict[str, Tensor]:
        """What ``snapshot_weights`` gives for a member, read from a row of stacked parameters."""
        offsets, params = self.offsets, self.shadow_params
        return {name: row[offsets[k] : offsets[k + 1]].view_as(params[k])
                for name, k in self.weight_slots.items()}

    @torch.no_grad()
    def evaluate_all(self, final: bool) -> Evaluation:
        """(splits, keys, one row of values per member): each split's loss and accuracy, all members."""
        tensors: dict[str, Tensor] = {}
        splits_done = []
        M, chunk, model = self.M, self.chunk, self.model
        for split in ("train", "val", *(["test"] if final else [])):
            x, y = self.eval_sets[split]
            size = x.shape[1]
            if size == 0:
                continue
            splits_done.append(split)
            loss_sum = torch.zeros(M, device=self.dev)
            correct = torch.zeros(M, device=self.dev)
            for i in range(0, size, chunk):
                out = model(self.member_rows(x[:, i : i + chunk]))
                yb = self.member_rows(y[:, i : i + chunk])
                loss_sum += self.loss_fn(out, yb).sum(dim=1)
                if self.classify:
                    correct += per_sample_correct(out, yb).sum(dim=1)
            tensors[f"{split}_loss"] = loss_sum / size
            if self.classify:
                tensors[f"{split}_acc"] = correct / size
        names = list(tensors)
        table = torch.stack([tensors[k] for k in names], dim=1).tolist() if names else [[] for _ in range(M)]
        return splits_done, names, table

    @torch.no_grad()
    def evaluate_ema(self, final: bool) -> Evaluation | None:
        """``evaluate_all`` with each EMA member's averaged weights in its row (None: no member has
        an EMA); the rows are put back after."""
        if self.ema_params is None or not any(m.train.ema for m in self.active):
            return None
        params = self.model.params
        rows = torch.tensor([m.row for m in self.active if m.train.ema], dtype=torch.long, device=self.dev)
        saved = params.index_select(0, rows)
        params.index_copy_(0, rows, self.ema_params.index_select(0, rows))
        try:
            return self.evaluate_all(final)
        finally:
            params.index_copy_(0, rows, saved)

    def member_values(self, m: _Member, evaluated: Evaluation, final: bool, step: int,
                      with_ema: Evaluation | None = None) -> dict[str, float]:
        """One member's evaluation as the solo loop's run_eval gives it (the shadow holds the member);
        `with_ema`: the same evaluation of the members' averaged weights (its ``ema_`` figures)."""
        splits_done, names, table = evaluated
        base = dict(zip(names, table[m.row], strict=True))
        extras: dict[str, Tensor] = {}
        for split in splits_done:
            x, y = self.eval_sets[split]
            extras.update(extra_metrics(m.proxy, m.solo_loss, x[m.data], y[m.data],  # type: ignore[arg-type]
                                        split, self.d0.task, final=final, batch_size=self.bs))
        extra_values = {}
        if extras:
            extra_values = dict(zip(extras, torch.stack(list(extras.values())).tolist(), strict=True))
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
        if self.classify and "val_acc" in values:
            values["acc_gap"] = values["train_acc"] - values["val_acc"]
        values["lr"] = m.schedule.lr_at(min(step, self.total - 1))
        return values

    def solo_layers(self, m: _Member, before: Tensor | None) -> dict[str, dict[str, Any]]:
        """The solo loop's per-layer figures for one member, by the solo functions."""
        before_w = self.weights_of(before[m.row]) if before is not None else None
        self.put_in_shadow(m)
        layers = layer_health(self.shadow, self.x_train[m.data, :PROBE_SIZE], self.model.activations[m.row])
        if before_w is not None:
            for name, ratio in update_ratios(before_w, self.shadow).items():
                layers.setdefault(name, {})["update_ratio"] = ratio
        return layers

    def stacked_layers(self, kind: tuple[bool, bool], before: Tensor | None
                       ) -> list[dict[str, dict[str, Any]]]:
        """Every member's per-layer figures from the stack at once (each row's update ratios too)."""
        model = self.model
        out = stacked_layer_health(model, self.member_rows(self.x_train[:, :PROBE_SIZE]), model.activations,
                                   kind[0], self.layer_names)
        if before is not None:
            ratios_by_row = stacked_update_ratios(before, model, self.layer_names)
            for layers, ratios in zip(out, ratios_by_row, strict=True):
                for name, ratio in ratios.items():
                    layers.setdefault(name, {})["update_ratio"] = ratio
        return out

    def diagnose(self, group: list[_Member], step: int, before: Tensor | None) -> None:
        """The solo loop's record_diagnostics for each member (stacked figures once verified)."""
        if not group:
            return
        health, model = self.health_path, self.model
        kind = (self.optimizer.steps_taken > 0, before is not None)
        stacked = self.stacked_layers(kind, before) if health.usable(kind) else None
        for m in group:
            if stacked is not None and health.usable(kind):
                layers = stacked[m.row]
                checking = (*kind, model.activations[m.row])  # each activation of the group is checked
                if not health.checked(checking):
                    solo = self.solo_layers(m, before)
                    if not health.decide(checking, layers, solo):
                        log.info("batched diagnostics differ from engine.diagnostics.health (%s); "
                                 "using the solo functions for this group", "; ".join(health.problems[:3]))
                        layers = solo
            else:
                layers = self.solo_layers(m, before)
            proxy, summary = m.proxy, m.ledger.summary
            images_every = self.diag_every * IMAGE_EVERY
            add_weight_images(layers, proxy, step, images_every, self.total)  # type: ignore[arg-type]
            summary.update(model_summary(proxy, layers))  # type: ignore[arg-type]
            self.emit(Diagnostics(m.run_id, step, layers, {k: v for k, v in summary.items() if "." not in k}))
            m.ledger.diagnosed_at = step
        rows_by_data: dict[int, list[tuple[int, str]]] = {}
        for m in group:
            rows_by_data.setdefault(m.data, []).append((m.row, m.run_id))
        proxies = {m.row: m.proxy for m in group}
        for plane in boundary_events(model, proxies, rows_by_data, self.splits, step, boundary_event,
                                     self.boundary_state):
            self.emit(plane)

    def record_eval(self, group: list[_Member], step: int, diagnostics: bool, before: Tensor | None = None
                    ) -> dict[int, dict[str, float]]:
        """The solo loop's record_eval (and record_diagnostics when `diagnostics`), for each member."""
        evaluated = self.evaluate_all(False)
        with_ema = self.evaluate_ema(False)
        out: dict[int, dict[str, float]] = {}
        now = time.perf_counter() - self.t0
        for m in group:
            values = self.member_values(m, evaluated, False, step, with_ema)
            ledger = m.ledger
            self.emit(ledger.on_eval(step, values, now))
            if ledger.improved and ledger.keeps_best:
                m.best_state = self.model.member_state(m.row)
            if m.schedule.kind == "plateau":
                factor = m.schedule.factor
                m.schedule.on_eval(ledger.watched(values))
                if m.schedule.factor != factor:
                    self.optimizer.refresh_lr(m.row, step)
            out[m.row] = values
        if diagnostics:
            self.diagnose(group, step, before)
        return out

    # -- members' endings ----------------------------------------------------------------------

    def finish(self, group: list[_Member], status: str, reasons: dict[int, str], step: int) -> None:
        """End these members at `step` (`reasons` by row): final evaluation, diagnostics, RunFinished;
        then freeze their rows."""
        if not group:
            return
        evaluated = self.evaluate_all(True)
        with_ema = self.evaluate_ema(True)
        wall = time.perf_counter() - self.t0
        finals = {m.row: self.member_values(m, evaluated, True, step, with_ema) for m in group}
        if status != "diverged":  # the end's diagnostics, unless the last evaluation took them at this step
            self.diagnose([m for m in group if m.ledger.diagnosed_at != step], step, None)
        for m in group:
            self.emit(m.ledger.finish(status, reasons[m.row], step, finals[m.row], wall))
        for m in group:
            self.active.remove(m)
            self.model.freeze(m.row)
            m.best_state = None
            self.optimizer.reset_rows(m.row)
            self.alive[m.row] = 0.0
        if self.saver is not None and (status in ENDED or self.active):  # nothing left to resume for them
            self.saver.drop(group)
        if (self.active and len(self.active) <= self.M // 2 and not self.use_graphs
                and self.total - step >= max(1, self.total // 10)):
            self.compact()

    def compact(self, keep: list[_Member] | None = None) -> None:
        """Drop the finished members' rows (``StackedMLP.keep``): half the stack or more had
        finished, and their zeroed rows would go on costing FLOPs until the end. Every per-member
        column, the optimizer and the manual step are replaced by their kept rows. `keep`: the
        members to keep (default: those still training; a resumed group keeps the rows it had)."""
        active, dev = (self.active if keep is None else keep), self.dev
        rows = [m.row for m in active]
        index = torch.tensor(rows, dtype=torch.long, device=dev)

        def pick(column: Tensor | None) -> Tensor | None:
            return None if column is None else column.index_select(0, index)

        self.model.keep(rows)
        self.optimizer = self.optimizer.kept(rows, self.model.params, self.model.grads)
        self.l1, self.l2, self.before = pick(self.l1), pick(self.l2), pick(self.before)
        self.clip_value, self.clip_norm, self.has_clip_norm = (pick(self.clip_value), pick(self.clip_norm),
                                                               pick(self.has_clip_norm))
        self.ema_params, self.ema_decay = pick(self.ema_params), pick(self.ema_decay)
        self.ema_keep = pick(self.ema_keep)
        self.alive = self.alive.index_select(0, index)
        self.window[:] = [w.index_select(0, index) for w in self.window]  # losses not read yet
        for new, m in enumerate(active):
            m.row = new
            m.proxy.moved(new)  # type: ignore[union-attr]
        self.stacked = list(active)
        self.member_data = torch.tensor([m.data for m in active], device=dev)
        self.same_order = not self.one_dataset and [m.data for m in active] == list(range(len(self.splits)))
        self.M = len(rows)
        self.chunk = eval_chunk(widest_layer(self.shadow, self.d0.input_shape), dev, self.M)
        self.in_shadow = None
        if self.manual is not None:
            self.manual = ManualStep(self.model, self.first.model, [m.train for m in active], self.d0.task,
                                     self.l1, self.l2)

    def stop_early(self, group: list[_Member], step: int) -> None:
        """The solo loop's early stop for these members: best weights back (when kept), then finish."""
        reasons = {}
        for m in group:
            reasons[m.row] = m.ledger.early_stop_reason()
            if m.best_state is not None:
                self.model.load_member_state(m.row, m.best_state)
                self.in_shadow = None  # the shadow may hold this member's later weights
                self.emit(m.ledger.restored())
        self.finish(group, "early-stopped", reasons, step)

    def cancel_stopped(self) -> None:
        """Finish the members whose stop function says so (the group's one function, asked once).
        When the whole group stops, its checkpoint is written first: ``dllab resume`` goes on from
        here. A run cancelled on its own ends for good (the group trains on past it)."""
        if self.stop_all is not None:
            cancelled = list(self.active) if self.stop_all() else []
        else:
            cancelled = [m for m in self.active if m.stop()]
            if cancelled and len(cancelled) < len(self.active):  # a stop for all that came in mid-way
                cancelled = [m for m in self.active if m in cancelled or m.stop()]
        if not cancelled:
            return
        if self.saver is not None and len(cancelled) == len(self.active):
            self.saver.write(self)
        step = self.step
        self.finish(cancelled, "cancelled", {m.row: cancelled_reason(step) for m in cancelled}, step)

    def out_of_memory(self) -> None:
        """The device ran out of memory: every member still training fails at this step."""
        reason = out_of_memory_reason(self.dev, hint=OOM_HINT)
        for m in list(self.active):
            self.emit(m.ledger.finish("failed", reason, self.step, {}, time.perf_counter() - self.t0))
            self.active.remove(m)

    def read_window(self, step: int) -> None:
        """Read the losses of the steps since the last read (one host sync for every member): each
        member's StepMetrics, or its end when it diverged within them."""
        losses = torch.stack(self.window, dim=1).tolist()  # host sync: once per log_every steps, all members
        self.window.clear()
        now = time.perf_counter()
        rate = (step - self.last_read[0]) / max(now - self.last_read[1], 1e-9)
        self.last_read = (step, now)
        diverged: dict[int, str] = {}
        for m in self.active:
            row = losses[m.row]
            m.stats.on_window(row, step)
            if (reason := m.ledger.divergence(row, step)) is not None:
                diverged[m.row] = reason
                continue
            self.emit(StepMetrics(m.run_id, step, step / self.per_epoch, sum(row) / len(row),
                                  m.schedule.lr_at(step - 1), now - self.t0, rate))
        self.finish([m for m in self.active if m.row in diverged], "diverged", diverged, step)

    # -- one training step (eager, compiled, or captured in a CUDA graph) ----------------------

    def next_batch(self) -> tuple[Tensor, Tensor]:
        """This step's training batch of every member (a new permutation per dataset each epoch)."""
        i = self.step % self.per_epoch
        if i == 0:
            perms = [torch.randperm(self.n_train, generator=g) for g in self.batches]
            self.perm = torch.stack(perms).to(self.dev)
        idx = self.perm[:, i * self.bs : (i + 1) * self.bs]
        xb = self.augment(self.member_rows(self.x_train[self.dataset_index, idx]))
        yb = self.member_rows(self.y_train[self.dataset_index, idx])
        return xb, yb

    def augment(self, xb: Tensor) -> Tensor:
        """The training batch with each augmenting member's own transform of its rows (as its solo
        run transforms its batch); the batch as it is when no member augments."""
        mine = [m for m in self.active if m.augmenter is not None]
        if not mine:
            return xb
        if xb.dim() == 1 + len(self.d0.input_shape):  # shared by every member: each gets its own copy
            xb = xb.expand(self.M, *xb.shape)
        rows = list(xb.unbind(0))
        for m in mine:
            rows[m.row] = m.augmenter(rows[m.row])
        return torch.stack(rows)

    def forward_loss(self, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        """(each member's data loss, the objective summed over the members alive): the autograd
        step's forward pass (``self.objective`` is this, compiled when asked)."""
        with autocast(self.dev, self.fast.bf16):
            data_loss = self.loss_fn(self.model(xb, train=True), yb).mean(dim=1)
        objective = data_loss
        pen = self.model.penalty(self.l1, self.l2)
        if pen is not None:
            objective = objective + pen
        return data_loss, (objective * self.alive).sum()

    def train_step(self, xb: Tensor, yb: Tensor, step: int) -> Tensor:
        """Forward, backward, clipping, the optimizer and the EMA; returns each member's data loss."""
        grads = self.model.grads
        if self.manual is not None:  # forward and backward written out (engine.batched.manual)
            data_loss = self.manual.step(xb, yb, self.alive)
        else:
            grads.zero_()
            data_loss, objective = self.objective(xb, yb)
            with quiet_layout_warning():
                objective.backward()
        if self.clip_value is not None:
            grads.clamp_(min=-self.clip_value, max=self.clip_value)
        if self.clip_norm is not None:
            norms = grads.norm(dim=1, keepdim=True)
            coef = (self.clip_norm / (norms + 1e-6)).clamp(max=1.0)
            grads.mul_(torch.where(self.has_clip_norm, coef, torch.ones_like(coef)))
        self.optimizer.step(step)
        if self.ema_params is not None:
            self.ema_params.mul_(self.ema_decay).addcmul_(self.model.params, self.ema_keep)
        return data_loss.detach()

    def take_step(self, xb: Tensor, yb: Tensor) -> Tensor:
        """One training step: replayed from the CUDA graph when there is one and the batch fits,
        else eagerly (before the capture, and for an epoch's short last batch after it)."""
        if self.graph is not None and self.graph.fits(xb, yb):
            return self.graph.run(xb, yb).clone()
        data_loss = self.train_step(xb, yb, self.step)
        if self.graph is None and self.use_graphs and self.optimizer.steps_taken == GRAPH_WARMUP:
            try:
                self.graph = StepGraph.capture(lambda x, y: self.train_step(x, y, 0), (xb, yb), warmup=0)
            except Exception as exc:  # noqa: BLE001 - fall back to eager steps, say why
                self.use_graphs = False
                for m in self.active:
                    self.emit(Message(m.run_id, f"CUDA graph capture failed, training eagerly: {exc}",
                                      "warning"))
        return data_loss

    # -- the loop ------------------------------------------------------------------------------

    def run(self, resumed: bool = False) -> list[RunFinished]:
        """Train until every member has finished; each member's RunFinished, in the caller's order.
        A resumed group starts where its checkpoint left it (its first evaluation is stored already)."""
        try:
            if not resumed:
                self.record_eval(self.active, 0, diagnostics=True)
            self.last_read = (self.step, time.perf_counter())
            for m in self.active:
                m.stats.resume(self.step)
            while self.step < self.total and self.active:
                self.cancel_stopped()
                if self.active:
                    self.step_and_check()
        except torch.cuda.OutOfMemoryError:
            self.out_of_memory()
        if self.active:
            self.finish(list(self.active), "done", {m.row: finished_reason(self.total) for m in self.active},
                        self.step)
        by_index = {m.index: m.ledger.finished for m in self.members}
        return [by_index[i] for i in range(len(self.members))]  # type: ignore[misc]

    def step_and_check(self) -> None:
        """One training step; then the loss read every ``log_every`` steps, and every ``eval_every``
        steps the evaluation (diagnostics too on their steps) and the ends it decides."""
        diag_now = (self.step + 1) % self.diag_every == 0
        xb, yb = self.next_batch()
        self.before = self.model.params.clone() if diag_now else None
        self.window.append(self.take_step(xb, yb))
        self.step += 1
        step, total = self.step, self.total
        if step % self.log_every == 0 or step == total:
            self.read_window(step)
        if step % self.eval_every == 0 or step == total:
            if self.window:
                self.read_window(step)
            if self.active:
                self.evaluate_and_stop(step, diag_now or step == total)

    def evaluate_and_stop(self, step: int, diagnostics: bool) -> None:
        """Evaluate every member at `step`; a member whose evaluation loss is not finite diverged,
        one out of patience stops early."""
        group = list(self.active)
        values = self.record_eval(group, step, diagnostics, self.before)
        for m in group:
            m.stats.resume(step)
        bad = [m for m in group if not math.isfinite(values[m.row].get("train_loss", 0.0))]
        patience_out = [m for m in group if m not in bad and m.ledger.out_of_patience]
        self.finish(bad, "diverged", {m.row: nonfinite_eval_reason(step) for m in bad}, step)
        self.stop_early(patience_out, step)  # rows may have moved: the lists hold the members
        if self.saver is not None and self.active and self.saver.due():
            self.saver.write(self)
