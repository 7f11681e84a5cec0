"""Stopping a sweep from outside. Ctrl-C (SIGINT), SIGTERM (a SLURM time limit or ``scancel``, ``timeout``,
systemd, Kubernetes) and SIGHUP (a closed terminal or ssh session) all mean the same thing: the running run
checkpoints and records itself ``interrupted``, every process the sweep started ends, the CSVs stay whole, and the
command exits 128 + the signal's number (130, 143, 129), so a scheduler can tell a stop from a failure.

Each signal raises ``Stopped``, a ``KeyboardInterrupt``, so the one path that already handles Ctrl-C everywhere
(``bench.run.recipe``, the executors, the CLI) handles them all. The process remembers which signal stopped it, to
say so in the row's reason, to pass the same signal on to the processes it started, and to choose its exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP",
         signal.SIGUSR2: "SLURM time limit"}  # SIGUSR2: what a SLURM job is sent before its limit (--signal)
EXIT_CODES = {128 + int(s) for s in STOP_SIGNALS}
_state: dict[str, int | None] = {"signal": None}


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(NAMES.get(signum, f"signal {signum}"))
        self.signum = signum


def _raise(signum: int, frame: FrameType | None) -> None:
    """The first stop signal stops the process; later ones are ignored, so none can cut the interrupted row being
    written (a parent that passes its signal on, or a terminal's second Ctrl-C; the parent's wait is bounded)."""
    _state["signal"] = signum
    hold_off()
    raise Stopped(signum)


def stop_on_signals(*extra: int) -> None:
    """From now on, in this process, SIGTERM and SIGHUP (and any ``extra`` signal) stop it as Ctrl-C does (call it
    in the main thread, after any library that installs handlers of its own, such as ``ray.init`` or submitit)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in (*STOP_SIGNALS, *extra):
        signal.signal(s, _raise)


def hold_off() -> None:
    """Ignore further stop signals: the row of the stopped run is being written and must not be cut."""
    if threading.current_thread() is threading.main_thread():
        for s in (*STOP_SIGNALS, signal.SIGUSR2):
            signal.signal(s, signal.SIG_IGN)


@contextlib.contextmanager
def restored_after() -> Iterator[None]:
    """Inside, a run may be stopped and ignore the later signals (``hold_off``); after, this process handles stop
    signals as it did before and has seen none. For a process that goes on to other work: a Ray worker runs the
    next task in the same process (a run interrupted there left it ignoring Ctrl-C, so Ray could no longer cancel
    the next run in it), and the test suite runs many runs in one process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in (*STOP_SIGNALS, signal.SIGUSR2)}
    seen = _state["signal"]
    try:
        yield
    finally:
        for s, handler in saved.items():
            if handler is not None:  # None: installed outside Python, nothing to put back
                signal.signal(s, handler)
        _state["signal"] = seen


def interruptible() -> None:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt in this process, even where it started with SIGINT ignored: a
    command started in the background by a non-interactive shell (``cmd &``, CI runners) passes SIGINT ignored to
    every process it starts, Ray's workers included, and Ray cancels a running task only through SIGINT's handler
    (``ray.cancel`` then did nothing, and a stopped sweep's runs trained to their end)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def received() -> int:
    """The signal that stopped this process (SIGINT when none was seen: a KeyboardInterrupt from elsewhere)."""
    return _state["signal"] or signal.SIGINT


def reason() -> str:
    """The row's reason for an interrupted run: ``Ctrl-C``, ``SIGTERM`` or ``SIGHUP``."""
    return NAMES.get(received(), f"signal {received()}")


def exit_code(child_code: int | None = None) -> int:
    """128 + the signal that stopped this process, or, where only a child process was stopped, its exit code."""
    if _state["signal"] is None and child_code in EXIT_CODES:
        return int(child_code)
    return 128 + int(received())


def pass_on(pid: int) -> None:
    """Send the signal that stopped this process to a process it started (gone already: nothing to do)."""
    try:
        os.kill(pid, received())
    except ProcessLookupError:
        pass
