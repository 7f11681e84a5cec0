"""How many threads a run's torch computes with when the config leaves it open.

On a machine that other work shares, torch's default (one OpenMP thread per core) collapses: every small operation
is a parallel region whose threads must all arrive at its barrier, and a thread the scheduler has given to another
process arrives late while its siblings wait for it (measured: docs/performance.md, "On a shared machine"). So a
run that is not told its thread count (``--threads``, or ``OMP_NUM_THREADS`` in its environment) takes the cores
the machine leaves free when it starts (``default_threads``). Letting the waiting threads sleep instead
(``OMP_WAIT_POLICY=PASSIVE``) was measured too and is not set: it halved two threads' epoch beside other work, but
made an idle machine's epoch 2.6x slower, every barrier then a wake-up.
"""

from __future__ import annotations

import math
import os

import psutil

SAMPLE_S = 0.25  # how long the machine's CPU use is watched before a run chooses its threads


def default_threads(cpus: int, busy_fraction: float) -> int:
    """The threads for a run on ``cpus`` CPUs of which other work keeps ``busy_fraction`` busy: the free CPUs,
    rounded to the nearest whole one, at least one."""
    free = cpus * (1.0 - min(max(busy_fraction, 0.0), 1.0))
    return max(1, min(cpus, math.floor(free + 0.5)))


def choose(configured: int | None, cpus: int, earlier: int | None = None) -> int | None:
    """The thread count a run sets: the configured one; the one an interrupted attempt of it chose (``earlier``,
    from its checkpoint: a run's sums may depend on how many threads share them, so a resumed run keeps its count);
    none (torch's own) where ``OMP_NUM_THREADS`` says; else ``default_threads`` from what the machine's CPUs do while
    this process waits ``SAMPLE_S`` seconds."""
    if configured or earlier:
        return configured or earlier
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return default_threads(cpus, psutil.cpu_percent(interval=SAMPLE_S) / 100.0)
