"""Per-run checkpoints written at the end of every epoch, so ``--resume`` loses at most the epoch in progress.

A checkpoint holds the method's training state (weights and optimiser), the RNG streams the run draws
from, the measurements so far and the epoch rows, so a resumed run completes the same rows it would have
written uninterrupted. Files are written to a temp name and renamed: a crash leaves the previous one intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_DIR = "checkpoints"


def checkpoint_path(out: Path, run_key: str, run_id: str) -> Path:
    """Where a run's checkpoint lives; the run id keeps two concurrent identical sweeps apart."""
    return out / CHECKPOINT_DIR / f"{run_key}.{run_id}.pt"


def latest_checkpoint(out: Path, run_key: str) -> Path | None:
    """The newest checkpoint of a run key, if any (used by ``--resume``)."""
    found = sorted((out / CHECKPOINT_DIR).glob(f"{run_key}.*.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def save(path: Path, state: dict[str, Any]) -> None:
    """Atomically write a checkpoint (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU; the caller moves state to its device."""
    return torch.load(path, map_location="cpu", weights_only=False)
