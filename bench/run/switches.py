"""The fast-path switches of a run (config keys ``precision`` and ``channels_last``), applied in one place so
both methods get exactly the same treatment.

- ``channels_last``: conv weights and the device-resident image tensors in NHWC order. oneDNN's and cuDNN's
  convolutions, and the pooling and ReLU around them, are faster in that layout; the arithmetic is the same.
- ``precision = bf16``: ``torch.autocast`` around training epochs and inference, on the CPU as on CUDA. Weights,
  optimiser state and the losses stay float32; matrix products and convolutions run in bfloat16.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch

from bench.run.config import RunConfig
from bench.run.data import Splits

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16}


@contextlib.contextmanager
def precision(config: RunConfig, device: torch.device) -> Iterator[None]:
    """Autocast to the configured precision for the code inside (a no-op for fp32)."""
    dtype = _AUTOCAST_DTYPES.get(config.precision)
    if dtype is None:
        yield
        return
    # cache_enabled=False: the context spans whole epochs, optimiser steps included. With autocast's cache on, the
    # low-precision copy of each weight is made once per context and reused, so every forward in the epoch would
    # see the weights as they were at its start (training silently stalls).
    with torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=False):
        yield


def prepare_model(model: torch.nn.Module, config: RunConfig) -> torch.nn.Module:
    """The model in the configured memory layout (4-D weights only; everything else is untouched)."""
    return model.to(memory_format=torch.channels_last) if config.channels_last else model


def prepare_splits(splits: Splits, config: RunConfig) -> Splits:
    """The image tensors in the configured memory layout; batches sliced from them keep it."""
    if not config.channels_last:
        return splits

    def nhwc(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.contiguous(memory_format=torch.channels_last)

    return dataclasses.replace(
        splits, train_x=nhwc(splits.train_x), test_x=nhwc(splits.test_x), val_x=nhwc(splits.val_x)
    )
