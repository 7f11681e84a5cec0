"""One run as a recipe: (config, method, seed) in; setup, train, evaluate, record; one run row and its epoch rows
out. This is the unit every executor dispatches.

What is timed (docs/methodology.md): the training clock runs around the epoch loop (``bench.run.loop``) only, with
CUDA synchronised at both ends; evaluation, data loading, model construction and checkpointing are timed separately.
Memory peaks are reset at the start of the run (and again after the untimed probes). Rows are written once per run
(also on failure or Ctrl-C), atomically, and a checkpoint after every epoch lets ``--resume`` finish an interrupted
run without duplicating rows. The recipe names no method: what it records about one, the method declares
(``noprop.core.method.Method``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from bench.results import ResultsError, artifacts, replace_run_rows
from bench.run import budget, capture, checkpoint, data, identity, loop, methods, stopping, switches, threads
from bench.run.ambient import host_default_device
from bench.run.batching import ShuffledPasses
from bench.run.config import REGISTRY, RunConfig
from bench.run.evaluate import accuracy, predictions, repeated_accuracy, steps_sweep
from bench.run.identity import RunError, resolve_device
from bench.run.measure import (
    ProcessUsage,
    SavedActivationMeter,
    Stopwatch,
    count_flops,
    current_rss_bytes,
    peak_memory,
    reset_peak_memory,
    usable_cpus,
)
from noprop.core.method import Method, StepsAtInference

Emit = Callable[[dict[str, Any]], None]
MethodBuilder = Callable[[str, RunConfig, data.Splits, int, int], Method]
RowWriter = Callable[[Path, str, dict[str, Any], list[dict[str, Any]]], None]
TRAIN_ACC_SAMPLES = 10_000  # training accuracy is measured on this many training images (first of the split)
WARMUP_SEED = 2**31 - 1  # the warm-up draws its own batch order, leaving the run's untouched


def quiet(event: dict[str, Any]) -> None:
    """An ``Emit`` that shows nothing."""


def phase(key: str, what: str) -> dict[str, Any]:
    """A ``phase`` event: what run ``key`` is doing now (loading data, epoch 3), so a display shows a run that has
    not yet finished an epoch is alive. Anything that carries out a run may send one (block_parallel does)."""
    return {"event": "phase", "key": key, "phase": what}


@dataclass
class Progress:
    """What a run has measured so far; saved in checkpoints (as a plain dict) so a resumed run continues it."""

    epochs_done: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    warmup_time_s: float | None = None
    epoch_rows: list[dict] = field(default_factory=list)
    best_val: float = -math.inf
    best_val_epoch: int | None = None
    bad_epochs: int = 0
    budget_spent: float = 0.0  # GFLOP or seconds of a budgeted run (bench.run.budget)
    budget_images: float = 0.0  # and the images it trained (its last epoch may be partial)
    step_counts: dict = field(default_factory=dict)  # how its steps were made so far (bench.run.capture)
    threads: int | None = None  # the torch threads it chose (bench.run.threads), kept by a resumed attempt

    def note_validation(self, epoch: int, val_acc: float | None) -> None:
        """Track the best validation epoch and the epochs since it (for early stopping)."""
        if val_acc is None:
            return
        if val_acc > self.best_val:
            self.best_val, self.best_val_epoch, self.bad_epochs = val_acc, epoch, 0
        else:
            self.bad_epochs += 1

    def summary(self, n_train: int, block_passes: int | None) -> dict[str, Any]:
        """The run row's timing, throughput and selection columns from what was measured."""
        done, train_time = self.epochs_done, self.train_time_s
        images = self.budget_images or n_train * done  # a budgeted run's last epoch may be partial
        samples_per_s = images / train_time if train_time > 0 else None
        epoch_times = [r["epoch_time_s"] for r in self.epoch_rows]
        best = self.best_val_epoch
        return {
            "epochs_done": done, "train_time_s": train_time, "eval_time_s": self.eval_time_s,
            "warmup_time_s": self.warmup_time_s, "time_per_epoch_s": train_time / done if done else None,
            "epoch_time_median_s": statistics.median(epoch_times) if epoch_times else None,
            "samples_per_s": samples_per_s,
            "block_samples_per_s": samples_per_s * block_passes if samples_per_s and block_passes else None,
            "best_val_epoch": best, "best_val_test_acc": self.epoch_rows[best - 1]["test_acc"] if best else None,
        }


