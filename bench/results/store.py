"""The results store: run and epoch rows in two CSV files, never lost, never half-written, never mixed.

An output folder holds ``runs.csv`` (one row per run) and ``epochs.csv`` (one row per epoch). Both have a fixed
column order and a ``schema_version`` column (``bench.results.schema``). A file of an older schema version is
read (the columns it lacks read as missing) but never appended to; a newer or unknown one is refused, so no file
is silently extended with rows that mean something else. ``report`` reads only these files.

How a write stays safe (``append_rows``, ``replace_run_rows``): every writer takes a cross-process ``filelock``
on ``<file>.lock`` and writes the complete new content (existing bytes + new rows) through
``bench.results.atomic.atomic_write`` (temp file, fsync, rename), so a crash, a kill or a full disk at any point
leaves either the old file or the new one, never a truncated file or a half row; readers need no lock because
they always see one whole version. Appending
one buffer in ``"a"`` mode does not give that guarantee: on a full disk ``write`` may store part of the buffer,
leaving a torn last line that the next append glues onto. The price is rewriting the file on every write, which
is cheap at this scale (one row per run or epoch, a few MB for a large sweep).

A file torn by something else (an older noprop-bench's in-place append, a copy cut short) is refused by every
reader and writer here, naming the file and the line (``bench.results.whole``); ``set_aside_torn`` moves the torn
row to a side file, keeping every whole row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import filelock

from bench.results.atomic import ResultsError, atomic_write, write_error
from bench.results.schema import (
    EPOCH_COLUMNS,
    EPOCH_SCHEMA,
    IMPLIED,
    OLDEST_READABLE,
    RUN_COLUMNS,
    RUN_SCHEMA,
    SCHEMA_VERSION,
    Column,
    columns,
    format_cell,
    is_float,
    pandas_dtype,
    versions_of,
)
from bench.results.whole import parse, side_file, whole_records

if TYPE_CHECKING:
    import pandas

RUNS_FILE = "runs.csv"
EPOCHS_FILE = "epochs.csv"
LOCK_TIMEOUT_S = 600.0


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
        existing = _read_bytes(path)
        if existing:
            _check_header(path, columns)
            whole_records(path, existing)  # a torn last row is refused, never glued onto

        def write(out: IO[bytes]) -> None:
            out.write(existing or _header(columns))
            out.write(lines)

        atomic_write(path, write)


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

            atomic_write(path, write)


# --------------------------------------------------------------------------------------------------- reading


def read_runs(folder: str | Path) -> pandas.DataFrame:
    """All run rows in ``folder`` as a DataFrame with typed columns (empty, with the columns, if no file); what
    methods recorded in ``method_columns`` is read as columns of their own after the schema's."""
    return _with_method_columns(_read(Path(folder) / RUNS_FILE, RUN_SCHEMA))


def _with_method_columns(frame: pandas.DataFrame) -> pandas.DataFrame:
    cells = [json.loads(c) if isinstance(c, str) and c else {} for c in frame["method_columns"]]
    for name in dict.fromkeys(k for cell in cells for k in cell):
        if name not in frame:
            frame[name] = [cell.get(name) for cell in cells]
    return frame


def read_epochs(folder: str | Path) -> pandas.DataFrame:
    """All epoch rows in ``folder`` as a DataFrame with typed columns (empty, with the columns, if no file)."""
    return _read(Path(folder) / EPOCHS_FILE, EPOCH_SCHEMA)


