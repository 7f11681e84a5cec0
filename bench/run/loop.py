"""The one epoch loop: every method's epochs, built-in or plug-in, run here.

A method says what one step on one batch is for a part of it, and how an epoch is planned (passes over the data, the
parts each batch trains: ``noprop.core.method``). This loop draws the batches, makes each step through a ``Steps``
(eager, or captured once and replayed as a CUDA graph: ``bench.run.capture``), keeps every step's statistics on the
device and reads them back once, at the epoch's end, for the method to reduce. What reaches every step (precision,
capture, the device-resident data, the clock around the epoch) therefore reaches every method without the method
writing it, the way timm's ``train.py`` and torchtune's recipes own their loops.

The loop runs as a run from the CLI does whoever calls it (``bench.run.ambient.host_default_device``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from bench.run.ambient import host_default_device
from bench.run.budget import Budget
from bench.run.capture import EagerSteps, Steps
from noprop.core.method import EpochPlan, Method, Part, Passes, StepRecord, read_back


@runtime_checkable
class LeadsAGroup(Protocol):
    """A model whose every epoch other processes make with it (block-parallel training's leader,
    ``bench.run.block_parallel``): told before each epoch, with the batch source and the budget, so they draw the same
    batches and stop at the same step."""

    def lead_epoch(self, batches: Passes, budget: Budget | None) -> contextlib.AbstractContextManager: ...


def train_epoch(model: Method, batches: Passes, steps: Steps | None = None, budget: Budget | None = None
                ) -> dict[str, float]:
    """One epoch of ``model`` as its plan says, each step made by ``steps`` (eager by default), ending early at the
    step that spends ``budget`` (``bench.run.budget``); returns the method's epoch statistics ("loss" among them). The
    epoch's one host synchronisation is its statistics' read-back."""
    steps = steps or EagerSteps(model)
    with host_default_device():
        model.train()  # type: ignore[attr-defined]
        plan = model.epoch_plan()
        pending: list[tuple[Part, Tensor, int]] = []
        leading = model.lead_epoch(batches, budget) if isinstance(model, LeadsAGroup) else contextlib.nullcontext()
        with leading, plan.context():
            steps.prepare()
            per_image = parts_per_image(plan)
            for part, x, y in planned_steps(plan, batches):
                if budget is not None and budget.exhausted():
                    break
                pending.append((part, steps(part, x, y), y.shape[0]))
                if budget is not None:
                    budget.charge(y.shape[0], per_image)
        on_host = read_back_all([stats for _, stats, _ in pending])
        return model.epoch_stats([StepRecord(part, stats, n) for (part, _, n), stats in zip(pending, on_host,
                                                                                             strict=True)])


def planned_steps(plan: EpochPlan, batches: Passes) -> Iterator[tuple[Part, Tensor, Tensor]]:
    """(part, x, y) of every step of an epoch, in order: each pass over fresh batches, each batch's parts in turn."""
    for one_pass in plan.passes:
        for x, y in batches():
            for part in one_pass.for_batch():
                yield part, x, y


def parts_per_image(plan: EpochPlan) -> int:
    """How many part-steps one image takes part in over an epoch (NoProp-DT's paper order: T, one network: 1)."""
    return sum(1 if p.draw is not None else len(p.parts) for p in plan.passes)


def first_steps(model: Method, x: Tensor, y: Tensor, steps: Steps | None = None) -> list[Tensor]:
    """The steps the first batch of an epoch makes on (x, y) (each part of the plan's first pass, in order), outside
    any epoch: for the contract's checks and the untimed probes."""
    steps = steps or EagerSteps(model)
    with host_default_device():
        model.train()  # type: ignore[attr-defined]
        plan = model.epoch_plan()
        with plan.context():
            steps.prepare()
            return [steps(part, x, y) for part in plan.passes[0].for_batch()]


def read_back_all(tensors: Sequence[Tensor]) -> list[Tensor]:
    """Every tensor on the host, through one device synchronisation (one flat copy), each in its own shape and
    dtype again."""
    if not tensors:
        return []
    flat = read_back(torch.cat([t.reshape(-1) for t in tensors]))
    sizes = [t.numel() for t in tensors]
    return [part.view(t.shape).to(t.dtype) for part, t in zip(flat.split(sizes), tensors, strict=True)]
