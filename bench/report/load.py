"""Reading results: which folders hold them, and their ``runs.csv``, ``epochs.csv`` and per-run artifacts.

The only module of the report that opens results files (through ``bench.results``) or parses a run's config_json;
everything after it takes DataFrames and arrays, so every number can be tested without files. Each run row
``load`` reads gains ``results_dir`` (its folder), ``config`` (config_json parsed, ``{}`` when unreadable) and
``baseline`` (the method it is measured against, see ``with_baselines``). For ``report`` a folder that cannot be
read is a warning and the rest is still reported; for ``compare`` a missing side is an ``InputError``, since a gate
must not pass on what it could not read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.formatting import is_missing
from bench.report.baselines import LEGACY_COLUMNS
from bench.results import EPOCH_COLUMNS, RUN_COLUMNS, RUNS_FILE, ResultsError, artifacts, read_epochs, read_runs

ADDED_COLUMNS = ("results_dir", "config", "baseline")  # what loading adds to every run row
Artifacts = dict[tuple[str, str], dict[str, np.ndarray]]  # by (results_dir, run_id)


class InputError(Exception):
    """Input the report or the gate cannot use (a missing folder, a bad thresholds file, nothing to pair): the
    command prints the message as one line and exits 2."""


@dataclass
class Loaded:
    """Every readable row from the given folders (epochs with ``results_dir``; runs with ``ADDED_COLUMNS`` from
    ``load``, with ``results_dir`` only from ``read_side``), and for ``load`` the artifacts of the ok runs."""

    runs: pd.DataFrame
    epochs: pd.DataFrame
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    artifacts: Artifacts = field(default_factory=dict)


def find_folders(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Folders holding a runs.csv: each given folder, or else its direct subfolders that hold one."""
    found: list[Path] = []
    warnings: list[str] = []
    for path in map(Path, paths):
        if not path.exists():
            warnings.append(f"{path} does not exist; skipped")
        elif not path.is_dir():
            warnings.append(f"{path} is not a folder (give the folder holding {RUNS_FILE}); skipped")
        elif (path / RUNS_FILE).is_file():
            found.append(path)
        else:
            found.extend(_subfolders(path, warnings))
    unique: list[Path] = []
    for folder in found:
        if all(folder.resolve() != seen.resolve() for seen in unique):
            unique.append(folder)
    return unique, warnings


def _subfolders(path: Path, warnings: list[str]) -> list[Path]:
    try:
        children = sorted(p for p in path.iterdir() if (p / RUNS_FILE).is_file())
    except OSError as e:
        warnings.append(f"{path} could not be listed ({e.strerror or e}); skipped")
        return []
    if not children:
        warnings.append(f"{path} holds no {RUNS_FILE} (nothing run there yet?); skipped")
    return children


def load(paths: Iterable[str | Path]) -> Loaded:
    """Read runs.csv, epochs.csv and the ok runs' artifacts of every folder; a folder that cannot be read is a
    warning, not an error."""
    folders, warnings = find_folders(paths)
    run_frames: list[pd.DataFrame] = []
    epoch_frames: list[pd.DataFrame] = []
    sources: list[str] = []
    for folder in folders:
        try:
            runs = read_runs(folder)
        except ResultsError as e:  # SchemaMismatchError included: another version wrote this folder
            warnings.append(f"skipped {folder}: {e}")
            continue
        if runs.empty:
            warnings.append(f"{folder / RUNS_FILE} has no runs; skipped")
            continue
        sources.append(str(folder))
        run_frames.append(_with_added(runs, folder))
        epoch_frames.append(_epochs(folder, warnings).assign(results_dir=str(folder)))
    runs = _concat(run_frames, [*RUN_COLUMNS, *ADDED_COLUMNS])
    ok = runs[runs["status"].astype("object").eq("ok")]
    return Loaded(runs=runs, epochs=_concat(epoch_frames, [*EPOCH_COLUMNS, "results_dir"]), sources=sources,
                  warnings=warnings, artifacts=read_artifacts(ok, warnings))