def _read(path: Path, schema: tuple[Column, ...]) -> pandas.DataFrame:
    """Read a file of this schema version or an older one; the columns an older file lacks read as missing. The
    bytes are read once and checked for a torn or malformed row before pandas (which pads a short row) sees them."""
    import pandas as pd  # imported here so a run's child process does not pay for pandas just to write rows

    current = columns(schema)
    data = _read_bytes(path)
    if not data:
        return pd.DataFrame({c: pd.Series(dtype=pandas_dtype(c)) for c in current})
    records = whole_records(path, data)
    header = records[0][1] if records else []
    possible = versions_of(header, schema)
    if not possible:
        _check_header(path, current)  # raises, saying how the header differs
    found = tuple(header)
    # Only an empty cell is missing: a string cell reading "NA" or "None" stays a string; "nan" in a float
    # column is a real NaN (e.g. a diverged loss).
    na_values = {c: ["", "nan"] if is_float(c) else [""] for c in found}
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={c: pandas_dtype(c) for c in found}, keep_default_na=False,
                            na_values=na_values, **exact_floats(pd))
    except (ValueError, pd.errors.ParserError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ResultsError(f"could not read {path}: malformed results file ({detail})") from err
    except OSError as err:
        raise ResultsError(f"could not read {path}: {err.strerror or err}") from err
    versions = set(frame["schema_version"].dropna().unique())
    if frame["schema_version"].isna().any() or len(versions) > 1 or versions - set(possible):
        listed = ", ".join(str(v) for v in sorted(versions)) or "none"
        raise SchemaMismatchError(
            f"{path} holds rows of schema_version {listed} (or rows without one) under a header of version "
            f"{' or '.join(map(str, possible))}; this noprop-bench reads versions {OLDEST_READABLE} to "
            f"{SCHEMA_VERSION}, one per file. Repair the file, or write new results to another --out folder."
        )
    for column in current:
        if column not in frame:  # all missing, or what the older code always did
            frame[column] = pd.Series(IMPLIED.get(column), index=frame.index, dtype=pandas_dtype(column))
    return frame[list(current)]


def exact_floats(pd: Any) -> dict[str, str]:
    """``read_csv``'s option that reads every float back exactly as written (repr precision): pandas before 3.1 parses
    with a fast parser that can miss by one unit in the last place (0.1 + 0.2 reads back as 0.3, seen with 2.3.3 and
    3.0.0); 3.1 parses exactly and deprecates the option."""
    major, minor = (int(part) for part in pd.__version__.split(".")[:2])
    return {"float_precision": "round_trip"} if (major, minor) < (3, 1) else {}


def _read_bytes(path: Path) -> bytes:
    """The whole file (empty when there is none): every check and parse of one read sees the same version."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as err:
        raise ResultsError(f"could not read {path}: {err.strerror or err}") from err


def check_whole(folder: str | Path) -> None:
    """Raise TornRowError (or ResultsError) unless both results files in ``folder`` hold only whole rows: a sweep
    checks this before its first run, so no run trains only to find it cannot write its row."""
    for name in (RUNS_FILE, EPOCHS_FILE):
        path = Path(folder) / name
        data = _read_bytes(path)
        if data:
            whole_records(path, data)


def set_aside_torn(folder: str | Path) -> list[str]:
    """Move a torn last row of ``runs.csv`` and of ``epochs.csv`` in ``folder``, byte for byte, to the end of
    ``<file>.torn``, keeping every whole row; one line per row moved."""
    moved = [_set_aside(Path(folder) / name) for name in (RUNS_FILE, EPOCHS_FILE)]
    return [line for line in moved if line]


def _set_aside(path: Path) -> str | None:
    """The side file is written before the results file is cut, so a crash between the two leaves the torn row in
    both, never in neither."""
    with _locked([path]):
        data = _read_bytes(path)
        parsed = parse(path, data)
        if parsed.torn_line is None:
            return None
        side = side_file(path)
        kept, torn = data[: parsed.whole_size], data[parsed.whole_size:]
        ending = b"" if torn.endswith(b"\n") else b"\n"
        before = _read_bytes(side)
        atomic_write(side, lambda out: out.write(before + torn + ending))
        atomic_write(path, lambda out: out.write(kept))
    whole = max(len(parsed.records) - 1, 0)
    return (f"set aside the torn row at {path} line {parsed.torn_line} ({len(torn)} bytes) into {side}; the {whole} "
            "whole rows before it stay")


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
        writer.writerow([format_cell(column, row.get(column), index) for column in columns])
    return buffer.getvalue().encode("utf-8")


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
    older = versions_of(found, RUN_SCHEMA) or versions_of(found, EPOCH_SCHEMA)
    if found != list(columns) and older:
        raise SchemaMismatchError(
            f"{path} holds results of schema_version {older[-1]}; this noprop-bench reads them but appends only to "
            f"files of schema_version {SCHEMA_VERSION}. Write new results to another --out folder (report and "
            "compare read both)."
        )
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
    """The file's data rows, re-encoded, minus those of ``run_id``; empty if the file does not exist. A torn last
    row is refused (TornRowError), never rewritten as a whole one."""
    data = _read_bytes(path)
    if not data:
        return b""
    _check_header(path, columns)
    records = whole_records(path, data)[1:]
    id_at = columns.index("run_id")
    version_at = columns.index("schema_version")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for line, record in records:
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
                raise write_error(path, err) from err
        yield


