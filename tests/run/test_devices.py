"""What must hold on every device the suite runs on (``pytest --device cuda`` on a GPU machine): a resumed run of a
real method continues its random streams exactly, and a CUDA training epoch never waits on the host.

On the CPU the CUDA-only tests skip; the device's own results are committed under results/reference/.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bench.results import read_epochs, read_runs
from bench.run import data, methods, switches
from bench.run.batching import ShuffledPasses
from bench.run.config import REGISTRY, RunConfig
from bench.run.loop import train_epoch
from bench.run.recipe import Run
from tests.run.resuming import cut_in_epoch_2_then_resume

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# Every registered method once (NoProp-DT's order is its key: both), so a new method is covered without an edit here.
CASES = [(m, "paper") for m in REGISTRY.methods] + [("noprop-dt", "interleaved")]


@pytest.fixture(autouse=True)
def _keep_sigint() -> Iterator[None]:
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def tiny_config(tiny_mnist: Path, out: Path, device: torch.device, **kw: object) -> RunConfig:
    return RunConfig(dataset="mnist", data_dir=str(tiny_mnist), download=False, out=str(out), epochs=3,
                     batch_size=64, eval_repeats=2, T=3, width=0.125, device=str(device), **kw)


@pytest.mark.parametrize(("method", "order"), CASES)
def test_a_resumed_run_continues_every_random_stream(method, order, tiny_mnist, tmp_path, device, monkeypatch):
    # Bit-equality needs deterministic kernels: cuDNN may otherwise pick reductions whose rounding varies run to run.
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    straight = Run(tiny_config(tiny_mnist, tmp_path / "straight", device, order=order), method, 0).execute()

    config = tiny_config(tiny_mnist, tmp_path / "cut", device, order=order)
    resumed = cut_in_epoch_2_then_resume(monkeypatch, config, method)

    assert resumed["status"] == straight["status"] == "ok"
    assert resumed["test_acc"] == straight["test_acc"] and resumed["train_acc"] == straight["train_acc"]
    losses = [read_epochs(tmp_path / d)["train_loss"].tolist() for d in ("straight", "cut")]
    assert losses[0] == losses[1]  # the same batches, dropout masks and noise, epoch by epoch
    assert len(read_runs(tmp_path / "cut")) == 1


@cuda_only
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize(("method", "order"), CASES)
def test_a_cuda_epoch_never_synchronises_with_the_host(method, order, precision, tiny_mnist):
    """Sync debug mode "error" turns any host synchronisation (an .item(), a blocking copy, a data-dependent shape)
    into an exception; the epoch's one read-back of its statistics (``noprop.core.method.read_back``) is exempt."""
    device = torch.device("cuda")
    config = tiny_config(tiny_mnist, Path("unused"), device, order=order, precision=precision)
    splits = data.load("mnist", data_dir=tiny_mnist, device=device, allow_download=False)
    passes = ShuffledPasses(splits.train_x, splits.train_y, splits.mean, splits.std, config.batch_size, 0)
    model = switches.prepare_model(methods.build(method, config, splits, len(passes), 0), config)
    with switches.precision(config, device):
        train_epoch(model, passes)  # first epoch: cuDNN and allocator set-up may synchronise
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            stats = train_epoch(model, passes)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert stats["steps"] == len(passes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_the_suite_refuses_cuda_where_there_is_none():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--device", "cuda", "--collect-only", "-q",
                           "tests/run/test_config.py"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "CUDA is not available here" in proc.stderr + proc.stdout
