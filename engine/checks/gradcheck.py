"""Gradient checking: analytic (backprop) gradients against centred differences.

For each checked entry w_i of a parameter tensor, the numerical gradient is

    n_i = (L(w + h·e_i) − L(w − h·e_i)) / 2h        (error O(h²), unlike the one-sided O(h))

and the comparison is the **relative** error |a_i − n_i| / max(|a_i|, |n_i|) (0 when both are 0),
never the absolute one: a difference of 1e-4 is tiny next to a gradient of 10 and huge next to one
of 1e-5. The thresholds of CS231n's notes, per tensor (its worst checked entry):

==================  ==============================================================================
rel ≤ 1e-7          correct: you should be happy
rel ≤ 1e-4          fine when the function has kinks (ReLU, max, hinge, |x|), too high without them
rel ≤ 1e-2          uncomfortable: usually a bug, or a kink crossed, or float32 precision
rel > 1e-2          the gradient is probably wrong
==================  ==============================================================================

The check runs in float64 (in float32 the rounding of L, ~1e-7·|L|, divided by 2h swamps the
difference), with dropout and other training-time noise off (``model.eval()``) and without
penalties, on a small batch. Large tensors are checked on a seeded random subset of entries.

A hand-written layer, :class:`HandWrittenLinear`, computes a linear layer with its own
``torch.autograd.Function``; ``broken=True`` makes its backward return the bias gradient averaged
over the batch instead of summed (a classic slip), which the check catches on that tensor alone.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

HAPPY = 1e-7
KINKS_OK = 1e-4
WRONG = 1e-2
THRESHOLDS = (
    (HAPPY, "≤ 1e-7: correct, you should be happy"),
    (KINKS_OK, "≤ 1e-4: fine with kinks (ReLU, max, hinge), too high for a smooth function"),
    (WRONG, "≤ 1e-2: uncomfortable: a bug, a kink crossed, or float32"),
    (math.inf, "> 1e-2: the gradient is probably wrong"),
)
KINKED_ACTIVATIONS = ("relu", "leaky_relu", "maxout")
KINKED_LOSSES = ("hinge", "l1")


def relative_error(analytic: Tensor, numeric: Tensor) -> Tensor:
    """|a − n| / max(|a|, |n|) elementwise, 0 where both are exactly 0."""
    diff = (analytic - numeric).abs()
    scale = torch.maximum(analytic.abs(), numeric.abs())
    return torch.where(scale > 0, diff / torch.where(scale > 0, scale, torch.ones_like(scale)), torch.zeros_like(diff))


def verdict(rel: float, kinks: bool) -> tuple[str, str]:
    """(status, words): status is pass / warn / fail by the notes' thresholds."""
    if not math.isfinite(rel):
        return "fail", "not finite"
    if rel <= HAPPY:
        return "pass", "≤ 1e-7"
    if rel <= KINKS_OK:
        return ("pass", "≤ 1e-4, kinks") if kinks else ("warn", "> 1e-7, smooth")
    if rel <= WRONG:
        return "warn", "uncomfortable"
    return "fail", "wrong"


# --- a hand-written layer, right or wrong -----------------------------------------------------

class _LinearFunction(torch.autograd.Function):
    """y = x·Wᵀ + b with a written-out backward (optionally with the bias gradient averaged)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, broken: bool) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.broken = broken
        return x @ weight.T + bias

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        grad_x = grad_out @ weight
        grad_w = grad_out.T @ x
        grad_b = grad_out.mean(0) if ctx.broken else grad_out.sum(0)  # the bug: mean instead of sum
        return grad_x, grad_w, grad_b, None


class HandWrittenLinear(nn.Module):
    """A linear layer whose gradient comes from :class:`_LinearFunction` (same weight and bias)."""

    def __init__(self, linear: nn.Linear, broken: bool = False) -> None:
        super().__init__()
        if linear.bias is None:
            raise ValueError("HandWrittenLinear needs a layer with a bias")
        self.weight, self.bias, self.broken = linear.weight, linear.bias, broken
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: Tensor) -> Tensor:
        return _LinearFunction.apply(x, self.weight, self.bias, self.broken)

    def extra_repr(self) -> str:
        return f"{self.in_features} → {self.out_features}, backward {'BROKEN (bias grad averaged)' if self.broken else 'hand-written'}"


def replace_first_linear(model: nn.Module, broken: bool) -> str:
    """Swap the first ``nn.Linear`` of `model` for a HandWrittenLinear; returns its name."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, HandWrittenLinear(module, broken))
            return name
    raise ValueError("the model has no linear layer with a bias to replace")


