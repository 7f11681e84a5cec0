"""A training budget in the unit a comparison needs: every method of a sweep trains until it has spent the same
amount, and its epochs are whatever that comes to.

An epoch is not the same work for every method (NoProp-CT makes a tenth of NoProp-DT's block passes, DGL does a tenth
of its arithmetic), so "the same epochs" is not "the same cost". A budget is one of:

- ``budget_gflop``: training GFLOP, counted as the run's probe counts them (torch's FLOP counter on one untimed step,
  ``train_gflop_per_sample``: the matmul and convolution FLOPs of training every part once on one image). A step of
  one part on n images costs n x that / the parts an image trains per epoch (NoProp-DT's paper order: T; a method
  trained as one network: 1), the parts of a method taken as equal in cost (they are: NoProp-DT's and DiffusionBlocks'
  blocks are one architecture). The count is deterministic, so a resumed run and block-parallel followers stop at the
  same step;
- ``budget_seconds``: training seconds on the run's device (the clock ``train_time_s`` reads), checked on the host
  before every step.

The loop stops at a step boundary: the step that reaches the budget is the last, so a run overshoots by less than one
step, and its row records what it spent. ``epochs`` stays the run's ceiling: a run that reaches it first says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

Unit = Literal["gflop", "seconds"]


@dataclass
class Budget:
    """How much a run may spend and has spent (``spent`` is saved in checkpoints, so a resumed run continues it)."""

    unit: Unit
    amount: float
    spent: float = 0.0
    gflop_per_sample: float | None = None  # the probe's count (gflop budgets)
    images: float = 0.0  # images that trained every part once, so far (a last, partial epoch counts its share)
    _epoch_started: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.unit == "gflop" and not self.gflop_per_sample:
            raise ValueError("a GFLOP budget needs the method's FLOPs per image, which its probe did not count "
                             "(its spec says counts_flops=False); give it a budget in seconds or epochs")

    def start_epoch(self) -> None:
        self._epoch_started = time.perf_counter()

    def exhausted(self) -> bool:
        """Whether the budget is spent (checked before each step: no step starts past it)."""
        if self.unit == "seconds" and self._epoch_started is not None:
            return self.spent + (time.perf_counter() - self._epoch_started) >= self.amount
        return self.spent >= self.amount

    def charge(self, examples: int, parts_per_image: int) -> None:
        """Count a step of one part on ``examples`` images (gflop budgets; seconds are counted by the clock)."""
        self.images += examples / parts_per_image
        if self.unit == "gflop":
            assert self.gflop_per_sample is not None
            self.spent += examples * self.gflop_per_sample / parts_per_image

    def end_epoch(self, train_seconds: float) -> None:
        """The epoch's synchronised training time replaces the host clock's reading (seconds budgets)."""
        if self.unit == "seconds":
            self.spent += train_seconds
        self._epoch_started = None

    def row(self) -> dict[str, object]:
        return {"budget_unit": self.unit, "budget": self.amount, "budget_spent": self.spent}


def from_config(gflop: float | None, seconds: float | None, gflop_per_sample: float | None,
                spent: float = 0.0, images: float = 0.0) -> Budget | None:
    """The run's budget from its config (None: it trains for its epochs); ``spent`` and ``images``: so far."""
    if gflop is not None:
        return Budget("gflop", gflop, spent, gflop_per_sample, images)
    if seconds is not None:
        return Budget("seconds", seconds, spent, images=images)
    return None
