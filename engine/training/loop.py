"""The training loop: one RunSpec in, events out.

Read it top to bottom: :func:`train` builds a :class:`SoloRun` (data on the device → model under
the run's seed → optimizer, schedule, loss, the techniques the recipe asks for → the RunStarted),
runs its loop (for each step: slice a batch from this epoch's permutation, forward, backward,
clip, step, accumulate the loss on the device → every `log_every` steps read the loss, the only
host sync between evaluations → every `eval_every` steps evaluate, diagnose, early-stop) and ends
it (final evaluation, RunFinished). What a run reports goes through its ledger
(:mod:`engine.training.runbook`), the same one the batched trainer keeps per member.

Fair by construction: every variant of a comparison with the same seed sees the same split, the
same batch order (its own generator) and, where shapes match, the same initial weights.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from engine.data import DataSplits, load_data
from engine.diagnostics.boundary import boundary_event
from engine.diagnostics.health import (
    IMAGE_EVERY,
    add_weight_images,
    eval_mode,
    layer_health,
    model_summary,
    snapshot_weights,
    update_ratios,
)
from engine.diagnostics.lr_find import lr_find_hook
from engine.diagnostics.run_stats import RunStats
from engine.events import ENDED, Diagnostics, Event, Message, RunFinished, StepMetrics
from engine.models import build_model, count_params
from engine.recipe.config import RunSpec
from engine.recipe.losses import accuracy, build_loss
from engine.recipe.optim import build_optimizer, needs_closure
from engine.recipe.regularize import EMA, clip_gradients, mixup, penalty
from engine.recipe.schedules import LRSchedule
from engine.techniques.augment import build_augmenter
from engine.techniques.ensembles import DROPOUT_SEED_OFFSET, build_ensembles
from engine.techniques.pretrain import pretrain_body
from engine.techniques.semisup import build_unlabeled_term
from engine.techniques.shift import build_importance_weights
from engine.training.checkpoint import Checkpointer, restore
from engine.training.checkpoint import load as load_checkpoint
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

EVAL_CHUNK = 4096
MAX_EVAL_TRAIN = 10_000
PROBE_SIZE = 512


class _Stopped(Exception):
    def __init__(self, status: str, reason: str) -> None:
        self.status, self.reason = status, reason


CPU_EVAL_ELEMENTS = 1 << 19
"""On a CPU an evaluation chunk holds at most about this many activations (samples × members ×
widest layer, 2 MiB of floats: one core's L2 here): eight stacked 40-100-100-10 MLPs evaluated
20% faster in chunks of 512 than of 4096; narrow solo models are fastest in big chunks (per-call
overhead), which the cap EVAL_CHUNK keeps."""
GPU_EVAL_ELEMENTS = 1 << 22


def eval_chunk(widest: int, device: str | torch.device, members: int = 1) -> int:
    """Samples per evaluation chunk for a model whose widest layer (or input) has `widest` units."""
    budget = CPU_EVAL_ELEMENTS if torch.device(device).type == "cpu" else GPU_EVAL_ELEMENTS
    return max(64, min(EVAL_CHUNK, budget // max(1, members * widest)))


def widest_layer(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """The input's size or the most outputs of a weight layer (a conv layer counts its channels only)."""
    return max([math.prod(input_shape)] + [p.shape[0] for p in model.parameters() if p.dim() >= 2])


@torch.no_grad()
def evaluate(model, loss_fn, x: torch.Tensor, y: torch.Tensor, classify: bool,
             chunk: int = EVAL_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy over (x, y) in eval mode, as device tensors (no sync)."""
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    with eval_mode(model):
        for i in range(0, len(x), chunk):
            out = model(x[i : i + chunk])
            yb = y[i : i + chunk]
            n = len(yb)
            loss_sum += loss_fn(out, yb) * n
            if classify:
                correct += accuracy(out, yb) * n
    n_total = max(len(x), 1)
    return loss_sum / n_total, correct / n_total


def train(
    spec: RunSpec,
    emit: Callable[[Event], None],
    should_stop: Callable[[], bool] = lambda: False,
    *,
    device: str | torch.device = "cpu",
    run_id: str | None = None,
    data: DataSplits | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
) -> RunFinished:
    """Train one network, emitting RunStarted first and RunFinished last; returns the RunFinished.

    `checkpoint`: a file the run checkpoints to (:mod:`engine.training.checkpoint`: every few tens
    of seconds at an evaluation, and when it is cancelled); `resume`: go on from that file's state.
    Runs that are not network training (2-D surfaces, gradient checks) go to their own trainers:
    :func:`engine.runs.executor.trainer_for` picks one."""
    run = SoloRun(spec, emit, device=device, run_id=run_id or uuid.uuid4().hex[:10], data=data)
    saver = Checkpointer(Path(checkpoint)) if checkpoint is not None else None
    if resume:
        if saver is None or not saver.path.exists():
            raise ValueError(f"run {run.run_id} has no checkpoint to resume from")
        restore(run, load_checkpoint(saver.path))
        emit(Message(run.run_id, f"resumed at step {run.step} from its checkpoint"))
    status, reason = "done", finished_reason(run.total)
    try:
        run.loop(should_stop, saver, resumed=resume)
    except _Stopped as stop:
        status, reason = stop.status, stop.reason
    except torch.cuda.OutOfMemoryError:
        status, reason = "failed", out_of_memory_reason(run.dev)
    finished = run.end(status, reason)
    if saver is not None and status in ENDED:  # nothing left to resume
        saver.path.unlink(missing_ok=True)
    return finished


class SoloRun:
    """One network in training: what the loop builds once, and the steps it takes.

    The methods read in the loop's order: the constructor builds everything under the run's seed
    and announces the run; :meth:`loop` trains (a batch, a step, the reads, the evaluations);
    :meth:`end` evaluates once more and sends the RunFinished.
    """

    def __init__(self, spec: RunSpec, emit: Callable[[Event], None], *, device: str | torch.device,
                 run_id: str, data: DataSplits | None) -> None:
        self.t0 = time.perf_counter()
        self.spec, self.emit, self.run_id = spec, emit, run_id
        r, t = spec.recipe, spec.recipe.train
        self.dev = dev = torch.device(device)

        self.data = data = (data or load_data(r.data, seed=t.seed, device=dev)).to(dev)
        self.classify = data.task == "classification"
        n_out = data.n_classes if self.classify else 1
        torch.manual_seed(t.seed)
        self.model = model = build_model(r.model, data.input_shape, n_out).to(dev)
        pretrained = pretrain_body(model, r, data, dev)  # {} unless t.pretrain: trains the body first
        self.loss_fn = build_loss(t, data.task, data.n_classes)
        t, lr_found = lr_find_hook(model, data, self.loss_fn, t)  # unchanged unless t.lr_find (then lr = suggestion)
        self.t = t
        self.optimizer = build_optimizer(model.parameters(), t)
        self.closure_needed = needs_closure(t)
        self.trained = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.clipping = t.clip_norm is not None or t.clip_value is not None  # skip the per-step call when off
        self.n_train = len(data.x_train)
        self.bs, self.per_epoch, self.total = budget(spec, self.n_train)
        self.every_eval = eval_every(spec, self.per_epoch, self.total)
        self.diag_every = diagnostics_every(spec, self.every_eval)
        self.schedule = LRSchedule(t, self.total)
        self.ema = EMA(model, t.ema) if t.ema else None
        self.stats = RunStats(model, t, self.per_epoch, lr_found, pretrained)  # initial loss, loss noise, timing
        self.augmenter = build_augmenter(t, data.input_shape, dev)  # None unless t.augment
        self.weights = build_importance_weights(t, data)  # None unless t.importance_weighting
        self.unlabeled = build_unlabeled_term(t, data)  # None unless t.unlabeled_loss
        self.ensembles = build_ensembles(spec, data.input_shape, n_out, self.loss_fn, self.schedule, dev)
        self.batches = torch.Generator(device="cpu").manual_seed(t.seed)
        self.noise = torch.Generator(device="cpu").manual_seed(t.seed + 7919)
        torch.manual_seed(t.seed + DROPOUT_SEED_OFFSET)  # dropout masks: same stream for every variant of a seed
        self.eval_train = (data.x_train[:MAX_EVAL_TRAIN], data.y_train[:MAX_EVAL_TRAIN])
        self.probe = data.x_train[:PROBE_SIZE]
        self.chunk = eval_chunk(widest_layer(model, data.input_shape), dev)

        self.ledger = RunLedger(spec, run_id, self.classify, self.per_epoch, self.total, self.stats)
        emit(self.ledger.started(dev, count_params(model), data.info))
        if self.weights is not None:
            self.ledger.summary.update(self.weights.summary)  # iw_domain_acc, iw_ess_share, ...
        self.best_state: dict[str, torch.Tensor] | None = None
        self.window: list[torch.Tensor] = []
        self.last_read = (0, time.perf_counter())
        self.step = 0
        self.perm = torch.empty(0, dtype=torch.long, device=dev)
        self.last_evals: dict[str, tuple[Any, tuple[torch.Tensor, torch.Tensor]]] = {}
        """split → ((step, parameter and buffer versions), (loss, acc)) of the last evaluation."""

    # -- the loop ----------------------------------------------------------------------------------

    def loop(self, should_stop: Callable[[], bool], saver: Checkpointer | None = None, *,
             resumed: bool = False) -> None:
        """Train until the budget is spent; a run that stops earlier raises :class:`_Stopped`. A
        resumed run starts where its checkpoint left it (its first evaluation is already stored)."""
        t = self.t
        self.model.train()
        if not resumed:
            self.record_eval(0)
            self.record_diagnostics(0, None)
        self.stats.resume(self.step)
        while self.step < self.total:
            if should_stop():
                if saver is not None:  # a cancelled run can go on later (dllab resume)
                    saver.write(self)
                raise _Stopped("cancelled", cancelled_reason(self.step))
            diag_now = (self.step + 1) % self.diag_every == 0
            before = snapshot_weights(self.model) if diag_now else None
            self.window.append(self.take_step(*self.next_batch(), keep_grads=diag_now or self.step + 1 == self.total))
            self.step += 1
            step = self.step
            if step % t.log_every == 0 or step == self.total:
                self.read_window(step)
            if step % self.every_eval == 0 or step == self.total:
                if self.window:
                    self.read_window(step)
                values = self.record_eval(step)
                if diag_now or step == self.total:
                    self.record_diagnostics(step, before)
                self.stats.resume(step)
                if not math.isfinite(values.get("train_loss", 0.0)):
                    raise _Stopped("diverged", nonfinite_eval_reason(step))
                if self.ledger.out_of_patience:
                    raise _Stopped("early-stopped", self.ledger.early_stop_reason())
                if saver is not None and saver.due():
                    saver.write(self)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This step's batch (indices, inputs, targets): a slice of the epoch's permutation, augmented
        and mixed as the recipe asks."""
        i = self.step % self.per_epoch
        if i == 0:
            self.perm = torch.randperm(self.n_train, generator=self.batches).to(self.dev)
        idx = self.perm[i * self.bs : (i + 1) * self.bs]
        xb, yb = self.data.x_train[idx], self.data.y_train[idx]
        if self.augmenter is not None:
            xb = self.augmenter(xb)
        if self.t.mixup > 0:
            xb, yb = mixup(xb, yb, self.t.mixup, self.data.n_classes, self.noise)
        return idx, xb, yb

    def take_step(self, idx: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor, *, keep_grads: bool) -> torch.Tensor:
        """One optimizer step; returns its data loss (a device tensor, not read)."""
        step, optimizer = self.step, self.optimizer
        self.schedule.apply(optimizer, step)
        step_losses: list[torch.Tensor] = []  # the data loss of each evaluation of the objective
        if self.closure_needed:  # L-BFGS evaluates the objective several times
            optimizer.step(partial(self.forward_backward, xb, yb, idx, step, step_losses))
        else:
            self.forward_backward(xb, yb, idx, step, step_losses)
            # The diagnostics report this step's gradient. On CUDA torch's foreach SGD with
            # Nesterov momentum adds the momentum into p.grad in place, so keep a copy to put back.
            grads = [None if p.grad is None else p.grad.clone() for p in self.trained] if keep_grads else None
            optimizer.step()
            if grads is not None:
                for p, g in zip(self.trained, grads, strict=True):
                    p.grad = g
        if self.ema is not None:
            self.ema.update(self.model)
        if self.ensembles is not None:
            self.ensembles.train_step(xb, yb, step)
        return step_losses[-1]

    def forward_backward(self, xb: torch.Tensor, yb: torch.Tensor, idx: torch.Tensor, step: int,
                         losses: list[torch.Tensor]) -> torch.Tensor:
        """One evaluation of the training objective and its gradient; the data loss goes to `losses`."""
        t, model = self.t, self.model
        for p in self.trained:  # optimizer.zero_grad(set_to_none=True), without its per-call wrapper (~6 µs)
            p.grad = None
        out = model(xb)
        data_loss = self.loss_fn(out, yb) if self.weights is None else self.weights.loss(self.loss_fn, out, yb, idx)
        pen = penalty(model, t.l1, t.l2)
        total_loss = data_loss if pen is None else data_loss + pen
        if self.unlabeled is not None and (u_loss := self.unlabeled(model, step)) is not None:
            total_loss = total_loss + u_loss
        total_loss.backward()
        if self.clipping:
            clip_gradients(model.parameters(), t.clip_norm, t.clip_value)
        losses.append(data_loss.detach())
        return total_loss

    def read_window(self, step: int) -> None:
        """Read the losses since the last read (the one host sync between evaluations)."""
        losses = torch.stack(self.window).tolist()
        self.stats.on_window(losses, step)
        if (diverged := self.ledger.divergence(losses, step)) is not None:
            raise _Stopped("diverged", diverged)
        now = time.perf_counter()
        rate = (step - self.last_read[0]) / max(now - self.last_read[1], 1e-9)
        self.last_read = (step, now)
        self.emit(StepMetrics(self.run_id, step, step / self.per_epoch, sum(losses) / len(losses),
                              self.schedule.lr_at(step - 1), now - self.t0, rate))
        self.window.clear()

    # -- evaluations and diagnostics ---------------------------------------------------------------

    def evaluate(self, step: int, final: bool = False) -> dict[str, float]:
        """Loss and accuracy on the training and validation splits (and the test split at the end),
        the extra figures, the EMA's and the ensembles' figures: one host read."""
        model, data, classify = self.model, self.data, self.classify
        pairs = {"train": self.eval_train, "val": (data.x_val, data.y_val)}
        if final:
            pairs["test"] = (data.x_test, data.y_test)
        tensors: dict[str, torch.Tensor] = {}
        state = (step, tuple(t._version for t in (*model.parameters(), *model.buffers())))
        for split, (x, y) in pairs.items():
            if len(x) == 0:
                continue
            if split in self.last_evals and self.last_evals[split][0] == state:  # same weights: the final
                loss, acc = self.last_evals[split][1]  # eval reuses the last one's train / val figures
            else:
                loss, acc = evaluate(model, self.loss_fn, x, y, classify, self.chunk)
                self.last_evals[split] = (state, (loss, acc))
            tensors[f"{split}_loss"] = loss
            if classify:
                tensors[f"{split}_acc"] = acc
            tensors.update(extra_metrics(model, self.loss_fn, x, y, split, data.task, final=final,
                                         batch_size=self.bs))
        if self.ema is not None:
            with self.ema.applied(model):
                for split in ("train", "val", *(["test"] if final else [])):
                    x, y = pairs[split]
                    if len(x):
                        loss, acc = evaluate(model, self.loss_fn, x, y, classify, self.chunk)
                        tensors[f"ema_{split}_loss"] = loss
                        if classify:
                            tensors[f"ema_{split}_acc"] = acc
        if self.ensembles is not None:
            tensors.update(self.ensembles.evaluate(model, pairs, step, classify))
        values = dict(zip(tensors, torch.stack(list(tensors.values())).tolist(), strict=True))
        if "val_loss" in values and "train_loss" in values:
            values["gap"] = values["val_loss"] - values["train_loss"]
        if classify and "val_acc" in values:
            values["acc_gap"] = values["train_acc"] - values["val_acc"]
        values["lr"] = self.schedule.lr_at(min(step, self.total - 1))
        return values

    def record_eval(self, step: int) -> dict[str, float]:
        """Evaluate and fold the figures into the ledger (best weights kept when early stopping asks)."""
        values = self.evaluate(step)
        self.emit(self.ledger.on_eval(step, values, time.perf_counter() - self.t0))
        if self.ledger.improved and self.ledger.keeps_best:
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.schedule.on_eval(self.ledger.watched(values))
        return values

    def record_diagnostics(self, step: int, before: dict[str, torch.Tensor] | None) -> None:
        """Per-layer health (with update ratios when the weights before the step were kept), weight
        images now and then, and the decision boundary of a 2-D classifier."""
        model, summary = self.model, self.ledger.summary
        self.ledger.diagnosed_at = step
        layers = layer_health(model, self.probe, self.spec.recipe.model.activation)
        if before is not None:
            for name, ratio in update_ratios(before, model).items():
                layers.setdefault(name, {})["update_ratio"] = ratio
        add_weight_images(layers, model, step, self.diag_every * IMAGE_EVERY, self.total)
        summary.update(model_summary(model, layers))
        self.emit(Diagnostics(self.run_id, step, layers, {k: v for k, v in summary.items() if "." not in k}))
        if (plane := boundary_event(self.run_id, step, model, self.data)) is not None:  # 2-D classification
            self.emit(plane)

    # -- the end -----------------------------------------------------------------------------------

    def end(self, status: str, reason: str) -> RunFinished:
        """The best weights back after an early stop (when kept), the final evaluation and
        diagnostics, and the RunFinished."""
        if status == "early-stopped" and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            self.emit(self.ledger.restored())
        final: dict[str, float] = {}
        step = self.step
        if status != "failed":
            final = self.evaluate(step, final=True)
            if status != "diverged" and self.ledger.diagnosed_at != step:  # the end's diagnostics, unless taken
                self.record_diagnostics(step, None)
        finished = self.ledger.finish(status, reason, step, final, time.perf_counter() - self.t0)
        self.emit(finished)
        return finished
