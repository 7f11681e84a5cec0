"""A tracker whose store fills up mid-run costs the tracking, never the run: one warning line, the run finishes
with its rows whole, exit 0. The store is a real full disk: a small tmpfs (needs root; skipped where mounting is
not allowed), filled once the run has checkpointed its first epoch. Synthetic MNIST-format files: code paths only."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TINY

RUN = ["run", *TINY, "--seeds", "0", "--epochs", "30", "--methods", "noprop", "--quiet"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs, unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + done.stderr.decode().strip())
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> None:
    """Write until the disk is full."""
    try:
        with open(disk / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError:
        pass  # ENOSPC: full


def test_a_full_disk_under_a_tracker_costs_only_the_tracking(tiny_mnist: Path, tmp_path: Path, small_disk: Path,
                                                              tracker: str) -> None:
    out = tmp_path / "res"
    args = [*RUN, "--data-dir", str(tiny_mnist), "--out", str(out), "--track", tracker]
    if tracker == "tensorboard":
        out.mkdir()
        (out / "tensorboard").symlink_to(small_disk)
    else:
        args += ["--mlflow-uri", f"sqlite:///{small_disk / 'mlflow.db'}"]
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "XDG_CACHE_HOME": "/nonexistent"})
    deadline = time.time() + 180
    while not list((out / "checkpoints").glob("*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    fill(small_disk)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if "tracking stopped" in line]
    assert len(warnings) == 1 and tracker in warnings[0] and "Traceback" not in stderr, stderr
    assert "No space left on device" in warnings[0] or "disk is full" in warnings[0], warnings  # the root cause
    with open(out / "runs.csv", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["epochs_done"] == "30"


@pytest.fixture(params=["tensorboard", "mlflow"])
def tracker(request: pytest.FixtureRequest) -> str:
    pytest.importorskip(request.param, reason=f"{request.param} is not installed")
    return request.param
