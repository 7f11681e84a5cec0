"""The results store: run and epoch rows in two CSV files, never lost, never half-written, never mixed.

An output folder holds ``runs.csv`` (one row per run) and ``epochs.csv`` (one row per epoch). Both have a fixed
column order and a ``schema_version`` column, so a file written by another version of this schema is refused
rather than silently extended with rows that mean something else. ``report`` reads only these files.

How a write stays safe (``append_rows``, ``replace_run_rows``, ``write_json_atomic``): every writer takes a
cross-process ``filelock`` on ``<file>.lock``, writes the complete new content (existing bytes + new rows) to a
temporary file in the same folder, fsyncs it and ``os.replace``-s it over the original. A rename within one
filesystem is atomic, so a crash, a kill or a full disk at any point leaves either the old file or the new one,
never a truncated file or a half row; readers need no lock because they always see one whole version. Appending
one buffer in ``"a"`` mode does not give that guarantee: on a full disk ``write`` may store part of the buffer,
leaving a torn last line that the next append glues onto. The price is rewriting the file on every write, which
is cheap at this scale (one row per run or epoch, a few MB for a large sweep).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from numbers import Integral, Real
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import filelock

if TYPE_CHECKING:
    import pandas

SCHEMA_VERSION = 2  # 2: precision and channels_last columns (the fast-path switches)

RUNS_FILE = "runs.csv"
EPOCHS_FILE = "epochs.csv"

RUN_COLUMNS: tuple[str, ...] = (
    "schema_version", "run_id", "timestamp", "status", "reason", "dataset", "method", "embedding", "order",
    "precision", "channels_last", "seed", "epochs_planned", "epochs_done", "config_hash", "test_acc", "test_acc_std",
    "test_acc_repeats", "train_acc", "val_acc", "best_val_epoch", "best_val_test_acc", "early_stopped",
    "train_time_s", "eval_time_s", "startup_time_s", "warmup_time_s", "time_per_epoch_s", "samples_per_s",
    "block_samples_per_s", "train_gflop_per_sample", "train_gflop_per_s", "params", "peak_cuda_allocated_bytes",
    "peak_cuda_reserved_bytes", "peak_rss_bytes", "peak_saved_activation_bytes", "measured_in", "device",
    "device_name", "threads", "torch_version", "cuda_version", "python_version", "git_commit", "git_dirty",
    "hostname", "config_json",
)  # fmt: skip

EPOCH_COLUMNS: tuple[str, ...] = (
    "schema_version", "run_id", "dataset", "method", "seed", "epoch", "train_loss", "test_acc", "val_acc",
    "epoch_time_s", "cum_train_time_s", "peak_cuda_allocated_bytes", "peak_rss_bytes",
)  # fmt: skip

# The type of every column, shared by both files (a name means the same thing in both). Writes are checked
# against it so a wrong value fails at the writer, not later in the report; reads use it to give pandas dtypes
# (nullable Int64 / boolean, so an empty cell stays "missing" instead of turning an int column into floats).
_INT_COLUMNS = frozenset({
    "schema_version", "seed", "epochs_planned", "epochs_done", "test_acc_repeats", "best_val_epoch", "params",
    "peak_cuda_allocated_bytes", "peak_cuda_reserved_bytes", "peak_rss_bytes", "peak_saved_activation_bytes",
    "threads", "epoch",
})  # fmt: skip
_FLOAT_COLUMNS = frozenset({
    "test_acc", "test_acc_std", "train_acc", "val_acc", "best_val_test_acc", "train_time_s", "eval_time_s",
    "startup_time_s", "warmup_time_s", "time_per_epoch_s", "samples_per_s", "block_samples_per_s",
    "train_gflop_per_sample", "train_gflop_per_s", "train_loss", "epoch_time_s", "cum_train_time_s",
})  # fmt: skip
_BOOL_COLUMNS = frozenset({"early_stopped", "git_dirty", "channels_last"})
# Every other column of RUN_COLUMNS / EPOCH_COLUMNS is a string.

LOCK_TIMEOUT_S = 600.0


class ResultsError(Exception):
    """Results could not be written or read; the message is one line saying what to do."""


class SchemaMismatchError(ResultsError):
    """A results file on disk has a different schema from the one this code writes."""


# --------------------------------------------------------------------------------------------------- writing


def append_rows(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    """Append ``rows`` to the CSV at ``path`` (created with a header if absent), atomically and process-safely.

    Every row is validated before anything is touched: an unknown key raises ValueError, a missing key becomes
    an empty cell, ``schema_version`` is filled in. The file is rewritten through a temp file + ``os.replace``
    under ``<path>.lock`` (see the module docstring for why not a plain append), so an existing file is never
    truncated and never ends in a half row, even when the disk fills up.
    """
    path = Path(path)
    lines = _encode_rows(columns, rows)
    if not rows:
        return
    with _locked([path]):
        existing = _existing_size(path)
        if existing:
            _check_header(path, columns)

        def write(out: IO[bytes]) -> None:
            if existing:
                with open(path, "rb") as src:
                    _copy(src, out)
                    src.seek(-1, os.SEEK_END)
                    if src.read(1) != b"\n":  # a hand-edited file without a final newline
                        out.write(b"\n")
            else:
                out.write(_header(columns))
            out.write(lines)

        _atomic_write(path, write)


def replace_run_rows(folder: str | Path, run_id: str, run_row: dict, epoch_rows: list[dict]) -> None:
    """Write one run's rows, first removing any rows already stored for ``run_id`` (for ``--resume``).

    A resumed or repeated run therefore never duplicates rows; for a new run it is a plain append, so the
    runner may use it for every run. Rows without a ``run_id`` get this one; a different one raises ValueError.
    Both files are locked (always in the same order, so two writers cannot deadlock) for the whole update.
    ``epochs.csv`` is replaced before ``runs.csv``: a run row on disk means its epoch rows are there too.
    """
    folder = Path(folder)
    run_row = _with_run_id(run_row, run_id)
    epoch_rows = [_with_run_id(row, run_id) for row in epoch_rows]
    targets = [
        (folder / EPOCHS_FILE, EPOCH_COLUMNS, _encode_rows(EPOCH_COLUMNS, epoch_rows)),
        (folder / RUNS_FILE, RUN_COLUMNS, _encode_rows(RUN_COLUMNS, [run_row])),
    ]
    with _locked([path for path, _, _ in targets]):
        kept = [_rows_without_run(path, columns, run_id) for path, columns, _ in targets]
        for (path, columns, new_lines), old_lines in zip(targets, kept, strict=True):

            def write(out: IO[bytes], columns: tuple[str, ...] = columns, body: bytes = old_lines + new_lines):
                out.write(_header(columns))
                out.write(body)

            _atomic_write(path, write)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON via temp file + ``os.replace``: readers see the old file or the new one.

    Used for the resolved config saved next to the CSVs. Values JSON cannot encode (paths, devices) are written
    with ``str``. No lock is taken: concurrent writers of the same file each leave a whole file (last one wins).
    """
    path = Path(path)
    data = (json.dumps(obj, indent=2, default=str) + "\n").encode("utf-8")
    _atomic_write(path, lambda out: out.write(data))