# --- the check ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorCheck:
    name: str
    shape: tuple[int, ...]
    n_checked: int
    n_total: int
    rel_error: float
    """The tensor's relative error ‖a − n‖ / max(‖a‖, ‖n‖) over its checked entries: the verdict's figure."""
    max_entry_rel: float
    """The worst single entry's |a_i − n_i| / max(|a_i|, |n_i|) (large for tiny gradients: rounding)."""
    median_entry_rel: float
    worst_index: tuple[int, ...]
    worst_analytic: float
    worst_numeric: float
    status: str
    words: str


@dataclass
class GradCheckResult:
    tensors: list[TensorCheck]
    dtype: str
    h: float
    kinks: bool
    loss: float
    notes: list[str] = field(default_factory=list)

    @property
    def max_rel(self) -> float:
        """The largest per-tensor relative error."""
        return max((t.rel_error for t in self.tensors), default=0.0)

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.tensors)

    @property
    def passed(self) -> bool:
        return self.count("fail") == 0 and self.count("warn") == 0

    def metrics(self) -> dict[str, float]:
        out = {"train_loss": self.loss, "max_rel_error": self.max_rel,
               "max_entry_rel_error": max((t.max_entry_rel for t in self.tensors), default=0.0),
               "n_tensors": float(len(self.tensors)), "n_pass": float(self.count("pass")),
               "n_warn": float(self.count("warn")), "n_fail": float(self.count("fail")), "gradcheck_h": self.h}
        for t in self.tensors:
            out[f"rel_error.{t.name}"] = t.rel_error
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "h": self.h, "kinks": self.kinks, "loss": self.loss,
                "max_rel": self.max_rel, "notes": self.notes, "tensors": [asdict(t) for t in self.tensors]}


def default_h(dtype: torch.dtype) -> float:
    return 1e-5 if dtype == torch.float64 else 1e-3


def numerical_gradient(loss_of: Callable[[], Tensor], p: Tensor, flat_idx: Tensor, h: float) -> Tensor:
    """Centred differences (L(w + h·e_i) − L(w − h·e_i)) / 2h for the listed flat entries of `p`."""
    flat = p.detach().view(-1)
    out = torch.empty(len(flat_idx), dtype=torch.float64)
    with torch.no_grad():
        for j, i in enumerate(flat_idx.tolist()):
            old = flat[i].item()
            flat[i] = old + h
            plus = float(loss_of())
            flat[i] = old - h
            minus = float(loss_of())
            flat[i] = old
            out[j] = (plus - minus) / (2 * h)
    return out


