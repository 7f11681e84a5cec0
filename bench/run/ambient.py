"""The torch state a run or a contract check runs under, whatever its caller set.

A run launched by the CLI starts in a fresh process: torch's default device is the CPU, so whatever torch keeps on
the host by default (a non-capturable optimiser's step counts, a factory that names no device) stays there and is
read without waiting on a GPU. A caller may have changed that (a notebook, or the CUDA test suite through
``torch.set_default_device``); ``host_default_device`` puts it back for the code inside, so a run or a check behaves
as it does from the CLI wherever it is started from.

``deterministic_kernels``: on CUDA, kernels that give the same bits run after run (cuDNN's deterministic algorithms,
torch's deterministic implementations, cuBLAS's fixed workspace), for the checks that compare two trainings bit for
bit. A CPU's kernels already are, for a fixed thread count.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def host_default_device() -> Iterator[None]:
    """The CPU as torch's default device inside, restored after. Where it already is (a run started by the CLI),
    nothing is entered: ``torch.device`` as a context is a Python ``TorchFunctionMode`` that every torch call then
    passes through, which made a small CPU epoch 1.25x slower."""
    if torch.get_default_device().type == "cpu":
        yield
        return
    with torch.device("cpu"):
        yield


@contextlib.contextmanager
def deterministic_kernels(device: torch.device) -> Iterator[None]:
    """Deterministic CUDA kernels inside (nothing changes on other devices); every setting is restored after.

    An op that has no deterministic CUDA implementation warns (``warn_only``) rather than fails: the comparison that
    follows then says whether its rounding mattered.
    """
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read by cuBLAS when it makes a handle
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
