"""Every method learns real Fashion-MNIST under a short, fixed budget (a real-data accuracy check).

Budget: 3,000 class-balanced training images, batch 32, width 0.25, paper order, 1,000 test images; 2 epochs, or 8
for NoProp-CT and -FM (one network pass per image, so 8 of their epochs cost less than 2 of NoProp-DT's 10 blocks).
Measured on the 2-core CI machine (this test's code, seeds 0 and 1): NoProp-DT 64.5-65.7 %, backprop 72.7-76.5 %
(40.7-40.9 % before its classifier started as the embedding's readout), the CNN reference 78.8-80.2 %, NoProp-CT
51.3-53.7 % (34.7-41.6 % before its classifier started as the readout, its schedule left weight decay and its initial
γ range became [-3, 3]) and NoProp-FM 58.4-61.8 % test accuracy at 20 Euler steps, the stochastic reading (chance:
10 %). NoProp-CT's stochastic reading varies most (rounding-level changes to its schedule's arithmetic once moved
seed 0 by 3 points). Thresholds leave a margin of 12-15 points below the lowest measurement, for seed-to-seed and
platform variation, and sit well above chance.
"""

from __future__ import annotations

import pytest

from bench.run import data, methods
from bench.run.batching import ShuffledPasses
from bench.run.config import RunConfig
from bench.run.evaluate import accuracy, predictions
from bench.run.loop import train_epoch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                       reason="Debian's dataset-fashion-mnist is not installed"),
]
THRESHOLDS = {"noprop-dt": 50.0, "backprop": 60.0, "cnn": 65.0, "noprop-ct": 39.0, "noprop-fm": 45.0}
EPOCHS = {"noprop-ct": 8, "noprop-fm": 8}  # the others: 2


@pytest.fixture(scope="module")
def splits() -> data.Splits:
    return data.load("fashion-mnist", train_subset=3000, test_subset=1000, seed=0, allow_download=False)


@pytest.mark.parametrize("method", list(THRESHOLDS))
def test_learns_fashion_mnist(splits, method):
    config = RunConfig(epochs=EPOCHS.get(method, 2), width=0.25, batch_size=32, train_subset=3000, test_subset=1000)
    batches = ShuffledPasses(splits.train_x, splits.train_y, splits.mean, splits.std, config.batch_size, seed=0)
    model = methods.build(method, config, splits, len(batches), seed=0)
    for _ in range(config.epochs):
        train_epoch(model, batches)
    acc = accuracy(predictions(model, splits.test_x, splits.mean, splits.std, seed=0), splits.test_y)
    assert acc >= THRESHOLDS[method], f"{method}: {acc:.1f}% test accuracy, expected >= {THRESHOLDS[method]}%"