def check_gradients(
    loss_of: Callable[[], Tensor],
    params: list[tuple[str, Tensor]],
    *,
    h: float | None = None,
    max_elements: int | None = 200,
    seed: int = 0,
    kinks: bool = False,
) -> GradCheckResult:
    """Check ``loss_of()``'s gradient with respect to each named tensor in `params`.

    `loss_of` recomputes the scalar loss from the current parameter values (called 2 × checked
    entries + 1 times). Entries are perturbed in place and restored exactly. Per tensor, the
    verdict uses ‖a − n‖ / max(‖a‖, ‖n‖) over the checked entries (the worst single entry is
    reported too: for entries whose gradient is tiny, rounding alone makes its relative error large).
    """
    if not params:
        raise ValueError("nothing to check: no parameters")
    dtype = params[0][1].dtype
    h = default_h(dtype) if h is None else h
    with torch.enable_grad():
        loss = loss_of()
        grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
    g = torch.Generator().manual_seed(seed)
    checks = []
    for (name, p), grad in zip(params, grads, strict=True):
        analytic = torch.zeros_like(p) if grad is None else grad.detach()
        n_total = p.numel()
        if max_elements is None or n_total <= max_elements:
            flat_idx = torch.arange(n_total)
        else:
            flat_idx = torch.randperm(n_total, generator=g)[:max_elements].sort().values
        numeric = numerical_gradient(loss_of, p, flat_idx, h)
        a = analytic.reshape(-1)[flat_idx].cpu().double()
        entry = relative_error(a, numeric)
        rel = _norm_relative(a, numeric)
        k = int(entry.argmax()) if len(entry) else 0
        status, words = verdict(rel, kinks)
        worst = tuple(int(v) for v in torch.unravel_index(flat_idx[k], tuple(p.shape))) if len(entry) else ()
        checks.append(TensorCheck(
            name, tuple(p.shape), len(flat_idx), n_total, rel,
            float(entry.max()) if len(entry) else 0.0, float(entry.median()) if len(entry) else 0.0, worst,
            float(a[k]) if len(a) else 0.0, float(numeric[k]) if len(a) else 0.0, status, words,
        ))
    return GradCheckResult(checks, str(dtype).replace("torch.", ""), h, kinks, float(loss.detach()))


def _norm_relative(a: Tensor, n: Tensor) -> float:
    """‖a − n‖ / max(‖a‖, ‖n‖), 0 when both are 0."""
    scale = max(float(torch.linalg.vector_norm(a)), float(torch.linalg.vector_norm(n)))
    return float(torch.linalg.vector_norm(a - n)) / scale if scale > 0 else 0.0


def check_model(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    dtype: torch.dtype = torch.float64,
    h: float | None = None,
    max_elements: int | None = 200,
    seed: int = 0,
    kinks: bool = False,
) -> GradCheckResult:
    """Gradient check of ``loss_fn(model(x), y)`` for every parameter, in `dtype`, eval mode.

    The model is converted in place (``model.to(dtype)``) and put in eval mode, which turns
    dropout and DropConnect off; pass the data loss only (no penalties).
    """
    model.to(dtype).eval()
    x = x.to(dtype)
    y = y.to(dtype) if y.is_floating_point() else y
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def loss_of() -> Tensor:
        return loss_fn(model(x), y)

    result = check_gradients(loss_of, params, h=h, max_elements=max_elements, seed=seed, kinks=kinks)
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()):
        result.notes.append("dropout layers are off for the check (eval mode): random masks would differ between the two evaluations")
    return result


def spec_has_kinks(spec) -> bool:
    """True when the model or loss of a RunSpec has kinks (ReLU-family, max, hinge, L1)."""
    r = spec.recipe
    return r.model.activation in KINKED_ACTIVATIONS or r.train.loss in KINKED_LOSSES or r.model.kind == "cnn"


