"""Ensembles beside the loop's model: independent members and checkpoint ensembles.

Two ways to average predictions, both evaluated next to the run's own model, whose metrics keep
their plain names (``val_acc`` …), so one run shows the single model and its ensembles side by side:

* **Members** (``ModelSpec.ensemble = N``): N − 1 more copies of the network, each from its own
  initial weights (seed ``seed + k·MEMBER_SEED_STRIDE``), trained step for step on the same
  batches with their own optimizer state and the loop's LR schedule. The loop's model is member 0,
  and it trains exactly as in a run without members: the extra members draw their initial
  weights and dropout masks from saved generator states of their own. Metrics:
  ``ensemble_{split}_acc`` / ``_loss`` (the mean of the N members' probabilities) and
  ``members_{split}_acc`` / ``_loss`` (the members' own scores, averaged).
* **Checkpoints** (``TrainSpec.checkpoint_ensemble = K``): a snapshot of the loop's weights at
  every ``checkpoint_every``-th evaluation; the last K snapshots' probabilities are averaged.
  No extra training at all. Metrics: ``ckpt_ensemble_{split}_acc`` / ``_loss``.

Classification ensembles average probabilities, ``p̄ = mean_k softmax(f_k(x))``; the reported loss
is the run's loss function applied to ``log p̄`` as logits, which is the ensemble's cross-entropy
(−log p̄_y) for ``cross_entropy`` and exact for ``mse_softmax`` too; for losses on raw logits
(``mse_onehot``, ``hinge``) it is only indicative. Regression ensembles average the outputs.

Weight averaging (EMA / Polyak) is the third relative and lives in ``engine.recipe.regularize.EMA``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.models import build_model
from engine.recipe.config import RunSpec
from engine.recipe.losses import LossFn
from engine.recipe.optim import build_optimizer, needs_closure
from engine.recipe.regularize import clip_gradients, penalty
from engine.recipe.schedules import LRSchedule

MEMBER_SEED_STRIDE = 1_000_003
"""Member k's seed is ``seed + k * MEMBER_SEED_STRIDE`` (member 0 is the loop's own model)."""
DROPOUT_SEED_OFFSET = 104729
"""The loop seeds dropout masks with ``seed + 104729``; ensemble members do the same with their own
seed, batched members (``engine.batched.stacked.MemberDropout``) with a generator of their own."""
CHUNK = 4096

Predict = Callable[[Tensor], Tensor]


class _RNG:
    """Save and restore the global generators a model uses (CPU, and the run's accelerator)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def get(self) -> tuple[Tensor, Tensor | None]:
        if self.device.type == "cuda":
            return torch.get_rng_state(), torch.cuda.get_rng_state(self.device)
        if self.device.type == "mps":
            return torch.get_rng_state(), torch.mps.get_rng_state()
        return torch.get_rng_state(), None

    def set(self, state: tuple[Tensor, Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            if self.device.type == "cuda":
                torch.cuda.set_rng_state(state[1], self.device)
            elif self.device.type == "mps":
                torch.mps.set_rng_state(state[1])

    @contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        """Run the block from ``torch.manual_seed(seed)``; the global generators are restored after."""
        saved = self.get()
        torch.manual_seed(seed)
        try:
            yield
        finally:
            self.set(saved)


def _stochastic(spec: RunSpec) -> bool:
    m = spec.recipe.model
    return m.dropout > 0 or m.input_dropout > 0 or m.dropconnect > 0


class Members:
    """The extra members of an ensemble (1 … N−1), trained on the loop's batches."""

    def __init__(self, spec: RunSpec, input_shape: tuple[int, ...], n_out: int, loss_fn: LossFn,
                 schedule: LRSchedule, device: torch.device) -> None:
        t = spec.recipe.train
        self.train_spec, self.loss_fn, self.schedule = t, loss_fn, schedule
        self.rng = _RNG(device)
        self.models: list[nn.Module] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.states: list[tuple[Tensor, Tensor | None]] = []
        self.stochastic = _stochastic(spec)
        self.closure_needed = needs_closure(t)
        for k in range(1, spec.recipe.model.ensemble):
            seed = t.seed + k * MEMBER_SEED_STRIDE
            with self.rng.seeded(seed):
                model = build_model(spec.recipe.model, input_shape, n_out).to(device)
            with self.rng.seeded(seed + DROPOUT_SEED_OFFSET):
                self.states.append(self.rng.get())
            model.train()
            self.models.append(model)
            self.optimizers.append(build_optimizer(model.parameters(), t))

    @contextmanager
    def _own_rng(self, k: int) -> Iterator[None]:
        """Member k's dropout masks come from its own generator state, not the loop's."""
        if not self.stochastic:
            yield
            return
        saved = self.rng.get()
        self.rng.set(self.states[k])
        try:
            yield
        finally:
            self.states[k] = self.rng.get()
            self.rng.set(saved)

    def state_dict(self) -> dict[str, Any]:
        """Every member's weights, optimizer and dropout stream (for a run's checkpoint)."""
        return {"models": [m.state_dict() for m in self.models], "optimizers": [o.state_dict() for o in self.optimizers],
                "rng": [list(state) for state in self.states]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for model, saved in zip(self.models, state["models"], strict=True):
            model.load_state_dict(saved)
        for opt, saved in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(saved)
        self.states = [(cpu, device) for cpu, device in state["rng"]]

    def step(self, xb: Tensor, yb: Tensor, step: int) -> None:
        """One optimizer step of every member on the batch (xb, yb)."""
        t = self.train_spec
        for k, (model, opt) in enumerate(zip(self.models, self.optimizers, strict=True)):
            self.schedule.apply(opt, step)

            def closure(model: nn.Module = model, opt: torch.optim.Optimizer = opt) -> Tensor:
                opt.zero_grad(set_to_none=True)
                loss = self.loss_fn(model(xb), yb)
                pen = penalty(model, t.l1, t.l2)
                total = loss if pen is None else loss + pen
                total.backward()
                clip_gradients(model.parameters(), t.clip_norm, t.clip_value)
                return total

            with self._own_rng(k):
                if self.closure_needed:
                    opt.step(closure)
                else:
                    closure()
                    opt.step()


class Checkpoints:
    """The last K snapshots of a model's weights, taken at every ``every``-th evaluation after step 0."""

    def __init__(self, k: int, every: int = 1) -> None:
        self.snapshots: deque[dict[str, Tensor]] = deque(maxlen=k)
        self.every = every
        self.n_evals = 0
        self.steps: deque[int] = deque(maxlen=k)

    def observe(self, model: nn.Module, step: int) -> None:
        """Called at each evaluation: take a snapshot when one is due (once per step)."""
        if step == 0 or (self.steps and self.steps[-1] == step):
            return
        self.n_evals += 1
        if self.n_evals % self.every == 0:
            self.snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            self.steps.append(step)

    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": list(self.snapshots), "steps": list(self.steps), "n_evals": self.n_evals}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.snapshots.clear()
        self.snapshots.extend({k: v.to(device) for k, v in snap.items()} for snap in state["snapshots"])
        self.steps.clear()
        self.steps.extend(int(step) for step in state["steps"])
        self.n_evals = int(state["n_evals"])

    def predictors(self, model: nn.Module) -> list[Predict]:
        return [lambda x, s=s: torch.func.functional_call(model, s, (x,)) for s in self.snapshots]


@torch.no_grad()
def ensemble_scores(predictors: list[Predict], loss_fn: LossFn, x: Tensor, y: Tensor, classify: bool,
                    members: bool = False) -> dict[str, Tensor]:
    """Loss and accuracy of the averaged predictions on (x, y), as 0-d device tensors (no sync).

    With ``members``, also each predictor's own loss and accuracy, averaged (keys ``members_*``).
    """
    n = max(len(x), 1)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    own_loss = torch.zeros((), device=x.device)
    own_correct = torch.zeros((), device=x.device)
    for i in range(0, len(x), CHUNK):
        xb, yb = x[i : i + CHUNK], y[i : i + CHUNK]
        outs = [p(xb).float() for p in predictors]
        if classify:
            mean = torch.stack([F.softmax(o, dim=1) for o in outs]).mean(0)
            avg = mean.clamp_min(1e-12).log()
            correct += (avg.argmax(1) == yb).float().sum()
        else:
            avg = torch.stack(outs).mean(0)
        loss_sum += loss_fn(avg, yb) * len(yb)
        if members:
            for o in outs:
                own_loss += loss_fn(o, yb) * len(yb) / len(outs)
                if classify:
                    own_correct += (o.argmax(1) == yb).float().sum() / len(outs)
    out = {"loss": loss_sum / n}
    if classify:
        out["acc"] = correct / n
    if members:
        out["members_loss"] = own_loss / n
        if classify:
            out["members_acc"] = own_correct / n
    return out


class Ensembles:
    """What the loop talks to: ``train_step`` after each optimizer step, ``evaluate`` at each evaluation."""

    def __init__(self, members: Members | None, checkpoints: Checkpoints | None, loss_fn: LossFn) -> None:
        self.members, self.checkpoints, self.loss_fn = members, checkpoints, loss_fn

    def state_dict(self) -> dict[str, Any]:
        """What a run's checkpoint keeps of its ensembles: the members and the kept snapshots."""
        return {"members": None if self.members is None else self.members.state_dict(),
                "checkpoints": None if self.checkpoints is None else self.checkpoints.state_dict()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        if self.members is not None and state["members"] is not None:
            self.members.load_state_dict(state["members"])
        if self.checkpoints is not None and state["checkpoints"] is not None:
            self.checkpoints.load_state_dict(state["checkpoints"], device)

    def train_step(self, xb: Tensor, yb: Tensor, step: int) -> None:
        if self.members is not None:
            self.members.step(xb, yb, step)

    def evaluate(self, model: nn.Module, pairs: dict[str, tuple[Tensor, Tensor]], step: int,
                 classify: bool) -> dict[str, Tensor]:
        """``ensemble_*``, ``members_*`` and ``ckpt_ensemble_*`` metrics of every split in `pairs`."""
        if self.checkpoints is not None:
            self.checkpoints.observe(model, step)
        nets = [model, *(self.members.models if self.members is not None else [])]
        modes = [m.training for m in nets]
        for m in nets:
            m.eval()
        out: dict[str, Tensor] = {}
        try:
            for split, (x, y) in pairs.items():
                if len(x) == 0:
                    continue
                if self.members is not None:
                    scores = ensemble_scores(list(nets), self.loss_fn, x, y, classify, members=True)
                    for key, value in scores.items():
                        name = key.replace("members_", "")
                        prefix = "members" if key.startswith("members_") else "ensemble"
                        out[f"{prefix}_{split}_{name}"] = value
                if self.checkpoints is not None and self.checkpoints.snapshots:
                    scores = ensemble_scores(self.checkpoints.predictors(model), self.loss_fn, x, y, classify)
                    for key, value in scores.items():
                        out[f"ckpt_ensemble_{split}_{key}"] = value
        finally:
            for m, mode in zip(nets, modes, strict=True):
                m.train(mode)
        return out


def build_ensembles(spec: RunSpec, input_shape: tuple[int, ...], n_out: int, loss_fn: LossFn,
                    schedule: LRSchedule, device: torch.device) -> Ensembles | None:
    """The run's ensembles, or None when ``ensemble`` is 1 and ``checkpoint_ensemble`` is 0."""
    t = spec.recipe.train
    n = spec.recipe.model.ensemble
    if n <= 1 and t.checkpoint_ensemble == 0:
        return None
    if n > 1 and (t.importance_weighting or t.unlabeled_loss != "none"):
        raise ValueError("ensemble members train on the plain loss only: turn off importance_weighting "
                         "and unlabeled_loss, or use ensemble = 1")
    if n > 1 and getattr(t, "pretrain", None) is not None:
        raise ValueError("ensemble members start from scratch and cannot share a pretraining phase: "
                         "use ensemble = 1 with pretrain")
    members = Members(spec, input_shape, n_out, loss_fn, schedule, device) if n > 1 else None
    checkpoints = Checkpoints(t.checkpoint_ensemble, t.checkpoint_every) if t.checkpoint_ensemble else None
    return Ensembles(members, checkpoints, loss_fn)
