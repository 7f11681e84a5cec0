"""What each method saves for backward in one training step, as a run's probe measures it (``peak_saved_activation_
bytes``), without training a run: for checking the meter against committed rows, or a config's memory before a
sweep.

    python -m tests.benchmarks.saved_activations CONFIG METHOD [METHOD ...]

CONFIG is a bundled config's name or a YAML path; the step is seed 0's first batch.
"""

from __future__ import annotations

import sys

import torch

from bench.run import config as cfg
from bench.run import methods
from bench.run.recipe import prepare_data, probe_one_step


def main(argv: list[str]) -> None:
    config = cfg.resolve(config=argv[0], overrides={"seeds": [0]})
    device = torch.device("cpu")
    splits, passes = prepare_data(config, device, 0)
    for name in argv[1:]:
        model = methods.build(name, config, splits, len(passes), 0)
        probe = probe_one_step(model, splits, config, device, passes.sizes()[0], counts_flops=False)
        print(f"{name}: {probe['peak_saved_activation_bytes'] / 2**20:.1f} MB", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
