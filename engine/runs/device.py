"""Which device a run trains on, and how many CPU threads each worker process gets."""

from __future__ import annotations

import os
import platform

import torch

DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks cuda when available, else mps, else cpu; explicit names are checked.

    Accepts ``auto``, ``cpu``, ``cuda``, ``cuda:N`` and ``mps``; anything else, or a device this
    machine does not have, is a ``ValueError`` that says what is available.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind not in DEVICE_KINDS or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(
            f"unknown device {name!r}: use one of auto, cpu, cuda, cuda:N, mps (available here: {available()})"
        )
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_available():
            raise ValueError(f"device 'mps' is not available on this machine (available: {available()})")
        return torch.device("mps")
    if not torch.cuda.is_available():
        build = "without CUDA" if torch.version.cuda is None else f"with CUDA {torch.version.cuda}"
        raise ValueError(
            f"device {name!r} is not available: no CUDA GPU found (torch {torch.__version__} built {build});"
            f" available: {available()}"
        )
    if index:
        count = torch.cuda.device_count()
        if int(index) >= count:
            raise ValueError(f"device {name!r} does not exist: this machine has {count} CUDA device(s)")
        return torch.device("cuda", int(index))
    return torch.device("cuda")


def available() -> str:
    """The devices this machine offers, in words (``cpu, cuda:0, cuda:1``)."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return ", ".join(names)


def threads_per_worker(n_workers: int, device: str | torch.device = "cpu", *, interactive: bool = False) -> int:
    """Torch intra-op threads for each of ``n_workers`` worker processes.

    The cores are shared out evenly (at least one thread each). ``interactive`` keeps one core for
    the app that watches the runs: on a 2-core machine, one worker with one thread trained faster
    beside the app than with two.
    """
    cores = cpu_cores()
    if interactive:
        cores = max(1, cores - 1)
    return max(1, cores // max(1, n_workers))


def describe(device: str | torch.device) -> str:
    """One line for the person: ``cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB)``, ``cpu (x86_64, 2 cores)``."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    if dev.type == "mps":
        return f"mps (Apple GPU, {platform.machine()})"
    machine = platform.machine() or "unknown CPU"
    return f"cpu ({machine}, {cpu_cores()} cores, {torch.get_num_threads()} torch threads)"
