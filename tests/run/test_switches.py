"""bench.run.switches: the fast-path switches do what they say and are recorded; the config hash treats them right."""

from pathlib import Path

import pytest
import torch

from bench.results import read_runs
from bench.run import config as cfg
from bench.run import data
from bench.run import switches as execution
from bench.run.loop import train_epoch
from noprop.core.blocks import DenoiseBlock
from tests.conftest import TINY, cli
from tests.formats import write_cifar


def test_bf16_precision_autocasts_convolutions_and_fp32_does_not(device: torch.device) -> None:
    conv = torch.nn.Conv2d(3, 4, 3, device=device)
    x = torch.randn(2, 3, 8, 8, device=device)
    with execution.precision(cfg.RunConfig(precision="bf16"), device):
        assert conv(x).dtype == torch.bfloat16
    with execution.precision(cfg.RunConfig(), device):
        assert conv(x).dtype == torch.float32
    assert conv(x).dtype == torch.float32  # nothing leaks out of the context


def test_bf16_forward_sees_weights_updated_inside_the_context(device: torch.device) -> None:
    """The context spans whole epochs: a weight changed by an optimiser step must reach the next forward."""
    lin = torch.nn.Linear(4, 4, device=device)
    x = torch.randn(2, 4, device=device)
    with execution.precision(cfg.RunConfig(precision="bf16"), device):
        before = lin(x)
        with torch.no_grad():
            lin.weight.add_(1.0)
        after = lin(x)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("method", ["noprop-dt", "backprop"])
def test_bf16_training_learns_the_toy_problem(method: str, device: torch.device) -> None:
    """Code path, not accuracy: a bf16 epoch loop must reduce the loss as the fp32 one does."""
    from baselines.backprop import METHOD as BACKPROP
    from noprop.dt.model import METHOD as NOPROP_DT
    from tests.toy import quadrant_data

    x, y = quadrant_data(512, 0)
    torch.manual_seed(0)
    spec = NOPROP_DT if method == "noprop-dt" else BACKPROP
    model = spec.factory(spec.settings(in_channels=1, image_size=8, num_classes=4, width=0.25, lr=1e-2)).to(device)
    losses = []
    with execution.precision(cfg.RunConfig(precision="bf16"), device):
        for _ in range(4):
            stats = train_epoch(model, lambda: ((x[i : i + 64], y[i : i + 64]) for i in range(0, 512, 64)))
            losses.append(stats["loss"])
    assert losses[-1] < 0.8 * losses[0], losses


