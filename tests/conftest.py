"""Fixtures and helpers shared across the test packages (which mirror bench/, noprop/ and baselines/).

``tiny_mnist`` is a small MNIST-format dataset in the real IDX layout (random pixels: it checks code paths, never
accuracy); ``cli`` runs the real command line in a child process, as a user would.

The device the suite runs on: ``pytest --device cuda`` (or ``NOPROP_TEST_DEVICE=cuda``) makes CUDA torch's default
device for every test, and ``cli`` passes ``--device cuda`` to every ``run`` it starts, so the whole suite, child
processes included, exercises the CUDA path. Tests that are about the CPU alone name ``cpu`` explicitly. On CUDA every
test runs with strict IEEE float32 (a run's default: cuDNN would otherwise convolve in TF32, whose rounding is far
beyond the tolerances that compare two computations of one function) and deterministic kernels (the tests compare
trainings bit for bit, as the contract does: ``bench.run.ambient.deterministic_kernels``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bench.run import stopping
from bench.run.ambient import deterministic_kernels
from bench.run.switches import fp32_mode
from tests.formats import write_idx_dataset

if os.environ.get("PYTEST_XDIST_WORKER"):  # xdist's workers get COLUMNS=80, which Rich would fix as the CLI's
    os.environ.pop("COLUMNS", None)       # width at import; tests give the width they need through the env instead

_DEVICE = {"name": "cpu"}  # the suite's device, set once in pytest_configure (read by ``cli``)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default=os.environ.get("NOPROP_TEST_DEVICE", "cpu"),
                     help="run the suite on this torch device: cpu (default) or cuda[:N] (env NOPROP_TEST_DEVICE)")


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {name}: CUDA is not available here; run the suite with --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise pytest.UsageError(f"--device {name}: choose cpu or cuda[:N]")
    _DEVICE["name"] = name
    if name != "cpu":
        torch.set_default_device(name)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # ``-n 2``: one torch thread per worker and per child it starts
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


# Test modules that start a cluster engine (Ray, SLURM) share machine-wide state (fixed ports, Ray's session folder
# and raylets, the one SLURM node): under ``pytest -n 2`` they run one after another on one worker, while every other
# test is scheduled on its own. (xdist's ``--dist loadgroup`` marks are not honoured under pytest 9: tried, 3.8.0.)
ENGINE_MODULES = frozenset({"test_ray.py", "test_ray_nodes.py", "test_slurm.py", "test_tensorboard.py"})


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: without xdist installed, never called
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under ``-n N`` with xdist's default ``--dist load``: the same, except that the engine modules are one unit."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class EnginesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "engines" if Path(nodeid.split("::", 1)[0]).name in ENGINE_MODULES else nodeid

    return EnginesTogether(config, log)


def suite_device() -> torch.device:
    """The torch device the suite runs on (``--device``), for module-level use."""
    return torch.device(_DEVICE["name"])


def two_gpus_on_cuda() -> pytest.MarkDecorator:
    """Skip a test of two block workers on a CUDA machine with fewer than two GPUs: on CUDA block worker r trains on
    GPU r (bench.run.block_parallel), so the test cannot run there; the CPU suite runs it."""
    return pytest.mark.skipif(suite_device().type == "cuda" and torch.cuda.device_count() < 2,
                              reason="two block workers on CUDA need two GPUs")


@pytest.fixture(autouse=True)
def _stop_signals_as_they_were() -> Iterator[None]:
    """A run interrupted inside a test ignores later stop signals in this process (bench.run.stopping.hold_off):
    put them back after each test, or a Ray cluster a later test starts from here inherits the deafness and cannot
    cancel its tasks."""
    with stopping.restored_after():
        yield


@pytest.fixture(autouse=True)
def _cuda_as_a_run_computes() -> Iterator[None]:
    """On CUDA: IEEE float32 and deterministic kernels around every test (nothing changes on the CPU)."""
    if suite_device().type != "cuda":
        yield
        return
    with fp32_mode("ieee"), deterministic_kernels(suite_device()):
        yield


@pytest.fixture
def device() -> torch.device:
    """The torch device the suite runs on (``--device``)."""
    return suite_device()

# A tiny but complete run: the paper's model at 1/8 width with 3 blocks, on the tiny dataset.
TINY = ["--dataset", "mnist", "--width", "0.125", "--T", "3", "--batch-size", "64", "--eval-repeats", "2"]


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding mnist/ with 256 training and 64 test images."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root / "mnist", n_train=256, n_test=64)
    return root


def cli(*args: str, timeout: float = 240, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """``python -m bench.cli ARGS`` with no dataset cache, captured; a ``run`` gets the suite's ``--device`` unless it
    names one; ``env`` adds to the environment."""
    if args and args[0] == "run" and "--device" not in args:
        args = (*args, "--device", _DEVICE["name"])
    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)
