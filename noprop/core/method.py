"""The one interface every method (NoProp-DT, its backprop baseline, and those to come) offers the harness.

The harness builds a method, hands it training passes, and asks for predictions and state; it never reaches
inside one and never names one. A method, in turn, never opens a file or reads the clock. What the harness must
know about a method to record a run (how many block passes an image costs, which of its settings a result row
records) the method declares here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

# What fit_epoch receives: each call returns a fresh iterator over one full pass of (x, y) training batches.
Passes = Callable[[], Iterable[tuple[Tensor, Tensor]]]


@runtime_checkable
class Method(Protocol):
    """A trainable classifier as the harness sees it (every method is also a ``torch.nn.Module``)."""

    @property
    def block_passes_per_sample(self) -> int:
        """Block forward/backward passes one training image costs per epoch (T for NoProp-DT and backprop)."""
        ...

    def recorded_settings(self) -> dict[str, str | int]:
        """Settings of this method that a result row records (column -> value), e.g. NoProp-DT's block order or
        NoProp-CT's ODE steps."""
        ...

    def train_step(self, x: Tensor, y: Tensor) -> Tensor:
        """One optimiser step of every block on one mini-batch; returns detached statistics, never syncs."""
        ...

    def fit_epoch(self, passes: Passes) -> dict[str, float]:
        """One epoch (every image trains every block once); returns mean statistics, "loss" among them."""
        ...

    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits from images alone (labels never reach a method at inference). ``deterministic``: the reading
        without randomness (z_0 = 0, no injected noise) of a method whose inference samples noise."""
        ...

    def label_embedding(self) -> Tensor:
        """The class embeddings W [classes, d] (for the report's figures)."""
        ...

    def training_state(self) -> dict:
        """Weights, optimiser state and counters: a plain dict of tensors and numbers (loads with weights_only)."""
        ...

    def load_training_state(self, state: dict) -> None:
        """Continue from what ``training_state`` returned."""
        ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...


@runtime_checkable
class StepsAtInference(Protocol):
    """A method whose inference integrates an ODE in a fixed number of steps (NoProp-CT, NoProp-FM): the harness
    may set ``inference_steps`` between readings to measure accuracy and time against the step count."""

    inference_steps: int


@runtime_checkable
class BlockParallel(Protocol):
    """A method whose blocks can be trained split over the processes of a ``torch.distributed`` group (NoProp-DT in
    the interleaved order, ``noprop.dt.parallel``).

    The harness starts the processes, joins them into a group and picks where collectives run; which blocks a
    process trains and what it must share with the others is the method's own business. So the harness asks the
    method, through this one call, instead of reaching inside it, and a method without it is a clear error.
    """

    def split_blocks_over_group(self, collective_device: torch.device) -> None:
        """From now on train only this process's share of the blocks of the group this process has joined (rank
        and world size come from ``torch.distributed``), sharing with the others what every block needs;
        collectives run on ``collective_device`` (the CPU for gloo, this rank's GPU for nccl)."""
        ...


def read_back(t: Tensor) -> Tensor:
    """``t`` on the host: the one device synchronisation a ``fit_epoch`` makes, at its end, to return its statistics.

    It is exempt from torch's CUDA sync debug mode, which a CUDA test sets to "error" around whole epochs so that any
    other synchronisation in a training loop fails it.
    """
    if t.device.type != "cuda":
        return t
    mode = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(0)
    try:
        return t.cpu()
    finally:
        torch.cuda.set_sync_debug_mode(mode)
