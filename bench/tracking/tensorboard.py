"""``--track tensorboard``: one TensorBoard run per (method, seed), its event files in ``OUT/tensorboard/<its name>/``
(``noprop-dt seed 0``, with a sweep point's label where a grid has several: ``tensorboard --logdir
OUT/tensorboard``), written through ``torch.utils.tensorboard`` (the ``tensorboard`` extra).

Per epoch, the epoch row's figures as scalars at step = epoch; at the end, the parameters and the final figures as
TensorBoard's hparams (in the same folder), and the identifying columns as text. A resumed run writes into the same
folder from the first epoch it had not logged (``purge_step``: an epoch logged before a crash but not checkpointed
is dropped when read, then logged again). TensorBoard keeps scalars as 32-bit floats."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from bench.tracking.base import EpochLedger, Tracker, TrackingError, epoch_metrics, final_metrics, run_name, tags

INSTALL_HINT = "--track tensorboard needs TensorBoard: pip install 'noprop-bench[tensorboard]'"


def summary_writer() -> Any:
    """torch's SummaryWriter class, or a TrackingError saying how to install TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises it when the tensorboard package is missing
        raise TrackingError(INSTALL_HINT) from None
    return SummaryWriter


def _quiet_writer_threads() -> None:
    """TensorBoard writes from a thread of its own, which dies with a traceback on stderr when a write fails (a
    full disk) before the writer's next call raises the same error, which tracked_emit turns into its one warning.
    The thread's own traceback is left out; every other thread's still shows."""
    previous = threading.excepthook
    if getattr(previous, "noprop_bench", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ != "_AsyncWriterThread":
            previous(args)

    hook.noprop_bench = True  # type: ignore[attr-defined]
    threading.excepthook = hook


KEY_FILE = ".noprop-bench-key"  # in a run's event folder: the run key it belongs to (found again on --resume)


class TensorBoardTracker(Tracker):
    """Event files per run under ``root``, in a folder named as a person reads the run (``run_name``)."""

    name = "tensorboard"

    def __init__(self, out: str | Path) -> None:
        self.writer_class = summary_writer()
        _quiet_writer_threads()
        self.root = Path(out) / "tensorboard"
        self.writers: dict[str, Any] = {}
        self.params: dict[str, dict[str, str]] = {}
        self.ledger = EpochLedger()

    def start(self, key: str, event: dict[str, Any], params: dict[str, str]) -> None:
        self._close(key)
        self.params[key] = params
        self.ledger.started(key, int(event["epoch"]))
        folder = self._folder(key, event.get("name") or run_name(event))
        self.writers[key] = self.writer_class(log_dir=str(folder), purge_step=int(event["epoch"]) + 1, flush_secs=10)

    def _folder(self, key: str, name: str) -> Path:
        """The run's event folder, which TensorBoard shows as the run's name: its readable name (``noprop-dt seed 0
        (lr=0.003)``); an earlier attempt's folder on --resume, found by the key it holds; the name and a digest of
        the key where another run's folder already has that name (a second config run into the same folder)."""
        for folder in self.root.glob("*"):
            marker = folder / KEY_FILE
            if marker.is_file() and marker.read_text(encoding="utf-8") == key:
                return folder
        folder = self.root / name.replace(os.sep, "-")
        if folder.exists():
            folder = folder.with_name(f"{folder.name} [{hashlib.sha256(key.encode()).hexdigest()[:6]}]")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / KEY_FILE).write_text(key, encoding="utf-8")
        return folder

    def epoch(self, key: str, row: dict[str, Any]) -> None:
        writer = self.writers.get(key)
        if writer is None:
            return
        for name, value in epoch_metrics(row).items():
            writer.add_scalar(name, value, global_step=int(row["epoch"]))
        writer.flush()  # an epoch is a few seconds to hours: show it at once
        self.ledger.note(key, int(row["epoch"]))

    def end(self, key: str, row: dict[str, Any], epoch_rows: list[dict[str, Any]]) -> None:
        writer = self.writers.get(key)
        if writer is None:
            return
        for missed in self.ledger.missing(key, epoch_rows):
            self.epoch(key, missed)
        metrics = {f"final/{k}": v for k, v in final_metrics(row).items()}
        writer.add_hparams(self.params.get(key, {}), metrics, run_name=".", global_step=int(row["epochs_done"] or 0))
        writer.add_text("run", "    " + json.dumps(tags(row), indent=1).replace("\n", "\n    "))
        self._close(key)

    def close(self) -> None:
        for key in list(self.writers):
            self._close(key)

    def _close(self, key: str) -> None:
        writer = self.writers.pop(key, None)
        if writer is not None:
            writer.close()
