"""The results store: the schema, atomic CSV rows, and per-run artifacts."""

from bench.results.atomic import ResultsError, write_json_atomic
from bench.results.schema import EPOCH_COLUMNS, RUN_COLUMNS, SCHEMA_VERSION
from bench.results.store import (
    EPOCHS_FILE,
    RUNS_FILE,
    SchemaMismatchError,
    append_rows,
    read_epochs,
    read_runs,
    replace_run_rows,
)

__all__ = [
    "EPOCHS_FILE", "EPOCH_COLUMNS", "RUNS_FILE", "RUN_COLUMNS", "SCHEMA_VERSION", "ResultsError",
    "SchemaMismatchError", "append_rows", "read_epochs", "read_runs", "replace_run_rows", "write_json_atomic",
]
