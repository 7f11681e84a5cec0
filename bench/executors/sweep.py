"""What every executor does around its runs, so a sweep means the same whoever dispatches it: the checks and
files before the first run, and recording the row of a run whose process died before recording one (the row
itself is the run package's: ``bench.run.identity.crashed_row``)."""

from __future__ import annotations

from pathlib import Path

from bench.executors.plan import PlannedRun, key_of, plan
from bench.results import ResultsError, check_whole, replace_run_rows, write_json_atomic
from bench.run import data
from bench.run.config import RunConfig
from bench.run.identity import crashed_row, resolve_device
from bench.run.recipe import Emit


class SweepInterrupted(Exception):
    """Ctrl-C (or SIGTERM, SIGHUP) stopped the sweep; the runs in progress were recorded as interrupted.
    ``exit_code``: the command's (``bench.run.stopping.exit_code``)."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(f"interrupted (exit {exit_code})")
        self.exit_code = exit_code


def prepare(config: RunConfig, resume: bool, emit: Emit) -> list[PlannedRun]:
    """Fail before any run on missing data, an unwritable folder, a results file ending in a torn row or an unusable
    device, save the resolved config, and return the runs to do (those ``--resume`` skips are announced through
    ``emit``).

    The data is looked for (and downloaded, where allowed) first, here in the sweep's own process: missing files
    are one line naming the folder to put them in, before a results folder is made or a run's process starts."""
    data.available(config.dataset, config.data_dir, config.download)
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResultsError(f"cannot create the results folder {out}: {e.strerror}; choose another --out") from e
    check_whole(out)  # else each run would train, then fail to write its row
    resolve_device(config.device)
    write_json_atomic(out / f"config-{config.model_hash()}.json", config.to_dict())
    todo, skipped = plan(config, resume)
    for run in skipped:
        emit({"event": "skipped", "key": key_of(config, run), "method": run.method, "seed": run.seed})
    return todo


def record_crashed(config: RunConfig, run: PlannedRun, *, status: str, reason: str, measured_in: str) -> dict:
    """Write and return the row of a planned run whose process vanished without writing its own."""
    row = crashed_row(config, run.method, run.seed, status=status, reason=reason, measured_in=measured_in)
    replace_run_rows(config.out, row["run_id"], row, [])
    return row
