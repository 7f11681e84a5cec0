"""From run rows to the numbers every view starts from: values per seed, and per group the summary over seeds with
the paper's numbers and the ratios to the method's baseline (``bench.report.baselines``). ``compare`` groups and
averages seeds with the same functions (``with_keys``, ``with_epoch_medians``, ``per_seed``), so the gate and the
report never disagree on what a group or a seed is. What each view computes from these is in its own module
(``bench.report.views``).

Pure: DataFrames in, DataFrames out (files are read by ``bench.report.load``), so every number can be tested exactly.

Definitions used throughout (also written into summary.md):
- a group is (dataset, method, embedding, config_hash, *SWITCH_COLUMNS): runs of different configs, or of the same
  config with a different execution switch (precision, channels_last), are never averaged together;
- only rows with status ``ok`` are aggregated; every other row is counted and listed;
- per seed the value is the run's own (``test_acc`` is already the mean over its inference repeats); a seed that
  appears in several runs of a group is averaged first, so each seed counts once;
- a run's median epoch time is its ``epoch_time_median_s``, or for rows written before that column the median of
  its ``epoch_time_s`` in epochs.csv;
- sd is the sample standard deviation over seeds (ddof=1; missing for one seed), se = sd / sqrt(n seeds);
- MB is 2**20 bytes; ratios to a baseline are ratios of the group means, against the group of the method's
  baseline with the same dataset, embedding, config and switches (else another of the same dataset and embedding,
  flagged).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.formatting import BYTES_PER_MB, is_missing
from bench.report import baselines, paper
from bench.report.baselines import RATIO_COLUMNS
from bench.report.labels import GROUP, LABELS, describe, setting_labels, whole_text
from bench.report.load import Artifacts, Loaded
from bench.results.schema import SWITCH_COLUMNS
from bench.run.config import METHOD_ALIASES

LOAD_MARGIN = 0.5  # a load average this far above the CPUs means other work shared them (a run alone reads ~CPUs)

# per-seed value name -> run column it comes from, and the factor turning it into the reported unit
PER_SEED = {
    "test_acc_pct": ("test_acc", 1.0),
    "inference_sd_pct": ("test_acc_std", 1.0),
    "test_acc_det_pct": ("test_acc_det", 1.0),
    "test_infer_s": ("test_infer_s", 1.0),
    "test_infer_det_s": ("test_infer_det_s", 1.0),
    "infer_ms_per_image": ("test_infer_ms_per_image", 1.0),
    "train_acc_pct": ("train_acc", 1.0),
    "time_per_epoch_s": ("time_per_epoch_s", 1.0),
    "epoch_time_median_s": ("epoch_time_median_s", 1.0),
    "samples_per_s": ("samples_per_s", 1.0),
    "train_gflop_per_s": ("train_gflop_per_s", 1.0),
    "peak_cuda_allocated_mb": ("peak_cuda_allocated_bytes", 1 / BYTES_PER_MB),
    "peak_cuda_reserved_mb": ("peak_cuda_reserved_bytes", 1 / BYTES_PER_MB),
    "peak_rss_mb": ("peak_rss_bytes", 1 / BYTES_PER_MB),
    "rss_above_start_mb": ("rss_above_start_bytes", 1 / BYTES_PER_MB),
    "peak_saved_activation_mb": ("peak_saved_activation_bytes", 1 / BYTES_PER_MB),
}
COLLAPSE_MARGIN = 5.0  # the default: points of test accuracy a final epoch may lose against the best validation one
_WITH_SD = ("test_acc_pct", "test_acc_det_pct", "train_acc_pct", "time_per_epoch_s", "epoch_time_median_s",
            "samples_per_s")
SUMMARY_COLUMNS = [
    *GROUP, *LABELS, "embed_dim", "epochs", "n_seeds", "seeds",
    "test_acc_pct_mean", "test_acc_pct_sd", "test_acc_pct_se", "inference_sd_pct_mean",
    "test_acc_det_pct_mean", "test_acc_det_pct_sd", "test_infer_s_mean", "test_infer_det_s_mean",
    "infer_ms_per_image_mean", "ode_steps",
    "paper_test_acc_pct", "test_acc_minus_paper_pct",
    "train_acc_pct_mean", "train_acc_pct_sd", "time_per_epoch_s_mean", "time_per_epoch_s_sd",
    "epoch_time_median_s_mean", "epoch_time_median_s_sd",
    "samples_per_s_mean", "samples_per_s_sd", "train_gflop_per_s_mean",
    "peak_cuda_allocated_mb_mean", "peak_cuda_reserved_mb_mean", "peak_rss_mb_mean", "rss_above_start_mb_mean",
    "peak_saved_activation_mb_mean",
    "paper_peak_gpu_mb", "peak_cuda_allocated_minus_paper_mb",
    "baseline", *RATIO_COLUMNS, "baseline_config_hash",
    "params", "training_only_params", "measured_in", "device_name",
]  # fmt: skip


@dataclass
class Report:
    """What every view reads (made by ``over_seeds``), and each view's own data by view name (``data``, filled by
    ``bench.report.build``)."""

    runs: pd.DataFrame  # ok runs (after filters), one row per run, with ``variant``, ``setting`` and load's columns
    not_ok: pd.DataFrame  # every other run (after filters), listed
    per_seed: pd.DataFrame  # one row per group and seed, in reported units
    summary: pd.DataFrame  # one row per group: the numbers of summary.csv
    epochs: pd.DataFrame  # every loaded epoch row (views join them to ``runs``)
    artifacts: Artifacts  # the ok runs' artifacts by (results_dir, run_id), as loaded
    sources: list[str]
    warnings: list[str]
    total_runs: int = 0  # rows read, before filters
    superseded: int = 0  # interrupted rows a later ok row of the same run finished (neither ok nor listed as not ok)
    targets: tuple[float, ...] = ()  # accuracies (%) whose time to reach is tabulated
    collapse_margin: float = COLLAPSE_MARGIN  # points a final test accuracy may lie below its best validation epoch's
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.runs.empty


# ------------------------------------------------------------------------------- shared with compare


def key_text(values: pd.Series) -> pd.Series:
    """A group key column as text: missing -> "" (pandas would drop it from groups), booleans as the CSV writes
    them (``true``/``false``)."""
    def text(value: object) -> str:
        if is_missing(value):
            return ""
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return "true" if value else "false"
        return str(value)

    return values.astype("object").map(text).astype(object)


def with_keys(runs: pd.DataFrame, keys: Iterable[str] = GROUP) -> pd.DataFrame:
    """A copy with every group key (and status, reason) as text."""
    runs = runs.copy()
    for column in [*keys, "status", "reason"]:
        if column not in runs:
            runs[column] = ""
        runs[column] = key_text(runs[column])
    return runs


def with_epoch_medians(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Rows without ``epoch_time_median_s`` (written before schema 3) get the median of their own epochs'
    ``epoch_time_s`` from epochs.csv, where it has them; other rows are unchanged."""
    runs = runs.copy()
    runs["epoch_time_median_s"] = runs["epoch_time_median_s"].astype("float64")
    missing = runs["epoch_time_median_s"].isna()
    if not missing.any() or epochs.empty or "results_dir" not in runs or "results_dir" not in epochs:
        return runs
    ids = ["results_dir", "run_id"]
    times = epochs[[*ids, "epoch_time_s"]].astype({"results_dir": str, "run_id": str, "epoch_time_s": "float64"})
    medians = times.dropna(subset=["epoch_time_s"]).groupby(ids, as_index=False)["epoch_time_s"].median()
    found = runs[ids].astype(str).merge(medians, on=ids, how="left")["epoch_time_s"].to_numpy()
    runs["epoch_time_median_s"] = runs["epoch_time_median_s"].where(~missing, found)
    return runs


