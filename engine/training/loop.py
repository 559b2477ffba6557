"""The training loop: one RunSpec in, events out.

Read it top to bottom: data on the device → model under the run's seed → optimizer, schedule,
loss → for each step: slice a batch from this epoch's permutation, forward, backward, clip, step,
accumulate the loss on the device → every `log_every` steps read the loss (the only host sync
between evaluations) → every `eval_every` steps evaluate, diagnose, early-stop.

Fair by construction: every variant of a comparison with the same seed sees the same split, the
same batch order (its own generator) and, where shapes match, the same initial weights.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from functools import partial
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
from engine.events import Diagnostics, Event, RunFinished, StepMetrics
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
) -> RunFinished:
    """Train one network, emitting RunStarted first and RunFinished last; returns the RunFinished.

    Runs that are not network training (2-D surfaces, gradient checks) go to their own trainers:
    :func:`engine.runs.executor.trainer_for` picks one."""
    run_id = run_id or uuid.uuid4().hex[:10]
    t0 = time.perf_counter()
    r, t = spec.recipe, spec.recipe.train
    dev = torch.device(device)

    data = (data or load_data(r.data, seed=t.seed, device=dev)).to(dev)
    classify = data.task == "classification"
    n_out = data.n_classes if classify else 1
    torch.manual_seed(t.seed)
    model = build_model(r.model, data.input_shape, n_out).to(dev)
    pretrained = pretrain_body(model, r, data, dev)  # {} unless t.pretrain: trains the body first
    loss_fn = build_loss(t, data.task, data.n_classes)
    t, lr_found = lr_find_hook(model, data, loss_fn, t)  # unchanged unless t.lr_find (then lr = suggestion)
    optimizer = build_optimizer(model.parameters(), t)
    closure_needed = needs_closure(t)
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    clipping = t.clip_norm is not None or t.clip_value is not None  # skip the per-step call when off
    n_train = len(data.x_train)
    bs, per_epoch, total = budget(spec, n_train)
    every_eval = eval_every(spec, per_epoch, total)
    diag_every = diagnostics_every(spec, every_eval)
    schedule = LRSchedule(t, total)
    ema = EMA(model, t.ema) if t.ema else None
    stats = RunStats(model, t, per_epoch, lr_found, pretrained)  # initial loss, loss noise, step timing
    augmenter = build_augmenter(t, data.input_shape, dev)  # None unless t.augment
    weights = build_importance_weights(t, data)  # None unless t.importance_weighting
    unlabeled = build_unlabeled_term(t, data)  # None unless t.unlabeled_loss
    ensembles = build_ensembles(spec, data.input_shape, n_out, loss_fn, schedule, dev)  # None unless asked
    batches = torch.Generator(device="cpu").manual_seed(t.seed)
    noise = torch.Generator(device="cpu").manual_seed(t.seed + 7919)
    torch.manual_seed(t.seed + DROPOUT_SEED_OFFSET)  # dropout masks: same stream for every variant of a seed
    x_eval_train, y_eval_train = data.x_train[:MAX_EVAL_TRAIN], data.y_train[:MAX_EVAL_TRAIN]
    probe = data.x_train[:PROBE_SIZE]
    chunk = eval_chunk(widest_layer(model, data.input_shape), dev)

    ledger = RunLedger(spec, run_id, classify, per_epoch, total, stats)
    emit(ledger.started(dev, count_params(model), data.info))

    best_state: dict[str, torch.Tensor] | None = None
    summary = ledger.summary
    if weights is not None:
        summary.update(weights.summary)  # iw_domain_acc, iw_ess_share, ...
    window: list[torch.Tensor] = []
    last_read = (0, time.perf_counter())
    step = 0
    perm = torch.empty(0, dtype=torch.long, device=dev)

    last_evals: dict[str, tuple[Any, tuple[torch.Tensor, torch.Tensor]]] = {}
    """split → ((step, parameter and buffer versions), (loss, acc)) of the last evaluation."""

    def run_eval(step: int, final: bool = False) -> dict[str, float]:
        pairs = {
            "train": (x_eval_train, y_eval_train),
            "val": (data.x_val, data.y_val),
        }
        if final:
            pairs["test"] = (data.x_test, data.y_test)
        tensors: dict[str, torch.Tensor] = {}
        state = (step, tuple(t._version for t in (*model.parameters(), *model.buffers())))
        for split, (x, y) in pairs.items():
            if len(x) == 0:
                continue
            if split in last_evals and last_evals[split][0] == state:  # same weights: the final eval
                loss, acc = last_evals[split][1]  # reuses the last one's train / val figures
            else:
                loss, acc = evaluate(model, loss_fn, x, y, classify, chunk)
                last_evals[split] = (state, (loss, acc))
            tensors[f"{split}_loss"] = loss
            if classify:
                tensors[f"{split}_acc"] = acc
            tensors.update(extra_metrics(model, loss_fn, x, y, split, data.task, final=final, batch_size=bs))
        if ema is not None:
            with ema.applied(model):
                for split in ("train", "val", *(["test"] if final else [])):
                    x, y = pairs[split]
                    if len(x):
                        loss, acc = evaluate(model, loss_fn, x, y, classify, chunk)
                        tensors[f"ema_{split}_loss"] = loss
                        if classify:
                            tensors[f"ema_{split}_acc"] = acc
        if ensembles is not None:
            tensors.update(ensembles.evaluate(model, pairs, step, classify))
        values = dict(zip(tensors, torch.stack(list(tensors.values())).tolist(), strict=True))
        if "val_loss" in values and "train_loss" in values:
            values["gap"] = values["val_loss"] - values["train_loss"]
        if classify and "val_acc" in values:
            values["acc_gap"] = values["train_acc"] - values["val_acc"]
        values["lr"] = schedule.lr_at(min(step, total - 1))
        return values

    def record_eval(step: int) -> dict[str, float]:
        nonlocal best_state
        values = run_eval(step)
        emit(ledger.on_eval(step, values, time.perf_counter() - t0))
        if ledger.improved and ledger.keeps_best:
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        schedule.on_eval(ledger.watched(values))
        return values

    def record_diagnostics(step: int, before: dict[str, torch.Tensor] | None) -> None:
        ledger.diagnosed_at = step
        layers = layer_health(model, probe, r.model.activation)
        if before is not None:
            for name, ratio in update_ratios(before, model).items():
                layers.setdefault(name, {})["update_ratio"] = ratio
        add_weight_images(layers, model, step, diag_every * IMAGE_EVERY, total)  # now and then
        summary.update(model_summary(model, layers))
        emit(Diagnostics(run_id, step, layers, {k: v for k, v in summary.items() if "." not in k}))
        if (plane := boundary_event(run_id, step, model, data)) is not None:  # 2-D classification only
            emit(plane)

    def forward_backward(xb: torch.Tensor, yb: torch.Tensor, idx: torch.Tensor, step: int,
                         losses: list[torch.Tensor]) -> torch.Tensor:
        """One evaluation of the training objective and its gradient; the data loss goes to `losses`."""
        for p in trained:  # optimizer.zero_grad(set_to_none=True), without its per-call wrapper (~6 µs)
            p.grad = None
        out = model(xb)
        data_loss = loss_fn(out, yb) if weights is None else weights.loss(loss_fn, out, yb, idx)
        pen = penalty(model, t.l1, t.l2)
        total_loss = data_loss if pen is None else data_loss + pen
        if unlabeled is not None and (u_loss := unlabeled(model, step)) is not None:
            total_loss = total_loss + u_loss
        total_loss.backward()
        if clipping:
            clip_gradients(model.parameters(), t.clip_norm, t.clip_value)
        losses.append(data_loss.detach())
        return total_loss

    def read_window(step: int) -> None:
        nonlocal last_read
        losses = torch.stack(window).tolist()  # host sync: once per log_every steps
        stats.on_window(losses, step)
        if (diverged := ledger.divergence(losses, step)) is not None:
            raise _Stopped("diverged", diverged)
        now = time.perf_counter()
        rate = (step - last_read[0]) / max(now - last_read[1], 1e-9)
        last_read = (step, now)
        emit(StepMetrics(run_id, step, step / per_epoch, sum(losses) / len(losses),
                         schedule.lr_at(step - 1), now - t0, rate))
        window.clear()

    status, reason = "done", finished_reason(total)
    try:
        model.train()
        record_eval(0)
        record_diagnostics(0, None)
        stats.resume(0)
        while step < total:
            if should_stop():
                raise _Stopped("cancelled", cancelled_reason(step))
            i = step % per_epoch
            if i == 0:
                perm = torch.randperm(n_train, generator=batches).to(dev)
            idx = perm[i * bs : (i + 1) * bs]
            xb, yb = data.x_train[idx], data.y_train[idx]
            if augmenter is not None:
                xb = augmenter(xb)
            if t.mixup > 0:
                xb, yb = mixup(xb, yb, t.mixup, data.n_classes, noise)
            schedule.apply(optimizer, step)
            diag_now = (step + 1) % diag_every == 0
            before = snapshot_weights(model) if diag_now else None

            step_losses: list[torch.Tensor] = []  # the data loss of each evaluation of the objective
            if closure_needed:  # L-BFGS evaluates the objective several times
                optimizer.step(partial(forward_backward, xb, yb, idx, step, step_losses))
            else:
                forward_backward(xb, yb, idx, step, step_losses)
                # The diagnostics report this step's gradient. On CUDA torch's foreach SGD with
                # Nesterov momentum adds the momentum into p.grad in place, so keep a copy to put back.
                grads = ([None if p.grad is None else p.grad.clone() for p in trained]
                         if diag_now or step + 1 == total else None)
                optimizer.step()
                if grads is not None:
                    for p, g in zip(trained, grads, strict=True):
                        p.grad = g
            if ema is not None:
                ema.update(model)
            if ensembles is not None:
                ensembles.train_step(xb, yb, step)
            window.append(step_losses[-1])
            step += 1
            if step % t.log_every == 0 or step == total:
                read_window(step)
            if step % every_eval == 0 or step == total:
                if window:
                    read_window(step)
                values = record_eval(step)
                if diag_now or step == total:
                    record_diagnostics(step, before)
                stats.resume(step)
                if not math.isfinite(values.get("train_loss", 0.0)):
                    raise _Stopped("diverged", nonfinite_eval_reason(step))
                if ledger.out_of_patience:
                    raise _Stopped("early-stopped", ledger.early_stop_reason())
    except _Stopped as stop:
        status, reason = stop.status, stop.reason
    except torch.cuda.OutOfMemoryError:
        status, reason = "failed", out_of_memory_reason(dev)

    if status == "early-stopped" and best_state is not None:
        model.load_state_dict(best_state)
        emit(ledger.restored())
    final: dict[str, float] = {}
    if status != "failed":
        final = run_eval(step, final=True)
        if status != "diverged" and ledger.diagnosed_at != step:  # the end's diagnostics, unless taken
            record_diagnostics(step, None)
    finished = ledger.finish(status, reason, step, final, time.perf_counter() - t0)
    emit(finished)
    return finished
