"""From the rows of one or more ``run``s to the comparison people came for: tables over seeds, NoProp/backprop
ratios and the paper's numbers beside ours.

Reads only ``runs.csv`` / ``epochs.csv`` (through ``bench.results``), never a model. The aggregation is pure
(DataFrames in, DataFrames out) so every number can be tested exactly; ``load`` and ``write_tables`` are the only
functions here that touch files, and the figures live in ``bench.report.figures``.

Definitions used throughout (also written into summary.md):
- a group is (dataset, method, embedding, config_hash): runs of different configs are never averaged together;
- only rows with status ``ok`` are aggregated; every other row is counted and listed;
- per seed the value is the run's own (``test_acc`` is already the mean over its inference repeats); a seed that
  appears in several runs of a group is averaged first, so each seed counts once;
- sd is the sample standard deviation over seeds (ddof=1; missing for one seed), se = sd / sqrt(n seeds);
- MB is 2**20 bytes; NoProp/backprop ratios are ratios of the group means, against the backprop group of the
  same dataset, embedding and config_hash (else another config of the same dataset and embedding, flagged).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report import paper
from bench.results import EPOCH_COLUMNS, RUN_COLUMNS, RUNS_FILE, ResultsError, read_epochs, read_runs

BYTES_PER_MB = 2**20
NOPROP, BACKPROP = "noprop-dt", "backprop"
GROUP = ["dataset", "method", "embedding", "config_hash"]
METHOD_ALIASES = {"noprop": NOPROP, "dt": NOPROP, "bp": BACKPROP}  # as ``run --methods`` accepts them

# per-seed value name -> run column it comes from, and the factor turning it into the reported unit
_PER_SEED = {
    "test_acc_pct": ("test_acc", 1.0),
    "inference_sd_pct": ("test_acc_std", 1.0),
    "train_acc_pct": ("train_acc", 1.0),
    "time_per_epoch_s": ("time_per_epoch_s", 1.0),
    "samples_per_s": ("samples_per_s", 1.0),
    "train_gflop_per_s": ("train_gflop_per_s", 1.0),
    "peak_cuda_allocated_mb": ("peak_cuda_allocated_bytes", 1 / BYTES_PER_MB),
    "peak_cuda_reserved_mb": ("peak_cuda_reserved_bytes", 1 / BYTES_PER_MB),
    "peak_rss_mb": ("peak_rss_bytes", 1 / BYTES_PER_MB),
}
_WITH_SD = ("test_acc_pct", "train_acc_pct", "time_per_epoch_s", "samples_per_s")
RATIO_COLUMNS = {  # summary column of the ratio -> the mean it divides
    "time_per_epoch_ratio_noprop_to_backprop": "time_per_epoch_s_mean",
    "peak_cuda_allocated_ratio_noprop_to_backprop": "peak_cuda_allocated_mb_mean",
    "peak_cuda_reserved_ratio_noprop_to_backprop": "peak_cuda_reserved_mb_mean",
    "peak_rss_ratio_noprop_to_backprop": "peak_rss_mb_mean",
}
MEASURE_LABELS = {
    "peak_cuda_allocated_mb": "CUDA allocated",
    "peak_cuda_reserved_mb": "CUDA reserved",
    "peak_rss_mb": "RSS (CPU)",
}


@dataclass
class Loaded:
    """Every readable row from the given folders, each tagged with the folder it came from (``results_dir``)."""

    runs: pd.DataFrame
    epochs: pd.DataFrame
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Everything the tables and figures show; built by ``build`` from ``Loaded``."""

    runs: pd.DataFrame  # ok runs (after filters), one row per run, with ``variant`` and ``results_dir``
    not_ok: pd.DataFrame  # every other run (after filters), listed
    per_seed: pd.DataFrame  # one row per group and seed, in reported units
    summary: pd.DataFrame  # one row per group: the numbers of summary.csv
    curves: pd.DataFrame  # test accuracy per group and epoch, mean and sd over seeds
    memory: pd.DataFrame  # long form: one row per group, seed and memory measure, in MB
    sources: list[str]
    warnings: list[str]
    total_runs: int = 0  # rows read, before filters

    @property
    def empty(self) -> bool:
        return self.runs.empty


