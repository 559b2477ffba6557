"""Opt-in speed switches, and the CPU allocator setting the batched trainer relies on.

``FastPaths`` (all off by default; results then equal the solo loop's within float rounding):

* ``bf16``: run the forward pass under ``torch.autocast(dtype=bfloat16)`` (CUDA, and CPUs with
  bf16 support); gradients, weights and optimizer state stay float32. Numbers change at the
  bf16 level (about 3 significant digits), so curves no longer match the float32 solo run.
* ``compile``: ``torch.compile`` the batched forward + loss (the first steps pay the compile,
  seconds on a CPU; worth it for long runs).
* ``cuda_graphs``: capture the whole training step (forward, backward, clip, optimizer) in a CUDA
  graph and replay it: for tiny models whose step is all kernel-launch overhead. CUDA only; on
  other devices, or when capture fails, the step runs eagerly and a Message says so.

:func:`channels_last` (NHWC memory format for a CNN and its inputs) is a helper the bench measures
on a CNN step, not a switch: CNNs train solo, and on the H100 it was a wash at this size (0.84×,
then 1.12×).

``tune_allocator()``: glibc's malloc returns freed blocks above a dynamic threshold (128 KiB to
start) to the OS and maps fresh pages for the next allocation of that size, so every large
activation of a batched model pays page faults on first touch. On this project's 2-core CPU a
ReLU over an (8, 100, 100) tensor took 124 µs that way and 14 µs with the threshold raised.
``tune_allocator`` raises the mmap and trim thresholds (process-wide, Linux/glibc only; the
price is that the process keeps its peak heap). Set ``DLLAB_MALLOC=system`` to leave malloc
alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import nn

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_THRESHOLD = 1 << 30
_tuned: bool | None = None


def tune_allocator() -> bool:
    """Raise glibc malloc's mmap / trim thresholds once per process; True when it took effect."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if os.environ.get("DLLAB_MALLOC", "").lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            _tuned = bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(
                libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
    except OSError:  # pragma: no cover - not glibc
        _tuned = False
    return _tuned


FAST_PATHS = ("bf16", "compile", "cuda_graphs")


@dataclass(frozen=True)
class FastPaths:
    """Opt-in speed switches (see the module docstring); all off by default."""

    bf16: bool = False
    compile: bool = False
    cuda_graphs: bool = False

    @classmethod
    def parse(cls, text: str | None) -> FastPaths:
        """``"bf16,compile"`` → FastPaths(bf16=True, compile=True); empty or None → all off."""
        names = [n.strip().replace("-", "_") for n in (text or "").split(",") if n.strip()]
        unknown = [n for n in names if n not in FAST_PATHS]
        if unknown:
            raise ValueError(f"unknown fast path {', '.join(map(repr, unknown))}; choose from {', '.join(FAST_PATHS)}")
        return cls(**{n: True for n in names})

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        on = [f.name for f in fields(self) if getattr(self, f.name)]
        return ", ".join(on) if on else "none"


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on `device` when enabled (a no-op context otherwise)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def maybe_compile(fn: Callable, enabled: bool) -> Callable:
    """``torch.compile(fn)`` when enabled, else `fn` itself."""
    return torch.compile(fn, dynamic=False) if enabled else fn


def channels_last(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """A 2-D CNN and its 4-D inputs in the channels-last (NHWC) memory format; others unchanged."""
    if x.dim() != 4:
        return model, x
    return model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)


class StepGraph:
    """A training step captured in a CUDA graph: ``run(*inputs)`` copies the inputs into static
    buffers and replays. Build it with :meth:`capture`; None when capture is not possible."""

    def __init__(self, graph: torch.cuda.CUDAGraph, static_in: tuple[torch.Tensor, ...], static_out: torch.Tensor):
        self.graph, self.static_in, self.static_out = graph, static_in, static_out

    @classmethod
    def capture(cls, step: Callable[..., torch.Tensor], example: tuple[torch.Tensor, ...],
                warmup: int = 3) -> StepGraph:
        """Warm `step` up on a side stream (as CUDA graphs need), then capture one call of it.

        `step` must do all its work on the device (no host reads) and keep its tensors' addresses
        (in-place updates of persistent state only). Raises when the device is not CUDA.
        """
        if not example or example[0].device.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        static_in = tuple(t.clone() for t in example)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                step(*static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = step(*static_in)
        return cls(graph, static_in, static_out)

    def fits(self, *inputs: torch.Tensor) -> bool:
        """Whether the inputs have the captured shapes (an epoch's short last batch does not)."""
        return all(buf.shape == x.shape for buf, x in zip(self.static_in, inputs, strict=True))

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        for buf, x in zip(self.static_in, inputs, strict=True):
            buf.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.static_out

