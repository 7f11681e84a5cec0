"""What every executor does around its runs, so a sweep means the same whoever dispatches it: the checks and
files before the first run, and the row for a run whose process died before recording one."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bench.executors.plan import PlannedRun, key_of, plan
from bench.results import ResultsError, replace_run_rows, write_json_atomic
from bench.run.config import RunConfig
from bench.run.recipe import Emit, resolve_device


class SweepInterrupted(Exception):
    """Ctrl-C stopped the sweep; the runs in progress were recorded as interrupted."""


def prepare(config: RunConfig, resume: bool, emit: Emit) -> list[PlannedRun]:
    """Fail before any run on an unwritable folder or unusable device, save the resolved config, and return the
    runs to do (those ``--resume`` skips are announced through ``emit``)."""
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResultsError(f"cannot create the results folder {out}: {e.strerror}; choose another --out") from e
    resolve_device(config.device)
    write_json_atomic(out / f"config-{config.model_hash()}.json", config.to_dict())
    todo, skipped = plan(config, resume)
    for run in skipped:
        emit({"event": "skipped", "key": key_of(config, run), "method": run.method, "seed": run.seed})
    return todo


def crashed_row(config: RunConfig, run: PlannedRun, *, status: str, reason: str, measured_in: str) -> dict:
    """Write and return a run row for a run whose process vanished without writing its own (killed by the OOM
    killer, a segfault, a lost node): the sweep's record says what happened instead of leaving a gap."""
    now = datetime.now(timezone.utc)
    run_id = now.strftime("%Y%m%dT%H%M%S") + f"-crash{run.seed}"
    row = {
        "run_id": run_id, "timestamp": now.isoformat(timespec="seconds"), "status": status, "reason": reason,
        "dataset": config.dataset, "method": run.method, "seed": run.seed, "embedding": config.embedding,
        **config.switches(), "epochs_planned": config.epochs_for(run.method), "config_hash": config.model_hash(),
        "measured_in": measured_in,
    }
    replace_run_rows(config.out, run_id, row, [])
    return row
