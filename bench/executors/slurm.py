"""The SLURM executor (``--executor slurm``, the optional ``slurm`` extra: submitit): every run of a sweep is one
SLURM job, submitted through submitit, on the cluster whose ``sbatch`` this machine has.

A job writes only its own checkpoints and artifacts and appends its progress events, one JSON line each, to an
events file beside its checkpoints (``OUT/checkpoints/slurm/``, where submitit keeps the job's own stdout and
stderr too); the driver (this process) follows those files, shows the events with the same ``emit`` as the local
executor, and is the only writer of runs.csv and epochs.csv, as with Ray. ``--out`` must therefore be on storage the
nodes share.

The driver keeps a ledger of the jobs it submitted (``jobs.json``). ``--resume`` after the driver died finds the
runs whose jobs are still queued or running and follows them instead of submitting them again.

Stopping: the driver's Ctrl-C, SIGTERM or SIGHUP cancels its jobs (``scancel``: a running job gets SIGTERM and its
run records itself ``interrupted``). A job nearing its time limit gets SIGUSR2 (``--signal=USR2@N``; SLURM may send
it up to 60 s before N, so in a short job at any moment, even while Python starts): the job holds the signal from
its first statement (``bench.executors.slurm_start``) until its handler is in place, its run records itself
interrupted by the time limit and, with ``--slurm-requeue``, the job requeues itself (``scontrol requeue``) and its
run continues from its checkpoint when it starts again. A job that ends without sending its row is recorded from
SLURM's state: ``TIMEOUT``, ``PREEMPTED`` and ``DEADLINE`` as ``interrupted``, a job killed by the warning itself
(exit code 140, 128 + SIGUSR2: it came before the interpreter had started) as ``interrupted`` by the time limit,
``OUT_OF_MEMORY`` as ``oom``, every other (``CANCELLED``, ``FAILED``, ``NODE_FAIL``, ...) as ``failed``, with SLURM's
state and reason.

submitit is imported inside functions only, so the package (and the other executors) work without it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.executors import slurm_queue
from bench.executors.one_run import execute_run
from bench.executors.plan import PlannedRun, key_of
from bench.executors.slurm_start import MODULE as START_MODULE
from bench.executors.sweep import SweepInterrupted, prepare, record_crashed
from bench.results import ResultsError, replace_run_rows, write_json_atomic
from bench.run import stopping
from bench.run.config import RunConfig
from bench.run.identity import RunError, crashed_row, key_for
from bench.run.readers import DataError
from bench.run.recipe import Emit

INSTALL_HINT = "the slurm executor needs submitit: pip install 'noprop-bench[slurm]'"
MEASURED_IN = "slurm-job"
POLL_S = 0.5  # how often the driver reads the events files
STATE_EVERY_S = 5.0  # how often it asks SLURM for its jobs' states
WARNING_S = 90  # a job's SIGUSR2 is asked for this long before its time limit (to record itself and requeue), or
# half its time for a job shorter than twice that; SLURM may send it up to 60 s earlier still (sbatch --signal)
WARNED_EXIT = 128 + signal.SIGUSR2  # 140: a job's task killed by the warning before it could hold it
CANCEL_WAIT_S = 60.0  # after the driver is stopped: how long cancelled runs get to record themselves
ENDED_AS = {"TIMEOUT": "interrupted", "PREEMPTED": "interrupted", "DEADLINE": "interrupted", "OUT_OF_MEMORY": "oom"}


@dataclass(frozen=True)
class SlurmOptions:
    """What each run's job asks SLURM for (``--slurm-*``); ``None`` leaves it to the cluster's defaults."""

    partition: str | None = None
    time_min: int | None = None
    gpus_per_run: int = 0
    cpus_per_run: int | None = None
    mem: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    requeue: bool = False


def parse_time(text: str) -> int:
    """Whole minutes (rounded up) from SLURM's time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    try:
        days, sep, clock = text.partition("-") if "-" in text else ("0", "", text)
        parts = [int(p) for p in clock.split(":")]
        if sep or len(parts) == 3:
            hours, minutes, seconds = (parts + [0, 0])[:3]
        else:
            hours, minutes, seconds = 0, parts[0], (parts + [0])[1]
        total = int(days) * 24 * 60 + hours * 60 + minutes + (seconds > 0)
    except ValueError:
        raise ValueError(f"--slurm-time {text!r} is not a SLURM time (minutes, H:MM:SS or D-HH:MM)") from None
    if total < 1 or len(parts) > 3:
        raise ValueError(f"--slurm-time {text!r} is not a SLURM time of at least a minute")
    return total


def import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise RunError(INSTALL_HINT) from None
    return submitit


