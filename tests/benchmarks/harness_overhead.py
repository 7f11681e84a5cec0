"""How much of a NoProp-DT training epoch is spent outside the model's steps, on a config (default: smoke).

    python -m tests.benchmarks.harness_overhead [--config smoke] [--repeats 3]

Times, on the config's real data (Fashion-MNIST for smoke) and with its fast-path settings:
- ``epoch``: the harness's epoch loop (``bench.run.loop.train_epoch``) over its ``ShuffledPasses``, as a run times it;
- ``steps``: the same block steps (lr, loss, zero_grad, backward, optimiser step) on batches made beforehand, with
  none of the loop's bookkeeping;
- ``batching``: the T passes of ``ShuffledPasses`` alone (shuffle, index, normalise), no model.
Overhead = (epoch - steps) / epoch; medians over ``--repeats`` epochs. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.run import config as cfg
from bench.run import data, methods
from bench.run import switches as execution
from bench.run.batching import ShuffledPasses
from bench.run.loop import train_epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="smoke")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    config = cfg.resolve(config=a.config)
    splits = data.load(config.dataset, train_subset=config.train_subset, test_subset=config.test_subset, seed=0)
    splits = execution.prepare_splits(splits, config)
    batches = ShuffledPasses(splits.train_x, splits.train_y, splits.mean, splits.std, config.batch_size, seed=0)
    model = execution.prepare_model(methods.build("noprop-dt", config, splits, len(batches), seed=0), config)
    cpu = torch.device("cpu")
    ready = [list(batches()) for _ in range(config.T)]

    def epoch() -> None:
        train_epoch(model, batches)

    def steps() -> None:
        for t, pass_ in enumerate(ready, start=1):
            for x, y in pass_:
                model.before_step(t)
                model.train_step(x, y, t)

    def batching() -> None:
        for _ in range(config.T):
            for _ in batches():
                pass

    def median_time(fn) -> float:
        times = []
        for _ in range(a.repeats):
            start = time.perf_counter()
            with execution.precision(config, cpu):
                fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    epoch()  # warm-up
    e, s, b = median_time(epoch), median_time(steps), median_time(batching)
    print(f"config={a.config} ({splits.train_y.numel()} images, batch {config.batch_size}, width {config.width}, "
          f"T={config.T}, precision={config.precision}, channels_last={config.channels_last}): epoch {e:.3f} s, "
          f"steps alone {s:.3f} s, batching alone {b * 1e3:.1f} ms; outside the steps: {100 * (e - s) / e:.1f} % "
          f"of the epoch (batching {100 * b / e:.2f} %)")


if __name__ == "__main__":
    main()