def per_seed(ok: pd.DataFrame, values: Mapping[str, tuple[str, float]], keys: Sequence[str] = GROUP,
             carried: Sequence[str] = ()) -> pd.DataFrame:
    """One row per group and seed: each value (name -> (run column, factor)) is the mean over that seed's runs, so a
    seed run twice counts once; a missing seed is a seed of its own, not dropped. ``carried`` columns must be
    functions of the key (labels)."""
    columns = [*keys, *carried, "seed", *values]
    if ok.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in values else "object") for c in columns})
    frame = ok[[*keys, *carried]].copy()
    frame["seed"] = ok["seed"].astype("float64")
    for name, (column, factor) in values.items():
        frame[name] = ok[column].astype("float64") * factor
    return frame.groupby([*keys, *carried, "seed"], dropna=False, sort=True).mean().reset_index()[columns]


def shared_machine(runs: pd.DataFrame) -> pd.Series:
    """Per run, whether other work shared its machine: the load average over the run (its own threads included)
    exceeded its CPUs by more than ``LOAD_MARGIN``. False where a row did not record the load (before schema 9)."""
    load = runs["load_avg"].astype("float64") if "load_avg" in runs else pd.Series(math.nan, index=runs.index)
    cpus = runs["cpus"].astype("float64") if "cpus" in runs else pd.Series(math.nan, index=runs.index)
    return (load > cpus + LOAD_MARGIN).fillna(False).astype(bool)


