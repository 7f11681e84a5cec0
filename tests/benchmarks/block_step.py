"""Time NoProp-DT's training step at the paper's width with and without each fast path, on the CPU or a GPU.

    python -m tests.benchmarks.block_step                          # one block's step: fp32, channels_last
    python -m tests.benchmarks.block_step --no-channels-last --precision bf16 --compile
    python -m tests.benchmarks.block_step --device cuda --sweep    # every switch against the plain step, as ratios

Prints the median over ``--steps`` timed steps (after ``--warmup`` untimed ones) of a step on one batch of random
Fashion-MNIST- or CIFAR-shaped images. The paper order's unit is one block's step (cycling through the T blocks);
``--order interleaved`` times a step of all T blocks (``--batched``: as one stacked computation). Also printed: the
implied NoProp-DT training throughput (images/s for which all T blocks trained) and GFLOP/s from torch's
FlopCounterMode count of the step. On CUDA each step is timed with CUDA events (the GPU's own clock) and the
device is synchronised before reading them; ``--sweep`` runs the variants in one process, each after its own
warm-up. Random images: this times arithmetic, not learning. Not collected by pytest (no ``test_`` prefix); the
pytest-benchmark suite next to it is the CI gate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Callable

import torch

from bench.run import switches as execution
from bench.run.config import RunConfig
from bench.run.measure import count_flops
from noprop.dt.model import DTSettings, NoPropDT

# --sweep: (label, overrides); each is timed against the first of its order.
SWEEP = [
    ("paper fp32", {}),
    ("paper tf32", {"tf32": True}),
    ("paper bf16", {"precision": "bf16"}),
    ("paper fp32 NCHW", {"channels_last": False}),
    ("interleaved fp32", {"order": "interleaved"}),
    ("interleaved fp32 batched", {"order": "interleaved", "batched": True}),
    ("interleaved tf32 batched", {"order": "interleaved", "batched": True, "tf32": True}),
    ("interleaved bf16 batched", {"order": "interleaved", "batched": True, "precision": "bf16"}),
]


def clock(device: torch.device) -> Callable[[Callable[[], None]], float]:
    """A timer of one call in seconds: CUDA events on a GPU, the host clock on the CPU."""
    if device.type != "cuda":
        def host(fn: Callable[[], None]) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start
        return host

    def events(fn: Callable[[], None]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    return events


def measure(a: argparse.Namespace, order: str = "paper", precision: str = "fp32", channels_last: bool = True,
            tf32: bool = False, batched: bool = False) -> dict:
    """Median step time and throughput of one variant."""
    device = torch.device(a.device)
    torch.manual_seed(0)
    channels, side = (1, 28) if a.shape == "mnist" else (3, 32)
    config = RunConfig(precision=precision, channels_last=channels_last, tf32=tf32, order=order,
                       device=a.device)
    s = DTSettings(in_channels=channels, image_size=side, num_classes=10, width=a.width, order=order)
    model = execution.prepare_model(NoPropDT(s).to(device), config).train()
    if a.compile:
        for block in model.blocks:
            block.compile()
    x = torch.randn(a.batch, channels, side, side, device=device)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    y = torch.randint(0, 10, (a.batch,), device=device)
    counter = iter(range(10**9))

    def step() -> None:
        blocks = [next(counter) % s.T + 1] if order == "paper" else None
        with execution.precision(config, device):
            model.train_step(x, y, blocks=blocks)

    timer = clock(device)
    with model.batched_blocks() if batched else contextlib.nullcontext():
        for _ in range(a.warmup):
            step()
        with count_flops() as flops:
            step()
        times = [timer(step) for _ in range(a.steps)]
    med = statistics.median(times)
    blocks_per_step = 1 if order == "paper" else s.T
    gflop = flops.get_total_flops() / 1e9
    return {"order": order, "precision": precision, "channels_last": channels_last, "tf32": tf32,
            "batched": batched, "step_ms": med * 1e3, "step_ms_spread": (max(times) - min(times)) * 1e3,
            "images_per_s": a.batch * blocks_per_step / (med * s.T), "gflop_per_s": gflop / med,
            "mflop_per_image_block": gflop / a.batch / blocks_per_step * 1e3}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--order", choices=["paper", "interleaved"], default="paper")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--tf32", action="store_true", help="CUDA: float32 matmuls and convolutions in TF32")
    p.add_argument("--batched", action="store_true", help="interleaved: the T blocks as one stacked computation")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile each block's forward (one shared graph)")
    p.add_argument("--sweep", action="store_true", help="time every variant of SWEEP; print ratios")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--shape", choices=["mnist", "cifar"], default="mnist")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    a = p.parse_args()
    where = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else f"cpu x{torch.get_num_threads()}"
    sweep = [v for v in SWEEP if a.device.startswith("cuda") or not v[1].get("tf32")]  # tf32: CUDA only
    variants = sweep if a.sweep else [("", {"order": a.order, "precision": a.precision, "tf32": a.tf32,
                                            "batched": a.batched, "channels_last": not a.no_channels_last})]
    results = []
    for label, overrides in variants:
        r = {"label": label, **measure(a, **overrides)}
        base = next((b for b in results if b["order"] == r["order"]), r)
        r["speedup"] = base["step_ms"] / r["step_ms"]
        results.append(r)
        print(f"{where} {a.shape} width={a.width} batch={a.batch} {label or r['order']}: step {r['step_ms']:.3f} ms "
              f"(median of {a.steps}, spread {r['step_ms_spread']:.3f}), NoProp-DT {r['images_per_s']:.0f} images/s, "
              f"{r['gflop_per_s']:.0f} GFLOP/s, {r['speedup']:.2f}x the plain step of its order", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": where, "shape": a.shape, "width": a.width, "batch": a.batch, "results": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
