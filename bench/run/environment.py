"""What every result row records about where it was measured, so a number can be trusted and repeated."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path

import torch

# The checkout this package runs from: bench/run/ is two levels below the repository root.
_REPO_ROOT = Path(__file__).resolve().parents[2]
_GIT_TIMEOUT_S = 5.0


def capture(device: torch.device | str) -> dict:
    """The environment columns of a run row: device, versions, thread count, git state, host."""
    device = torch.device(device)
    return {
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch_version": str(torch.__version__),
        "cuda_version": torch.version.cuda or "",
        "python_version": platform.python_version(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "hostname": socket.gethostname(),
    }


def device_name(device: torch.device | str) -> str:
    """The accelerator's name for a CUDA device, otherwise the CPU model (fallback ``"cpu"``)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return _cpu_name()


@functools.cache
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


@functools.cache
def git_commit() -> str:
    """HEAD of the checkout holding this package; ``""`` when it is not a git checkout (e.g. a wheel install)."""
    return _git("rev-parse", "HEAD") or ""


@functools.cache
def git_dirty() -> bool | None:
    """Whether the checkout has uncommitted changes (untracked files count); None when that cannot be known.

    Cached per process: the harness runs each run in a fresh child process, so a row reflects its run's code.
    """
    out = _git("status", "--porcelain")
    return None if out is None else bool(out)


def _git(*args: str) -> str | None:
    """Output of a git command in the package's checkout, or None if git, the checkout or the command fails."""
    # Only a checkout whose root holds bench/ counts: an installed copy inside some other repository must not
    # report that repository's commit.
    if not (_REPO_ROOT / ".git").exists():
        return None
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take index.lock and collide with the user's own git commands.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(
            ["git", "-C", str(_REPO_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
