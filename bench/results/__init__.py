"""The results store: the schema, atomic CSV rows, and per-run artifacts."""

from bench.results.atomic import ResultsError, write_json_atomic
from bench.results.schema import EPOCH_COLUMNS, RUN_COLUMNS, SCHEMA_VERSION
from bench.results.store import (
    EPOCHS_FILE,
    RUNS_FILE,
    SchemaMismatchError,
    append_rows,
    check_whole,
    read_epochs,
    read_runs,
    replace_run_rows,
    set_aside_torn,
)
from bench.results.whole import TornRowError

__all__ = [
    "EPOCHS_FILE", "EPOCH_COLUMNS", "RUNS_FILE", "RUN_COLUMNS", "SCHEMA_VERSION", "ResultsError",
    "SchemaMismatchError", "TornRowError", "append_rows", "check_whole", "read_epochs", "read_runs", "replace_run_rows",
    "set_aside_torn", "write_json_atomic",
]