# ------------------------------------------------------------------------------------------------ reading


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
            try:
                children = sorted(p for p in path.iterdir() if (p / RUNS_FILE).is_file())
            except OSError as e:
                warnings.append(f"{path} could not be listed ({e.strerror or e}); skipped")
                continue
            if children:
                found.extend(children)
            else:
                warnings.append(f"{path} holds no {RUNS_FILE} (nothing run there yet?); skipped")
    unique: list[Path] = []
    for folder in found:
        if all(folder.resolve() != seen.resolve() for seen in unique):
            unique.append(folder)
    return unique, warnings


def load(paths: Iterable[str | Path]) -> Loaded:
    """Read runs.csv and epochs.csv of every folder; a folder that cannot be read is a warning, not an error."""
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
        try:
            epochs = read_epochs(folder)
        except ResultsError as e:
            warnings.append(f"the accuracy curves leave out {folder}: {e}")
            epochs = _empty(EPOCH_COLUMNS)
        sources.append(str(folder))
        run_frames.append(runs.assign(results_dir=str(folder)))
        epoch_frames.append(epochs.assign(results_dir=str(folder)))
    return Loaded(
        runs=_concat(run_frames, RUN_COLUMNS), epochs=_concat(epoch_frames, EPOCH_COLUMNS), sources=sources,
        warnings=warnings,
    )


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    if not frames:
        return _empty([*columns, "results_dir"])
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------- aggregation


def normalise_methods(methods: Iterable[str]) -> list[str]:
    """``noprop`` -> ``noprop-dt`` etc., as ``run --methods`` accepts them."""
    return [METHOD_ALIASES.get(m.strip().lower(), m.strip().lower()) for m in methods if m.strip()]


def build(loaded: Loaded, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None) -> Report:
    """Filter, split ok from not-ok runs and aggregate over seeds. Pure: reads nothing, writes nothing."""
    warnings = list(loaded.warnings)
    runs = _prepare(loaded.runs, warnings)
    total = len(runs)
    runs = _filter(runs, datasets, methods, warnings)
    ok = runs[runs["status"] == "ok"].copy()
    not_ok = runs[runs["status"] != "ok"].reset_index(drop=True)
    ok["variant"] = variant_labels(ok)
    ok = ok.reset_index(drop=True)
    per_seed = per_seed_values(ok, warnings)
    summary = summarize(per_seed, ok, warnings)
    return Report(
        runs=ok, not_ok=not_ok, per_seed=per_seed, summary=summary, curves=epoch_curves(ok, loaded.epochs),
        memory=memory_long(per_seed), sources=list(loaded.sources), warnings=warnings, total_runs=total,
    )


