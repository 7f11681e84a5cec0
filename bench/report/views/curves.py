"""The curves view: test accuracy after every epoch, per group (mean and sd over runs), against the epoch and
against cumulative training time, as the ``curves`` figure. From epochs.csv."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bench.report import plot
from bench.report.labels import GROUP, LABELS
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bench.report.aggregate import Report

NAME = "curves"
COLUMNS = [*GROUP, *LABELS, "epoch", "n_runs", "test_acc_pct_mean", "test_acc_pct_sd", "cum_train_time_s_mean"]


def data(report: Report) -> pd.DataFrame:
    """Test accuracy per group and epoch: mean and sd over runs, with the mean cumulative training time (s)."""
    ok, epochs = report.runs, report.epochs
    if ok.empty or epochs.empty:
        return pd.DataFrame(columns=COLUMNS)
    meta = ok[["results_dir", "run_id", *GROUP, *LABELS]]
    rows = epochs[["results_dir", "run_id", "epoch", "test_acc", "cum_train_time_s"]].merge(
        meta, on=["results_dir", "run_id"], how="inner")
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = rows.assign(epoch=rows["epoch"].astype("float64"), test_acc=rows["test_acc"].astype("float64"),
                       cum_train_time_s=rows["cum_train_time_s"].astype("float64"))
    grouped = rows.groupby([*GROUP, *LABELS, "epoch"], sort=True, dropna=False)
    curves = grouped.agg(
        n_runs=("run_id", "size"), test_acc_pct_mean=("test_acc", "mean"), test_acc_pct_sd=("test_acc", "std"),
        cum_train_time_s_mean=("cum_train_time_s", "mean"),
    ).reset_index()
    curves["epoch"] = curves["epoch"].astype("int64")
    return curves[COLUMNS]


def figure(report: Report, styles: plot.Styles) -> Figure | None:
    """Test accuracy vs epoch and vs cumulative training time: mean line, band = ± sd across seeds."""
    curves = report.data[NAME].dropna(subset=["test_acc_pct_mean"])
    if curves.empty:
        return None
    datasets = sorted(curves["dataset"].unique())
    fig, axes = plot.new_figure(12.5, 3.6 * len(datasets) + 0.6, len(datasets), 2)
    for row_axes, dataset in zip(axes, datasets, strict=True):
        data = curves[curves["dataset"] == dataset].sort_values(GROUP)
        settings = plot.Styles(list(dict.fromkeys(data["setting"])))
        for ax, x, xlabel in ((row_axes[0], "epoch", "epoch"),
                              (row_axes[1], "cum_train_time_s_mean", "cumulative training time (s)")):
            for method in styles.present(data):
                for setting, line in data[data["method"] == method].groupby("setting", sort=False):
                    plot.curve(ax, line.sort_values("epoch"), x, styles, method, settings, setting)
            ax.set(title=f"{dataset}: test accuracy vs {xlabel.split(' (')[0]}", xlabel=xlabel,
                   ylabel="test accuracy (%)")
        if data["epoch"].max() <= 20:
            row_axes[0].set_xticks(sorted(data["epoch"].unique()))
        seconds = data["cum_train_time_s_mean"][data["cum_train_time_s_mean"] > 0]
        if len(seconds) and seconds.max() > 20 * seconds.min():  # settings minutes apart: each still readable
            plot.log_axis(row_axes[1], "x")
            row_axes[1].set_xlabel("cumulative training time (s, log scale)")
        row_axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    plot.suptitle(fig, "Test accuracy during training (line: mean over seeds; band: ± sd)")
    return fig


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [("curves", lambda: figure(report, styles))]


VIEW = View(NAME, data=data, figures=figures)
