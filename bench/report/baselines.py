"""What each method is measured against: the "vs baseline" ratios of summary.csv and the order of the methods in
the figures, both from the runs' ``baseline`` column (the matched baseline a method declares, filled by
``bench.report.load``; ``report --baseline NAME`` replaces it), so no method name is written into the report.

A ratio is a method group's mean over the mean of its baseline's group of the same dataset, embedding, config and
switches (else the closest other group of that baseline with the same dataset and embedding, flagged); it sits on
the method's row, beside ``baseline`` (which method) and ``baseline_config_hash`` (which of its groups). Pure:
DataFrames in, DataFrames out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.report.labels import config_text, describe
from bench.results.schema import SWITCH_COLUMNS

RATIO_COLUMNS = {  # summary column of the ratio -> the mean it divides
    "time_per_epoch_ratio_to_baseline": "time_per_epoch_s_mean",
    "epoch_time_median_ratio_to_baseline": "epoch_time_median_s_mean",
    "peak_cuda_allocated_ratio_to_baseline": "peak_cuda_allocated_mb_mean",
    "peak_cuda_reserved_ratio_to_baseline": "peak_cuda_reserved_mb_mean",
    "peak_rss_ratio_to_baseline": "peak_rss_mb_mean",
    "rss_above_start_ratio_to_baseline": "rss_above_start_mb_mean",
    "peak_saved_activation_ratio_to_baseline": "peak_saved_activation_mb_mean",
}
# summary.csv columns of reports written before the ratios were named by what they divide by -> today's names
LEGACY_COLUMNS = {
    **{name.replace("_to_baseline", "_noprop_to_backprop"): name for name in RATIO_COLUMNS},
    "ratio_backprop_config_hash": "baseline_config_hash",
}


def override(runs: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """``report --baseline NAME``: every other method is measured against NAME, and NAME against none."""
    if not baseline:
        return runs
    return runs.assign(baseline=np.where(runs["method"] == baseline, "", baseline).astype(object))


def registry_rank(methods: list[str]) -> dict[str, int]:
    """Every method's place in the one order of all methods: the registry's (built-ins, then installed plug-ins),
    then any other name in ``methods`` (a plug-in not installed here) by name. The same whoever else is present."""
    from bench.run.config import REGISTRY

    known = list(REGISTRY.methods)
    unknown = sorted(set(methods) - set(known))
    return {name: i for i, name in enumerate([*known, *unknown])}


def method_order(runs: pd.DataFrame) -> list[str]:
    """The methods of ``runs`` in the order of every figure's slots and legends: each family together (a method
    measured against no other, with the methods measured against it, and theirs), each method just before the one it
    is measured against, so a method sits next to its baseline; families and the methods within one in
    ``registry_rank`` order."""
    baseline_of = runs.drop_duplicates("method").set_index("method")["baseline"].to_dict()
    rank = registry_rank(list(baseline_of))
    children: dict[str, list[str]] = {}
    roots = []
    for method in sorted(baseline_of, key=rank.__getitem__):
        parent = baseline_of[method]
        if parent and parent in baseline_of and parent != method and not _in_cycle(method, baseline_of):
            children.setdefault(parent, []).append(method)
        else:
            roots.append(method)

    def family(method: str) -> list[str]:
        return [m for child in children.get(method, []) for m in family(child)] + [method]

    return [m for root in roots for m in family(root)]


def _in_cycle(method: str, baseline_of: dict[str, str]) -> bool:
    """Whether following baselines from ``method`` comes back to it (then it starts a family of its own)."""
    seen, current = {method}, baseline_of.get(method)
    while current and current in baseline_of:
        if current in seen:
            return current == method
        seen.add(current)
        current = baseline_of[current]
    return False


def with_ratios(summary: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """The ratios of time per epoch and memory on each row whose method has a baseline; other rows stay empty."""
    summary = summary.copy()
    for column in RATIO_COLUMNS:
        summary[column] = math.nan
    summary["baseline_config_hash"] = ""
    lone = _lone_datasets(summary, warnings)
    for index, row in summary[summary["baseline"] != ""].iterrows():
        match = _match(row, summary, row["dataset"] in lone, warnings)
        if match is None:
            continue
        for ratio, mean in RATIO_COLUMNS.items():
            summary.loc[index, ratio] = row[mean] / match[mean] if match[mean] else math.nan
        summary.loc[index, "baseline_config_hash"] = match["config_hash"]
    return summary


def _lone_datasets(summary: pd.DataFrame, warnings: list[str]) -> set[str]:
    """Datasets with one method only: nothing to compare, said once per dataset instead of once per group."""
    lone = set()
    for dataset, rows in summary.groupby("dataset"):
        methods = sorted(set(rows["method"]))
        if len(methods) == 1:
            lone.add(dataset)
            warnings.append(f"{dataset}: only {methods[0]} has ok runs, so there is nothing to compare it with "
                            "(ratios left empty)")
    return lone


def _match(row: pd.Series, summary: pd.DataFrame, lone: bool, warnings: list[str]) -> pd.Series | None:
    """The baseline group a group is divided by: same dataset, embedding, config and switches, else the closest
    other (same config first, then most seeds), with a warning."""
    baseline = row["baseline"]
    candidates = summary[(summary["method"] == baseline) & (summary["dataset"] == row["dataset"])
                         & (summary["embedding"] == row["embedding"])]
    if candidates.empty:
        if not lone:
            warnings.append(f"{describe(row)}: no ok {baseline} run with the same dataset and embedding; "
                            "ratios left empty")
        return None
    same = (candidates[["config_hash", *SWITCH_COLUMNS]] == row[["config_hash", *SWITCH_COLUMNS]]).all(axis=1)
    if same.any():
        return candidates[same].iloc[0]
    ranked = candidates.assign(same_config=candidates["config_hash"] == row["config_hash"])
    match = ranked.sort_values(["same_config", "n_seeds", "config_hash"], ascending=[False, False, True]).iloc[0]
    warnings.append(f"{describe(row)}: no {baseline} run with the same config and switches; ratios use {baseline} "
                    f"{config_text(match)} (compare with care)")
    return match


def baseline_row(row: pd.Series, summary: pd.DataFrame) -> pd.Series | None:
    """The summary row of the baseline group ``row`` is measured against, as ``with_ratios`` chose it (its
    warnings were given there); None for a method without a baseline or without one in ``summary``."""
    if not row["baseline"]:
        return None
    return _match(row, summary, lone=True, warnings=[])
