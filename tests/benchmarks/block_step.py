"""Time a training step at the paper's width with and without each fast path, on the CPU or a GPU: NoProp-DT's
block step (paper order), its step of all T blocks (interleaved, plain or batched) and backprop's step, each eager or
replayed from a CUDA graph as a run makes them (``bench.run.capture``).

    python -m tests.benchmarks.block_step                          # one block's step: fp32, channels_last
    python -m tests.benchmarks.block_step --no-channels-last --precision bf16 --compile
    python -m tests.benchmarks.block_step --method backprop --capture cuda-graph --device cuda
    python -m tests.benchmarks.block_step --device cuda --sweep    # every variant against the plain step, as ratios

Prints the median over ``--steps`` timed steps (after ``--warmup`` untimed ones, which also capture the graphs) of a
step on one batch of random Fashion-MNIST- or CIFAR-shaped images, made through the harness's ``Steps`` (the learning
rate set on the host, then the step or its replay). The paper order's unit is one block's step (cycling through the
T blocks); ``--order interleaved`` times a step of all T blocks (``--batched``: as one stacked computation);
``--method backprop`` one step of the whole network. Also printed: the host time to issue a step (the call's own
time, the GPU idle before it), the implied training throughput (images/s for which all T blocks trained) and GFLOP/s
from torch's FlopCounterMode count of an eager step. On CUDA each step is timed with CUDA events (the GPU's own
clock) and the device is synchronised before reading them; ``--sweep`` runs the variants in one process, each after
its own warm-up. Random images: this times arithmetic, not learning. Not collected by pytest (no ``test_``
prefix); the pytest-benchmark suite next to it is the CI gate.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import time
from collections.abc import Callable

import torch

from baselines.backprop import BackpropBaseline, BackpropSettings
from bench.run import capture
from bench.run import switches as execution
from bench.run.config import RunConfig
from bench.run.measure import count_flops
from noprop.core.method import ALL
from noprop.dt.model import DTSettings, NoPropDT

# --sweep: (label, overrides); each is timed against the first of its method and order. The capture variants run
# only on CUDA.
SWEEP = [
    ("paper fp32", {}),
    ("paper tf32", {"tf32": True}),
    ("paper bf16", {"precision": "bf16"}),
    ("paper fp32 NCHW", {"channels_last": False}),
    ("paper fp32 captured", {"capture": "cuda-graph"}),
    ("paper tf32 captured", {"capture": "cuda-graph", "tf32": True}),
    ("paper bf16 captured", {"capture": "cuda-graph", "precision": "bf16"}),
    ("interleaved fp32", {"order": "interleaved"}),
    ("interleaved fp32 batched", {"order": "interleaved", "batched": True}),
    ("interleaved tf32 batched", {"order": "interleaved", "batched": True, "tf32": True}),
    ("interleaved bf16 batched", {"order": "interleaved", "batched": True, "precision": "bf16"}),
    ("interleaved fp32 batched captured", {"order": "interleaved", "batched": True, "capture": "cuda-graph"}),
    ("interleaved tf32 batched captured", {"order": "interleaved", "batched": True, "capture": "cuda-graph",
                                           "tf32": True}),
    ("backprop fp32", {"method": "backprop"}),
    ("backprop tf32", {"method": "backprop", "tf32": True}),
    ("backprop fp32 captured", {"method": "backprop", "capture": "cuda-graph"}),
    ("backprop tf32 captured", {"method": "backprop", "capture": "cuda-graph", "tf32": True}),
]


def clock(device: torch.device) -> Callable[[Callable[[], None]], tuple[float, float]]:
    """A timer of one call: (device seconds, host seconds). CUDA events on a GPU (the GPU idle before the call, so the
    host time is what issuing the step costs), the host clock for both on the CPU."""
    if device.type != "cuda":
        def host(fn: Callable[[], None]) -> tuple[float, float]:
            start = time.perf_counter()
            fn()
            took = time.perf_counter() - start
            return took, took
        return host

    def events(fn: Callable[[], None]) -> tuple[float, float]:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        issued = time.perf_counter()
        start.record()
        fn()
        end.record()
        issued = time.perf_counter() - issued
        end.synchronize()
        return start.elapsed_time(end) / 1e3, issued
    return events


def build(a: argparse.Namespace, method: str, order: str, device: torch.device) -> NoPropDT | BackpropBaseline:
    channels, side = (1, 28) if a.shape == "mnist" else (3, 32)
    shape = {"in_channels": channels, "image_size": side, "num_classes": 10, "width": a.width}
    if method == "backprop":
        return BackpropBaseline(BackpropSettings(**shape)).to(device)
    return NoPropDT(DTSettings(**shape, order=order)).to(device)


def measure(a: argparse.Namespace, method: str = "noprop-dt", order: str = "paper", precision: str = "fp32",
            channels_last: bool = True, tf32: bool = False, batched: bool = False, capture_mode: str = "none"
            ) -> dict:
    """Median step time (device and host) and throughput of one variant."""
    device = torch.device(a.device)
    torch.manual_seed(0)
    config = RunConfig(precision=precision, channels_last=channels_last, tf32=tf32, device=a.device)
    model = execution.prepare_model(build(a, method, order, device), config).train()
    if a.compile:
        for block in model.blocks:
            block.compile()
    T = model.s.T
    channels, side = (1, 28) if a.shape == "mnist" else (3, 32)
    x = torch.randn(a.batch, channels, side, side, device=device)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    y = torch.randint(0, 10, (a.batch,), device=device)
    parts = itertools.cycle(range(1, T + 1)) if method == "noprop-dt" and order == "paper" else itertools.repeat(ALL)
    steps = capture.steps_for(model, capture_mode, device)

    def step() -> None:
        with execution.precision(config, device):
            steps(next(parts), x, y)

    timer = clock(device)
    warmup = max(a.warmup, T * (capture.WARMUP_STEPS + 1)) if capture_mode != "none" else a.warmup
    with model.batched_blocks() if batched else contextlib.nullcontext():
        steps.prepare()
        with count_flops() as flops:
            step()  # an eager step: a replay runs no dispatcher for the counter to see
        for _ in range(warmup):
            step()
        times = [timer(step) for _ in range(a.steps)]
    med = statistics.median(t for t, _ in times)
    host = statistics.median(h for _, h in times)
    blocks_per_step = 1 if method == "noprop-dt" and order == "paper" else T
    gflop = flops.get_total_flops() / 1e9
    return {"method": method, "order": order if method == "noprop-dt" else "", "precision": precision,
            "channels_last": channels_last, "tf32": tf32, "batched": batched, "capture": capture_mode,
            "step_ms": med * 1e3, "step_ms_spread": (max(t for t, _ in times) - min(t for t, _ in times)) * 1e3,
            "host_ms": host * 1e3, "host_to_step": host / med, "replayed_steps": steps.replayed,
            "images_per_s": a.batch * blocks_per_step / (med * T), "gflop_per_s": gflop / med,
            "mflop_per_image_block": gflop / a.batch / blocks_per_step * 1e3}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--method", choices=["noprop-dt", "backprop"], default="noprop-dt")
    p.add_argument("--order", choices=["paper", "interleaved"], default="paper")
    p.add_argument("--capture", choices=list(capture.MODES), default="none",
                   help="cuda-graph: replay each step from a CUDA graph, as a run with --capture cuda-graph does")
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
    cuda = a.device.startswith("cuda")
    sweep = [v for v in SWEEP if cuda or not (v[1].get("tf32") or v[1].get("capture"))]  # CUDA-only variants
    variants = sweep if a.sweep else [("", {"method": a.method, "order": a.order, "precision": a.precision,
                                            "tf32": a.tf32, "batched": a.batched, "capture": a.capture,
                                            "channels_last": not a.no_channels_last})]
    results = []
    for label, overrides in variants:
        mode = overrides.pop("capture", "none")
        r = {"label": label, **measure(a, capture_mode=mode, **overrides)}
        base = next((b for b in results if (b["method"], b["order"]) == (r["method"], r["order"])), r)
        r["speedup"] = base["step_ms"] / r["step_ms"]
        results.append(r)
        print(f"{where} {a.shape} width={a.width} batch={a.batch} {label or r['method'] + ' ' + r['order']}: step "
              f"{r['step_ms']:.3f} ms (median of {a.steps}, spread {r['step_ms_spread']:.3f}; host {r['host_ms']:.3f} "
              f"ms = {r['host_to_step']:.2f}x), {r['images_per_s']:.0f} images/s, {r['gflop_per_s']:.0f} GFLOP/s, "
              f"{r['speedup']:.2f}x the plain step of its method and order", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": where, "shape": a.shape, "width": a.width, "batch": a.batch, "results": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
