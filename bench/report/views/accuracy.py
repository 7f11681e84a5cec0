"""The accuracy view: final test accuracy per group over seeds, beside the paper's number, as the terminal's
accuracy table and ``accuracy`` figure (seeds as points over mean ± sd). Its numbers are the summary's
(``bench.report.aggregate``), which summary.csv and summary.md hold whole."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.lines import Line2D

from bench.report import plot
from bench.report.cells import KEYS, summary_table
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

    from bench.report.aggregate import Report

COLUMNS = (*KEYS, "seeds", "test acc % mean ± sd", "se", "paper % (Δ)", "det. test acc %", "train acc %")


def terminal(report: Report) -> list[Table]:
    """The summary's accuracy columns."""
    return [summary_table(report, "Accuracy (ok runs; mean ± sd over seeds)", COLUMNS)]


def figure(report: Report, styles: plot.Styles) -> Figure | None:
    """Final test accuracy per setting and method: every seed a point, over mean ± sd; the paper's number as a
    dashed line where it has one."""
    per_seed = report.per_seed.dropna(subset=["test_acc_pct"])
    if per_seed.empty:
        return None
    panels = plot.panels(per_seed, styles)
    fig, axes = plot.panel_figure(panels)
    paper = False
    for ax, panel in zip(axes[0], panels, strict=True):
        for setting, method, rows in plot.slots(per_seed, panel):
            x, row = panel.x(setting, method), plot.summary_row(report, panel.dataset, setting, method)
            plot.seed_points(ax, x, rows["test_acc_pct"].to_numpy(), panel.width * 0.2)
            sd = row["test_acc_pct_sd"]
            ax.errorbar(x, row["test_acc_pct_mean"], yerr=None if pd.isna(sd) else sd, fmt=styles.marker(method),
                        color=styles.color(method), markeredgecolor="black", markersize=9, zorder=3, **plot.ERR)
            if not pd.isna(row["paper_test_acc_pct"]):
                paper = True
                ax.hlines(row["paper_test_acc_pct"], x - panel.width / 2, x + panel.width / 2, zorder=4,
                          **plot.PAPER_STYLE)
        panel.ticks(ax, plot.filled(per_seed, panel))
        ax.set(title=panel.dataset, xlabel="", ylabel="final test accuracy (%)")
    handles, labels = plot.method_handles(styles.present(per_seed), styles, bars=False)
    handles.append(Line2D([], [], marker="o", color="0.6", markeredgecolor="0.25", linestyle="none"))
    labels.append("a seed")
    if paper:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.8))
        labels.append("paper")
    plot.legend(fig, handles, labels)
    plot.suptitle(fig, "Final test accuracy: mean ± sd over seeds (coloured marker), seeds (grey points)"
                  + (", the paper's number (dashed)" if paper else ""))
    return fig


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [("accuracy", lambda: figure(report, styles))]


VIEW = View("accuracy", terminal=terminal, figures=figures)