def check_spec(spec, device: str | torch.device = "cpu") -> tuple[GradCheckResult, str | None]:
    """Build the spec's data and model (seeded as in training) and check its gradients.

    Uses the first ``batch_size`` training samples (at most 64; full batch = 64), the spec's loss
    without penalties, ``gradcheck_layer``, ``gradcheck_dtype``, ``gradcheck_h`` and
    ``gradcheck_max_elements``. Returns the result and the replaced layer's name (if any).
    """
    from engine.data import load_data
    from engine.models import build_model
    from engine.recipe.losses import build_loss

    r, t = spec.recipe, spec.recipe.train
    data = load_data(r.data, seed=t.seed, device="cpu")
    classify = data.task == "classification"
    torch.manual_seed(t.seed)
    model = build_model(r.model, data.input_shape, data.n_classes if classify else 1)
    replaced = None
    if t.gradcheck_layer != "none":
        replaced = replace_first_linear(model, broken=t.gradcheck_layer == "broken")
    n = min(t.batch_size or 64, 64, len(data.x_train))
    x, y = data.x_train[:n], data.y_train[:n]
    loss_fn = build_loss(t, data.task, data.n_classes)
    dtype = torch.float64 if t.gradcheck_dtype == "float64" else torch.float32
    result = check_model(model, loss_fn, x, y, dtype=dtype, h=t.gradcheck_h, max_elements=t.gradcheck_max_elements,
                         seed=t.seed, kinks=spec_has_kinks(spec))
    if t.l1 or t.l2 or t.weight_decay:
        result.notes.append("penalties (l1, l2, weight decay) are left out of the checked loss")
    return result, replaced


def train_gradcheck(spec, emit, should_stop=lambda: False, *, device: str | torch.device = "cpu",
                    run_id: str | None = None, data: Any = None):
    """The trainer of ``train.gradcheck`` specs (``engine.runs.executor.trainer_for``): one check,
    reported as a run's events.

    RunStarted, one EvalMetrics (step 0: ``train_loss``, ``max_rel_error``), one Diagnostics with a
    row per parameter tensor (``rel_error``, ``status``), Messages for notes, and RunFinished whose
    final metrics are ``max_rel_error``, ``n_pass`` / ``n_warn`` / ``n_fail``, ``n_tensors``,
    ``rel_error.<tensor>`` and ``train_loss``. Status ``done`` whatever the verdict (the claims judge).
    """
    from engine.events import Diagnostics, EvalMetrics, Message, RunFinished
    from engine.training.runbook import run_started

    run_id = run_id or uuid.uuid4().hex[:10]
    t0 = time.perf_counter()
    info = {"name": spec.recipe.data.name, "task": "gradcheck"}
    status = "done"
    try:
        result, replaced = check_spec(spec, device)
    except Exception as exc:  # a spec the check cannot run: a failed run with the reason
        emit(run_started(spec, run_id, "cpu", 0, 1, 1, info))
        finished = RunFinished(run_id, "failed", 0, f"gradient check failed: {exc}", {}, {}, time.perf_counter() - t0)
        emit(finished)
        return finished
    n_params = sum(t.n_total for t in result.tensors)
    emit(run_started(spec, run_id, "cpu", n_params, 1, 1, info))
    metrics = result.metrics()
    emit(EvalMetrics(run_id, 0, 0.0, {"train_loss": result.loss, "max_rel_error": result.max_rel},
                     time.perf_counter() - t0))
    layers = {t.name: {"rel_error": t.rel_error, "max_entry_rel_error": t.max_entry_rel,
                       "median_entry_rel_error": t.median_entry_rel, "checked": t.n_checked,
                       "status": t.status, "verdict": t.words} for t in result.tensors}
    emit(Diagnostics(run_id, 0, layers, {"max_rel_error": result.max_rel}))
    if replaced:
        emit(Message(run_id, f"{replaced} replaced by a hand-written linear layer "
                             f"({spec.recipe.train.gradcheck_layer} backward)"))
    for note in result.notes:
        emit(Message(run_id, note))
    worst = max(result.tensors, key=lambda t: t.rel_error)
    reason = (f"{result.count('pass')} of {len(result.tensors)} tensors pass; worst {worst.name}: "
              f"relative error {worst.rel_error:.2e} ({worst.words})")
    finished = RunFinished(run_id, status, 0, reason, metrics, {}, time.perf_counter() - t0,
                           {k: v for k, v in metrics.items() if not k.startswith("rel_error.")})
    emit(finished)
    return finished
