"""What the SLURM executor asks SLURM itself, through its commands: which partitions there are, the state of jobs
(``squeue`` while they are queued or running, ``scontrol show job`` after, which needs no accounting database, so
``sacct`` is never used), cancelling and requeueing. Each failure is one ``RunError`` line saying what to do."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from bench.run.identity import RunError

# States of a job that has not ended (squeue's long names).
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
          "SUSPENDED", "STAGE_OUT", "SIGNALING", "RESV_DEL_HOLD", "STOPPED"}
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class JobState:
    """A job as SLURM reports it: its state (``RUNNING``, ``COMPLETED``, ``TIMEOUT``, ...; ``UNKNOWN`` once SLURM has
    forgotten it), SLURM's reason (empty when it gives none) and, once it ended, its ``ExitCode`` (``exit:signal``,
    e.g. ``140:0``; empty while it runs)."""

    state: str
    reason: str = ""
    exit_code: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def _call(args: list[str], what: str) -> str:
    """Run one SLURM command; its stdout, or a RunError naming what failed and SLURM's own words."""
    if shutil.which(args[0]) is None:
        raise RunError(f"--executor slurm needs SLURM's {args[0]} on this machine (not found on PATH); run from a "
                       "SLURM login node, or use --executor local")
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RunError(f"SLURM did not answer {what} within {TIMEOUT_S:g} s; is slurmctld up?") from None
    if done.returncode != 0:
        words = (done.stderr or done.stdout).strip().splitlines()
        raise RunError(f"SLURM refused {what}: {words[-1] if words else f'exit code {done.returncode}'}")
    return done.stdout


def check_submittable(partition: str | None) -> None:
    """``sbatch`` is here, the controller answers, and ``partition`` (when given) exists."""
    if shutil.which("sbatch") is None:
        raise RunError("--executor slurm needs SLURM's sbatch on this machine (not found on PATH); run from a SLURM "
                       "login node, or use --executor local")
    names = [p.strip() for p in _call(["sinfo", "-h", "-o", "%R"], "to list its partitions").split()]
    if partition is not None and partition not in names:
        raise RunError(f"SLURM has no partition {partition!r} (sinfo lists: {', '.join(sorted(set(names)))}); "
                       "choose one with --slurm-partition")


def states(job_ids: list[str]) -> dict[str, JobState]:
    """Every given job's state: from ``squeue`` if it is queued or running, else from ``scontrol show job``."""
    if not job_ids:
        return {}
    found: dict[str, JobState] = {}
    listed = _call(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%r"], "to list jobs")
    for line in listed.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        found[job.strip()] = JobState(state.strip(), _reason(reason))
    for job in job_ids:
        if job not in found or not found[job].active:
            found[job] = finished_state(job)
    return found


def finished_state(job_id: str) -> JobState:
    """A job's last state from ``scontrol show job`` (kept for MinJobAge after it ends); UNKNOWN once forgotten."""
    done = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    if done.returncode != 0:
        return JobState("UNKNOWN", "SLURM no longer knows the job")
    fields = dict(part.split("=", 1) for part in done.stdout.split() if "=" in part)
    return JobState(fields.get("JobState", "UNKNOWN"), _reason(fields.get("Reason", "")), fields.get("ExitCode", ""))


def _reason(text: str) -> str:
    text = text.strip()
    return "" if text in ("None", "(null)") else text


def cancel(job_ids: list[str]) -> None:
    """``scancel``: a running job gets SIGTERM (its run records itself interrupted), a queued one never starts."""
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=TIMEOUT_S)


def requeue(job_id: str) -> bool:
    """Put a running job back in the queue (``scontrol requeue``); False when SLURM refuses."""
    done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, timeout=TIMEOUT_S)
    return done.returncode == 0
