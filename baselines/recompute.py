"""Activation checkpointing for the methods trained end to end: a part's forward runs again in the backward pass
instead of keeping its activations, with the result of the plain computation.

``torch.utils.checkpoint`` (non-reentrant, the RNG state preserved so dropout draws the same masks) re-runs the
part's forward during backward. Run as it is, that second forward would update BatchNorm's running statistics (and
its batch counter) a second time (pytorch/pytorch issue 96136), so the running statistics of every BatchNorm of the
part are put back, on leaving the recomputation, to what the first forward left them (turning their tracking off
instead would change which tensors the recomputation saves, which checkpoint refuses).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

_BATCH_NORMS = (nn.modules.batchnorm._BatchNorm,)


@contextlib.contextmanager
def statistics_kept(part: nn.Module) -> Iterator[None]:
    """Whatever runs inside, the running statistics and batch counters of the part's BatchNorms are, on leaving,
    what they were on entering."""
    buffers = [b for m in part.modules() if isinstance(m, _BATCH_NORMS) for b in m.buffers()]
    kept = [b.clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in zip(buffers, kept, strict=True):
                b.copy_(value)


def recomputed(part: nn.Module, *inputs: Tensor, call: Callable[..., Tensor] | None = None) -> Tensor:
    """``part(*inputs)`` (or ``call(*inputs)``, a function of ``part``'s parameters) keeping only its inputs for
    backward: through ``torch.utils.checkpoint`` while gradients are on; plainly otherwise (inference)."""
    fn = call or part
    if not torch.is_grad_enabled():
        return fn(*inputs)
    return checkpoint(fn, *inputs, use_reentrant=False, preserve_rng_state=True,
                      context_fn=lambda: (contextlib.nullcontext(), statistics_kept(part)))