def _prepare(runs: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """Missing group keys become "" (pandas would drop them from groups); one row per run_id."""
    runs = runs.copy()
    for column in [*GROUP, "status", "reason"]:
        runs[column] = runs[column].astype("object").where(runs[column].notna(), "").astype(str)
    duplicated = runs["run_id"].duplicated(keep="first") & runs["run_id"].notna()
    if duplicated.any():
        ids = ", ".join(sorted(set(runs.loc[duplicated, "run_id"])))
        warnings.append(f"run(s) {ids} appear in more than one folder; each is counted once")
        runs = runs[~duplicated]
    return runs.reset_index(drop=True)


def _filter(runs: pd.DataFrame, datasets: Sequence[str] | None, methods: Sequence[str] | None,
            warnings: list[str]) -> pd.DataFrame:
    for column, wanted in (("dataset", datasets), ("method", normalise_methods(methods) if methods else None)):
        if not wanted:
            continue
        present = sorted(set(runs[column]))
        missing = [w for w in wanted if w not in present]
        if missing and not runs.empty:
            warnings.append(f"no runs with {column} {', '.join(missing)} (found: {', '.join(present) or 'none'})")
        runs = runs[runs[column].isin(wanted)]
    return runs


def variant_labels(runs: pd.DataFrame) -> pd.Series:
    """A short label per run for legends: "method (embedding)", plus the config hash where a dataset holds the
    same method and embedding under several configs (so two configs are never drawn as one)."""
    if runs.empty:
        return pd.Series([], dtype=str, index=runs.index)
    configs = runs.groupby(["dataset", "method", "embedding"])["config_hash"].transform("nunique")
    labels = runs["method"] + " (" + runs["embedding"] + ")"
    return labels.where(configs <= 1, labels + " [" + runs["config_hash"].str[:6] + "]")


def per_seed_values(ok: pd.DataFrame, warnings: list[str] | None = None) -> pd.DataFrame:
    """One row per group and seed in reported units (%, s, samples/s, MB); repeated seeds are averaged."""
    columns = [*GROUP, "variant", "seed", *_PER_SEED]
    if ok.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in _PER_SEED else "object") for c in columns})
    values = ok[[*GROUP, "variant", "seed"]].copy()
    for name, (column, factor) in _PER_SEED.items():
        values[name] = ok[column].astype("float64") * factor
    values["seed"] = values["seed"].astype("float64")  # a missing seed stays a group of its own, not dropped
    per_seed = values.groupby([*GROUP, "variant", "seed"], dropna=False, sort=True).mean().reset_index()
    repeated = values.groupby([*GROUP, "seed"], dropna=False).size()
    if warnings is not None and (repeated > 1).any():
        for key, count in repeated[repeated > 1].items():
            warnings.append(f"{_describe(key[:4])}: seed {_int(key[4])} has {count} ok runs; they are averaged "
                            "so the seed counts once")
    return per_seed[columns]


def summarize(per_seed: pd.DataFrame, ok: pd.DataFrame, warnings: list[str] | None = None) -> pd.DataFrame:
    """summary.csv: per group, seeds, mean/sd/se over seeds, the paper's numbers and NoProp/backprop ratios."""
    warnings = warnings if warnings is not None else []
    if per_seed.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = per_seed.groupby(GROUP, sort=True, dropna=False)
    summary = grouped.agg(variant=("variant", "first"), n_seeds=("seed", "size")).reset_index()
    summary["seeds"] = grouped["seed"].agg(lambda s: ",".join(_int(v) for v in s)).to_numpy()
    for name in _PER_SEED:
        summary[f"{name}_mean"] = grouped[name].mean().to_numpy()
        if name in _WITH_SD:
            summary[f"{name}_sd"] = grouped[name].std(ddof=1).to_numpy()
    summary["test_acc_pct_se"] = summary["test_acc_pct_sd"] / summary["n_seeds"].map(math.sqrt)
    summary = summary.merge(_descriptors(ok), on=GROUP, how="left")
    summary = _with_paper(summary)
    summary = _with_ratios(summary, warnings)
    _warn_mixed_configs(summary, warnings)
    return summary[SUMMARY_COLUMNS].reset_index(drop=True)


SUMMARY_COLUMNS = [
    *GROUP, "variant", "embed_dim", "epochs", "n_seeds", "seeds",
    "test_acc_pct_mean", "test_acc_pct_sd", "test_acc_pct_se", "inference_sd_pct_mean",
    "paper_test_acc_pct", "test_acc_minus_paper_pct",
    "train_acc_pct_mean", "train_acc_pct_sd", "time_per_epoch_s_mean", "time_per_epoch_s_sd",
    "samples_per_s_mean", "samples_per_s_sd", "train_gflop_per_s_mean",
    "peak_cuda_allocated_mb_mean", "peak_cuda_reserved_mb_mean", "peak_rss_mb_mean",
    "paper_peak_gpu_mb", "peak_cuda_allocated_minus_paper_mb",
    *RATIO_COLUMNS, "ratio_backprop_config_hash",
    "params", "measured_in", "device_name",
]  # fmt: skip


