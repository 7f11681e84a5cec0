"""A full disk at a checkpoint, on a real (small) tmpfs: the sweep stops there as unwritable results do
(``bench.executors.local``'s rule), with one line and exit 2, instead of recording the run ``failed`` and training
the next run only to fail it the same way; every whole row already written survives byte for byte. Needs
``mount`` (root); skipped, saying why, elsewhere."""

from __future__ import annotations

import csv
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TINY, cli

FREE_BYTES = 256 * 1024  # room for the CSVs and an artifact, not for a checkpoint of TINY's model (~1.2 MB)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted for this test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until ``leave`` bytes are free."""
    stat = os.statvfs(folder)
    (folder / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - leave))


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_full_disk_at_a_checkpoint_stops_the_sweep_and_keeps_every_row(tiny_mnist: Path, small_disk: Path) -> None:
    out = small_disk / "res"
    args = ["run", *TINY, "--epochs", "1", "--methods", "noprop", "--data-dir", str(tiny_mnist), "--out", str(out),
            "--quiet"]
    first = cli(*args, "--seeds", "0")
    assert first.returncode == 0, first.stderr
    written = (out / "runs.csv").read_bytes()
    fill(small_disk, FREE_BYTES)

    proc = cli(*args, "--seeds", "0,1,2", "--resume")
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "No space left on device" in line and "checkpoints" in line and "--resume" in line, line
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert (out / "runs.csv").read_bytes() == written  # seed 0's row, whole; no 'failed' row for seeds 1 and 2
    assert [r["seed"] for r in rows(out / "runs.csv")] == ["0"]
    assert not [p for p in out.rglob("*.tmp")]  # no half-written checkpoint left behind
