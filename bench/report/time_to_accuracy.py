"""Time to accuracy: for each run, the training time (and epochs) after which its accuracy first reached each target.

Read from epochs.csv: accuracy is checked after every epoch, so a run "reaches" a target at the end of the first
epoch whose accuracy is at or above it, and the time is that epoch's cumulative training time (evaluation excluded,
as everywhere). The accuracy is validation accuracy where the run has a validation split, else test accuracy (the
``measured_on`` column says which): choosing on test accuracy is optimistic, so the table labels it. A run that never
reaches a target has no time for it; a group's mean is over the runs that reached it, beside how many did.

Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.report.labels import GROUP, LABELS

DEFAULT_TARGETS = (80.0, 85.0, 90.0)
RUN_COLUMNS = [*GROUP, *LABELS, "results_dir", "run_id", "seed", "target_pct", "measured_on", "reached",
               "epoch", "cum_train_time_s"]
GROUP_COLUMNS = [*GROUP, *LABELS, "target_pct", "measured_on", "n_runs", "n_reached", "epoch_mean",
                 "cum_train_time_s_mean", "cum_train_time_s_sd"]


def parse_targets(text: str) -> list[float]:
    """``"80,85"`` -> [80.0, 85.0]; ValueError naming the bad entry when one is not a percentage in (0, 100]."""
    targets = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part.rstrip("%"))
        except ValueError:
            raise ValueError(f"target '{part}' is not a number (give percentages, e.g. 80,85)") from None
        if not 0 < value <= 100:
            raise ValueError(f"target {part} is not a percentage in (0, 100]")
        targets.append(value)
    if not targets:
        raise ValueError("give at least one target accuracy, e.g. 80,85")
    return sorted(set(targets))


def accuracy_per_epoch(ok: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """One row per ok run and epoch: group key, labels, seed, epoch, cum_train_time_s, and ``acc`` with
    ``measured_on`` ("val" for a run with validation accuracy in any epoch, else "test")."""
    ids = ["results_dir", "run_id"]
    columns = [*GROUP, *LABELS, *ids, "seed", "epoch", "cum_train_time_s", "acc", "measured_on"]
    if ok.empty or epochs.empty:
        return pd.DataFrame(columns=columns)
    rows = epochs[[*ids, "epoch", "val_acc", "test_acc", "cum_train_time_s"]].merge(
        ok[[*ids, *GROUP, *LABELS, "seed"]], on=ids, how="inner")
    rows = rows.astype({"epoch": "float64", "val_acc": "float64", "test_acc": "float64",
                        "cum_train_time_s": "float64"})
    has_val = rows.groupby(ids)["val_acc"].transform(lambda v: v.notna().any())
    rows["measured_on"] = has_val.map({True: "val", False: "test"})
    rows["acc"] = rows["val_acc"].where(has_val, rows["test_acc"])
    return rows.sort_values([*ids, "epoch"])[columns].reset_index(drop=True)


def per_run(epoch_acc: pd.DataFrame, targets: Sequence[float]) -> pd.DataFrame:
    """One row per run of ``epoch_acc`` (from `accuracy_per_epoch`) and target: whether it was reached, and at
    which epoch and cumulative training time."""
    rows = []
    for _, run in epoch_acc.groupby(["results_dir", "run_id"], sort=True):
        first = run.iloc[0]
        for target in targets:
            hit = run[run["acc"] >= target]
            reached = not hit.empty
            rows.append({**{c: first[c] for c in [*GROUP, *LABELS, "results_dir", "run_id", "seed", "measured_on"]},
                         "target_pct": float(target), "reached": reached,
                         "epoch": int(hit["epoch"].iloc[0]) if reached else None,
                         "cum_train_time_s": float(hit["cum_train_time_s"].iloc[0]) if reached else None})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def per_group(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per group and target: runs, runs that reached it, and the mean (sd) epoch and time over those."""
    if runs.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    frame = runs.assign(epoch=runs["epoch"].astype("float64"),
                        cum_train_time_s=runs["cum_train_time_s"].astype("float64"))
    grouped = frame.groupby([*GROUP, *LABELS, "target_pct", "measured_on"], sort=True, dropna=False)
    table = grouped.agg(n_runs=("run_id", "size"), n_reached=("reached", "sum"), epoch_mean=("epoch", "mean"),
                        cum_train_time_s_mean=("cum_train_time_s", "mean"),
                        cum_train_time_s_sd=("cum_train_time_s", "std")).reset_index()
    table["n_reached"] = table["n_reached"].astype("int64")
    return table[GROUP_COLUMNS]


def curves(epoch_acc: pd.DataFrame) -> pd.DataFrame:
    """Per group, measure and epoch of ``epoch_acc`` (from `accuracy_per_epoch`): the mean accuracy and mean
    cumulative training time over the group's runs (what the accuracy-vs-time figure draws)."""
    columns = [*GROUP, *LABELS, "measured_on", "epoch", "n_runs", "acc_mean", "cum_train_time_s_mean"]
    if epoch_acc.empty:
        return pd.DataFrame(columns=columns)
    grouped = epoch_acc.groupby([*GROUP, *LABELS, "measured_on", "epoch"], sort=True, dropna=False)
    table = grouped.agg(n_runs=("run_id", "size"), acc_mean=("acc", "mean"),
                        cum_train_time_s_mean=("cum_train_time_s", "mean")).reset_index()
    table["epoch"] = table["epoch"].astype("int64")
    return table[columns]