class Run:
    """One run of one method on one seed: ``Run(config, method, seed).execute()`` returns its run row.

    The steps are methods of their own (``setup``, ``train``, ``evaluate``, ``record``) and the run's state lives
    on the object, so an executor can dispatch a ``Run`` anywhere and a test can drive it with a stub method
    (``build``). ``write_rows=None`` leaves the results files to the caller: the ``end`` event carries the run row
    and its epoch rows (the Ray executor's driver writes them, so only one process ever writes the CSVs).
    """

    def __init__(self, config: RunConfig, method: str, seed: int, *, resume: bool = False, emit: Emit = quiet,
                 measured_in: str = "process", build: MethodBuilder = methods.build,
                 write_rows: RowWriter | None = replace_run_rows) -> None:
        self.config, self.method_name, self.seed, self.emit, self.build = config, method, seed, emit, build
        self.write_rows = write_rows
        self.out = Path(config.out)
        self.device = resolve_device(config.device)
        if config.tf32 and self.device.type != "cuda":
            raise RunError(f"tf32 applies to CUDA matmuls and convolutions, but this run is on {self.device.type}; "
                           "drop --tf32 or use --device cuda")
        if config.capture != "none" and self.device.type != "cuda":
            raise RunError(f"capture {config.capture} replays CUDA graphs, but this run is on {self.device.type}; "
                           "drop --capture or use --device cuda")
        self.key = identity.key_for(config, method, seed)
        self.previous = checkpoint.latest_checkpoint(self.out, self.key) if resume else None
        self.restored = checkpoint.load(self.previous) if self.previous else None
        self.run_id = self.restored["run_id"] if self.restored else identity.new_run_id()
        self.progress = Progress(**self.restored["progress"]) if self.restored else Progress()
        # the free cores where the config leaves it open; a resumed run computes with the threads it began with
        self.progress.threads = threads.choose(config.threads, usable_cpus(), earlier=self.progress.threads)
        if self.progress.threads:
            torch.set_num_threads(self.progress.threads)
        self.ckpt_path = checkpoint.checkpoint_path(self.out, self.key, self.run_id)
        self.row: dict[str, Any] = identity.measured_row(config, method, seed, run_id=self.run_id,
                                                         measured_in=measured_in, device=self.device)
        self.splits: data.Splits | None = None
        self.passes: ShuffledPasses | None = None
        self.model: Method | None = None
        self.steps: capture.Steps | None = None  # how the epoch loop makes this run's steps (config key capture)
        self.budget: budget.Budget | None = None  # what the run may spend, when not epochs (budget_gflop, _seconds)
        self.usage: ProcessUsage | None = None

    # ---- the recipe ----------------------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        """Setup, train, evaluate, record. The rows are written whatever happens; bad input (data, device) is
        raised before any row. Raises KeyboardInterrupt again after recording an interrupted run. Runs as from the
        CLI whoever calls it (``bench.run.ambient.host_default_device``)."""
        with host_default_device():
            try:
                return self._execute()
            finally:  # a run that raised before its row must not leave the load sampler running in this process
                if self.usage is not None:
                    self.usage.stop()

    def _execute(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.usage = ProcessUsage()  # the run's CPU time and the machine's load, for the row
        self.row["rss_at_start_bytes"] = current_rss_bytes()
        reset_peak_memory(self.device)
        self.emit({"event": "start", "key": self.key, "method": self.method_name, "seed": self.seed,
                   "epochs": self.config.epochs_for(self.method_name), "epoch": self.progress.epochs_done})
        interrupted = False
        try:
            self.setup(started)
            status, reason = self.train()
            if status == "ok":
                self.emit(phase(self.key, "final evaluation"))
                self.evaluate()
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP (bench.run.stopping)
            stopping.hold_off()  # a second signal must not cut the row being written
            status, reason, interrupted = "interrupted", stopping.reason(), True
        except (data.DataError, RunError, ResultsError):  # a full disk at a checkpoint stops the sweep too
            raise
        except Exception as e:  # a failing method is recorded and the sweep goes on
            status, reason = _failure(e)
        row = self.record(status, reason)
        if interrupted:
            raise KeyboardInterrupt
        return row

    def setup(self, started: float) -> None:
        """Data on the device, the method built (or restored from the checkpoint), untimed warm-up and probes."""
        c = self.config
        self.emit(phase(self.key, "loading data"))
        self.splits, self.passes = prepare_data(c, self.device, self.seed)
        self.emit(phase(self.key, "building the model"))
        built = self.build(self.method_name, c, self.splits, len(self.passes), self.seed)
        self.model = switches.prepare_model(built, c)
        self.row["params"] = sum(p.numel() for p in self.model.parameters())
        self.row["resident_data_bytes"] = self.splits.resident_bytes
        self.row.update(methods.recorded_columns(self.model))
        if self.restored:
            self.model.load_training_state(self.restored["model"])
            self.passes.generator.set_state(self.restored["batch_rng"])
            torch.set_rng_state(self.restored["torch_rng"])
            if self.device.type == "cuda" and self.restored.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(self.restored["cuda_rng"], self.device)
        if c.timing_warmup_batches and self.progress.warmup_time_s is None:
            self.emit(phase(self.key, "warm-up"))
            self.progress.warmup_time_s = scratch_steps(self.model, self.splits, c, self.device,
                                                        c.timing_warmup_batches)
        self.emit(phase(self.key, "measuring one step"))
        self.row.update(probe_one_step(self.model, self.splits, c, self.device, self.passes.sizes()[0],
                                       counts_flops=_counts_flops(self.method_name)))
        self.steps = capture.steps_for(self.model, c.capture, self.device)
        self.steps.continue_counts(self.progress.step_counts)
        self.budget = budget.from_config(c.budget_gflop, c.budget_seconds, self.row["train_gflop_per_sample"],
                                         spent=self.progress.budget_spent, images=self.progress.budget_images)
        reset_peak_memory(self.device)  # the scratch copies above must not count in the run's peaks
        self.row["startup_time_s"] = time.perf_counter() - started

    def train(self) -> tuple[str, str]:
        """The epoch loop: timed fit, untimed evaluation, epoch row, checkpoint, early stopping."""
        patience = self.config.early_stopping_patience
        for epoch in range(self.progress.epochs_done + 1, self.config.epochs_for(self.method_name) + 1):
            self.emit(phase(self.key, f"epoch {epoch}"))
            loss, val_acc = self.epoch(epoch)
            if not math.isfinite(loss):
                return "diverged", f"training loss became {loss} in epoch {epoch}"
            self.progress.note_validation(epoch, val_acc)
            self.save_checkpoint()
            if patience and val_acc is not None and self.progress.bad_epochs >= patience:
                return "ok", f"early stopped after epoch {epoch}"
            if self.budget is not None and self.budget.exhausted():
                b = self.budget
                return "ok", f"budget spent: {b.spent:.6g} of {b.amount:g} {b.unit} in epoch {epoch}"
        if self.budget is not None:
            b = self.budget
            return "ok", f"epochs ceiling reached with {b.spent:.6g} of the {b.amount:g} {b.unit} budget spent"
        return "ok", ""

    def epoch(self, epoch: int) -> tuple[float, float | None]:
        """One timed epoch and its untimed evaluation; appends the epoch row. Returns (loss, val_acc)."""
        assert self.model is not None and self.splits is not None and self.passes is not None
        if self.budget is not None:
            self.budget.start_epoch()
        with Stopwatch(self.device) as train_clock, switches.precision(self.config, self.device):
            stats = loop.train_epoch(self.model, self.passes, self.steps, self.budget)
        assert self.steps is not None
        self.progress.step_counts = self.steps.counts()
        if self.budget is not None:
            self.budget.end_epoch(train_clock.elapsed)
            self.progress.budget_spent, self.progress.budget_images = self.budget.spent, self.budget.images
        loss = float(stats["loss"])
        with Stopwatch(self.device) as eval_clock, switches.precision(self.config, self.device):
            test_acc = self._one_inference(self.splits.test_x, self.splits.test_y)
            test_acc_det = self._one_inference(self.splits.test_x, self.splits.test_y, deterministic=True)
            val_acc = None if self.splits.val_x is None else self._one_inference(self.splits.val_x,
                                                                                  self.splits.val_y)
        p = self.progress
        p.train_time_s += train_clock.elapsed
        p.eval_time_s += eval_clock.elapsed
        p.epochs_done = epoch
        mem = peak_memory(self.device)
        p.epoch_rows.append({
            "dataset": self.config.dataset, "method": self.method_name, "seed": self.seed, "epoch": epoch,
            "train_loss": loss, "test_acc": test_acc, "test_acc_det": test_acc_det, "val_acc": val_acc,
            "epoch_time_s": train_clock.elapsed,
            "cum_train_time_s": p.train_time_s, "peak_cuda_allocated_bytes": mem["peak_cuda_allocated_bytes"],
            "peak_rss_bytes": mem["peak_rss_bytes"],
        })
        self.emit({"event": "epoch", "key": self.key, "epoch": epoch, "loss": loss, "test_acc": test_acc,
                   "test_acc_det": test_acc_det, "val_acc": val_acc, "train_time_s": p.train_time_s,
                   "row": p.epoch_rows[-1]})  # the epochs.csv row, for the trackers
        return loss, val_acc

    def evaluate(self) -> None:
        """Headline test accuracy (mean and spread over inference repeats), the deterministic reading of the same
        weights, the time of one test pass for each reading, train and validation accuracy, and the artifacts the
        report draws from (test predictions of the first repeat, class embeddings)."""
        assert self.model is not None and self.splits is not None
        s, c = self.splits, self.config
        with Stopwatch(self.device) as clock, switches.precision(c, self.device):
            with Stopwatch(self.device) as stochastic:
                mean, std, _, test_pred = repeated_accuracy(self.model, s.test_x, s.test_y, s.mean, s.std,
                                                            self.seed, c.eval_repeats)
            with Stopwatch(self.device) as deterministic:
                self.row["test_acc_det"] = self._one_inference(s.test_x, s.test_y, deterministic=True)
            self.row.update(test_infer_s=stochastic.elapsed / c.eval_repeats, test_infer_det_s=deterministic.elapsed,
                            test_images=s.test_y.numel())
            n = min(TRAIN_ACC_SAMPLES, s.train_y.numel())
            self.row.update(test_acc=mean, test_acc_std=std, test_acc_repeats=c.eval_repeats,
                            train_acc=self._one_inference(s.train_x[:n], s.train_y[:n]))
            if s.val_x is not None:
                self.row["val_acc"] = self._one_inference(s.val_x, s.val_y)
            sweep = None
            if c.ode_steps_sweep and isinstance(self.model, StepsAtInference):
                sweep = steps_sweep(self.model, s.test_x, s.test_y, s.mean, s.std, self.seed, c.ode_steps_sweep)
        self.progress.eval_time_s += clock.elapsed
        artifacts.save(self.out, self.run_id, test_pred, s, self.model, c.embedding, sweep)

    def record(self, status: str, reason: str) -> dict[str, Any]:
        """Write the run row and its epoch rows (replacing an earlier attempt's), then drop finished checkpoints."""
        n_train = self.splits.train_y.numel() if self.splits is not None else 0
        self.row.update(self.progress.summary(n_train, self.model.block_passes_per_sample if self.model else None))
        self.row.update(peak_memory(self.device))
        if self.steps is not None:
            self.row.update(self.steps.counts())
        self.row.update(self.budget.row() if self.budget is not None else {
            "budget_unit": "epochs", "budget": float(self.config.epochs_for(self.method_name)),
            "budget_spent": float(self.progress.epochs_done)})
        if self.usage is not None:
            self.row.update(self.usage.columns())
        if self.row.get("train_gflop_per_sample") and self.row.get("samples_per_s"):
            self.row["train_gflop_per_s"] = self.row["train_gflop_per_sample"] * self.row["samples_per_s"]
        self.row.update(status=status, reason=reason, early_stopped=reason.startswith("early stopped"),
                        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        epoch_rows = [{**r, "run_id": self.run_id} for r in self.progress.epoch_rows]
        if self.write_rows is not None:
            self.write_rows(self.out, self.run_id, self.row, epoch_rows)
        if status == "ok":
            self.ckpt_path.unlink(missing_ok=True)
            if self.previous:
                self.previous.unlink(missing_ok=True)
        self.emit({"event": "end", "key": self.key, "row": self.row, "epoch_rows": epoch_rows})
        return self.row

    # ---- helpers -------------------------------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        assert self.model is not None and self.passes is not None
        checkpoint.save(self.ckpt_path, {
            "run_id": self.run_id, "progress": dataclasses.asdict(self.progress),
            "model": self.model.training_state(), "batch_rng": self.passes.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
        })

    def _one_inference(self, x: torch.Tensor, y: torch.Tensor, deterministic: bool = False) -> float:
        assert self.model is not None and self.splits is not None
        return accuracy(predictions(self.model, x, self.splits.mean, self.splits.std, self.seed * 1000,
                                    deterministic=deterministic), y)


def prepare_data(config: RunConfig, device: torch.device, seed: int) -> tuple[data.Splits, ShuffledPasses]:
    """A run's data on its device (layout switches applied) and its seeded training passes."""
    c = config
    splits = data.load(c.dataset, data_dir=c.data_dir, device=device, train_subset=c.train_subset,
                       test_subset=c.test_subset, val_size=c.val_size, seed=seed, allow_download=c.download)
    splits = switches.prepare_splits(splits, c)
    return splits, ShuffledPasses(splits.train_x, splits.train_y, splits.mean, splits.std, c.batch_size, seed)


def _failure(e: Exception) -> tuple[str, str]:
    """(status, reason) of a run that raised: ``oom`` for out-of-memory errors, else ``failed``."""
    text = str(e)
    reason = f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:200]
    oom = isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower()
    return ("oom" if oom else "failed"), reason


def _limited(passes: ShuffledPasses, n: int) -> Callable[[], Iterator]:
    return lambda: itertools.islice(passes(), n)


def scratch_steps(model: Method, splits: data.Splits, config: RunConfig, device: torch.device, n_batches: int,
                  meter: SavedActivationMeter | None = None) -> float:
    """Train a throw-away copy on ``n_batches`` batches of its own order; the run's model and random streams
    are untouched. Returns the wall time. Used for the optional warm-up (kernel selection, allocator) and to
    measure bytes saved for backward during one training step."""
    scratch = copy.deepcopy(model)
    own = ShuffledPasses(splits.train_x, splits.train_y, splits.mean, splits.std, config.batch_size, WARMUP_SEED)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # CPU and CUDA streams restored
        with Stopwatch(device) as sw, meter or contextlib.nullcontext(), switches.precision(config, device):
            loop.train_epoch(scratch, _limited(own, n_batches))
    del scratch
    gc.collect()
    return sw.elapsed


def _counts_flops(method: str) -> bool:
    """Whether torch's FLOP counter sees the method's training (its declaration says; a stand-in is assumed to)."""
    entry = REGISTRY.find(method)
    return entry.spec.counts_flops if entry else True


def probe_one_step(model: Method, splits: data.Splits, config: RunConfig, device: torch.device,
                   batch: int, counts_flops: bool = True) -> dict[str, Any]:
    """What one training step on one mini-batch (untimed, on a copy) saves for backward and computes.

    ``peak_saved_activation_bytes``: NoProp-DT in the paper's order steps one block at a time, so this is one
    block's activations; in the interleaved order, and for backprop, one step holds all T blocks' activations.
    ``train_gflop_per_sample``: the matrix-multiply and convolution FLOPs (forward and backward, counted by
    ``measure.count_flops``) of training every block once, per image (``batch``: the size of a pass's first batch,
    the one the step trains on); elementwise work is not counted. Batched blocks count the same FLOPs.

    Each is measured on a step of its own: torch's FLOP counter tracks modules with gradient hooks that keep every
    checkpointed part's recomputed activations until the step ends, which the meter would count (a checkpointed
    backprop read as backprop).
    """
    meter = SavedActivationMeter()
    scratch_steps(model, splits, config, device, 1, meter)
    gflop = None
    if counts_flops:
        with count_flops() as flops:
            scratch_steps(model, splits, config, device, 1)
        gflop = flops.get_total_flops() / batch / 1e9
    return {"peak_saved_activation_bytes": meter.peak_bytes, "train_gflop_per_sample": gflop}