def test_channels_last_moves_conv_weights_and_images_only() -> None:
    block = DenoiseBlock(3, 8, 4, 4, image_label=False, width=0.25)
    block = execution.prepare_model(block, cfg.RunConfig(channels_last=True))
    conv = block.image_path[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert block.head[0].weight.is_contiguous()
    kept = execution.prepare_model(DenoiseBlock(3, 8, 4, 4, image_label=False), cfg.RunConfig(channels_last=False))
    assert kept.image_path[0].weight.is_contiguous()


def test_channels_last_splits_and_their_batches(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10", n_per_batch=20)
    splits = data.load("cifar10", data_dir=tmp_path, allow_download=False, val_size=10)
    nhwc = execution.prepare_splits(splits, cfg.RunConfig(channels_last=True))
    for x in (nhwc.train_x, nhwc.test_x, nhwc.val_x):
        assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    assert torch.equal(nhwc.train_x, splits.train_x)  # same values, other layout
    assert execution.prepare_splits(splits, cfg.RunConfig(channels_last=False)) is splits


def test_switches_are_not_hashed_but_keep_runs_apart() -> None:
    """The hash names the experiment; the switches are recorded beside it and still tell runs apart."""
    from bench.run.identity import run_key

    base = cfg.resolve(config="smoke")
    others = [cfg.resolve(config="smoke", overrides=o) for o in ({"channels_last": False}, {"precision": "bf16"})]
    assert all(o.model_hash() == base.model_hash() for o in others)
    assert base.model_hash() != cfg.resolve(config="smoke", overrides={"width": 0.5}).model_hash()
    keys = {run_key(c.dataset, "noprop-dt", c.model_hash(), c.switches(), 0) for c in [base, *others]}
    assert len(keys) == 3
    assert set(base.switches()) == set(cfg.SWITCH_KEYS) == {"precision", "channels_last", "batched_blocks",
                                                             "block_workers", "capture"}


def test_bad_precision_is_one_clear_error() -> None:
    with pytest.raises(cfg.ConfigError, match="'precision': 'fp16'"):
        cfg.resolve(config="smoke", overrides={"precision": "fp16"})


def test_bf16_channels_last_run_on_cifar_shaped_data_records_its_switches(tmp_path: Path) -> None:
    """Code path only: the CIFAR files are random, so the accuracy means nothing."""
    write_cifar(tmp_path / "data", "cifar10", n_per_batch=40)
    out = tmp_path / "res"
    tiny = ["--dataset", "cifar10", "--width", "0.125", "--T", "3", "--batch-size", "32", "--eval-repeats", "1",
            "--epochs", "1", "--data-dir", str(tmp_path / "data"), "--download", "false", "--out", str(out),
            "--in-process", "--quiet"]
    proc = cli("run", *tiny, "--precision", "bf16")
    assert proc.returncode == 0, proc.stderr
    proc = cli("run", *tiny, "--channels-last", "false", "--methods", "noprop")
    assert proc.returncode == 0, proc.stderr
    runs = read_runs(out)
    assert list(zip(runs["method"], runs["precision"], runs["channels_last"], strict=True)) == [
        ("noprop-dt", "bf16", True), ("backprop", "bf16", True), ("noprop-dt", "fp32", False)]
    assert (runs["status"] == "ok").all() and runs["config_hash"].nunique() == 1  # switches are columns


@pytest.mark.parametrize("method", ["noprop-dt", "backprop"])
def test_flops_per_sample_do_not_depend_on_the_batch_size(method: str) -> None:
    """The probe divides the step's FLOPs by the right batch: per image, batch 16 and 48 agree."""
    from bench.run import methods
    from bench.run.batching import ShuffledPasses
    from bench.run.recipe import probe_one_step
    from tests.benchmarks.test_steps import synthetic_splits

    splits = synthetic_splits("mnist", n=96)
    per_sample = []
    for batch_size in (16, 48):
        config = cfg.RunConfig(dataset="mnist", width=0.125, T=3, batch_size=batch_size)
        batches = ShuffledPasses(splits.train_x, splits.train_y, splits.mean, splits.std, batch_size, seed=0)
        model = methods.build(method, config, splits, len(batches), seed=0)
        probe = probe_one_step(model, splits, config, splits.train_x.device, batches.sizes()[0])
        per_sample.append(probe["train_gflop_per_sample"])
    assert per_sample[0] > 0 and per_sample[1] == pytest.approx(per_sample[0], rel=0.01)


def test_tf32_is_hashed_when_on_and_old_hashes_stay() -> None:
    """TF32 changes the numbers, so a tf32 run is another experiment; configs without it keep their hash."""
    base = cfg.resolve(config="smoke")
    assert base.tf32 is False and "tf32" not in cfg.SWITCH_KEYS
    assert cfg.resolve(config="smoke", overrides={"tf32": True}).model_hash() != base.model_hash()
    assert base.model_hash() == cfg.resolve(config="smoke", overrides={"tf32": False}).model_hash()


def test_fp32_mode_sets_both_matmul_and_convolution_and_restores_them() -> None:
    from bench.run.switches import fp32_mode

    def modes() -> tuple:
        return torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision

    before = modes()
    for mode in ("ieee", "tf32"):
        with fp32_mode(mode):
            assert modes() == (mode, mode)
        assert modes() == before


def test_tf32_off_cuda_is_one_clear_error(tiny_mnist: Path, tmp_path: Path) -> None:
    proc = cli("run", *TINY, "--data-dir", str(tiny_mnist), "--out", str(tmp_path), "--epochs", "1", "--tf32", "true",
               "--device", "cpu")
    assert proc.returncode == 2 and "tf32 applies to CUDA" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs.csv").exists()


def test_batched_blocks_count_the_flops_of_the_blocks_one_by_one() -> None:
    from bench.run import methods
    from bench.run.recipe import probe_one_step
    from tests.benchmarks.test_steps import synthetic_splits

    splits = synthetic_splits("mnist", n=64)
    gflop = []
    for batched in (False, True):
        config = cfg.RunConfig(dataset="mnist", width=0.125, T=3, batch_size=32, order="interleaved",
                               batched_blocks=batched)
        model = methods.build("noprop-dt", config, splits, 2, seed=0)
        gflop.append(probe_one_step(model, splits, config, splits.train_x.device, 32)["train_gflop_per_sample"])
    assert gflop[0] > 0 and gflop[1] == pytest.approx(gflop[0], rel=1e-6)