# --------------------------------------------------------------------------------------------------- reading


def read_runs(folder: str | Path) -> pandas.DataFrame:
    """All run rows in ``folder`` as a DataFrame with typed columns (empty, with the columns, if no file)."""
    return _read(Path(folder) / RUNS_FILE, RUN_COLUMNS)


def read_epochs(folder: str | Path) -> pandas.DataFrame:
    """All epoch rows in ``folder`` as a DataFrame with typed columns (empty, with the columns, if no file)."""
    return _read(Path(folder) / EPOCHS_FILE, EPOCH_COLUMNS)


def _read(path: Path, columns: tuple[str, ...]) -> pandas.DataFrame:
    import pandas as pd  # imported here so a run's child process does not pay for pandas just to write rows

    dtypes = {c: _pandas_dtype(c) for c in columns}
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in columns})
    _check_header(path, columns)
    # Only an empty cell is missing: a string cell reading "NA" or "None" stays a string; "nan" in a float
    # column is a real NaN (e.g. a diverged loss).
    na_values = {c: ["", "nan"] if c in _FLOAT_COLUMNS else [""] for c in columns}
    try:
        frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=na_values)
    except (ValueError, pd.errors.ParserError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ResultsError(f"could not read {path}: malformed results file ({detail})") from err
    except OSError as err:
        raise ResultsError(f"could not read {path}: {err.strerror or err}") from err
    versions = set(frame["schema_version"].dropna().unique())
    if frame["schema_version"].isna().any() or versions - {SCHEMA_VERSION}:
        found = ", ".join(str(v) for v in sorted(versions)) or "none"
        raise SchemaMismatchError(
            f"{path} holds rows of schema_version {found} (or rows without one); this noprop-bench reads "
            f"schema_version {SCHEMA_VERSION}. Read it with the version that wrote it, or write new results "
            "to another --out folder."
        )
    return frame


def _pandas_dtype(column: str) -> str:
    if column in _INT_COLUMNS:
        return "Int64"
    if column in _FLOAT_COLUMNS:
        return "float64"
    if column in _BOOL_COLUMNS:
        return "boolean"
    return "str"


# ----------------------------------------------------------------------------------------- encoding and schema


def _header(columns: Sequence[str]) -> bytes:
    return (",".join(columns) + "\n").encode("utf-8")


def _encode_rows(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    """CSV bytes for ``rows`` in ``columns`` order; raises ValueError before anything is written."""
    known = set(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for index, row in enumerate(rows):
        unknown = [key for key in row if key not in known]
        if unknown:
            raise ValueError(
                f"row {index} has column(s) not in the results schema: {', '.join(map(str, unknown))} "
                f"(known: {', '.join(columns)})"
            )
        if "schema_version" in known:
            version = row.get("schema_version", SCHEMA_VERSION)
            if version != SCHEMA_VERSION:
                raise ValueError(f"row {index} has schema_version {version!r}; this code writes {SCHEMA_VERSION}")
            row = {**row, "schema_version": SCHEMA_VERSION}
        writer.writerow([_format_cell(column, row.get(column), index) for column in columns])
    return buffer.getvalue().encode("utf-8")


def _format_cell(column: str, value: Any, index: int) -> str:
    """One cell: None -> empty, bools -> true/false, floats with repr precision (round-trips exactly)."""
    if value is None:
        return ""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars, 0-d tensors
    if column in _BOOL_COLUMNS:
        if isinstance(value, bool):
            return "true" if value else "false"
    elif column in _INT_COLUMNS:
        if isinstance(value, Integral) and not isinstance(value, bool):
            return str(int(value))
    elif column in _FLOAT_COLUMNS:
        if isinstance(value, Real) and not isinstance(value, bool):
            return repr(float(value))
    elif isinstance(value, str):
        return value
    elif column in RUN_COLUMNS or column in EPOCH_COLUMNS:
        pass  # a known string column given a non-string: refused below
    else:  # a column outside the two schemas (a caller's own file): write it plainly
        if isinstance(value, bool):
            return "true" if value else "false"
        return repr(float(value)) if isinstance(value, float) else str(value)
    expected = _pandas_dtype(column).lower()
    raise ValueError(f"row {index}: column {column!r} expects {expected}, got {type(value).__name__} {value!r}")


def _with_run_id(row: dict, run_id: str) -> dict:
    if row.get("run_id", run_id) != run_id:
        raise ValueError(f"row has run_id {row['run_id']!r}, expected {run_id!r}")
    return {**row, "run_id": run_id}


def _check_header(path: Path, columns: tuple[str, ...]) -> None:
    """Raise SchemaMismatchError unless the file's header (and first row's schema_version) match ``columns``.

    Reads only the first two lines, so it stays cheap on a large file.
    """
    try:
        with open(path, "rb") as f:
            header = f.readline()
            first_row = f.readline()
    except OSError as err:
        raise ResultsError(f"could not read {path}: {err.strerror or err}") from err
    found = header.decode("utf-8", errors="replace").rstrip("\r\n").split(",")
    if found != list(columns):
        missing = [c for c in columns if c not in found]
        extra = [c for c in found if c not in columns]
        if "schema_version" not in found:
            detail = "no schema_version column"
        elif missing or extra:
            detail = "; ".join(
                part
                for part in (
                    f"missing column(s) {', '.join(missing)}" if missing else "",
                    f"unexpected column(s) {', '.join(extra)}" if extra else "",
                )
                if part
            )
        else:
            detail = "the same columns in a different order"
        raise SchemaMismatchError(
            f"{path} has a different results schema ({detail}); this noprop-bench writes schema_version "
            f"{SCHEMA_VERSION} with columns {', '.join(columns)}. Write to another --out folder, or move the "
            "old file away."
        )
    if first_row.strip() and "schema_version" in columns:
        cells = next(csv.reader([first_row.decode("utf-8", errors="replace")]), [])
        position = columns.index("schema_version")
        version = cells[position] if position < len(cells) else ""
        if version != str(SCHEMA_VERSION):
            raise SchemaMismatchError(
                f"{path} holds rows of schema_version {version or 'none'}; this noprop-bench writes schema_version "
                f"{SCHEMA_VERSION}. Write to another --out folder, or move the old file away."
            )


def _rows_without_run(path: Path, columns: tuple[str, ...], run_id: str) -> bytes:
    """The file's data rows, re-encoded, minus those of ``run_id``; empty if the file does not exist."""
    if not _existing_size(path):
        return b""
    _check_header(path, columns)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            records = list(csv.reader(f))[1:]
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise ResultsError(f"could not read {path}: {err}") from err
    id_at = columns.index("run_id")
    version_at = columns.index("schema_version")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for line, record in enumerate(records, start=2):
        if not record:
            continue
        if len(record) != len(columns) or record[version_at] != str(SCHEMA_VERSION):
            raise SchemaMismatchError(
                f"{path} record {line} does not match schema_version {SCHEMA_VERSION} "
                f"({len(record)} cells, schema_version {record[version_at] if record else ''!r}); "
                "repair the file or write to another --out folder."
            )
        if record[id_at] != run_id:
            writer.writerow(record)
    return buffer.getvalue().encode("utf-8")


# ------------------------------------------------------------------------------------- locking and atomic I/O


@contextmanager
def _locked(paths: Sequence[Path]) -> Iterator[None]:
    """Hold ``<path>.lock`` for every path, taken in sorted order so concurrent writers cannot deadlock.

    Callers take the locks once at the public entry point: a second FileLock on the same file from this process
    would wait on itself (flock locks belong to the open file, not the process).
    """
    with ExitStack() as stack:
        for path in sorted({Path(p).absolute() for p in paths}):
            lock_path = path.with_suffix(path.suffix + ".lock")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                stack.enter_context(filelock.FileLock(lock_path, timeout=LOCK_TIMEOUT_S))
            except filelock.Timeout as err:
                raise ResultsError(
                    f"could not write results to {path}: another process held {lock_path} for more than "
                    f"{LOCK_TIMEOUT_S:.0f} s; stop it or choose another --out"
                ) from err
            except OSError as err:
                raise _write_error(path, err) from err
        yield


def _atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write a whole new version of ``path`` through a temp file in its folder, fsync, then ``os.replace``.

    Any failure (OSError, KeyboardInterrupt, ...) removes the temp file and leaves ``path`` as it was; an
    OSError becomes a one-line ResultsError. Only a hard kill (SIGKILL, power loss) can leave a stray hidden
    ``.<name>.<pid>.<random>.tmp`` behind, never a damaged ``path``.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open with 0o666 lets the umask decide the mode, as for a normally created file (mkstemp uses 0o600)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as out:
                if path.exists():
                    os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            _remove_quietly(tmp)
            raise
    except OSError as err:
        raise _write_error(path, err) from err
    _fsync_folder(path.parent)


def _copy(src: IO[bytes], dst: IO[bytes]) -> None:
    while chunk := src.read(1 << 20):
        dst.write(chunk)


def _existing_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
    except OSError as err:
        raise ResultsError(f"could not read {path}: {err.strerror or err}") from err


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    """Persist the rename itself (best effort: not every OS or filesystem allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_HINTS: Mapping[int, str] = {
    errno.ENOSPC: "free space or choose another --out",
    errno.EDQUOT: "free space (disk quota exceeded) or choose another --out",
    errno.EACCES: "check the folder's permissions or choose another --out",
    errno.EPERM: "check the folder's permissions or choose another --out",
    errno.EROFS: "the filesystem is read-only; choose another --out",
}


def _write_error(path: Path, err: OSError) -> ResultsError:
    reason = err.strerror or str(err) or type(err).__name__
    hint = _HINTS.get(err.errno or 0, "choose another --out")
    return ResultsError(f"could not write results to {path}: {reason}; {hint}")
