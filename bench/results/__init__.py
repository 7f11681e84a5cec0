"""The results store: the schema, atomic CSV rows, and per-run artifacts."""

from bench.results.store import (
    EPOCH_COLUMNS,
    EPOCHS_FILE,
    RUN_COLUMNS,
    RUNS_FILE,
    SCHEMA_VERSION,
    ResultsError,
    SchemaMismatchError,
    append_rows,
    read_epochs,
    read_runs,
    replace_run_rows,
    write_json_atomic,
)

__all__ = [
    "EPOCHS_FILE", "EPOCH_COLUMNS", "RUNS_FILE", "RUN_COLUMNS", "SCHEMA_VERSION", "ResultsError",
    "SchemaMismatchError", "append_rows", "read_epochs", "read_runs", "replace_run_rows", "write_json_atomic",
]
