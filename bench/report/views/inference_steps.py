"""The inference-steps view: test accuracy and time against the ODE step count, for runs whose inference
integrates an ODE and that measured a sweep (config ``ode_steps_sweep``): the curve a user reads to choose
``ode_steps``.

Such a run stored, per step count, the test accuracy of one seeded inference pass (the same noise at every count)
and that pass's time (``bench.results.artifacts``). Shown as a table (terminal and summary.md),
``inference_steps.csv`` (per run and step count) and the ``inference_steps`` figure, and only for reports with such
runs (no warning for the others). The numbers are pure: frames and arrays in, frames out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.formatting import fmt, mean_sd
from bench.report import plot
from bench.report.cells import markdown_table, method_cell, rich_table, setting_cell
from bench.report.labels import GROUP, LABELS
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

    from bench.report.aggregate import Report

NAME = "inference_steps"
PER_RUN_COLUMNS = [*GROUP, *LABELS, "seed", "run_id", "integrator", "steps", "test_acc_pct", "infer_s",
                   "infer_ms_per_image"]
PER_GROUP_COLUMNS = [*GROUP, *LABELS, "integrator", "steps", "n_runs", "test_acc_pct_mean", "test_acc_pct_sd",
                     "infer_ms_per_image_mean"]
HEADER = ["dataset", "method", "setting", "integrator", "steps", "runs", "test acc % mean ± sd", "infer ms/img"]
LEGEND = ("test accuracy of one seeded inference pass per run at each ODE step count (the same noise at every "
          "count), and that pass's time per image; mean over runs")


def per_run(runs: pd.DataFrame, found: Mapping[tuple[str, str], Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """One row per run and step count, for the runs whose artifacts (by (results_dir, run_id)) hold a sweep."""
    rows = []
    for _, run in runs.iterrows():
        arrays = found.get((str(run["results_dir"]), str(run["run_id"])))
        if arrays is None or "sweep_steps" not in arrays:
            continue
        images = len(arrays["label"])
        for steps, acc, seconds in zip(arrays["sweep_steps"], arrays["sweep_test_acc"], arrays["sweep_infer_s"],
                                       strict=True):
            rows.append([*run[[*GROUP, *LABELS, "seed", "run_id", "integrator"]], int(steps), float(acc),
                         float(seconds), 1000 * float(seconds) / images if images else np.nan])
    return pd.DataFrame(rows, columns=PER_RUN_COLUMNS)


def per_group(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean (and sd over runs) per group, integrator and step count."""
    if frame.empty:
        return pd.DataFrame(columns=PER_GROUP_COLUMNS)
    grouped = frame.groupby([*GROUP, *LABELS, "integrator", "steps"], sort=True, dropna=False)
    out = grouped.agg(n_runs=("run_id", "size"), test_acc_pct_mean=("test_acc_pct", "mean"),
                      test_acc_pct_sd=("test_acc_pct", "std"), infer_ms_per_image_mean=("infer_ms_per_image", "mean"))
    return out.reset_index()[PER_GROUP_COLUMNS]


def data(report: Report) -> pd.DataFrame:
    return per_run(report.runs, report.artifacts)


def rows(report: Report) -> list[list[str]]:
    """Per group and step count (``HEADER``), from the runs that measured a step sweep."""
    groups = per_group(report.data[NAME])
    return [[r["dataset"], method_cell(r), setting_cell(r), r["integrator"], str(int(r["steps"])),
             str(int(r["n_runs"])), mean_sd(r["test_acc_pct_mean"], r["test_acc_pct_sd"]),
             fmt(r["infer_ms_per_image_mean"], ".3g")] for _, r in groups.iterrows()]


def terminal(report: Report) -> list[Table]:
    """The setting a line per key, to stay narrow."""
    from rich.markup import escape

    found = rows(report)
    if not found:
        return []
    table = rich_table("Inference steps", escape(LEGEND), padding=(0, 1, 0, 0))
    for name in HEADER:
        table.add_column(name.replace("test acc % ", "test acc %\n"), no_wrap=True)
    for row in found:
        table.add_row(*(escape(cell.replace(", ", "\n") if i == 2 else cell) for i, cell in enumerate(row)))
    return [table]


def markdown(report: Report) -> list[str]:
    found = rows(report)
    if not found:
        return []
    return ["## Inference steps", markdown_table(HEADER, found),
            LEGEND[0].upper() + LEGEND[1:] + ". Per run: inference_steps.csv."]


def files(report: Report) -> dict[str, pd.DataFrame]:
    frame = report.data[NAME]
    return {} if frame.empty else {"inference_steps.csv": frame}


def figure(report: Report, styles: plot.Styles) -> Figure | None:
    """Test accuracy and inference time per image against the ODE step count (log scale), one line per group and
    integrator. None when no run measured a step sweep."""
    groups = per_group(report.data[NAME])
    if groups.empty:
        return None
    fig, axes = plot.new_figure(11, 4.2, ncols=2)
    lines = groups.groupby(["dataset", "method", "setting", "integrator"], sort=True)
    settings = plot.Styles(sorted(groups["setting"].unique()))
    for (dataset, method, setting, integrator), line in lines:
        label = f"{method} {integrator}" + (f"\n{textwrap.fill(setting, 28)}" if len(settings.index) > 1 else "")
        label += f" ({dataset})" if groups["dataset"].nunique() > 1 else ""
        style = dict(color=styles.color(method), marker=styles.marker(method), fillstyle=settings.fill(setting),
                     linestyle="--" if integrator == "heun" else settings.linestyle(setting), markersize=6)
        axes[0, 0].plot(line["steps"], line["test_acc_pct_mean"], label=label, **style)
        axes[0, 1].plot(line["steps"], line["infer_ms_per_image_mean"], **style)
    for ax, ylabel in ((axes[0, 0], "test accuracy (%)"), (axes[0, 1], "inference time per image (ms)")):
        ax.set_xlabel("ODE steps at inference")
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8)
    for ax, axis in ((axes[0, 0], "x"), (axes[0, 1], "x"), (axes[0, 1], "y")):
        plot.log_axis(ax, axis)
    plot.suptitle(fig, "Inference steps: accuracy and time (one seeded pass per run and step count; mean over runs)")
    return fig


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    """Only where runs swept steps: no 'not drawn' warning for the others."""
    return [] if report.data[NAME].empty else [("inference_steps", lambda: figure(report, styles))]


VIEW = View(NAME, data=data, terminal=terminal, markdown=markdown, files=files, figures=figures)
