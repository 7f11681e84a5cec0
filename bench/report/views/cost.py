"""The cost view: what a method costs to train and to run, per group over seeds (time per epoch, throughput,
inference time, peak memory, each against the method's baseline), as the terminal's cost table and the
``throughput`` figure. Its numbers are the summary's (``bench.report.aggregate``), which summary.csv and summary.md
hold whole."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.report import plot
from bench.report.cells import KEYS, summary_table
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

    from bench.report.aggregate import Report

COLUMNS = (*KEYS, "s/epoch", "median s/epoch", "samples/s", "infer ms/img", "peak MB", "paper GPU MB",
           "time / base", "mem / base")
LEGEND = (  # under the cost table, for both summary tables
    "mean ± sd and se over seeds (sd: sample, ddof = 1; \"-\" for one seed); setting: what tells a group apart "
    "from the others of its dataset (as the figures and file names say; summary.md maps it to its config); det. "
    "test %: the deterministic reading of the same weights (z_0 = 0, no injected "
    "noise; the headline is the stochastic one); s/ep mean, med.: mean and median epoch (training steps only), "
    "averaged over seeds; infer ms/img: one test pass divided by its images (ODE steps in parentheses); "
    "peak MB: CUDA allocated / reserved, or CPU RSS as the run's own + its process's start (Python, torch; MB = 2^20 "
    "bytes); time/base, mem/base: time per epoch and peak memory (the run's own RSS on a CPU) over those of the "
    "method's baseline (summary.md names it). summary.md has every column (saved "
    "activations among them); a column empty in every row is left out here."
)


def terminal(report: Report) -> list[Table]:
    """The summary's cost columns, with the legend of both summary tables."""
    return [summary_table(report, "Cost", COLUMNS, LEGEND)]


def figure(report: Report, styles: plot.Styles) -> Figure | None:
    """Training throughput per setting and method (samples/s; for NoProp-DT a sample trains all T blocks once)."""
    per_seed = report.per_seed.dropna(subset=["samples_per_s"])
    if per_seed.empty:
        return None
    panels = plot.panels(per_seed, styles)
    fig, axes = plot.panel_figure(panels)
    for ax, panel in zip(axes[0], panels, strict=True):
        for setting, method, rows in plot.slots(per_seed, panel):
            plot.bar(ax, panel.x(setting, method), panel.width * 0.9, rows["samples_per_s"], styles.color(method),
                     styles.hatch(method))
            plot.seed_points(ax, panel.x(setting, method), rows["samples_per_s"].to_numpy(), panel.width * 0.15)
        panel.ticks(ax, plot.filled(per_seed, panel))
        ax.set(title=panel.dataset, xlabel="", ylabel="training throughput (samples/s)")
    plot.legend(fig, *plot.method_handles(styles.present(per_seed), styles, bars=True))
    plot.suptitle(fig, "Training throughput (bars: mean ± sd over seeds; points: seeds)")
    return fig


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [("throughput", lambda: figure(report, styles))]


VIEW = View("cost", terminal=terminal, figures=figures)