def load_text(runs: pd.DataFrame) -> str:
    """How loaded the machine of some runs was: ``load average 7.9 (up to 11.2) on 2 CPUs``."""
    cpus = sorted({whole_text(c) for c in runs["cpus"]})
    return (f"load average {runs['load_avg'].astype('float64').mean():.1f} (up to "
            f"{runs['load_avg_max'].astype('float64').max():.1f}) on {' or '.join(cpus)} CPUs")


def normalise_methods(methods: Iterable[str]) -> list[str]:
    """``noprop`` -> ``noprop-dt`` etc., as ``run --methods`` accepts them."""
    return [METHOD_ALIASES.get(m.strip().lower(), m.strip().lower()) for m in methods if m.strip()]


# ------------------------------------------------------------------------------------------ the report


def over_seeds(loaded: Loaded, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None,
               baseline: str | None = None) -> Report:
    """Filter, split ok from not-ok runs and aggregate over seeds; ``baseline``: measure every other method against
    this one instead of the baseline each declares. Pure: reads nothing, writes nothing."""
    warnings = list(loaded.warnings)
    runs = _prepare(loaded.runs, warnings)
    total = len(runs)
    runs = with_epoch_medians(_filter(runs, datasets, methods, warnings), loaded.epochs)
    chosen = normalise_methods([baseline]) if baseline else []
    runs = baselines.override(runs, chosen[0] if chosen else None)
    ok = with_derived(runs[runs["status"] == "ok"].reset_index(drop=True))
    finished = superseded(runs)
    not_ok = runs[(runs["status"] != "ok") & ~finished].reset_index(drop=True)
    ok["setting"] = setting_labels(ok)
    ok["variant"] = method_labels(ok, warnings) + " (" + ok["setting"] + ")"
    _note_unequal_passes(ok, warnings)
    _note_departures(ok, warnings)
    _note_unchecked(ok, warnings)
    _note_shared_machine(ok, warnings)
    seeds = per_seed_values(ok, warnings)
    return Report(runs=ok, not_ok=not_ok, per_seed=seeds, summary=summarize(seeds, ok, warnings),
                  epochs=loaded.epochs, artifacts=loaded.artifacts, sources=list(loaded.sources), warnings=warnings,
                  total_runs=total, superseded=int(finished.sum()))


def method_labels(ok: pd.DataFrame, warnings: list[str]) -> pd.Series:
    """Each run's method name, with its version (``backprop v2``, ``v?`` for rows written before versions were
    recorded) where a report holds more than one version of that method: they are reported apart, and said so."""
    labels = ok["method"].astype(str).copy()
    for method, rows in ok.groupby("method", sort=True):
        versions = sorted(set(rows["method_version"]))
        if len(versions) < 2:
            continue
        labels[rows.index] = method + " v" + rows["method_version"].replace("", "?")
        shown = ", ".join(v or "? (unrecorded)" for v in versions)
        warnings.append(f"{method}: rows of method versions {shown} are reported apart; its behaviour under the same "
                        "config changed between them (their git_commit tells when)")
    return labels


def superseded(runs: pd.DataFrame) -> pd.Series:
    """Per row, whether it is an interrupted attempt of a run that a later row finished ok: the same folder,
    dataset, method, config, switches and seed (``--resume`` starts a run afresh when it was stopped before its
    first checkpoint, so the stopped attempt keeps a row of its own)."""
    key = ["results_dir", "dataset", "method", "config_hash", *SWITCH_COLUMNS, "seed"]
    keyed = runs.assign(**{k: key_text(runs[k]) for k in key if k in runs})
    present = [k for k in key if k in keyed]
    stamps = keyed["timestamp"].astype("object").fillna("").astype(str)
    last_ok = stamps.where(keyed["status"] == "ok").groupby([keyed[k] for k in present], dropna=False).transform("max")
    return ((keyed["status"] == "interrupted") & last_ok.notna() & (last_ok >= stamps)).astype(bool)


