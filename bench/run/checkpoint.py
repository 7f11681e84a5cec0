"""Per-run checkpoints written at the end of every epoch, so ``--resume`` loses at most the epoch in progress.

A checkpoint is a plain dict of tensors, numbers, strings and lists (loaded with ``weights_only=True``, so a file
cannot run code): the method's training state (weights and optimiser), the RNG streams the run draws from, and the
measurements and epoch rows so far, so a resumed run completes the same rows it would have written uninterrupted.
It is written through ``bench.results.atomic.atomic_write``: a crash leaves the previous one intact.
"""

from __future__ import annotations

import errno
import io
from pathlib import Path
from typing import Any

import torch

from bench.results.atomic import ResultsError, atomic_write

CHECKPOINT_DIR = "checkpoints"
FORMAT = 2  # 2: plain dicts only (weights_only loading)


def checkpoint_path(out: Path, run_key: str, run_id: str) -> Path:
    """Where a run's checkpoint lives; the run id keeps two concurrent identical sweeps apart."""
    return out / CHECKPOINT_DIR / f"{run_key}.{run_id}.pt"


def latest_checkpoint(out: Path, run_key: str) -> Path | None:
    """The newest checkpoint of a run key, if any (used by ``--resume``)."""
    found = sorted((out / CHECKPOINT_DIR).glob(f"{run_key}.*.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def save(path: Path, state: dict[str, Any]) -> None:
    """Atomically write a checkpoint. A write that fails (a full disk) is a ResultsError, which stops the sweep as
    any unwritable result does: every run after it would train only to fail the same way."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    try:
        atomic_write(path, lambda f: f.write(buffer.getbuffer()))
    except ResultsError as e:
        cause = e.__cause__
        full = isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(e)
        raise ResultsError(f"could not write the checkpoint {path}: {reason}; the sweep stopped there, keeping every "
                           f"row written so far: {'free space' if full else 'fix that'}, then run the same command "
                           "with --resume to continue from the run's last checkpoint") from e


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU (the caller moves state to its device); refuse one this code cannot use."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an unpickling error, a truncated file, a checkpoint of the old format
        raise ResultsError(f"checkpoint {path} cannot be read ({type(e).__name__}); delete it to start that run "
                           "again, or resume with the version that wrote it") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ResultsError(f"checkpoint {path} is of another format; delete it to start that run again")
    return state