def _descriptors(ok: pd.DataFrame) -> pd.DataFrame:
    """What was run, per group: embed_dim (from config_json), epochs, parameter count, where it was measured."""
    frame = ok[GROUP].copy()
    embed_dim = ok["config_json"].map(lambda text: _config_value(text, "embed_dim")).astype("float64")
    frame["embed_dim"] = embed_dim.where(ok["embedding"] == "learned")  # the others' size is fixed by the data
    frame["epochs"] = ok["epochs_done"].astype("Int64")
    frame["params"] = ok["params"].astype("Int64")
    frame["measured_in"] = ok["measured_in"].astype("object")
    frame["device_name"] = ok["device_name"].astype("object")
    grouped = frame.groupby(GROUP, sort=True, dropna=False)
    described = grouped.agg(
        embed_dim=("embed_dim", "max"), epochs=("epochs", "max"), params=("params", "max"),
        measured_in=("measured_in", _joined), device_name=("device_name", _joined),
    ).reset_index()
    return described.astype({"embed_dim": "Int64", "epochs": "Int64", "params": "Int64"})


def _config_value(text: object, key: str) -> float:
    try:
        value = json.loads(str(text)).get(key)
    except (ValueError, AttributeError):
        return math.nan
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _joined(values: pd.Series) -> str:
    return "; ".join(sorted({str(v) for v in values if isinstance(v, str) and v}))


def _with_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """The paper's accuracy and peak GPU memory where it has them for the same dataset, method and embedding."""
    summary = summary.copy()
    summary["paper_test_acc_pct"] = [
        _none_to_nan(paper.accuracy_pct(r.dataset, r.method, r.embedding, _or_none(r.embed_dim)))
        for r in summary.itertuples()
    ]
    summary["paper_peak_gpu_mb"] = [
        _none_to_nan(paper.peak_gpu_mb(r.dataset, r.method, r.embedding)) for r in summary.itertuples()
    ]
    summary["test_acc_minus_paper_pct"] = summary["test_acc_pct_mean"] - summary["paper_test_acc_pct"]
    summary["peak_cuda_allocated_minus_paper_mb"] = (
        summary["peak_cuda_allocated_mb_mean"] - summary["paper_peak_gpu_mb"])
    return summary


