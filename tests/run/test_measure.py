import contextlib
import time

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.run import measure
from bench.run.measure import SavedActivationMeter, Stopwatch

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_stopwatch_accumulates_laps():
    sw = Stopwatch("cpu")
    with sw:
        time.sleep(0.02)
    with sw:
        time.sleep(0.02)
    assert len(sw.laps) == 2
    assert all(lap >= 0.02 for lap in sw.laps)
    assert sw.elapsed == pytest.approx(sum(sw.laps))
    assert sw.elapsed >= 0.04
    assert not sw.running


def test_stopwatch_rejects_misuse():
    sw = Stopwatch()
    with pytest.raises(RuntimeError):
        sw.stop()
    sw.start()
    with pytest.raises(RuntimeError):
        sw.start()
    assert sw.stop() >= 0.0


def _step(net: nn.Module, x: torch.Tensor, **meter_kwargs) -> SavedActivationMeter:
    with SavedActivationMeter(**meter_kwargs) as meter:
        net(x).square().mean().backward()
    return meter


def test_saved_activations_include_the_input_of_a_linear_layer():
    torch.manual_seed(0)
    meter = _step(nn.Linear(1000, 1000), torch.randn(64, 1000))
    assert meter.peak_bytes >= 64 * 1000 * 4
    assert meter.live_bytes == 0  # backward released everything it saved


def test_deeper_net_saves_more_than_shallower():
    torch.manual_seed(0)
    x = torch.randn(32, 256)

    def mlp(depth: int) -> nn.Module:
        return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(256, 256), nn.ReLU())])

    shallow, deep = _step(mlp(2), x), _step(mlp(6), x)
    assert deep.peak_bytes > shallow.peak_bytes > 0


def test_parameters_are_excluded_unless_asked_for():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 100))
    x = torch.randn(8, 100)
    activations = _step(net, x).peak_bytes
    with_params = _step(net, x, count_parameters=True).peak_bytes
    # the second layer saves its weight (a view of the parameter) to compute the gradient of its input
    assert with_params - activations >= 100 * 100 * 4


def test_views_of_one_storage_count_once():
    w = torch.randn(1000, requires_grad=True)
    with SavedActivationMeter() as meter:
        h = w.exp()  # saves its result h
        (h[:500] * h[500:]).sum().backward()  # saves two views of h's storage
    assert meter.peak_bytes == 1000 * 4


def _wide_blocks(count: int) -> list[nn.Module]:
    """Blocks whose activations (a 1024-wide hidden layer) dwarf their 64-wide inputs and outputs."""
    torch.manual_seed(0)
    return [nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 64)) for _ in range(count)]


def _chain(blocks: list[nn.Module], x: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    for block in blocks:
        x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False) if checkpointed else block(x)
    return x.square().mean()


@pytest.mark.parametrize("under_flop_counter", [False, True])
def test_checkpointed_blocks_count_what_their_recomputation_holds(under_flop_counter):
    """torch.utils.checkpoint hides a part's saves behind hooks of its own; what its recomputation holds in backward
    is one block's activations at a time, and the meter counts them (before: only the blocks' inputs). Under torch's
    FLOP counter, whose module tracker holds every recomputed part until the step ends, it counts that too, which
    is why a run's probe meters and counts FLOPs on separate steps."""
    blocks, x = _wide_blocks(4), torch.randn(32, 64)
    one_block = _step(blocks[0], x).peak_bytes
    plain = _step(nn.Sequential(*blocks), x).peak_bytes
    context = measure.count_flops() if under_flop_counter else contextlib.nullcontext()
    with context, SavedActivationMeter() as meter:
        _chain(blocks, x, checkpointed=True).backward()
    inputs = 4 * 32 * 64 * 4  # each block's input, kept by checkpoint
    if under_flop_counter:
        assert meter.peak_bytes > one_block + inputs  # recomputed blocks held past their backward
    else:
        assert one_block <= meter.peak_bytes <= one_block + inputs < plain / 3
    assert meter.live_bytes == 0


def test_a_run_probe_meters_a_checkpointed_step_apart_from_the_flop_counter(tmp_path):
    """backprop-ckpt's probe reads one block's recomputed activations (about a T-th of backprop's), not backprop's
    whole, although the same probe counts its FLOPs."""
    from bench.run import config as cfg
    from bench.run import methods
    from bench.run.recipe import prepare_data, probe_one_step
    from tests.formats import write_idx_dataset

    write_idx_dataset(tmp_path / "mnist", n_train=64, n_test=16)
    config = cfg.resolve(config="smoke", overrides={"dataset": "mnist", "data_dir": str(tmp_path), "download": False,
                                                     "train_subset": None, "test_subset": None})
    splits, passes = prepare_data(config, torch.device("cpu"), 0)
    saved = {}
    for name in ("backprop", "backprop-ckpt"):
        model = methods.build(name, config, splits, len(passes), 0)
        probe = probe_one_step(model, splits, config, torch.device("cpu"), passes.sizes()[0])
        assert probe["train_gflop_per_sample"] > 0
        saved[name] = probe["peak_saved_activation_bytes"]
    assert saved["backprop"] / config.T <= saved["backprop-ckpt"] < 1.5 * saved["backprop"] / config.T


