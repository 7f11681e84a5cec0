"""The local executor (the default): every run of a sweep, one after another on this machine, each in its own
child process (or all in this process with ``--in-process``).

A fresh ``spawn``ed process per run means its peak RSS and CUDA peaks are its own, and a crash (or the
kernel's OOM killer) costs one run, not the sweep. The child sends progress events over a queue; the parent
only displays them. Ctrl-C, SIGTERM or SIGHUP (``bench.run.stopping``) reach the child (the parent passes the one
it received on), which records its run as ``interrupted`` before exiting with 128 + the signal.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
from typing import Any

from bench.executors.one_run import execute_run
from bench.executors.plan import PlannedRun, key_of
from bench.executors.sweep import SweepInterrupted, prepare, record_crashed
from bench.run import stopping
from bench.run.config import RunConfig
from bench.run.identity import RunError
from bench.run.recipe import Emit

__all__ = ["SweepInterrupted", "run_sweep"]
STOP_WAIT_S = 120.0  # after a stop signal: how long a run's process gets to record itself as interrupted


def run_sweep(config: RunConfig, *, resume: bool, in_process: bool, emit: Emit) -> list[dict]:
    """Run every planned (method, seed); returns their run rows. Raises SweepInterrupted on Ctrl-C."""
    todo = prepare(config, resume, emit)
    rows = []
    for run in todo:
        if in_process:
            try:
                rows.append(execute_run(config, run.method, run.seed, resume=resume, emit=emit,
                                        measured_in="process"))
            except KeyboardInterrupt:
                raise SweepInterrupted(stopping.exit_code()) from None
        else:
            rows.append(_run_in_child(config, run, resume, emit))
    return rows


def _child(config_dict: dict, method: str, seed: int, resume: bool, events: Any) -> None:
    """Entry point of a run's own process: run, stream events, exit 128 + the signal if stopped."""
    stopping.stop_on_signals()
    config = RunConfig(**config_dict)
    try:
        execute_run(config, method, seed, resume=resume, emit=events.put, measured_in="subprocess")
    except KeyboardInterrupt:
        events.close()
        events.join_thread()  # the interrupted row's "end" event reaches the parent before we go
        os._exit(stopping.exit_code())
    except Exception as e:  # errors that stop the sweep (bad data, unwritable results): tell the parent
        events.put({"event": "error", "message": str(e), "type": type(e).__name__})
        events.close()
        events.join_thread()
        os._exit(2)


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (which a spawned child's queue needs) with SIGHUP ignored, as it
    already ignores SIGINT and SIGTERM: a SIGHUP to the whole process group (a closed terminal) would otherwise end
    it mid-cleanup with a traceback, while the sweep records its run."""
    from multiprocessing import resource_tracker

    if threading.current_thread() is not threading.main_thread():
        resource_tracker.ensure_running()
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


def _run_in_child(config: RunConfig, run: PlannedRun, resume: bool, emit: Emit) -> dict:
    _start_resource_tracker()
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    proc = ctx.Process(target=_child, args=(config.to_dict(), run.method, run.seed, resume, events), daemon=True)
    proc.start()
    got: dict[str, dict] = {}

    def drain(timeout_s: float) -> bool:
        """Handle one event if one arrives in time; False when the queue stayed empty."""
        try:
            event = events.get(timeout=timeout_s)
        except queue.Empty:
            return False
        if event["event"] in ("end", "error"):
            got[event["event"]] = event
        if event["event"] != "error":
            emit(event)
        return True

    interrupted = False
    while proc.is_alive():
        try:
            drain(0.2)
        except KeyboardInterrupt:
            interrupted = True
            _stop_child(proc)
    proc.join()
    while drain(0.5):  # events sent just before the child exited
        pass
    error = got.get("error")
    row = got["end"]["row"] if "end" in got else None
    if error:
        raise RunError(error["message"])
    if interrupted or proc.exitcode in stopping.EXIT_CODES:
        raise SweepInterrupted(stopping.exit_code(proc.exitcode))
    if row is None:  # the child died without recording (killed, segfault): record that ourselves
        row = _crashed_row(config, run, proc.exitcode)
        emit({"event": "end", "key": key_of(config, run), "row": row})
    return row


def _stop_child(proc: Any) -> None:
    """Pass the stop signal on to the run's process and give it time to record itself interrupted."""
    if proc.is_alive() and proc.pid:
        stopping.pass_on(proc.pid)  # in a terminal or a SLURM job it has one already; a second is ignored
    proc.join(STOP_WAIT_S)
    if proc.is_alive():  # it did not record itself in time: its last checkpoint is what --resume continues
        proc.kill()
        proc.join()


def _crashed_row(config: RunConfig, run: PlannedRun, exitcode: int | None) -> dict:
    """The row of a child process that vanished without writing its own (SIGKILL: most likely the OOM killer)."""
    signal_name = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
    return record_crashed(config, run, status="oom" if exitcode == -signal.SIGKILL else "failed",
                          reason=f"run process ended with {signal_name} before recording its result",
                          measured_in="subprocess")
