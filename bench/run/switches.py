"""The execution switches of a run (config keys ``precision``, ``channels_last`` and ``tf32``), applied in one place
so every method gets exactly the same treatment.

- ``channels_last``: conv weights and the device-resident image tensors in NHWC order. oneDNN's and cuDNN's
  convolutions, and the pooling and ReLU around them, are faster in that layout; the arithmetic is the same.
- ``precision = bf16``: ``torch.autocast`` around training epochs and inference, on the CPU as on CUDA. Weights,
  optimiser state and the losses stay float32; matrix products and convolutions run in bfloat16.
- ``tf32`` (CUDA only): float32 matrix products and convolutions on the tensor cores in TF32 (10-bit mantissa).
  Unlike the two above it changes the numbers, so it is part of the config hash. Off means strict IEEE float32 for
  both, also for cuDNN's convolutions, which torch would otherwise run in TF32 by default.
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
    """The configured arithmetic for the code inside: autocast (none for fp32) and, on CUDA, the float32 mode."""
    with contextlib.ExitStack() as stack:
        if device.type == "cuda":
            stack.enter_context(fp32_mode("tf32" if config.tf32 else "ieee"))
        dtype = _AUTOCAST_DTYPES.get(config.precision)
        if dtype is not None:
            stack.enter_context(_autocast(device, dtype))
        yield


@contextlib.contextmanager
def fp32_mode(mode: str) -> Iterator[None]:
    """CUDA float32 matmuls and convolutions in ``mode`` ("tf32" or "ieee") inside, restored after."""
    cudnn_conv = getattr(torch.backends.cudnn, "conv", None)
    if cudnn_conv is not None and hasattr(cudnn_conv, "fp32_precision"):  # torch >= 2.9
        settings = [(torch.backends.cuda.matmul, "fp32_precision", mode), (cudnn_conv, "fp32_precision", mode)]
    else:
        on = mode == "tf32"
        settings = [(torch.backends.cuda.matmul, "allow_tf32", on), (torch.backends.cudnn, "allow_tf32", on)]
    before = [getattr(obj, name) for obj, name, _ in settings]
    try:
        for obj, name, value in settings:
            setattr(obj, name, value)
        yield
    finally:
        for (obj, name, _), value in zip(settings, before, strict=True):
            setattr(obj, name, value)


@contextlib.contextmanager
def _autocast(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
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
