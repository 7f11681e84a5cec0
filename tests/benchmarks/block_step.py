"""Time one NoProp-DT block training step at the paper's width, with and without each fast path.

    python -m tests.benchmarks.block_step                        # fp32, channels_last (the defaults)
    python -m tests.benchmarks.block_step --no-channels-last --precision bf16 --compile

Prints the median over ``--steps`` timed steps (after ``--warmup`` untimed ones, cycling through the T blocks)
of one block's step on one batch of random Fashion-MNIST-shaped images, the implied NoProp-DT training
throughput (images/s for which all T blocks trained), and GFLOP/s from torch's FlopCounterMode count of the
step. Random images: this times arithmetic, not learning. Not collected by pytest (no ``test_`` prefix); the
pytest-benchmark suite next to it is the CI gate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.run import switches as execution
from bench.run.config import RunConfig
from noprop.dt import NoPropDT
from noprop.settings import MethodSettings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile each block's forward (one shared graph)")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--shape", choices=["mnist", "cifar"], default="mnist")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    a = p.parse_args()
    torch.manual_seed(0)
    channels, side = (1, 28) if a.shape == "mnist" else (3, 32)
    config = RunConfig(precision=a.precision, channels_last=not a.no_channels_last)
    s = MethodSettings(in_channels=channels, image_size=side, num_classes=10, width=a.width)
    model = execution.prepare_model(NoPropDT(s), config).train()
    if a.compile:
        for block in model.blocks:
            block.compile()
    x = torch.randn(a.batch, channels, side, side)
    x = x.contiguous(memory_format=torch.channels_last) if config.channels_last else x
    y = torch.randint(0, 10, (a.batch,))
    cpu = torch.device("cpu")

    def step(t: int) -> None:
        with execution.precision(config, cpu):
            model.train_step(x, y, blocks=[t])

    for i in range(a.warmup):
        step(i % s.T + 1)
    with FlopCounterMode(display=False) as counter:
        step(1)
    times = []
    for i in range(a.steps):
        start = time.perf_counter()
        step(i % s.T + 1)
        times.append(time.perf_counter() - start)
    med = statistics.median(times)
    images_per_s = a.batch / (med * s.T)
    gflop = counter.get_total_flops() / 1e9
    print(f"precision={a.precision} channels_last={config.channels_last} compile={a.compile} width={a.width} "
          f"batch={a.batch} shape={a.shape} threads={torch.get_num_threads()}: block step {med * 1e3:.1f} ms "
          f"(median of {a.steps}), NoProp-DT training {images_per_s:.1f} images/s, {gflop / med:.0f} GFLOP/s "
          f"({gflop / a.batch * 1e3:.1f} MFLOP per image per block)")


if __name__ == "__main__":
    main()
