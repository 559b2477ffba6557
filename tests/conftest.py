"""Test-session settings: a private DLLAB_HOME (no test writes to the person's run store) and one
torch thread per process (pytest-xdist runs one process per core; more threads oversubscribe)."""

from __future__ import annotations

import os
import tempfile

os.environ["DLLAB_HOME"] = tempfile.mkdtemp(prefix="dllab-tests-")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config) -> None:
    import torch

    torch.set_num_threads(1)
