"""The results schema, in one place: every column of ``runs.csv`` and ``epochs.csv`` with its type, the schema
version that added it, and what it means.

Everything else follows from these two tuples: the column lists and their order, the pandas dtypes a reader
uses, how a cell is encoded and checked on write, which older files can still be read, and the column table in
the README (``python -m bench.results`` prints it; a test keeps the README in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

SCHEMA_VERSION = 9  # 2: precision, channels_last, FLOPs; 3: epoch_time_median_s; 4: batched_blocks; 5: block_workers;
# 6: the deterministic reading and inference times; 7: ODE steps and integrator of NoProp-CT and -FM; 8: the method's
# version, origin and declared baseline, and what it records beyond the common columns; 9: step capture (how each
# step was made), the device-resident data's bytes, the run's CPU time, the machine's load over the run and its CPUs,
# the RSS the run's process started from, and the contract check its method passed
OLDEST_READABLE = 1  # files of this version or newer are read (columns they lack read as missing)

Kind = Literal["int", "float", "bool", "str"]

# Columns that record an execution switch: how a run computes (layout, precision), not what it trains. They are
# not part of config_hash, so the report keeps them as group keys of their own and compare can pair runs across
# one of them on purpose. A switch added to RunConfig is added here too (bench.run.config checks this).
SWITCH_COLUMNS: tuple[str, ...] = ("precision", "channels_last", "batched_blocks", "block_workers", "capture")


@dataclass(frozen=True)
class Column:
    """One results column: its name, value type, the schema version that added it, and its meaning."""

    name: str
    kind: Kind
    doc: str
    since: int = 1
    implied: Any = None  # what rows of files older than ``since`` had, where the code then always did one thing


def _c(name: str, kind: Kind, doc: str, since: int = 1, implied: Any = None) -> Column:
    return Column(name, kind, doc, since, implied)


_VERSION = _c("schema_version", "int", "version of this schema the row was written with")
_RUN_ID = _c("run_id", "str", "unique id of the run (UTC start time and a random suffix)")
_PEAK_CUDA = _c("peak_cuda_allocated_bytes", "int", "peak CUDA memory allocated by tensors (empty off CUDA; under "
                "capture cuda-graph the eager warm-up steps' and the captures' peak: replays allocate nothing)")
_PEAK_RSS = _c("peak_rss_bytes", "int", "peak resident memory of the run's process (VmHWM, reset at run start)")

RUN_SCHEMA: tuple[Column, ...] = (
    _VERSION, _RUN_ID,
    _c("timestamp", "str", "when the row was written (UTC, ISO 8601)"),
    _c("status", "str", "ok, diverged, oom, failed or interrupted"),
    _c("reason", "str", "why a run is not ok, or why it stopped early"),
    _c("dataset", "str", "mnist, fashion-mnist, cifar10 or cifar100"),
    _c("method", "str", "registry name of the method (`noprop-bench methods` lists them)"),
    _c("method_version", "int", "version of the method's declaration, bumped when its behaviour under an unchanged "
       "config changes (a default, an initialisation); empty in rows written before versions were recorded",
       since=8),
    _c("method_origin", "str", "built-in, or the distribution the method's plug-in came from", since=8),
    _c("method_origin_version", "str", "version of that distribution (noprop-bench's own for a built-in)", since=8),
    _c("baseline", "str", "the method this one declares it is matched to (empty for none): the report's pair",
       since=8),
    _c("method_columns", "str", "JSON of what the method records beyond the common columns where this schema has no "
       "column for it (the report reads each as a column)", since=8),
    _c("contract", "str", "what `noprop-bench check` found of this version of the method's code here: passed, "
       "failed: CHECKS, built-in (none recorded; noprop-bench's CI checks it) or unchecked", since=9),
    _c("embedding", "str", "label embedding: one-hot, learned or prototype"),
    _c("order", "str", "the method's block order, for a method that has one (paper or interleaved)"),
    _c("ode_steps", "int", "ODE steps of one inference, for a method whose inference integrates an ODE", since=7),
    _c("integrator", "str", "ODE integrator of inference (euler or heun), for such a method", since=7),
    _c("precision", "str", "switch: fp32 or bf16 (autocast)", since=2),
    _c("channels_last", "bool", "switch: NHWC layout for images and conv weights", since=2),
    _c("batched_blocks", "bool", "switch: a block-wise method's interleaved blocks trained as one stacked computation",
       since=4, implied=False),
    _c("block_workers", "int", "switch: processes a block-wise method's blocks were split over (torch.distributed)",
       since=5, implied=1),
    _c("capture", "str", "switch: none (eager steps) or cuda-graph (each step captured once per part and batch "
       "shape, then replayed)", since=9, implied="none"),
    _c("seed", "int", "the run's seed (data order, initialisation, noise)"),
    _c("epochs_planned", "int", "epochs the config asked for"),
    _c("epochs_done", "int", "epochs completed (a budgeted run's last may be partial)"),
    _c("budget_unit", "str", "what the run trained until it was spent: epochs, gflop or seconds (budget_gflop, "
       "budget_seconds)", since=9, implied="epochs"),
    _c("budget", "float", "the run's budget in its unit (epochs: the epochs planned)", since=9),
    _c("budget_spent", "float", "what it spent in that unit (a budget's overshoot is under one step)", since=9),
    _c("config_hash", "str", "hash of the settings that define the experiment (model, data, optimiser, "
       "budget); the switches are columns of their own"),
    _c("test_acc", "float", "final test accuracy in %, mean over test_acc_repeats inference runs (the headline)"),
    _c("test_acc_std", "float", "sample sd of test accuracy over the inference runs"),
    _c("test_acc_repeats", "int", "inference runs averaged for test_acc"),
    _c("test_acc_det", "float", "test accuracy in % of the deterministic reading of the same weights (z_0 = 0, no "
       "injected noise)", since=6),
    _c("test_infer_s", "float", "seconds for one inference pass over the test set (the headline reading)", since=6),
    _c("test_infer_det_s", "float", "seconds for one deterministic inference pass over the test set", since=6),
    _c("test_images", "int", "images in the test set each inference time covers", since=7),
    _c("train_acc", "float", "accuracy in % on the first 10,000 training images"),
    _c("val_acc", "float", "final validation accuracy in % (empty without val_size)"),
    _c("best_val_epoch", "int", "epoch of the best validation accuracy"),
    _c("best_val_test_acc", "float", "test accuracy after that epoch (one inference run)"),
    _c("early_stopped", "bool", "whether early stopping ended the run"),
    _c("train_time_s", "float", "wall time of the training steps (CUDA synchronised), all epochs"),
    _c("eval_time_s", "float", "wall time of all evaluation"),
    _c("startup_time_s", "float", "from run start to the first training step (data, model, probes)"),
    _c("warmup_time_s", "float", "untimed warm-up batches on a throw-away copy (timing_warmup_batches)"),
    _c("time_per_epoch_s", "float", "train_time_s / epochs_done: the mean epoch"),
    _c("epoch_time_median_s", "float", "median epoch time (a first epoch's warm-up does not inflate it)", since=3),
    _c("samples_per_s", "float", "training images per second (an image trains every block once)"),
    _c("block_samples_per_s", "float", "samples_per_s times the block passes one image costs the method"),
    _c("eager_steps", "int", "training steps run eagerly (all of them without capture; with it, each part and "
       "batch shape's first steps)", since=9),
    _c("replayed_steps", "int", "training steps replayed from a CUDA graph (capture cuda-graph)", since=9),
    _c("capture_time_s", "float", "time spent capturing CUDA graphs, inside train_time_s", since=9),
    _c("train_gflop_per_sample", "float", "matmul and conv GFLOP of one training image (forward and backward)",
       since=2),
    _c("train_gflop_per_s", "float", "train_gflop_per_sample times samples_per_s", since=2),
    _c("params", "int", "trainable and fixed parameters of the model"),
    _PEAK_CUDA,
    _c("peak_cuda_reserved_bytes", "int", "peak CUDA memory reserved by the caching allocator"),
    _c("resident_data_bytes", "int", "bytes of the dataset resident on the run's device (uint8 images and labels), "
       "inside the peaks above: subtract it for the method's own memory", since=9),
    _PEAK_RSS,
    _c("peak_saved_activation_bytes", "int", "bytes autograd saves for backward in one training step (untimed; for "
       "a checkpointed part, its inputs and what its recomputation holds)"),
    _c("rss_at_start_bytes", "int", "resident memory of the run's process when the run started (Python, torch and "
       "the harness loaded; no data, no model): peak_rss_bytes above it is what the run itself added", since=9),
    _c("measured_in", "str", "subprocess (a run's own process, clean memory figures), ray-task (its own Ray worker "
       "process, Ray's own memory included), slurm-job (its own SLURM job, submitit's wrapper included) or "
       "process"),
    _c("device", "str", "torch device the run trained on"),
    _c("device_name", "str", "GPU name, or the CPU model"),
    _c("threads", "int", "torch intra-op threads"),
    _c("cpus", "int", "CPUs the run's process could run on (its affinity)", since=9),
    _c("cpu_time_s", "float", "CPU time of the run's process (user + system, all its threads) from its start to its "
       "row; a block-parallel run's is rank 0's", since=9),
    _c("load_avg", "float", "mean of the machine's 1-minute load average over the run (read every 10 s): above cpus, "
       "other work shared the cores and the times are suspect", since=9),
    _c("load_avg_max", "float", "the largest of those readings", since=9),
    _c("torch_version", "str", "torch version"),
    _c("cuda_version", "str", "CUDA version torch was built with (empty for CPU builds)"),
    _c("python_version", "str", "Python version"),
    _c("git_commit", "str", "commit of the harness checkout"),
    _c("git_dirty", "bool", "whether that checkout had uncommitted changes"),
    _c("hostname", "str", "machine name"),
    _c("config_json", "str", "the full resolved config as JSON (repeat a run from its row)"),
)  # fmt: skip

_RUN_BY_NAME = {c.name: c for c in RUN_SCHEMA}
EPOCH_SCHEMA: tuple[Column, ...] = (
    _VERSION, _RUN_ID, *(_RUN_BY_NAME[name] for name in ("dataset", "method", "seed")),
    _c("epoch", "int", "1-based epoch number"),
    _c("train_loss", "float", "mean training loss of the epoch (NaN when it diverged)"),
    _c("test_acc", "float", "test accuracy in % after the epoch (one inference run)"),
    _c("test_acc_det", "float", "test accuracy in % after the epoch, deterministic reading", since=6),
    _c("val_acc", "float", "validation accuracy in % after the epoch"),
    _c("epoch_time_s", "float", "wall time of this epoch's training steps"),
    _c("cum_train_time_s", "float", "training time up to and including this epoch"),
    _PEAK_CUDA, _PEAK_RSS,
)  # fmt: skip


def columns(schema: tuple[Column, ...], version: int = SCHEMA_VERSION) -> tuple[str, ...]:
    """The column names a file of ``version`` has, in order."""
    return tuple(c.name for c in schema if c.since <= version)


IMPLIED: dict[str, Any] = {c.name: c.implied for c in RUN_SCHEMA if c.implied is not None}
RUN_COLUMNS = columns(RUN_SCHEMA)
EPOCH_COLUMNS = columns(EPOCH_SCHEMA)
KINDS: dict[str, Kind] = {c.name: c.kind for c in (*RUN_SCHEMA, *EPOCH_SCHEMA)}
assert all(KINDS[c.name] == c.kind for c in (*RUN_SCHEMA, *EPOCH_SCHEMA)), "a name means one thing in both files"

_PANDAS_DTYPES = {"int": "Int64", "float": "float64", "bool": "boolean", "str": "str"}


def pandas_dtype(column: str) -> str:
    """The pandas dtype a column is read as: nullable Int64 / boolean, so an empty cell stays missing."""
    return _PANDAS_DTYPES[KINDS.get(column, "str")]


def is_float(column: str) -> bool:
    return KINDS.get(column) == "float"


def versions_of(header: list[str], schema: tuple[Column, ...]) -> list[int]:
    """The readable schema versions whose columns are exactly ``header`` (several where a file did not change)."""
    return [v for v in range(OLDEST_READABLE, SCHEMA_VERSION + 1) if list(columns(schema, v)) == header]


def format_cell(column: str, value: Any, index: int) -> str:
    """One cell: None -> empty, bools -> true/false, floats with repr precision (round-trips exactly).

    A value of the wrong type for a schema column raises ValueError naming the row, column and value.
    """
    if value is None:
        return ""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars, 0-d tensors
    kind = KINDS.get(column)
    if kind is None:  # a column outside the two schemas (a caller's own file): written plainly
        if isinstance(value, bool):
            return "true" if value else "false"
        return repr(float(value)) if isinstance(value, float) else str(value)
    if kind == "bool" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "int" and isinstance(value, Integral) and not isinstance(value, bool):
        return str(int(value))
    if kind == "float" and isinstance(value, Real) and not isinstance(value, bool):
        return repr(float(value))
    if kind == "str" and isinstance(value, str):
        return value
    raise ValueError(f"row {index}: column {column!r} expects {kind}, got {type(value).__name__} {value!r}")


def markdown_table(schema: tuple[Column, ...]) -> str:
    """The README's table of a file's columns: name, type, meaning (and the version that added it)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for c in schema:
        added = f" (schema {c.since})" if c.since > 1 else ""
        lines.append(f"| `{c.name}` | {c.kind} | {c.doc}{added} |")
    return "\n".join(lines)


def readme_section() -> str:
    """Both column tables as they appear in the README, between its generated-table markers."""
    return (f"`runs.csv` (schema_version {SCHEMA_VERSION}):\n\n{markdown_table(RUN_SCHEMA)}\n\n"
            f"`epochs.csv`:\n\n{markdown_table(EPOCH_SCHEMA)}\n")