def _with_ratios(summary: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """NoProp-DT / backprop for time per epoch and memory, on the NoProp-DT row; backprop rows stay empty."""
    summary = summary.copy()
    for column in [*RATIO_COLUMNS, "ratio_backprop_config_hash"]:
        summary[column] = math.nan if column != "ratio_backprop_config_hash" else ""
    lone = set()
    for dataset, rows in summary.groupby("dataset"):
        methods = sorted(set(rows["method"]))
        if len(methods) == 1:
            lone.add(dataset)
            warnings.append(f"{dataset}: only {methods[0]} has ok runs, so there is nothing to compare it with "
                            "(ratios left empty)")
    backprop = summary[summary["method"] == BACKPROP]
    for index, row in summary[summary["method"] == NOPROP].iterrows():
        candidates = backprop[(backprop["dataset"] == row["dataset"]) & (backprop["embedding"] == row["embedding"])]
        if candidates.empty:
            if row["dataset"] not in lone:
                warnings.append(f"{_describe(row[GROUP])}: no ok backprop run with the same dataset and embedding; "
                                "ratios left empty")
            continue
        same = candidates[candidates["config_hash"] == row["config_hash"]]
        if same.empty:
            match = candidates.sort_values(["n_seeds", "config_hash"], ascending=[False, True]).iloc[0]
            warnings.append(f"{_describe(row[GROUP])}: no backprop run with the same config; ratios use backprop "
                            f"config {match['config_hash']} (compare with care)")
        else:
            match = same.iloc[0]
        for ratio, mean in RATIO_COLUMNS.items():
            summary.loc[index, ratio] = row[mean] / match[mean] if match[mean] else math.nan
        summary.loc[index, "ratio_backprop_config_hash"] = match["config_hash"]
    return summary


def _warn_mixed_configs(summary: pd.DataFrame, warnings: list[str]) -> None:
    counts = summary.groupby(["dataset", "method", "embedding"])["config_hash"].nunique()
    for (dataset, method, embedding), n in counts[counts > 1].items():
        warnings.append(f"{dataset} {method} {embedding}: {n} different configs; reported as separate rows "
                        "(config_hash tells them apart)")


def epoch_curves(ok: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per group and epoch: mean and sd over runs, with the mean cumulative training time (s)."""
    columns = [*GROUP, "variant", "epoch", "n_runs", "test_acc_pct_mean", "test_acc_pct_sd", "cum_train_time_s_mean"]
    if ok.empty or epochs.empty:
        return pd.DataFrame(columns=columns)
    meta = ok[["results_dir", "run_id", *GROUP, "variant"]]
    rows = epochs[["results_dir", "run_id", "epoch", "test_acc", "cum_train_time_s"]].merge(
        meta, on=["results_dir", "run_id"], how="inner")
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.assign(epoch=rows["epoch"].astype("float64"), test_acc=rows["test_acc"].astype("float64"),
                       cum_train_time_s=rows["cum_train_time_s"].astype("float64"))
    grouped = rows.groupby([*GROUP, "variant", "epoch"], sort=True, dropna=False)
    curves = grouped.agg(
        n_runs=("run_id", "size"), test_acc_pct_mean=("test_acc", "mean"), test_acc_pct_sd=("test_acc", "std"),
        cum_train_time_s_mean=("cum_train_time_s", "mean"),
    ).reset_index()
    curves["epoch"] = curves["epoch"].astype("int64")
    return curves[columns]


def memory_long(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Peak memory per group and seed in MB: CUDA allocated and reserved where measured, else CPU RSS."""
    columns = [*GROUP, "variant", "seed", "measure", "mb"]
    rows = []
    for r in per_seed.itertuples():
        on_cuda = not pd.isna(r.peak_cuda_allocated_mb)
        names = ("peak_cuda_allocated_mb", "peak_cuda_reserved_mb") if on_cuda else ("peak_rss_mb",)
        for name in names:
            value = getattr(r, name)
            if not pd.isna(value):
                rows.append([r.dataset, r.method, r.embedding, r.config_hash, r.variant, r.seed,
                             MEASURE_LABELS[name], value])
    return pd.DataFrame(rows, columns=columns)


def status_counts(not_ok: pd.DataFrame) -> dict[str, int]:
    """How many runs ended in each non-ok status (an empty status reads "unknown")."""
    statuses = not_ok["status"].replace("", "unknown") if not not_ok.empty else pd.Series([], dtype=str)
    return {str(k): int(v) for k, v in statuses.value_counts().sort_index().items()}


def nothing_to_report(report: Report) -> str:
    """The one-line reason there is nothing to aggregate (the CLI's error line)."""
    if not report.sources:
        return "nothing to report: no readable results folder (see the warnings above)"
    if report.total_runs and report.not_ok.empty:
        return "nothing to report: no run matches the --dataset / --methods filters"
    if not report.not_ok.empty:
        counts = ", ".join(f"{n} {s}" for s, n in status_counts(report.not_ok).items())
        return f"nothing to report: none of the {len(report.not_ok)} matching runs finished ok ({counts})"
    return "nothing to report: the results folders hold no runs"


def _describe(key: Sequence[object]) -> str:
    dataset, method, embedding, config_hash = (str(k) for k in key)
    return f"{dataset} {method} {embedding} (config {config_hash or '?'})"


def _int(value: object) -> str:
    return "?" if pd.isna(value) else str(int(value))


def _or_none(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def _none_to_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


# ------------------------------------------------------------------------------------------ presentation


def fmt(value: object, spec: str = ".2f") -> str:
    """A number for a table; a missing one (no value, or sd of one seed) reads "-"."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _signed(value: object) -> str:
    return fmt(value, "+.2f")


def _memory_cell(row: pd.Series) -> str:
    if not pd.isna(row["peak_cuda_allocated_mb_mean"]):
        return f"{fmt(row['peak_cuda_allocated_mb_mean'], '.0f')} / {fmt(row['peak_cuda_reserved_mb_mean'], '.0f')}"
    return f"{fmt(row['peak_rss_mb_mean'], '.0f')} RSS"


def _memory_ratio(row: pd.Series) -> float:
    on_cuda = not pd.isna(row["peak_cuda_allocated_ratio_noprop_to_backprop"])
    return row["peak_cuda_allocated_ratio_noprop_to_backprop" if on_cuda else "peak_rss_ratio_noprop_to_backprop"]


def _paper_cell(row: pd.Series) -> str:
    if pd.isna(row["paper_test_acc_pct"]):
        return "-"
    return f"{row['paper_test_acc_pct']:.2f} ({_signed(row['test_acc_minus_paper_pct'])})"


def display_rows(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The summary as short strings, shared by the terminal table and summary.md."""
    header = ["dataset", "method", "embedding", "config", "seeds", "test acc % mean ± sd", "se", "paper % (Δ)",
              "train acc %", "s/epoch", "samples/s", "peak MB", "paper GPU MB", "NP/BP time", "NP/BP mem"]
    rows = []
    for _, r in summary.iterrows():
        rows.append([
            r["dataset"], r["method"], r["embedding"], r["config_hash"] or "-", str(int(r["n_seeds"])),
            f"{fmt(r['test_acc_pct_mean'])} ± {fmt(r['test_acc_pct_sd'])}", fmt(r["test_acc_pct_se"]),
            _paper_cell(r), fmt(r["train_acc_pct_mean"]), fmt(r["time_per_epoch_s_mean"], ".3g"),
            fmt(r["samples_per_s_mean"], ".0f"), _memory_cell(r), fmt(r["paper_peak_gpu_mb"], ".0f"),
            fmt(r["time_per_epoch_ratio_noprop_to_backprop"]), fmt(_memory_ratio(r)),
        ])
    return header, rows


TABLE_LEGEND = (
    "mean ± sd and se over seeds (sd: sample, ddof = 1; \"-\" for one seed); paper % (Δ): the paper's accuracy "
    "and ours − paper in points; peak MB: CUDA allocated / reserved, or CPU RSS (MB = 2^20 bytes); NP/BP: "
    "NoProp-DT / backprop for time per epoch and peak memory (CUDA allocated, else RSS)"
)

NOT_OK_COLUMNS = ["results_dir", "run_id", "dataset", "method", "embedding", "seed", "status", "epochs_done", "reason"]


def not_ok_rows(not_ok: pd.DataFrame) -> list[list[str]]:
    """The runs left out of the numbers, one line each."""
    return [[str(r["results_dir"]), str(r["run_id"]), r["dataset"], r["method"], r["embedding"], _int(r["seed"]),
             r["status"] or "unknown", _int(r["epochs_done"]), r["reason"] or "-"] for _, r in not_ok.iterrows()]


def not_ok_line(report: Report) -> str:
    """One line: how many runs were left out of the numbers, and why."""
    total = len(report.runs) + len(report.not_ok)
    if report.not_ok.empty:
        return f"All {total} matching runs finished ok."
    counts = ", ".join(f"{s}: {n}" for s, n in status_counts(report.not_ok).items())
    return (f"{len(report.not_ok)} of {total} matching runs did not finish ok ({counts}); they are listed below and "
            "left out of every number and figure.")


_KEYS = ("dataset", "method", "embedding", "config")
_TERMINAL_ACCURACY = (*_KEYS, "seeds", "test acc % mean ± sd", "se", "paper % (Δ)", "train acc %")
_TERMINAL_COST = (*_KEYS, "s/epoch", "samples/s", "peak MB", "paper GPU MB", "NP/BP time", "NP/BP mem")
_TERMINAL_HEADERS = {  # two-line headers, so columns are as narrow as their values
    "test acc % mean ± sd": "test acc %\nmean ± sd", "paper % (Δ)": "paper %\n(Δ)", "train acc %": "train\nacc %",
    "s/epoch": "s/\nepoch", "samples/s": "img/s", "paper GPU MB": "paper\nGPU MB", "NP/BP time": "NP/BP\ntime",
    "NP/BP mem": "NP/BP\nmem", "peak MB": "peak\nMB",
}


def terminal_tables(report: Report) -> list:
    """Rich tables for the terminal: the summary (as an accuracy and a cost table), then the runs that did not
    finish ok (if any)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    header, rows = display_rows(report.summary)
    tables = []
    # Two narrower tables (accuracy, then cost) so an 80-column terminal shows them unwrapped; summary.md has
    # all columns in one table.
    for title, columns, caption in (
        ("NoProp-DT vs backprop: accuracy (ok runs; mean ± sd over seeds)", _TERMINAL_ACCURACY, None),
        ("NoProp-DT vs backprop: cost", _TERMINAL_COST, TABLE_LEGEND),
    ):
        table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, padding=0)
        picked = [header.index(name) for name in columns]
        for i in picked:
            table.add_column(_TERMINAL_HEADERS.get(header[i], header[i]), no_wrap=True)
        for row in rows:
            cells = [row[i] if header[i] != "config" else row[i][:6] for i in picked]  # a hash prefix, as git does
            table.add_row(*map(escape, cells))
        tables.append(table)
    if not report.not_ok.empty:
        left_out = Table(title=escape(not_ok_line(report)), box=box.SIMPLE_HEAD, show_edge=False, padding=0)
        for name in NOT_OK_COLUMNS:  # identifiers whole; the folder and the reason fold
            left_out.add_column(name, overflow="fold", no_wrap=name not in ("results_dir", "reason"))
        for row in not_ok_rows(report.not_ok):
            left_out.add_row(*(f"[red]{escape(cell)}[/]" if i == 6 else escape(cell) for i, cell in enumerate(row)))
        tables.append(left_out)
    return tables


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


_CONFIG_KEYS = ("embedding", "epochs", "batch_size", "T", "width", "lr", "embed_dim", "order", "train_subset",
                "test_subset", "eval_repeats")


def _config_rows(runs: pd.DataFrame) -> list[list[str]]:
    rows = []
    for config_hash, group in runs.groupby("config_hash", sort=True):
        try:
            config = json.loads(str(group["config_json"].iloc[0]))
        except ValueError:
            config = {}
        rows.append([config_hash or "-", ", ".join(sorted(set(group["dataset"])))]
                    + [str(config.get(k, "-")) for k in _CONFIG_KEYS])
    return rows


def summary_markdown(report: Report, figures: Sequence[Path] = (), out: Path | None = None) -> str:
    """summary.md: the table, the runs left out (with a line saying how many), warnings, configs, figures."""
    header, rows = display_rows(report.summary)
    parts = [
        "# noprop-bench report",
        "Results from: " + ", ".join(f"`{s}`" for s in report.sources) + ".",
        "## Final test accuracy and cost per dataset, method and embedding",
        _markdown_table(header, rows),
        f"Test accuracy per seed is the mean over its inference repeats. {TABLE_LEGEND}, same dataset, embedding "
        "and config (else flagged under Warnings). Time per epoch counts training steps only. "
        f"Paper: {paper.SOURCE} (3 seeds × 5 inference runs; learned embedding = its \"dim 20\"; "
        "peak GPU memory for one-hot only); its configs are the full ones, so a shortened run is not expected to "
        "match it. Every number is also in summary.csv, with full precision.",
        "## Runs not ok",
        not_ok_line(report),
    ]
    if not report.not_ok.empty:
        parts.append(_markdown_table(NOT_OK_COLUMNS, not_ok_rows(report.not_ok)))
    parts += ["## Configs", _markdown_table(["config", "datasets", *_CONFIG_KEYS], _config_rows(report.runs))]
    if report.warnings:
        parts += ["## Warnings", "\n".join(f"- {w}" for w in report.warnings)]
    if figures:
        parts.append("## Figures")
        for path in figures:
            link = path.relative_to(out) if out is not None and path.is_relative_to(out) else path
            parts.append(f"![{path.stem}]({link.as_posix()})" if path.suffix != ".pdf" else f"- [{link}]({link})")
    return "\n\n".join(parts) + "\n"


def write_tables(report: Report, out: Path, figures: Sequence[Path] = ()) -> list[Path]:
    """Write summary.csv (full precision) and summary.md into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "summary.csv", out / "summary.md"
    report.summary.to_csv(csv_path, index=False)
    md_path.write_text(summary_markdown(report, figures, out), encoding="utf-8")
    return [csv_path, md_path]
