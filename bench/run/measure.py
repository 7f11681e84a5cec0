"""Measurement primitives: a device-synchronised stopwatch, peak memory, and bytes saved for backward.

These only measure; what is timed and when is the runner's decision (see ARCHITECTURE.md, "Rules of fair
measurement").
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import torch
import torch.utils.checkpoint as torch_checkpoint
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

# ------------------------------------------------------------------------------------------------- stopwatch


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on an asynchronous device, so the clock reads the time the work really took."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class Stopwatch:
    """Accumulates wall-clock time over laps, synchronising CUDA before every clock read (never on CPU).

    ``with sw: work()`` adds one lap; ``start()`` / ``stop()`` do the same by hand. ``elapsed`` is the total.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.laps: list[float] = []
        self._started: float | None = None

    @property
    def elapsed(self) -> float:
        return sum(self.laps)

    @property
    def running(self) -> bool:
        return self._started is not None

    def start(self) -> None:
        if self._started is not None:
            raise RuntimeError("Stopwatch.start() called while already running")
        synchronize(self.device)
        self._started = time.perf_counter()

    def stop(self) -> float:
        """End the current lap and return its length in seconds."""
        if self._started is None:
            raise RuntimeError("Stopwatch.stop() called while not running")
        synchronize(self.device)
        lap = time.perf_counter() - self._started
        self._started = None
        self.laps.append(lap)
        return lap

    def __enter__(self) -> Stopwatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------- peak memory

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_memory(device: torch.device | str) -> bool:
    """Start a fresh peak: CUDA allocator peaks for ``device`` and, where Linux allows it, the RSS peak.

    The RSS peak is reset by writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), which restarts the
    kernel's high-water mark (VmHWM) from the current RSS. Returns whether the RSS peak was reset; when it was
    not (other OS, restricted /proc) ``peak_rss_bytes`` is the peak over the process's lifetime, which is why
    the harness measures each run in its own child process.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_memory(device: torch.device | str) -> dict[str, int | None]:
    """Peak memory since the last ``reset_peak_memory``: CUDA allocated and reserved (None off CUDA), and RSS."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    return {
        "peak_cuda_allocated_bytes": int(torch.cuda.max_memory_allocated(device)) if cuda else None,
        "peak_cuda_reserved_bytes": int(torch.cuda.max_memory_reserved(device)) if cuda else None,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def peak_rss_bytes() -> int:
    """Peak resident memory of this process in bytes (never below the current RSS).

    On Linux this is VmHWM from /proc/self/status, which ``reset_peak_memory`` can restart. It is deliberately
    not ``getrusage().ru_maxrss``: Linux folds the pre-``exec`` image into ru_maxrss, so a child started with
    multiprocessing's "spawn" reports its *parent's* RSS (a 15 MB child of a 1 GB parent reads 1 GB), and it
    cannot be reset. ru_maxrss is the fallback only where /proc is missing (macOS gives bytes, Linux KiB).
    A child made by plain "fork" also counts the parent pages it shares, so runs are spawned, not forked.
    """
    current = psutil.Process().memory_info().rss
    hwm = _vm_hwm_bytes()
    if hwm is None:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm = maxrss if sys.platform == "darwin" else maxrss * 1024
    return max(int(hwm), int(current))


def _vm_hwm_bytes() -> int | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            value, _, unit = line.split(":", 1)[1].strip().partition(" ")
            return int(value) * 1024 if unit.strip().lower() == "kb" else int(value)
    return None


# ----------------------------------------------------------------------------------------- saved activations


class _Saved:
    """What autograd holds instead of a saved tensor while a meter is active; its death frees the bytes."""

    __slots__ = ("tensor", "key", "meter")

    def __init__(self, tensor: torch.Tensor, key: tuple | None, meter: SavedActivationMeter) -> None:
        self.tensor = tensor
        self.key = key
        self.meter = meter

    def __del__(self) -> None:
        if self.key is not None:
            self.meter._release(self.key)