def read_side(folder: str | Path, side: str) -> Loaded:
    """One side of ``compare``: the runs (and epochs) of one folder; a missing folder or runs.csv is an InputError.

    ``ResultsError`` (including ``SchemaMismatchError``) from reading runs.csv passes through; both mean bad input.
    An unreadable epochs.csv only costs the median epoch times of older rows (a warning).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{side} folder {folder} does not exist (or is not a folder)")
    if not (folder / RUNS_FILE).is_file():
        raise InputError(f"{side} folder {folder} holds no {RUNS_FILE} (give the folder that `run --out` wrote)")
    warnings: list[str] = []
    runs = read_runs(folder).assign(results_dir=str(folder))  # the gate reads no config, baseline or artifact
    epochs = _epochs(folder, warnings).assign(results_dir=str(folder))
    return Loaded(runs=runs, epochs=epochs, sources=[str(folder)], warnings=[f"{side}: {w}" for w in warnings])


def parse_config(text: object) -> dict[str, Any]:
    """A run's config_json as a dict; ``{}`` when it is missing or not a JSON object."""
    try:
        config = json.loads(str(text))
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def with_baselines(runs: pd.DataFrame) -> pd.DataFrame:
    """A copy whose ``baseline`` column names each row's matched baseline ("" for none).

    A recorded value is kept; a row without one (files written before the column, or a frame without it) gets the
    baseline its method declares (``bench.run.methods.declared_baseline``). An empty cell reads as missing, so a
    row recorded as having none is filled from the same declaration and stays empty.
    """
    runs = runs.copy()
    given = runs["baseline"] if "baseline" in runs else pd.Series(None, index=runs.index, dtype="object")
    missing = given.map(lambda value: is_missing(value) or value == "").astype(bool)
    if missing.any():
        from bench.run.methods import declared_baseline  # the registry imports torch: only when needed

        declared = runs["method"].map(lambda method: declared_baseline(str(method)) or "")
        given = given.astype("object").where(~missing, declared)
    runs["baseline"] = given.astype("object")
    return runs


def read_summary(path: str | Path) -> pd.DataFrame:
    """A summary.csv the report wrote, by today's column names: one from before the ratios were named
    ``*_ratio_to_baseline`` has its columns renamed and a ``baseline`` column added (its ratios, where it has
    them, were against the baseline the method declares)."""
    summary = pd.read_csv(path, keep_default_na=False, na_values=[""]).rename(columns=LEGACY_COLUMNS)
    if "baseline" not in summary:
        paired = summary["baseline_config_hash"].notna()
        summary["baseline"] = with_baselines(summary)["baseline"].where(paired, "")
    return summary


def read_artifacts(runs: pd.DataFrame, warnings: list[str]) -> Artifacts:
    """The artifacts of the given runs by (results_dir, run_id); a run without one is left out, a damaged one is a
    warning."""
    found = {}
    for row in runs.itertuples():
        try:
            arrays = artifacts.load(Path(row.results_dir), row.run_id)
        except Exception as e:  # a damaged file: say so, draw from the others
            warnings.append(f"artifact of run {row.run_id} could not be read ({type(e).__name__}: {e}); skipped")
            continue
        if arrays is not None:
            found[(str(row.results_dir), str(row.run_id))] = arrays
    return found


def _with_added(runs: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """One folder's run rows with ``ADDED_COLUMNS`` (filled per folder, before rows of other versions join)."""
    runs = runs.assign(results_dir=str(folder), config=runs["config_json"].map(parse_config).astype("object"))
    return with_baselines(runs)


def _epochs(folder: Path, warnings: list[str]) -> pd.DataFrame:
    try:
        return read_epochs(folder)
    except ResultsError as e:
        warnings.append(f"the accuracy curves and median epoch times leave out {folder}: {e}")
        return _empty(EPOCH_COLUMNS)


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    if not frames:
        return _empty(columns)
    return pd.concat(frames, ignore_index=True)
