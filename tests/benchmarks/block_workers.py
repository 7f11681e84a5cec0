"""What splitting NoProp-DT's blocks over processes costs and saves, per process: epoch time, peak RSS above the
data (the blocks' share: weights, gradients, AdamW moments, activations) and bytes all-reduced per training step.

    python -m tests.benchmarks.block_workers --workers 2 --threads 1 [--config smoke] [--train-subset N]
        [--epochs 2] [--json]

Each rank is a process of a gloo group on this machine, built as bench/run/block_parallel.py builds its followers;
``--workers 1`` trains all T blocks in one process without a group. The epoch time reported is the median of the
epochs (the first one included: there is no separate warm-up). The RSS baseline is taken after the data is loaded
and torch has run one small convolution, linear layer and AdamW step, so the libraries' code and thread pools
(the same in every process, whatever it trains) are not counted as the blocks'.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bench.run import config as cfg
from bench.run import methods, switches
from bench.run.loop import train_epoch
from bench.run.measure import peak_memory, reset_peak_memory
from bench.run.recipe import prepare_data


def current_rss_bytes() -> int:
    fields = Path("/proc/self/status").read_text().split("VmRSS:")[1].split()
    return int(fields[0]) * 1024


def warm_up_torch(channels: int) -> None:
    """Load the kernels a block step uses (convolution, linear, AdamW) on a throw-away layer pair."""
    conv, linear = torch.nn.Conv2d(channels, 4, 3), torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW([*conv.parameters(), *linear.parameters()], fused=True)
    linear(conv(torch.randn(2, channels, 8, 8)).mean((2, 3))).sum().backward()
    opt.step()


def measure(rank: int, world: int, store: str, config_dict: dict, epochs: int, results: str) -> None:
    config = cfg.RunConfig(**config_dict)
    torch.set_num_threads(config.threads or torch.get_num_threads())
    if world > 1:
        dist.init_process_group("gloo", store=dist.FileStore(store, world), rank=rank, world_size=world)
    splits, passes = prepare_data(config, torch.device("cpu"), 0)
    warm_up_torch(splits.train_x.shape[1])
    data_rss = current_rss_bytes()
    reset_peak_memory("cpu")
    model = switches.prepare_model(methods.build("noprop-dt", config, splits, len(passes), 0), config)
    if world > 1:
        model.split_blocks_over_group(torch.device("cpu"))
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_epoch(model, passes)
        times.append(time.perf_counter() - start)
    peak = peak_memory("cpu")["peak_rss_bytes"]
    steps = len(passes) * epochs
    stats_bytes = model.s.T * 6 * 8 * epochs  # the per-epoch statistics, float64
    out = {"rank": rank, "workers": world, "threads": torch.get_num_threads(), "blocks": model.shard.blocks
           if model.shard else list(range(1, model.s.T + 1)), "epoch_s": statistics.median(times),
           "epoch_times_s": times, "data_rss_mb": data_rss / 2**20, "peak_rss_mb": peak / 2**20,
           "blocks_rss_mb": (peak - data_rss) / 2**20,
           "bytes_per_step": (model.shard.reduced_bytes - stats_bytes) / steps if model.shard else 0}
    Path(results, f"rank{rank}.json").write_text(json.dumps(out))
    if world > 1:
        dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default="smoke")
    ap.add_argument("--train-subset", type=int, default=None, help="train on N images (default: the config's)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    keys = {"order": "interleaved", "threads": args.threads, "device": "cpu"}
    if args.train_subset:
        keys["train_subset"] = args.train_subset
    config = cfg.resolve(config=args.config, overrides=keys)
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(measure, args=(args.workers, str(Path(tmp) / "store"), config.to_dict(), args.epochs,
                                          tmp), nprocs=args.workers, start_method="spawn")
        ranks: list[dict[str, Any]] = [json.loads(Path(tmp, f"rank{r}.json").read_text())
                                       for r in range(args.workers)]
    batch, dim = config.batch_size, 10  # one-hot embedding of 10 classes: z is [B, 10]
    summary = {"config": args.config, "train_subset": config.train_subset, "width": config.width,
               "batch_size": batch, "workers": args.workers, "threads": args.threads, "ranks": ranks,
               "backprop_bytes_per_step_if_split": 2 * batch * dim * 4 * (args.workers - 1)}
    if args.json:
        print(json.dumps(summary))
        return
    for r in ranks:
        print(f"rank {r['rank']} blocks {r['blocks'][0]}-{r['blocks'][-1]} threads {r['threads']}: epoch "
              f"{r['epoch_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB ({r['blocks_rss_mb']:.0f} MB above the data), "
              f"{r['bytes_per_step']:.0f} B all-reduced per step")
    print(f"backprop split at {args.workers - 1} boundaries would send {summary['backprop_bytes_per_step_if_split']} "
          "B per step (z forward, its gradient back), and each process would wait for the one before it")


if __name__ == "__main__":
    main()
