"""The one interface every method (NoProp-DT, its backprop baseline, and those to come) offers the harness.

The harness builds a method, runs its training, and asks for predictions and state; it never reaches inside one and
never names one. The harness owns the loop (``bench.run.loop``): a method says what ONE training step on one batch is
for a named part of it (``train_step``; NoProp-DT's block t, or every part at once) and how an epoch is planned
(``epoch_plan``: passes over the data, and the parts each batch trains), and it reduces the statistics its steps
returned (``epoch_stats``). So precision, step capture (CUDA graphs), device-resident data, timing and memory reach
every method, a plug-in's too, without the method writing any of them, the way timm's ``train.py`` and torchtune's
recipes own the loop.

A method never opens a file or reads the clock. What the harness must know about a method to record a run (how many
block passes an image costs, which of its settings a result row records) the method declares here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

# What the harness's epoch loop draws batches from: each call returns a fresh iterator over one full pass of (x, y)
# training batches (normalised float images, integer labels) in a new order.
Passes = Callable[[], Iterable[tuple[Tensor, Tensor]]]

Part = Hashable  # what one step trains: NoProp-DT's block t (an int), or ALL
ALL = "all"  # the part that is the whole method (every block at once, the one network)


@dataclass(frozen=True)
class Pass:
    """One pass over the training data: each batch trains ``parts`` in turn, one ``train_step`` each.

    ``parts`` is fixed (NoProp-DT's paper order: block t in pass t; every block of DiffusionBlocks in turn) or drawn
    per batch by ``draw`` on the host (DiffusionBlocks' random-block order: one block, uniformly).
    """

    parts: tuple[Part, ...] = (ALL,)
    draw: Callable[[], tuple[Part, ...]] | None = None

    def for_batch(self) -> tuple[Part, ...]:
        """The parts the next batch trains, in order."""
        return self.draw() if self.draw is not None else self.parts


@dataclass(frozen=True)
class EpochPlan:
    """What one epoch is: its passes, in order, and a context the loop holds around them (``nullcontext`` for most
    methods; NoProp-DT's batched blocks stack the blocks' weights on entry and hand them back on exit)."""

    passes: Sequence[Pass] = (Pass(),)
    context: Callable[[], contextlib.AbstractContextManager] = field(default=contextlib.nullcontext)


class StepRecord(NamedTuple):
    """One step of an epoch as ``epoch_stats`` receives it: the part trained, what ``train_step`` returned (now on
    the host) and the batch's size."""

    part: Part
    stats: Tensor
    examples: int


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

    def epoch_plan(self) -> EpochPlan:
        """How the next epoch trains: its passes and the parts each batch trains (every image must train every
        trainable part once per epoch)."""
        ...

    def train_step(self, x: Tensor, y: Tensor, part: Part = ALL) -> Tensor:
        """One optimiser step of ``part`` on one mini-batch; returns its statistics as a detached tensor, never syncs.

        Host-side bookkeeping (learning-rate schedules, update counters) belongs in ``before_step``, which the
        harness calls before every step: a captured step replays its device work only (docs/plugins.md)."""
        ...

    def epoch_stats(self, records: Sequence[StepRecord]) -> dict[str, float]:
        """The epoch's statistics from its steps' records, in order: "loss" (mean over examples; NaN is returned,
        never raised) and whatever else the method reports."""
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
class BeforeStep(Protocol):
    """A method with host-side bookkeeping per step (the harness calls it before each ``train_step``, eagerly, also
    when the step itself is replayed from a CUDA graph): set the learning rates of the coming update (in place when
    they are tensors) and advance its counters."""

    def before_step(self, part: Part) -> None: ...


@runtime_checkable
class Capturable(Protocol):
    """What the harness needs to capture a method's step as a CUDA graph (a spec declaring ``capturable=True``): the
    optimisers its steps step (made capturable, their learning rate a device tensor, their state snapshotted around
    the warm-up) and the random generators its steps draw from besides torch's default one (registered with each
    graph, so a replay draws what an eager step would)."""

    def optimizers(self) -> list[torch.optim.Optimizer]: ...

    def random_streams(self) -> list[torch.Generator]: ...


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
    """``t`` on the host: the one device synchronisation of an epoch, the loop's, at its end (``bench.run.loop``).

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
