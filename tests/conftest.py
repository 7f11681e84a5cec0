"""Fixtures and helpers shared across the test packages (which mirror bench/, noprop/ and baselines/).

``tiny_mnist`` is a small MNIST-format dataset in the real IDX layout (random pixels: it checks code paths, never
accuracy); ``cli`` runs the real command line in a child process, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.formats import write_idx_dataset

# A tiny but complete run: the paper's model at 1/8 width with 3 blocks, on the tiny dataset.
TINY = ["--dataset", "mnist", "--width", "0.125", "--T", "3", "--batch-size", "64", "--eval-repeats", "2"]


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding mnist/ with 256 training and 64 test images."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root / "mnist", n_train=256, n_test=64)
    return root


def cli(*args: str, timeout: float = 240, **kw) -> subprocess.CompletedProcess:
    """``python -m bench.cli ARGS`` with no dataset cache, captured."""
    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)
