"""The torch state a run works under (bench.run.ambient)."""

from __future__ import annotations

import torch

from bench.run.ambient import host_default_device


def test_the_cpu_default_is_kept_without_a_mode_every_op_passes_through() -> None:
    """Where the CPU already is the default (a run the CLI starts), nothing is pushed: ``torch.device`` as a context
    is a TorchFunctionMode that every torch call passes through (1.47x a small CPU step, measured)."""
    with host_default_device():
        assert torch._C._len_torch_function_stack() == 0
        assert torch.empty(1).device.type == "cpu"


def test_another_default_device_is_the_cpu_inside_and_restored_after() -> None:
    """A caller that made another device the default (as the CUDA suite does; the meta device stands in here) gets
    the CPU inside and its own device back after."""
    torch.set_default_device("meta")
    try:
        with host_default_device():
            assert torch.empty(1).device.type == "cpu"
        assert torch.empty(1).device.type == "meta"
    finally:
        torch.set_default_device(None)
