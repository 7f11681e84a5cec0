"""What every tracker is, and how the sweep's events reach the trackers without a failing one reaching the sweep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.formatting import value_text

Emit = Callable[[dict[str, Any]], None]
Warn = Callable[[str], None]
# The per-epoch figures a tracker logs, as epochs.csv names them (val_acc only where there is a validation split).
EPOCH_METRICS = ("train_loss", "test_acc", "test_acc_det", "val_acc", "epoch_time_s", "cum_train_time_s")
# The final figures of a run row a tracker logs once the run ends (those the row has).
FINAL_METRICS = ("test_acc", "test_acc_std", "test_acc_det", "train_acc", "val_acc", "best_val_test_acc",
                 "epochs_done", "train_time_s", "eval_time_s", "time_per_epoch_s", "epoch_time_median_s",
                 "samples_per_s", "train_gflop_per_s", "params", "peak_rss_bytes", "peak_cuda_allocated_bytes",
                 "peak_cuda_reserved_bytes", "peak_saved_activation_bytes", "test_infer_s", "cpu_time_s", "load_avg")
# Columns of a run row a tracker keeps as tags: what identifies the code, the config and the machine.
TAG_COLUMNS = ("run_id", "status", "reason", "config_hash", "git_commit", "git_dirty", "device", "device_name",
               "torch_version", "hostname", "measured_in")


class TrackingError(Exception):
    """A tracker cannot start (its extra is missing, its store cannot be opened): one line, exit 2."""


class Tracker:
    """One tracker: ``start`` opens (or, on --resume, reopens) the tracked run of a run key, ``epoch`` logs one
    epoch's row, ``end`` the run's final row; ``close`` flushes everything. Subclasses override what they use.

    ``end`` also gets every epoch row of the run: those of this attempt that ``epoch`` never logged (a stop signal
    landed while an earlier handler of the event ran) are logged then, so the tracked epochs are the CSV's."""

    name = "tracker"
    broken = False  # set once the tracker has failed: it stays off for the rest of the sweep

    def start(self, key: str, event: dict[str, Any], params: dict[str, str]) -> None:
        """A run starts (``event["epoch"]`` epochs already done when it resumes); ``params`` are its resolved
        config, switches, method and seed, as text."""

    def epoch(self, key: str, row: dict[str, Any]) -> None:
        """One finished epoch: its epochs.csv row."""

    def end(self, key: str, row: dict[str, Any], epoch_rows: list[dict[str, Any]]) -> None:
        """The run's runs.csv row (any status) and its epochs.csv rows."""

    def close(self) -> None:
        """Flush and release everything."""


class EpochLedger:
    """Which epochs of each run key this attempt has logged, and which of a run's rows it has yet to log."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}  # run key -> epochs done when this attempt started
        self.logged: dict[str, set[int]] = {}

    def started(self, key: str, epochs_done: int) -> None:
        self.first[key], self.logged[key] = epochs_done, set()

    def note(self, key: str, epoch: int) -> None:
        self.logged.setdefault(key, set()).add(epoch)

    def missing(self, key: str, epoch_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """This attempt's epoch rows not logged yet."""
        first, done = self.first.get(key, 0), self.logged.get(key, set())
        return [r for r in epoch_rows if int(r["epoch"]) > first and int(r["epoch"]) not in done]


def run_params(config: dict[str, Any], event: dict[str, Any]) -> dict[str, str]:
    """A run's parameters: its resolved config (less the sweep's method and seed lists) with its own method and
    seed, every value as text (``none`` for None, lists comma-joined)."""
    params = {k: v for k, v in config.items() if k not in ("methods", "seeds")}
    params.update(method=event["method"], seed=event["seed"])
    return {k: repr(v) if isinstance(v, float) else value_text(v) for k, v in sorted(params.items())}  # exact


def final_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The run row's final figures that it has, as floats."""
    return {name: float(row[name]) for name in FINAL_METRICS if _number(row.get(name))}


def tags(row: dict[str, Any]) -> dict[str, str]:
    """The run row's identifying columns, as text."""
    return {name: value_text(row[name]) for name in TAG_COLUMNS if row.get(name) not in (None, "")}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def epoch_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The figures of an epoch row a tracker logs, as floats (a missing reading, say val_acc, left out)."""
    return {name: float(row[name]) for name in EPOCH_METRICS if row.get(name) is not None}


def run_name(event: dict[str, Any], label: str | None = None) -> str:
    """A tracked run's name as a person reads it: ``noprop-dt seed 0``, and where a sweep's points differ, the
    point's label as the report labels it: ``noprop-dt seed 0 (lr=0.003, order=paper)``."""
    return f"{event['method']} seed {event['seed']}" + (f" ({label})" if label else "")


def tracked_emit(emit: Emit, trackers: list[Tracker], config: dict[str, Any], warn: Warn,
                 label: str | None = None) -> Emit:
    """``emit`` followed by every tracker still working (the runs' resolved ``config`` gives their parameters, a
    start event its ``name``: ``run_name`` with the sweep point's ``label``); a tracker that raises is switched off
    after one warning, so tracking never stops a run or costs it its rows."""

    def send(event: dict[str, Any]) -> None:
        emit(event)
        if event.get("event") == "start":
            event = {**event, "name": run_name(event, label)}
        for tracker in trackers:
            if tracker.broken:
                continue
            try:
                _deliver(tracker, event, config)
            except Exception as e:  # any failure of a tracker's library: it must never reach the sweep
                tracker.broken = True
                warn(f"{tracker.name} tracking stopped ({root_cause(e)}); the runs and their CSV rows go on")

    return send


def _deliver(tracker: Tracker, event: dict[str, Any], config: dict[str, Any]) -> None:
    kind, key = event["event"], event.get("key", "")
    if kind == "start":
        tracker.start(key, event, run_params(config, event))
    elif kind == "epoch" and "row" in event:
        tracker.epoch(key, event["row"])
    elif kind == "end":
        tracker.end(key, event["row"], event.get("epoch_rows", []))


def close_all(trackers: list[Tracker], warn: Warn) -> None:
    """Close every tracker still working (one that failed has had its warning); one that fails to is one
    warning."""
    for tracker in trackers:
        if tracker.broken:
            continue
        try:
            tracker.close()
        except Exception as e:  # as in tracked_emit
            warn(f"{tracker.name} tracking could not be closed ({root_cause(e)})")


def root_cause(e: BaseException) -> str:
    """The innermost exception of a chain (a library's own wrapper says less: MLflow's wraps SQLAlchemy's, which
    wraps sqlite's "database or disk is full"), as ``Type: first line``."""
    seen = {id(e)}
    while (inner := e.__cause__ or e.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        e = inner
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"