def _prepare(runs: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """Group keys as text; one row per run_id."""
    runs = with_keys(runs)
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


def with_derived(runs: pd.DataFrame) -> pd.DataFrame:
    """A copy with the per-run values the report derives from two columns (missing where a row predates either):
    ``test_infer_ms_per_image``, one image's share of a test pass, and ``rss_above_start_bytes``, the peak RSS above
    what the run's process started from (Python and torch alone are most of a small run's peak)."""
    per_image = runs["test_infer_s"].astype("float64") / runs["test_images"].astype("float64")
    above = runs["peak_rss_bytes"].astype("float64") - runs["rss_at_start_bytes"].astype("float64")
    return runs.assign(test_infer_ms_per_image=1000 * per_image, rss_above_start_bytes=above)


def per_seed_values(ok: pd.DataFrame, warnings: list[str] | None = None) -> pd.DataFrame:
    """One row per group and seed in reported units (%, s, samples/s, MB); repeated seeds are averaged. ``ok`` has
    the derived columns (``with_derived``)."""
    values = per_seed(ok, PER_SEED, GROUP, LABELS)
    if warnings is not None and not ok.empty:
        repeated = ok.assign(seed=ok["seed"].astype("float64")).groupby([*GROUP, "seed"], dropna=False).size()
        for key, count in repeated[repeated > 1].items():
            group = dict(zip(GROUP, key[:-1], strict=True))
            warnings.append(f"{describe(group)}: seed {whole_text(key[-1])} has {count} ok runs; they are averaged "
                            "so the seed counts once")
    return values


def summarize(per_seed_frame: pd.DataFrame, ok: pd.DataFrame, warnings: list[str] | None = None) -> pd.DataFrame:
    """summary.csv: per group, seeds, mean/sd/se over seeds, the paper's numbers and the ratios to the baseline."""
    warnings = warnings if warnings is not None else []
    if per_seed_frame.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = per_seed_frame.groupby(GROUP, sort=True, dropna=False)
    summary = grouped.agg(variant=("variant", "first"), setting=("setting", "first"),
                          n_seeds=("seed", "size")).reset_index()
    summary["seeds"] = grouped["seed"].agg(lambda s: ",".join(whole_text(v) for v in s)).to_numpy()
    for name in PER_SEED:
        summary[f"{name}_mean"] = grouped[name].mean().to_numpy()
        if name in _WITH_SD:
            summary[f"{name}_sd"] = grouped[name].std(ddof=1).to_numpy()
    summary["test_acc_pct_se"] = summary["test_acc_pct_sd"] / summary["n_seeds"].map(math.sqrt)
    summary = summary.merge(_descriptors(ok), on=GROUP, how="left")
    summary = baselines.with_ratios(_with_paper(summary), warnings)
    _warn_mixed_settings(summary, warnings)
    return summary[SUMMARY_COLUMNS].reset_index(drop=True)


def _descriptors(ok: pd.DataFrame) -> pd.DataFrame:
    """What was run, per group: embed_dim (from the config), epochs, parameter count (and of it, the parameters used
    in training only, where a method records them), where it was measured, and the baseline its method is measured
    against."""
    frame = ok[GROUP].copy()
    embed_dim = ok["config"].map(lambda config: config_number(config, "embed_dim")).astype("float64")
    frame["embed_dim"] = embed_dim.where(ok["embedding"] == "learned")  # the others' size is fixed by the data
    frame["epochs"] = ok["epochs_done"].astype("Int64")
    frame["params"] = ok["params"].astype("Int64")
    training_only = ok["training_only_params"] if "training_only_params" in ok else pd.Series(pd.NA, index=ok.index)
    frame["training_only_params"] = pd.to_numeric(training_only, errors="coerce").astype("Int64")
    frame["measured_in"] = ok["measured_in"].astype("object")
    frame["device_name"] = ok["device_name"].astype("object")
    frame["ode_steps"] = ok["ode_steps"].astype("Int64")
    frame["baseline"] = ok["baseline"].astype("object")
    grouped = frame.groupby(GROUP, sort=True, dropna=False)
    described = grouped.agg(
        embed_dim=("embed_dim", "max"), epochs=("epochs", "max"), params=("params", "max"),
        training_only_params=("training_only_params", "max"),
        ode_steps=("ode_steps", "max"), measured_in=("measured_in", _joined),
        device_name=("device_name", _joined), baseline=("baseline", _joined),
    ).reset_index()
    return described.astype({"embed_dim": "Int64", "epochs": "Int64", "params": "Int64", "ode_steps": "Int64",
                             "training_only_params": "Int64"})


def config_number(config: Mapping[str, object], key: str) -> float:
    """A number from a run's parsed config; NaN when absent or not a number."""
    value = config.get(key) if isinstance(config, Mapping) else None
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


def _note_unequal_passes(ok: pd.DataFrame, warnings: list[str]) -> None:
    """Where methods sit side by side at equal epochs but one image costs them different numbers of block passes
    (T for NoProp-DT and backprop, 1 for a one-network method such as NoProp-CT), say so: equal epochs are then not
    an equal budget, and a one-network method's parts (NoProp-CT's classifier, say) take one step per batch where
    each of NoProp-DT's T blocks, and its classifier with each, takes one."""
    if ok.empty:
        return
    passes = (ok["block_samples_per_s"].astype("float64") / ok["samples_per_s"].astype("float64")).round()
    frame = ok.assign(passes=passes).dropna(subset=["passes"])
    for (dataset, epochs), rows in frame.groupby(["dataset", "epochs_done"], sort=True):
        per_method = rows.groupby("method", sort=True)["passes"].first()
        if per_method.nunique() > 1:
            listed = ", ".join(f"{m} {int(p)}" for m, p in per_method.items())
            warnings.append(f"{dataset}, {whole_text(epochs)} epochs: the methods make different block passes per "
                            f"image per epoch ({listed}), so equal epochs are not an equal budget (a block-wise "
                            "method's classifier steps with each of its blocks); compare at equal passes with a "
                            "method's epochs key (noprop-bench methods)")


def _note_departures(ok: pd.DataFrame, warnings: list[str]) -> None:
    """A method records in ``departure`` where a run departs from the method as its paper defines it (NoProp-CT's
    uniform weight, say): the report repeats it for every group that has one."""
    if "departure" not in ok:
        return
    rows = ok[ok["departure"].map(lambda v: isinstance(v, str) and bool(v))]
    for (variant, departure), _ in rows.groupby(["variant", "departure"], sort=True):
        warnings.append(f"{variant}: {departure}")


def _note_unchecked(ok: pd.DataFrame, warnings: list[str]) -> None:
    """Rows whose method's code never passed ``noprop-bench check`` where it ran (column ``contract``) are named: a
    method that breaks the contract can reach any accuracy (by reading the test set, say)."""
    if "contract" not in ok or ok.empty:
        return
    doubtful = ok[~ok["contract"].fillna("").isin(["", "passed", "built-in"])]
    for (variant, status), _ in doubtful.groupby(["variant", "contract"], sort=True):
        warnings.append(f"{variant}: NOT CHECKED: its method's contract was {status} when it ran; run `noprop-bench "
                        "check` on it, and trust its numbers once it passes")


def _note_shared_machine(ok: pd.DataFrame, warnings: list[str]) -> None:
    """A group some of whose runs shared their machine with other work: its times (and ratios) are suspect."""
    shared = ok[shared_machine(ok)]
    for (dataset, variant), rows in shared.groupby(["dataset", "variant"], sort=True):
        total = int(((ok["dataset"] == dataset) & (ok["variant"] == variant)).sum())
        warnings.append(f"{dataset} {variant}: {len(rows)} of {total} runs shared the machine with other work "
                        f"({load_text(rows)}): their times, throughput and time ratios are suspect; rerun on an idle "
                        "machine before trusting them")


def _warn_mixed_settings(summary: pd.DataFrame, warnings: list[str]) -> None:
    counts = summary.groupby(["dataset", "method", "embedding"]).size()
    for (dataset, method, embedding), n in counts[counts > 1].items():
        warnings.append(f"{dataset} {method} {embedding}: {n} different settings (config or switches); reported as "
                        "separate rows, told apart by their setting")


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


def _or_none(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def _none_to_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
