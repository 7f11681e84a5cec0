"""A run's default thread count on a shared machine, and the OpenMP wait policy its process starts with."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.run import threads


@pytest.mark.parametrize(("cpus", "busy", "expected"), [
    (2, 0.0, 2), (2, 0.05, 2),  # an idle machine: every core, as torch's own default
    (2, 0.5, 1), (2, 1.0, 1), (2, 3.0, 1),  # one core's worth or more of other work: one thread, never none
    (16, 0.25, 12), (16, 0.97, 1),
])
def test_the_default_takes_the_cores_other_work_leaves(cpus: int, busy: float, expected: int) -> None:
    assert threads.default_threads(cpus, busy) == expected


def test_a_configured_or_environment_thread_count_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.choose(3, cpus=2) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose(None, cpus=2) is None  # torch's own, from OMP_NUM_THREADS
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= threads.choose(None, cpus=2) <= 2  # measured: whatever the machine does now


def test_a_busy_machine_gets_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the other core kept busy by a process of its own for the whole sample, the choice is one thread."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        assert threads.choose(None, cpus=os.cpu_count() or 1) == 1
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()


def test_a_resumed_run_keeps_the_threads_it_began_with(monkeypatch: pytest.MonkeyPatch) -> None:
    """The count an interrupted attempt chose wins over the machine's load now (a sum's rounding may depend on it);
    a configured count still wins over both."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.choose(None, cpus=16, earlier=5) == 5
    assert threads.choose(2, cpus=16, earlier=5) == 2
