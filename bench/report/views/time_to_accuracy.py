"""The time-to-accuracy view: for each run, the training time (and epochs) after which its accuracy first reached
each target.

Read from epochs.csv: accuracy is checked after every epoch, so a run "reaches" a target at the end of the first
epoch whose accuracy is at or above it, and the time is that epoch's cumulative training time (evaluation excluded,
as everywhere). The accuracy is validation accuracy where the run has a validation split, else test accuracy (the
``measured_on`` column says which): choosing on test accuracy is optimistic, so the table labels it. A run that never
reaches a target has no time for it; a group's mean is over the runs that reached it, beside how many did.

Targets are the user's (``report --targets``), or else chosen per dataset from the data (``chosen_targets``): the
highest whole 5 % every group of the dataset reached, and the two 5 points below it, so each target is one every
method got to and the table compares how soon. A figure whose targets no run reached is not drawn (a warning says
why), rather than drawn empty.

Shown as a table (terminal and summary.md), ``time_to_accuracy.csv`` (per run and target) and the
``time_to_accuracy`` figure (accuracy against training time, targets marked). The numbers are pure: DataFrames in,
DataFrames out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from bench.formatting import MISSING, fmt
from bench.report import plot
from bench.report.cells import markdown_table, method_cell, narrow_setting, rich_table, setting_cell
from bench.report.labels import GROUP, LABELS, value_text
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

    from bench.report.aggregate import Report

NAME = "time_to_accuracy"
STEP = 5.0  # chosen targets are whole multiples of this, this far apart
CHOSEN = 3  # how many targets are chosen per dataset
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


def chosen_targets(epoch_acc: pd.DataFrame) -> dict[str, list[float]]:
    """Per dataset of ``epoch_acc`` (from `accuracy_per_epoch`), targets every group reached: the highest multiple of
    STEP at or below the best accuracy of the group that reached least, and the CHOSEN - 1 below it (above 0); a
    dataset whose weakest group stayed under STEP gets that group's best, rounded down to a whole percent."""
    chosen = {}
    for dataset, rows in epoch_acc.groupby("dataset", sort=True):
        reached = rows.groupby(GROUP, dropna=False)["acc"].max().min()
        if pd.isna(reached):
            continue
        top = STEP * (reached // STEP)
        levels = [top - STEP * k for k in range(CHOSEN) if top - STEP * k > 0]
        chosen[str(dataset)] = sorted(levels) or ([float(int(reached))] if reached >= 1 else [])
    return chosen


def per_run(epoch_acc: pd.DataFrame, targets: Sequence[float] | Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """One row per run of ``epoch_acc`` (from `accuracy_per_epoch`) and target (the same for every run, or per
    dataset): whether it was reached, and at which epoch and cumulative training time."""
    rows = []
    for _, run in epoch_acc.groupby(["results_dir", "run_id"], sort=True):
        first = run.iloc[0]
        for target in (targets.get(first["dataset"], ()) if isinstance(targets, Mapping) else targets):
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


# ------------------------------------------------------------------------------------------------ the view


@dataclass
class TimeToAccuracy:
    """The view's data: one row per ok run and target (``per_run``), per group and epoch the accuracy it reads
    (``curves``), and whether the targets were chosen from the data."""

    per_run: pd.DataFrame
    curves: pd.DataFrame
    chosen: bool = False


def data(report: Report) -> TimeToAccuracy:
    """Each ok run's accuracy per epoch, read once for the table and the figure; the report's targets, or where it
    has none, targets chosen per dataset (``chosen_targets``)."""
    epoch_acc = accuracy_per_epoch(report.runs, report.epochs)
    targets = report.targets or chosen_targets(epoch_acc)
    return TimeToAccuracy(per_run=per_run(epoch_acc, targets), curves=curves(epoch_acc), chosen=not report.targets)


LEGEND = (
    "training time (evaluation excluded) until the accuracy checked after each epoch first reached the target, mean "
    "over the runs that reached it, with the epoch count; [k/n]: only k of n runs reached it; accuracy: validation, "
    "or test where the runs had no validation split (choosing on test accuracy flatters); the headline reading "
    "(the stochastic one where inference draws noise)"
)


def _time_cell(row: pd.Series) -> str:
    if row["n_reached"] == 0:
        return "not reached"
    partial = f" [{row['n_reached']}/{row['n_runs']}]" if row["n_reached"] < row["n_runs"] else ""
    return f"{fmt(row['cum_train_time_s_mean'], '.3g')} s ({fmt(row['epoch_mean'], '.3g')} ep){partial}"


def rows(report: Report, setting: Callable[[pd.Series], str] = setting_cell) -> tuple[list[str], list[list[str]]]:
    """Per group (summary order) and accuracy measure: the time to each target, as short strings; the setting as
    ``setting`` writes it."""
    groups = per_group(report.data[NAME].per_run)
    if groups.empty:
        return [], []
    targets = sorted(groups["target_pct"].unique())
    header = ["dataset", "method", "setting", "accuracy", *(f"to {value_text(t)} %" for t in targets)]
    found = []
    for _, same in groups.groupby([*GROUP, "measured_on"], sort=False, dropna=False):
        first = same.iloc[0]
        by_target = {r["target_pct"]: _time_cell(r) for _, r in same.iterrows()}
        found.append([first["dataset"], method_cell(first), setting(first), first["measured_on"],
                      *(by_target.get(t, MISSING) for t in targets)])
    return header, found


def terminal(report: Report) -> list[Table]:
    """Narrow: the setting a line per key, each time over its epochs."""
    from rich.markup import escape

    header, found = rows(report, narrow_setting)
    if not found:
        return []
    table = rich_table("Time to accuracy", escape(LEGEND + ". " + _targets_note(report)), padding=(0, 1, 0, 0))
    for name in header:
        table.add_column(name.replace("accuracy", "acc.\non"), no_wrap=True)
    for row in found:
        cells = [row[0], row[1], row[2], *(c.replace(" (", "\n(").replace("not reached", "not\nreached")
                                           for c in row[3:])]
        table.add_row(*map(escape, cells))
    return [table]


def markdown(report: Report) -> list[str]:
    header, found = rows(report)
    if not found:
        return []
    return ["## Time to accuracy", markdown_table(header, found),
            LEGEND[0].upper() + LEGEND[1:] + ". " + _targets_note(report) + "Per run: time_to_accuracy.csv."]


def _targets_note(report: Report) -> str:
    if not report.data[NAME].chosen:
        return ""
    return (f"Targets chosen from the data: per dataset the highest whole {value_text(STEP)} % every group reached, "
            f"and the {CHOSEN - 1} below it ({value_text(STEP)} points apart; report --targets sets them). ")


def files(report: Report) -> dict[str, pd.DataFrame]:
    return {"time_to_accuracy.csv": report.data[NAME].per_run}


def figure(report: Report, styles: plot.Styles) -> Figure | None:
    """Accuracy (validation, else test) against cumulative training time, one panel per dataset and measure:
    targets as dotted lines, and where a group first reached each target (mean over the runs that did) a marker."""
    view = report.data[NAME]
    lines = view.curves.dropna(subset=["acc_mean"])
    if lines.empty:
        return None
    panels = list(lines.groupby(["dataset", "measured_on"], sort=True).groups)
    reached = per_group(view.per_run)
    reached = reached[reached["n_reached"] > 0]
    fig, axes = plot.new_figure(7.5, 3.8 * len(panels) + 0.6, len(panels), 1)
    for ax, (dataset, measure) in zip(axes[:, 0], panels, strict=True):
        data = lines[(lines["dataset"] == dataset) & (lines["measured_on"] == measure)].sort_values(GROUP)
        settings = plot.Styles(list(dict.fromkeys(data["setting"])))
        for method in styles.present(data):
            for setting, line in data[data["method"] == method].groupby("setting", sort=False):
                plot.curve(ax, line, "cum_train_time_s_mean", styles, method, settings, setting, y="acc_mean", sd=None)
        for target in sorted(view.per_run.loc[view.per_run["dataset"] == dataset, "target_pct"].unique()):
            ax.axhline(target, color="0.2", linestyle=(0, (1, 2)), linewidth=1.4, zorder=1)
            ax.annotate(f"{value_text(target)} %", (1.0, target), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8, color="0.35")
        hits = reached[(reached["dataset"] == dataset) & (reached["measured_on"] == measure)]
        for _, hit in hits.iterrows():
            ax.scatter(hit["cum_train_time_s_mean"], hit["target_pct"], s=70, marker="|", linewidths=2.2,
                       color=styles.color(hit["method"]), zorder=3)
        ax.set(title=f"{dataset}: {measure} accuracy vs training time", xlabel="cumulative training time (s)",
               ylabel=f"{measure} accuracy (%)")
        ax.set_xlim(left=0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.1, 1.0), frameon=False)
    plot.suptitle(fig, "Time to accuracy (dotted: targets; bar: where a method first reached one, mean over runs)")
    return fig


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    """The figure, unless no run reached any target: then a warning says so instead of an empty figure."""
    view = report.data[NAME]
    if not view.per_run.empty and not view.per_run["reached"].any():
        shown = ", ".join(value_text(t) for t in sorted(view.per_run["target_pct"].unique()))
        report.warnings.append(f"time_to_accuracy.png not drawn: no run reached any of the targets {shown} %; give "
                               "--targets below the runs' accuracies, or leave it out to choose them from the data")
        return []
    return [("time_to_accuracy", lambda: figure(report, styles))]


VIEW = View(NAME, data=data, terminal=terminal, markdown=markdown, files=files, figures=figures)