def run_sweep(config: RunConfig, *, resume: bool, emit: Emit, options: SlurmOptions) -> list[dict]:
    """Run every planned (method, seed) as a SLURM job; returns their run rows in plan order.

    Raises RunError when submitit or ``sbatch`` is missing, the partition does not exist or a run cannot start (bad
    data), and SweepInterrupted when the driver is stopped (after the cancelled runs recorded themselves)."""
    submitit = import_submitit()
    slurm_queue.check_submittable(options.partition)
    todo = prepare(config, resume, emit)
    if not todo:
        return []
    return _Driver(submitit, config, options, emit).run(todo, resume)


@dataclass
class _Job:
    """One run's job as the driver follows it."""

    run: PlannedRun
    key: str
    job_id: str
    events: Path
    offset: int = 0
    ended: bool = False  # its run's row has arrived (and no requeue followed it)
    last: slurm_queue.JobState = field(default_factory=lambda: slurm_queue.JobState("PENDING"))


class _Driver:
    """Submits (or re-attaches to) the jobs, shows their events, writes their rows, records jobs that died."""

    def __init__(self, submitit: Any, config: RunConfig, options: SlurmOptions, emit: Emit) -> None:
        self.submitit, self.config, self.options, self.emit = submitit, config, options, emit
        self.folder = Path(config.out) / "checkpoints" / "slurm"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ledger_path = self.folder / "jobs.json"
        self.rows: dict[str, dict] = {}
        self.error: str | None = None

    def run(self, todo: list[PlannedRun], resume: bool) -> list[dict]:
        jobs: list[_Job] = []
        try:
            jobs = self._start(todo, resume)
            self._follow(jobs)
        except KeyboardInterrupt:
            stopping.hold_off()
            self._stop(jobs)
            raise SweepInterrupted(stopping.exit_code()) from None
        except BaseException:
            slurm_queue.cancel([j.job_id for j in jobs if not j.ended])
            raise
        return [self.rows[k] for k in (key_of(self.config, run) for run in todo) if k in self.rows]

    # ---- submitting -------------------------------------------------------------------------------------

    def _start(self, todo: list[PlannedRun], resume: bool) -> list[_Job]:
        """Re-attach (``--resume``) to the ledger's jobs that are still queued or running, or that finished their
        run while no driver was following them; submit the rest (an interrupted run's job continues its
        checkpoint)."""
        ledger = self._ledger()
        active = slurm_queue.states([ledger[k] for k in map(self._key, todo) if k in ledger]) if resume else {}
        jobs, fresh = [], []
        for run in todo:
            key = self._key(run)
            job_id = ledger.get(key)
            known = job_id is not None and job_id in active
            if known and (active[job_id].active or _finished_ok(self._events_path(key), job_id)):
                offset = _events_of(self._events_path(key), job_id)[0]
                jobs.append(_Job(run, key, str(job_id), self._events_path(key), offset))
            else:
                fresh.append(run)
        # a new job appends to its run's events file: what an earlier job of the run wrote there is not its own
        offsets = {self._key(run): _size(self._events_path(self._key(run))) for run in fresh}
        for run, job_id in zip(fresh, self._submit(fresh, resume), strict=True):
            key = self._key(run)
            ledger[key] = job_id
            jobs.append(_Job(run, key, job_id, self._events_path(key), offsets[key]))
        write_json_atomic(self.ledger_path, ledger)
        return jobs

    def _submit(self, runs: list[PlannedRun], resume: bool) -> list[str]:
        if not runs:
            return []
        executor = self.submitit.SlurmExecutor(folder=str(self.folder / "%j"),
                                               python=f"{shlex.quote(sys.executable)} -u -m {START_MODULE}")
        executor.update_parameters(**self._parameters())
        cwd, config_dict = os.getcwd(), self.config.to_dict()
        ids = []
        for run in runs:
            events = self._events_path(self._key(run))
            executor.update_parameters(job_name=f"noprop-{run.method}-seed{run.seed}")
            try:
                job = executor.submit(_job, config_dict, run.method, run.seed, resume, str(events), cwd,
                                      self.options.requeue)
            except Exception as e:  # submitit raises its own errors with sbatch's words in them
                words = str(e).strip().splitlines()
                raise RunError(f"SLURM refused the job of {run.method} seed {run.seed}: "
                               f"{words[-1] if words else type(e).__name__}") from None
            ids.append(str(job.job_id))
        return ids

    def _parameters(self) -> dict[str, Any]:
        """submitit's SlurmExecutor parameters for one run's job."""
        o = self.options
        threads = (self.config.threads or 1) * self.config.block_workers
        warning = min(WARNING_S, o.time_min * 60 // 2) if o.time_min else WARNING_S  # a short job: half its time
        params: dict[str, Any] = {"cpus_per_task": o.cpus_per_run or threads, "signal_delay_s": warning,
                                  "stderr_to_stdout": False, "additional_parameters": dict(o.extra)}
        if o.partition:
            params["partition"] = o.partition
        if o.time_min:
            params["time"] = o.time_min
        if o.gpus_per_run:
            params["gpus_per_node"] = o.gpus_per_run
        if o.mem:
            params["mem"] = o.mem
        return params

    # ---- following ----------------------------------------------------------------------------------------

    def _follow(self, jobs: list[_Job]) -> None:
        asked = 0.0
        while any(not j.ended for j in jobs):
            for job in jobs:
                self._read(job)
            if self.error is not None:
                raise RunError(self.error)
            if time.monotonic() - asked > STATE_EVERY_S:
                asked = time.monotonic()
                self._check_states([j for j in jobs if not j.ended])
            time.sleep(POLL_S)

    def _read(self, job: _Job) -> None:
        """Handle the complete new lines of a job's events file."""
        if not job.events.exists():
            return
        with open(job.events, "rb") as f:
            f.seek(job.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        job.offset += len(complete)
        for line in complete.decode().splitlines():
            if line.strip():
                self._handle(job, json.loads(line))

    def _handle(self, job: _Job, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "error":
            self.error = self.error or event["message"]
            job.ended = True
            return
        if kind == "end":
            row = event["row"]
            replace_run_rows(self.config.out, row["run_id"], row, event.get("epoch_rows", []))
            self.rows[job.key] = row
            job.ended = True
        elif kind in ("requeued", "requeue-refused"):  # requeued: the job comes back and continues its run;
            return  # refused: its held-back interrupted row follows
        self.emit(event)

    def _check_states(self, jobs: list[_Job]) -> None:
        """Record the jobs SLURM says have ended without their run's row."""
        found = slurm_queue.states([j.job_id for j in jobs])
        for job in jobs:
            job.last = found.get(job.job_id, slurm_queue.JobState("UNKNOWN"))
            if job.last.active:
                continue
            self._read(job)  # events written just before the job ended
            if not job.ended:
                self._record_lost(job)

    def _record_lost(self, job: _Job) -> None:
        status, reason = ended_as(job.job_id, job.last)
        row = record_crashed(self.config, job.run, status=status, reason=reason[:200], measured_in=MEASURED_IN)
        self.rows[job.key] = row
        job.ended = True
        self.emit({"event": "end", "key": job.key, "row": row, "epoch_rows": []})

    def _stop(self, jobs: list[_Job]) -> None:
        """Cancel the unfinished jobs and give their runs CANCEL_WAIT_S to send their interrupted rows."""
        slurm_queue.cancel([j.job_id for j in jobs if not j.ended])
        deadline = time.monotonic() + CANCEL_WAIT_S
        while any(not j.ended for j in jobs) and time.monotonic() < deadline:
            for job in jobs:
                self._read(job)
            time.sleep(POLL_S)
            found = slurm_queue.states([j.job_id for j in jobs if not j.ended])
            for job in jobs:
                if not job.ended and not found.get(job.job_id, slurm_queue.JobState("UNKNOWN")).active:
                    self._read(job)
                    job.ended = True  # cancelled before it started, or gone: --resume runs it

    # ---- the ledger ----------------------------------------------------------------------------------------

    def _key(self, run: PlannedRun) -> str:
        return key_of(self.config, run)

    def _events_path(self, key: str) -> Path:
        return self.folder / f"{key}.events.jsonl"

    def _ledger(self) -> dict[str, str]:
        try:
            found = json.loads(self.ledger_path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def ended_as(job_id: str, state: slurm_queue.JobState) -> tuple[str, str]:
    """(status, reason) of the row of a job that ended without sending its run's: from SLURM's state, except that a
    task killed by the time-limit warning (exit 140, or signal 12 where SLURM reports the signal) is the time limit."""
    if state.exit_code in (f"{WARNED_EXIT}:0", f"0:{int(signal.SIGUSR2)}"):
        return "interrupted", (f"{stopping.NAMES[signal.SIGUSR2]}: job {job_id} ended by the warning signal (SIGUSR2, "
                               f"exit code {state.exit_code}) before its run could record itself")
    reason = f"SLURM job {job_id} ended {state.state}" + (f" ({state.reason})" if state.reason else "")
    return ENDED_AS.get(state.state.split()[0], "failed"), reason


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _events_of(path: Path, job_id: str) -> tuple[int, list[dict]]:
    """Where job ``job_id``'s own events begin in its run's events file (the byte offset of its first ``start``;
    the file's end when it has written none yet), and those events."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0, []
    offset, events, begin = 0, [], None
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # a line the job is still writing
        try:
            event = json.loads(line)
        except ValueError:
            event = {}
        if begin is None and event.get("event") == "start" and str(event.get("job")) == job_id:
            begin = offset
        if begin is not None:
            events.append(event)
        offset += len(line)
    return (begin if begin is not None else len(data)), events


def _finished_ok(path: Path, job_id: str) -> bool:
    """Whether job ``job_id`` sent its run's ``ok`` row."""
    ends = [e for e in _events_of(path, job_id)[1] if e.get("event") == "end"]
    return bool(ends) and ends[-1]["row"].get("status") == "ok"


def _job(config_dict: dict, method: str, seed: int, resume: bool, events_path: str, cwd: str,
         requeue: bool) -> None:
    """One run in its own SLURM job: its events appended to ``events_path``, its row sent in the ``end`` event.
    A requeued job (SLURM_RESTART_COUNT > 0) continues its run from the checkpoint. SIGUSR2, held since the job's
    first statement (``bench.executors.slurm_start``), is let through once its handler is in place."""
    import torch

    if os.path.isdir(cwd):  # relative --out and --data-dir mean what they mean to the driver
        os.chdir(cwd)
    config = RunConfig(**config_dict)
    events = _EventsFile(events_path, requeue)
    restarted = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0
    stopping.stop_on_signals(signal.SIGUSR2)  # after submitit's handlers: a stop records the run interrupted
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})  # a warning that came early stops the run now
        execute_run(config, method, seed, resume=resume or restarted, emit=events.emit, measured_in=MEASURED_IN,
                    write_rows=None)
    except KeyboardInterrupt:  # the run's own interrupted row, or, stopped before it began, one made here
        events.end_unrecorded(config, method, seed)
        events.requeue_or_end()
    except (DataError, RunError, ResultsError) as e:  # they stop the sweep (a full disk at a checkpoint too)
        events.emit({"event": "error", "message": str(e)})
    finally:
        events.close()


class _EventsFile:
    """A job's events, appended to its file one JSON line each and synced (the driver reads them from another
    node of a shared file system). With ``--slurm-requeue``, the ``end`` of a run stopped by the time-limit warning
    is held back: the job tells the driver it is requeued *before* asking SLURM (which kills it at once), so the
    driver never takes the interrupted row for the run's last; the row goes out only if SLURM refuses."""

    def __init__(self, path: str, requeue: bool) -> None:
        self.file = open(path, "a")  # noqa: SIM115 (open for the whole job; closed by close())
        self.requeue = requeue
        self.held: dict[str, Any] | None = None
        self.started = False  # the run's start was sent
        self.ended = False  # the run's end (its row) was sent or held back

    def emit(self, event: dict[str, Any]) -> None:
        if event["event"] == "start":
            event = {**event, "pid": os.getpid(), "host": socket.gethostname(), "job": os.environ.get("SLURM_JOB_ID")}
            self.started = True
        if event["event"] == "end":
            self.ended = True
            if self.requeue and stopping.received() == signal.SIGUSR2:
                self.held = event
                return
        self._write(event)

    def end_unrecorded(self, config: RunConfig, method: str, seed: int) -> None:
        """A stop that came before the run could record itself (a time-limit warning held while the job started):
        send its start (which tells a resumed driver where this job's events begin) and an interrupted row, so the
        driver records why, not a job that ended without a row."""
        if self.ended:
            return
        key = key_for(config, method, seed)
        if not self.started:
            self.emit({"event": "start", "key": key, "method": method, "seed": seed,
                       "epochs": config.epochs_for(method), "epoch": 0})
        row = crashed_row(config, method, seed, status="interrupted", reason=stopping.reason(),
                          measured_in=MEASURED_IN)
        self.emit({"event": "end", "key": key, "row": row, "epoch_rows": []})

    def requeue_or_end(self) -> None:
        """After the run stopped: requeue the job if its end was held back, else nothing more to send."""
        if self.held is None:
            return
        job_id = os.environ.get("SLURM_JOB_ID", "")
        if job_id:
            self._write({"event": "requeued", "job": job_id})
            if slurm_queue.requeue(job_id):
                return
            self._write({"event": "requeue-refused", "job": job_id})
        self._write(self.held)

    def _write(self, event: dict[str, Any]) -> None:
        self.file.write(json.dumps(event, default=str) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def job_stdout(folder: Path, job_id: str) -> list[Path]:
    """The job's own stdout and stderr files as submitit names them (for the docs and tests)."""
    return sorted((folder / job_id).glob(f"{job_id}_*_log.*"))