def test_peak_is_per_step_not_summed_over_steps():
    torch.manual_seed(0)
    net, x = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64)), torch.randn(16, 64)
    one = _step(net, x).peak_bytes
    with SavedActivationMeter() as meter:
        for _ in range(3):
            net(x).square().mean().backward()
    assert meter.peak_bytes == one
    assert meter.live_bytes == 0


def test_peak_memory_on_cpu_has_no_cuda_figures():
    peaks = measure.peak_memory("cpu")
    assert set(peaks) == {"peak_cuda_allocated_bytes", "peak_cuda_reserved_bytes", "peak_rss_bytes"}
    assert peaks["peak_cuda_allocated_bytes"] is None and peaks["peak_cuda_reserved_bytes"] is None
    assert peaks["peak_rss_bytes"] >= measure.psutil.Process().memory_info().rss > 0


def test_reset_restarts_the_rss_peak():
    big = torch.ones(40_000_000, device="cpu")  # 160 MB of host memory, touched
    big.add_(1)
    before = measure.peak_rss_bytes()
    del big
    if not measure.reset_peak_memory("cpu"):
        pytest.skip("this system does not allow resetting the RSS peak")
    assert measure.peak_rss_bytes() < before - 100_000_000


@cuda_only
def test_cuda_stopwatch_and_peaks():
    device = torch.device("cuda")
    measure.reset_peak_memory(device)
    sw = Stopwatch(device)
    with sw:
        a = torch.randn(2048, 2048, device=device)
        (a @ a).sum()
    peaks = measure.peak_memory(device)
    assert sw.elapsed > 0
    assert peaks["peak_cuda_allocated_bytes"] >= 2048 * 2048 * 4
    assert peaks["peak_cuda_reserved_bytes"] >= peaks["peak_cuda_allocated_bytes"]


@cuda_only
def test_saved_activations_on_cuda():
    net = nn.Linear(1000, 1000).cuda()
    meter = _step(net, torch.randn(64, 1000, device="cuda"))
    assert meter.peak_bytes >= 64 * 1000 * 4
    assert meter.live_bytes == 0


def test_grouped_convolutions_count_the_flops_of_their_groups_run_one_by_one():
    from bench.run.measure import count_flops

    groups = 4
    x = torch.randn(2, groups * 3, 8, 8, requires_grad=True)
    w = torch.randn(groups * 5, 3, 3, 3, requires_grad=True)
    with count_flops() as grouped:
        nn.functional.conv2d(x, w, padding=1, groups=groups).sum().backward()
    with count_flops() as one:
        nn.functional.conv2d(x[:, :3].detach().requires_grad_(), w[:5].detach().requires_grad_(),
                             padding=1).sum().backward()
    assert grouped.get_total_flops() == groups * one.get_total_flops() > 0
    for needs_input_grad in (True, False):  # groups = 1: torch's own count, which honours what backward computes
        counts = []
        for counter in (count_flops(), FlopCounterMode(display=False)):
            with counter:
                nn.functional.conv2d(torch.randn(2, 3, 8, 8, requires_grad=needs_input_grad),
                                     w[:5].detach().requires_grad_(), padding=1).sum().backward()
            counts.append(counter.get_total_flops())
        assert counts[0] == counts[1] > 0


def test_process_usage_counts_this_process_cpu_time_and_samples_the_load():
    usage = measure.ProcessUsage(interval_s=0.05)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # 0.3 s of this process's own CPU time
        pass
    time.sleep(0.15)  # the sampler reads the load a few times meanwhile
    columns = usage.columns()
    assert columns["cpu_time_s"] >= 0.29 - 1e-6 and columns["cpus"] == measure.usable_cpus()  # ticks sum inexactly
    assert len(usage.loads) >= 3 and columns["load_avg_max"] >= columns["load_avg"] >= 0
    assert not usage._thread.is_alive() or usage._stop.is_set()


def test_a_run_that_raises_before_its_row_stops_its_load_sampler(tmp_path):
    """Bad data raises before any row; the run's sampler thread must end with it (a Ray worker lives on)."""
    from bench.run import config as cfg
    from bench.run.recipe import Run

    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tar archive")
    config = cfg.resolve(dataset="cifar10", overrides={"data_dir": str(tmp_path), "download": False,
                                                       "out": str(tmp_path / "out"), "threads": 1, "device": "cpu"})
    run = Run(config, "backprop", 0)
    with pytest.raises(Exception, match="cifar-10-python.tar.gz"):
        run.execute()
    assert run.usage is not None
    run.usage._thread.join(timeout=5)
    assert not run.usage._thread.is_alive()