class SavedActivationMeter:
    """Peak bytes of tensors that autograd keeps alive for backward, on any device.

    ``with SavedActivationMeter() as m: loss = f(); loss.backward()`` then ``m.peak_bytes``.

    What it measures, exactly: while the context is active, every tensor autograd saves for backward is seen by
    a ``saved_tensors_hooks`` pack hook. Bytes are counted per storage (so two views of one storage, or a tensor
    saved by two ops, count once, and a saved view counts its whole storage, since that is what it keeps alive)
    from the moment it is saved until autograd drops it (after its node's backward, or when the graph is freed).
    ``peak_bytes`` is the maximum of that live total, so wrapping several steps gives the largest single step,
    not their sum. Parameters (leaf tensors that require grad) and views of them are not counted: they live
    regardless of training, and counting them would hide the activation difference between methods; pass
    ``count_parameters=True`` to include them. Memory autograd does not save (temporaries, gradients, optimizer
    state) is not counted; ``peak_memory`` covers totals.

    Activation checkpointing (``torch.utils.checkpoint``, non-reentrant) pushes hooks of its own inside a
    checkpointed part: the tensors its forward would save never reach the meter (they are not kept), and in backward
    the part's forward runs again and *its* saved tensors go to checkpoint's recomputation hook, which holds them
    until each is used. Those are what a checkpointed step really keeps at its peak (the parts' inputs plus one
    part's recomputed activations), so while the meter is active it counts them too: it swaps checkpoint's
    recomputation hook for one that also reports each tensor it holds (``_counting_recomputation``), counted per
    storage like any other from the moment it is recomputed until its last reference dies. The reentrant form needs
    nothing: it recomputes under plain autograd, whose saves the meter sees.

    The hooks add Python work per saved tensor, so meter an untimed step, never the stopwatch-timed epoch.
    Tensors saved inside the context and still alive at exit are released from the count as autograd drops them.
    One meter at a time per process: the recomputation hook it swaps in is torch's, for every thread.
    """

    def __init__(self, count_parameters: bool = False) -> None:
        self.count_parameters = count_parameters
        self.peak_bytes = 0
        self.live_bytes = 0
        self._live: dict[tuple, list[int]] = {}  # storage key -> [references held by autograd, bytes]
        self._lock = threading.RLock()  # backward may release tensors on autograd's device threads
        self._hooks: torch.autograd.graph.saved_tensors_hooks | None = None
        self._recomputation: type | None = None  # checkpoint's own hook class, while ours stands in for it

    def __enter__(self) -> SavedActivationMeter:
        if self._hooks is not None:
            raise RuntimeError("SavedActivationMeter is not re-entrant")
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)
        self._hooks.__enter__()
        original = getattr(torch_checkpoint, "_recomputation_hook", None)
        if isinstance(original, type):  # absent in a torch that recomputes otherwise: then nothing to add
            self._recomputation = original
            torch_checkpoint._recomputation_hook = _counting_recomputation(original, self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        hooks, self._hooks = self._hooks, None
        if self._recomputation is not None:
            torch_checkpoint._recomputation_hook, self._recomputation = self._recomputation, None
        if hooks is not None:
            hooks.__exit__(exc_type, exc, tb)

    def _pack(self, tensor: torch.Tensor) -> _Saved:
        if not self.count_parameters and _is_parameter(tensor):
            return _Saved(tensor, None, self)
        key = self._hold(tensor)
        return _Saved(tensor, key, self)

    def _hold(self, tensor: torch.Tensor) -> tuple:
        """Count one more reference to the tensor's storage (its bytes once, however many hold it)."""
        key, nbytes = _storage_key(tensor)
        with self._lock:
            entry = self._live.get(key)
            if entry is None:
                self._live[key] = [1, nbytes]
                self.live_bytes += nbytes
                self.peak_bytes = max(self.peak_bytes, self.live_bytes)
            else:
                entry[0] += 1
        return key

    def _recomputed(self, saved: torch.Tensor, kept: torch.Tensor) -> None:
        """``kept``, what checkpoint's recomputation holds of ``saved`` for backward: counted until it dies (a
        parameter only where parameters count, as for any saved tensor)."""
        if not self.count_parameters and _is_parameter(saved):
            return
        weakref.finalize(kept, self._release, self._hold(kept))

    def _release(self, key: tuple) -> None:
        with self._lock:
            entry = self._live.get(key)
            if entry is None:
                return
            entry[0] -= 1
            if entry[0] == 0:
                del self._live[key]
                self.live_bytes -= entry[1]


def _unpack(saved: _Saved) -> torch.Tensor:
    return saved.tensor


def _counting_recomputation(original: type, meter: SavedActivationMeter) -> type:
    """torch.utils.checkpoint's recomputation hook, whose pack also hands the meter each tensor it keeps.

    Its own pack keeps ``x.detach()`` of a tensor that requires grad, else ``x`` itself. Ours hands it a detached
    alias in both cases (the same storage and version counter, so nothing checkpoint checks differs): the tensor the
    meter watches is then the very one checkpoint keeps, and the count ends when backward has used it, even for an
    input the caller still holds (that one is counted where autograd saved it, as any)."""

    class Counting(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pack_hook = _reporting(self.pack_hook, meter)

    return Counting


def _reporting(pack: Callable[[torch.Tensor], Any], meter: SavedActivationMeter) -> Callable[[torch.Tensor], Any]:
    def counted(x: torch.Tensor) -> Any:
        kept = x.detach()
        meter._recomputed(x, kept)
        return pack(kept)

    counted.__dict__.update(pack.__dict__)  # checkpoint marks its hooks (_checkpoint_internal) and reads the mark
    return counted


def _is_parameter(tensor: torch.Tensor) -> bool:
    base = tensor._base if tensor._base is not None else tensor
    return base.is_leaf and base.requires_grad


def _storage_key(tensor: torch.Tensor) -> tuple[tuple, int]:
    """(identity of the memory a tensor keeps alive, its size in bytes)."""
    try:
        storage = tensor.untyped_storage()
        return ("storage", str(tensor.device), storage.data_ptr()), int(storage.nbytes())
    except (RuntimeError, NotImplementedError):  # tensors without a plain storage (sparse, some subclasses)
        return ("tensor", id(tensor)), tensor.numel() * tensor.element_size()


def _conv_backward_flops(grad_out_shape: list[int], x_shape: list[int], w_shape: list[int], _bias: object,
                         _stride: object, _padding: object, _dilation: object, transposed: bool,
                         _output_padding: object, _groups: int, output_mask: list[bool], **kwargs: object) -> int:
    """Each gradient asked for (``output_mask``: input, weight) costs what the forward costs (2 x batch x output
    positions x c_out x c_in/groups x kernel); ``w_shape`` already holds c_in/groups, so grouped convolutions count
    right. For groups = 1 this is torch's own count."""
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count_flops() -> FlopCounterMode:
    """torch's FlopCounterMode (matrix products and convolutions, forward and backward), with the backward of a
    grouped convolution counted right: torch 2.14 counts it as if every group saw all input channels (measured: 5.5x
    the FLOPs of the same convolutions run one group at a time, for 10 groups)."""
    aten = torch.ops.aten
    return FlopCounterMode(display=False, custom_mapping={aten.convolution_backward: _conv_backward_flops})


# ------------------------------------------------------------------------------------ a shared machine


LOAD_SAMPLE_S = 10.0  # how often the machine's load average is read while a run lasts


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS has one, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ProcessUsage:
    """What a run's process used and what it shared the machine with, from its start to ``columns()``: the process's
    CPU time (user + system, every thread), the mean and the largest 1-minute load average, read at the start, every
    ``LOAD_SAMPLE_S`` seconds (a daemon thread that sleeps between reads) and at the end, and the CPUs it could run
    on. A time on a machine whose load exceeded its CPUs is suspect (docs/methodology.md)."""

    def __init__(self, interval_s: float = LOAD_SAMPLE_S) -> None:
        self.process = psutil.Process()
        self.cpu_start = self._cpu_s()
        self.loads = [psutil.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval_s,), daemon=True,
                                        name="noprop-bench-load")
        self._thread.start()

    def _cpu_s(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def _sample(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.loads.append(psutil.getloadavg()[0])

    def stop(self) -> None:
        """End the sampling thread (``columns`` does too); safe to call again."""
        self._stop.set()

    def columns(self) -> dict[str, float | int]:
        """The run row's ``cpu_time_s``, ``load_avg``, ``load_avg_max`` and ``cpus``; stops the sampling."""
        self.stop()
        loads = [*self.loads, psutil.getloadavg()[0]]
        return {"cpu_time_s": self._cpu_s() - self.cpu_start, "load_avg": sum(loads) / len(loads),
                "load_avg_max": max(loads), "cpus": usable_cpus()}


def current_rss_bytes() -> int:
    """The process's resident memory now (the RSS a run starts from: Python, torch and the harness loaded)."""
    return int(psutil.Process().memory_info().rss)
