"""The local executor (the default): every run of a sweep, one after another on this machine, each in its own
child process (or all in this process with ``--in-process``).

A fresh ``spawn``ed process per run means its peak RSS and CUDA peaks are its own, and a crash (or the
kernel's OOM killer) costs one run, not the sweep. The child sends progress events over a queue; the parent
only displays them. Ctrl-C reaches the child, which records its run as ``interrupted`` before exiting.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.executors.one_run import execute_run
from bench.executors.plan import PlannedRun, key_of, plan
from bench.results import ResultsError, replace_run_rows, write_json_atomic
from bench.run.config import RunConfig
from bench.run.recipe import Emit, RunError, resolve_device


class SweepInterrupted(Exception):
    """Ctrl-C stopped the sweep; the run in progress was recorded as interrupted."""


def run_sweep(config: RunConfig, *, resume: bool, in_process: bool, emit: Emit) -> list[dict]:
    """Run every planned (method, seed); returns their run rows. Raises SweepInterrupted on Ctrl-C."""
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResultsError(f"cannot create the results folder {out}: {e.strerror}; choose another --out") from e
    resolve_device(config.device)  # fail before any run if the device is unusable
    write_json_atomic(out / f"config-{config.model_hash()}.json", config.to_dict())
    todo, skipped = plan(config, resume)
    for run in skipped:
        emit({"event": "skipped", "key": key_of(config, run), "method": run.method, "seed": run.seed})
    rows = []
    for run in todo:
        if in_process:
            try:
                rows.append(execute_run(config, run.method, run.seed, resume=resume, emit=emit,
                                        measured_in="process"))
            except KeyboardInterrupt:
                raise SweepInterrupted from None
        else:
            rows.append(_run_in_child(config, run, resume, emit))
    return rows


def _child(config_dict: dict, method: str, seed: int, resume: bool, events: Any) -> None:
    """Entry point of a run's own process: run, stream events, exit 130 if interrupted."""
    config = RunConfig(**config_dict)
    try:
        execute_run(config, method, seed, resume=resume, emit=events.put, measured_in="subprocess")
    except KeyboardInterrupt:
        os._exit(130)
    except Exception as e:  # errors that stop the sweep (bad data, unwritable results): tell the parent
        events.put({"event": "error", "message": str(e), "type": type(e).__name__})
        events.close()
        events.join_thread()
        os._exit(2)


def _run_in_child(config: RunConfig, run: PlannedRun, resume: bool, emit: Emit) -> dict:
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
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signal.SIGINT)  # in a terminal it has one already; a second is ignored
            proc.join(120)
    proc.join()
    while drain(0.5):  # events sent just before the child exited
        pass
    error = got.get("error")
    row = got["end"]["row"] if "end" in got else None
    if error:
        raise RunError(error["message"])
    if interrupted or proc.exitcode == 130:
        raise SweepInterrupted
    if row is None:  # the child died without recording (killed, segfault): record that ourselves
        row = _crashed_row(config, run, proc.exitcode)
        emit({"event": "end", "key": key_of(config, run), "row": row})
    return row


def _crashed_row(config: RunConfig, run: PlannedRun, exitcode: int | None) -> dict:
    """A run row for a child process that vanished without writing its own (e.g. killed by the OOM killer)."""
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + f"-crash{run.seed}"
    signal_name = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
    row = {
        "run_id": run_id, "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": "oom" if exitcode == -signal.SIGKILL else "failed",
        "reason": f"run process ended with {signal_name} before recording its result",
        "dataset": config.dataset, "method": run.method, "seed": run.seed, "embedding": config.embedding,
        **config.switches(), "epochs_planned": config.epochs, "config_hash": config.model_hash(),
        "measured_in": "subprocess",
    }
    replace_run_rows(config.out, run_id, row, [])
    return row
