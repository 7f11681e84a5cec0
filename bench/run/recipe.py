"""One run = (dataset, method, seed, config) -> one run row + epoch rows; a sweep = many runs.

What is timed (see README, "Methodology"): the training clock runs around ``fit_epoch`` only, with CUDA
synchronised at both ends; evaluation, data loading, model construction and checkpointing are timed
separately. Memory peaks are reset at the start of the run; by default every run has its own child process
so its RSS figure is its own. Rows are written once per run (also on failure or Ctrl-C), atomically, and a
checkpoint after every epoch lets ``--resume`` finish an interrupted run without duplicating rows.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import itertools
import json
import math
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.results import artifacts, read_runs, replace_run_rows
from bench.run import checkpoint, data, environment, methods
from bench.run import switches as execution
from bench.run.batching import Batches
from bench.run.config import RunConfig
from bench.run.evaluate import accuracy, predictions, repeated_accuracy
from bench.run.measure import SavedActivationMeter, Stopwatch, peak_memory, reset_peak_memory

Emit = Callable[[dict[str, Any]], None]
TRAIN_ACC_SAMPLES = 10_000  # training accuracy is measured on this many training images (first of the split)
WARMUP_SEED = 2**31 - 1  # the warm-up draws its own batch order, leaving the run's untouched


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, then Apple's MPS, else the CPU; an unusable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device '{name}' asked for but CUDA is not available here; use --device cpu or auto")
    return device


class RunError(Exception):
    """A run cannot start (bad device, unreadable results folder): one line for the user."""


def run_key(config: RunConfig, method: str, seed: int) -> str:
    """Identifies 'the same run' across an interruption: dataset, method, config hash and seed."""
    return f"{config.dataset}-{method}-{config.model_hash()}-seed{seed}"


def completed_keys(out: Path) -> set[str]:
    """Run keys with an ``ok`` row in ``out`` (``--resume`` skips them)."""
    runs = read_runs(out)
    ok = runs[runs["status"] == "ok"]
    return {f"{r.dataset}-{r.method}-{r.config_hash}-seed{r.seed}" for r in ok.itertuples()}


def _new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class _Progress:
    """What a run has measured so far; saved in checkpoints so a resumed run continues the same figures."""

    epochs_done: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    warmup_time_s: float | None = None
    epoch_rows: list[dict] = field(default_factory=list)
    best_val: float = -math.inf
    best_val_epoch: int | None = None
    bad_epochs: int = 0


def _limited(batches: Batches, n: int) -> Callable[[], Iterator]:
    return lambda: itertools.islice(batches(), n)


def _scratch_steps(model: torch.nn.Module, splits: data.Splits, config: RunConfig, device: torch.device,
                   n_batches: int, meter: SavedActivationMeter | None = None) -> float:
    """Train a throw-away copy on ``n_batches`` batches of its own order; the run's model and random streams
    are untouched. Returns the wall time. Used for the optional warm-up (kernel selection, allocator) and to
    measure bytes saved for backward during one training step."""
    rng = torch.get_rng_state()
    scratch = copy.deepcopy(model)
    own = Batches(splits.train_x, splits.train_y, splits.mean, splits.std, config.batch_size, seed=WARMUP_SEED)
    with Stopwatch(device) as sw, meter or contextlib.nullcontext(), execution.precision(config, device):
        scratch.fit_epoch(_limited(own, n_batches))
    del scratch
    gc.collect()
    torch.set_rng_state(rng)
    return sw.elapsed


def probe_one_step(model: torch.nn.Module, splits: data.Splits, config: RunConfig, device: torch.device,
                   batch: int) -> dict:
    """What one training step on one mini-batch (untimed, on a copy) saves for backward and computes.

    ``peak_saved_activation_bytes``: NoProp-DT in the paper's order steps one block at a time, so this is one
    block's activations; in the interleaved order, and for backprop, one step holds all T blocks' activations.
    ``train_gflop_per_sample``: the matrix-multiply and convolution FLOPs (forward and backward, counted by
    torch's FlopCounterMode) of training every block once, per image (``batch``: the size of a pass's first
    batch, the one the step trains on); elementwise work is not counted.
    """
    meter = SavedActivationMeter()
    with FlopCounterMode(display=False) as flops:
        _scratch_steps(model, splits, config, device, 1, meter)
    return {"peak_saved_activation_bytes": meter.peak_bytes,
            "train_gflop_per_sample": flops.get_total_flops() / batch / 1e9}


def run_one(config: RunConfig, method: str, seed: int, *, resume: bool, emit: Emit, measured_in: str) -> dict:
    """Train and measure one method on one seed; always writes its rows, whatever happens.

    Raises KeyboardInterrupt again after recording an interrupted run, so the caller can stop the sweep.
    """
    t0 = time.perf_counter()
    out = Path(config.out)
    device = resolve_device(config.device)
    reset_peak_memory(device)
    key = run_key(config, method, seed)
    previous = checkpoint.latest_checkpoint(out, key) if resume else None
    state = checkpoint.load(previous) if previous else None
    run_id = state["run_id"] if state else _new_run_id()
    progress: _Progress = state["progress"] if state else _Progress()
    row: dict[str, Any] = {
        "run_id": run_id, "dataset": config.dataset, "method": method, "embedding": config.embedding,
        "order": config.order if method == "noprop-dt" else "", "precision": config.precision,
        "channels_last": config.channels_last, "seed": seed, "epochs_planned": config.epochs,
        "config_hash": config.model_hash(), "measured_in": measured_in,
        "config_json": json.dumps(config.to_dict(), sort_keys=True), **environment.capture(device),
    }
    status, reason, interrupted, n_train = "ok", "", False, 0
    ckpt_path = checkpoint.checkpoint_path(out, key, run_id)
    emit({"event": "start", "key": key, "method": method, "seed": seed, "epochs": config.epochs,
          "epoch": progress.epochs_done})
    try:
        splits = data.load(
            config.dataset, data_dir=config.data_dir, device=device, train_subset=config.train_subset,
            test_subset=config.test_subset, val_size=config.val_size, seed=seed, allow_download=config.download,
        )
        splits = execution.prepare_splits(splits, config)
        n_train = splits.train_y.numel()
        batches = Batches(splits.train_x, splits.train_y, splits.mean, splits.std, config.batch_size, seed)
        model = execution.prepare_model(methods.build(method, config, splits, len(batches), seed), config)
        row["params"] = sum(p.numel() for p in model.parameters())
        if state:
            model.load_training_state(state["model"])
            batches.generator.set_state(state["batch_rng"])
            torch.set_rng_state(state["torch_rng"])
        if config.timing_warmup_batches and progress.warmup_time_s is None:
            progress.warmup_time_s = _scratch_steps(model, splits, config, device, config.timing_warmup_batches)
        row.update(probe_one_step(model, splits, config, device, batches.sizes()[0]))
        reset_peak_memory(device)  # the scratch copies above must not count in the run's peaks
        row["startup_time_s"] = time.perf_counter() - t0

        def save_checkpoint() -> None:
            checkpoint.save(ckpt_path, {
                "run_id": run_id, "progress": progress, "model": model.training_state(),
                "batch_rng": batches.generator.get_state(), "torch_rng": torch.get_rng_state(),
            })

        status, reason = _train(config, method, model, splits, batches, progress, device, emit, key,
                                save_checkpoint, seed)
        if status == "ok":
            test_pred = _final_evaluation(row, model, splits, config, seed, progress)
            artifacts.save(out, run_id, test_pred, splits, model, config.embedding)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the row being written
        status, reason, interrupted = "interrupted", "Ctrl-C", True
    except torch.cuda.OutOfMemoryError as e:
        status, reason = "oom", str(e).splitlines()[0][:200]
    except (data.DataError, RunError):
        raise
    except Exception as e:  # a failing method is recorded and the sweep goes on
        status, reason = "failed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
        if "out of memory" in str(e).lower():
            status = "oom"
    row.update(_summary(progress, config, n_train, device))
    if row.get("train_gflop_per_sample") and row.get("samples_per_s"):
        row["train_gflop_per_s"] = row["train_gflop_per_sample"] * row["samples_per_s"]
    row["early_stopped"] = reason.startswith("early stopped")
    row.update(status=status, reason=reason, timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    epoch_rows = [{**r, "run_id": run_id} for r in progress.epoch_rows]
    replace_run_rows(out, run_id, row, epoch_rows)
    if status == "ok":
        ckpt_path.unlink(missing_ok=True)
        if previous:
            previous.unlink(missing_ok=True)
    emit({"event": "end", "key": key, "row": row})
    if interrupted:
        raise KeyboardInterrupt
    return row


def _train(config: RunConfig, method: str, model: torch.nn.Module, splits: data.Splits, batches: Batches,
           progress: _Progress, device: torch.device, emit: Emit, key: str, save_checkpoint: Callable[[], None],
           seed: int) -> tuple[str, str]:
    """The epoch loop: timed fit, untimed evaluation, epoch row, checkpoint, early stopping."""
    train_clock = Stopwatch(device)
    for epoch in range(progress.epochs_done + 1, config.epochs + 1):
        with train_clock, execution.precision(config, device):
            stats = model.fit_epoch(batches)
        progress.train_time_s += train_clock.laps[-1]
        loss = float(stats["loss"])
        with Stopwatch(device) as eval_clock, execution.precision(config, device):
            test_acc = accuracy(predictions(model, splits.test_x, splits.mean, splits.std, seed * 1000), splits.test_y)
            val_acc = None
            if splits.val_x is not None:
                val_acc = accuracy(predictions(model, splits.val_x, splits.mean, splits.std, seed * 1000), splits.val_y)
        progress.eval_time_s += eval_clock.elapsed
        progress.epochs_done = epoch
        mem = peak_memory(device)
        progress.epoch_rows.append({
            "dataset": config.dataset, "method": method, "seed": seed, "epoch": epoch, "train_loss": loss,
            "test_acc": test_acc, "val_acc": val_acc, "epoch_time_s": train_clock.laps[-1],
            "cum_train_time_s": progress.train_time_s, "peak_cuda_allocated_bytes": mem["peak_cuda_allocated_bytes"],
            "peak_rss_bytes": mem["peak_rss_bytes"],
        })
        emit({"event": "epoch", "key": key, "epoch": epoch, "loss": loss, "test_acc": test_acc, "val_acc": val_acc,
              "train_time_s": progress.train_time_s})
        if not math.isfinite(loss):
            return "diverged", f"training loss became {loss} in epoch {epoch}"
        if val_acc is not None:
            if val_acc > progress.best_val:
                progress.best_val, progress.best_val_epoch, progress.bad_epochs = val_acc, epoch, 0
            else:
                progress.bad_epochs += 1
        save_checkpoint()
        patience = config.early_stopping_patience
        if patience and val_acc is not None and progress.bad_epochs >= patience:
            return "ok", f"early stopped after epoch {epoch}"
    return "ok", ""


def _final_evaluation(row: dict, model: torch.nn.Module, splits: data.Splits, config: RunConfig, seed: int,
                      progress: _Progress) -> torch.Tensor:
    """Headline test accuracy (mean and spread over inference repeats), train and validation accuracy.

    Returns the test predictions of the first inference repeat (saved for the report's confusion matrix).
    """
    device = splits.train_x.device
    with Stopwatch(device) as clock, execution.precision(config, device):
        mean, std, _, test_pred = repeated_accuracy(model, splits.test_x, splits.test_y, splits.mean, splits.std, seed,
                                            config.eval_repeats)
        row.update(test_acc=mean, test_acc_std=std, test_acc_repeats=config.eval_repeats)
        n = min(TRAIN_ACC_SAMPLES, splits.train_y.numel())
        row["train_acc"] = accuracy(predictions(model, splits.train_x[:n], splits.mean, splits.std, seed * 1000),
                                    splits.train_y[:n])
        if splits.val_x is not None:
            row["val_acc"] = accuracy(predictions(model, splits.val_x, splits.mean, splits.std, seed * 1000),
                                      splits.val_y)
    progress.eval_time_s += clock.elapsed
    return test_pred


def _summary(progress: _Progress, config: RunConfig, n_train: int, device: torch.device) -> dict:
    """The run row's timing, throughput, selection and memory columns from what was measured."""
    done, train_time = progress.epochs_done, progress.train_time_s
    samples_per_s = n_train * done / train_time if train_time > 0 else None
    best = progress.best_val_epoch
    best_test = progress.epoch_rows[best - 1]["test_acc"] if best else None
    return {
        "epochs_done": done, "train_time_s": train_time, "eval_time_s": progress.eval_time_s,
        "warmup_time_s": progress.warmup_time_s, "time_per_epoch_s": train_time / done if done else None,
        "samples_per_s": samples_per_s,
        "block_samples_per_s": samples_per_s * config.T if samples_per_s is not None else None,
        "best_val_epoch": best, "best_val_test_acc": best_test,
        **peak_memory(device),
    }
