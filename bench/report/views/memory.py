"""The memory view: peak memory per group and seed (CUDA allocated and reserved where measured, else the CPU RSS the
run added above what its process started from, or the whole peak RSS for rows without the start) and the activations
autograd saves for backward in one step, as the ``memory`` figure, with the paper's GPU figures where it has them.
The means and the ratios to the baseline are in the summary's cost columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.report import plot
from bench.report.labels import GROUP, LABELS
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bench.report.aggregate import Report

NAME = "memory"
COLUMNS = [*GROUP, *LABELS, "seed", "measure", "mb"]
MEASURE_LABELS = {  # per-seed value -> the measure it is
    "peak_cuda_allocated_mb": "CUDA allocated",
    "peak_cuda_reserved_mb": "CUDA reserved",
    "rss_above_start_mb": "RSS above start (CPU)",
    "peak_rss_mb": "RSS (CPU)",
}
MEASURE_HATCHES = {"CUDA allocated": "", "CUDA reserved": "//", "RSS above start (CPU)": "..", "RSS (CPU)": "xx"}


def cpu_measure(row: pd.Series) -> str:
    """The RSS a row is shown by: what the run added above its process's start, where it recorded the start (Python
    and torch alone are most of a small run's peak), else the whole peak."""
    return "rss_above_start_mb" if not pd.isna(row["rss_above_start_mb"]) else "peak_rss_mb"


def data(report: Report) -> pd.DataFrame:
    """Peak memory per group and seed in MB, long form: CUDA allocated and reserved where measured, else CPU RSS
    (``cpu_measure``)."""
    rows = []
    for _, r in report.per_seed.iterrows():
        on_cuda = not pd.isna(r["peak_cuda_allocated_mb"])
        names = ("peak_cuda_allocated_mb", "peak_cuda_reserved_mb") if on_cuda else (cpu_measure(r),)
        rows += [[*r[[*GROUP, *LABELS, "seed"]], MEASURE_LABELS[name], r[name]] for name in names
                 if not pd.isna(r[name])]
    return pd.DataFrame(rows, columns=COLUMNS)


def figure(report: Report, styles: plot.Styles) -> Figure | None:
    """Peak memory per setting and method in MB (CUDA allocated and reserved, else CPU RSS; hatch tells the
    measure), with the paper's GPU figures dashed where it has them; below, the bytes autograd saves for backward
    in one training step, which differ most between the methods where a CPU's peak RSS barely does."""
    memory = report.data[NAME]
    saved = report.per_seed.dropna(subset=["peak_saved_activation_mb"])
    if memory.empty and saved.empty:
        return None
    both = pd.concat([memory[[*GROUP, "setting"]],
                      saved[[*GROUP, "setting"]]])
    panels = plot.panels(both, styles)
    kinds = [m for m in MEASURE_HATCHES if m in set(memory["measure"])]
    rows = [name for name, frame in (("peak", memory), ("saved", saved)) if not frame.empty]
    fig, axes = plot.panel_figure(panels, rows=len(rows), row_height=3.4, bars_per_method=max(len(kinds), 1))
    paper = False
    for column, panel in enumerate(panels):
        for r, name in enumerate(rows):
            ax = axes[r, column]
            if name == "peak":
                paper |= _peak_panel(ax, panel, memory, report, styles)
            else:
                _saved_panel(ax, panel, saved, styles)
            panel.ticks(ax, plot.filled(memory if name == "peak" else saved, panel))
    # hatch tells the measure here, so the methods' handles go without theirs
    handles, labels = plot.method_handles(styles.present(both), styles, bars=True, hatched=False)
    for kind in kinds:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=MEASURE_HATCHES[kind]))
        labels.append(f"peak {kind}")
    if paper:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.8))
        labels.append("paper: peak GPU memory")
    plot.legend(fig, handles, labels)
    plot.suptitle(fig, "Peak memory per method (bars: mean ± sd over seeds; on a CPU the RSS a run added above its "
                  "process's start)"
                  + ("; below: activations saved for backward in one training step" if "saved" in rows else ""))
    return fig


def _peak_panel(ax: Any, panel: plot.Panel, memory: pd.DataFrame, report: Report, styles: plot.Styles) -> bool:
    """Bars per measure in each method's slot; returns whether a paper line was drawn."""
    kinds = [m for m in MEASURE_HATCHES if m in set(memory.loc[memory["dataset"] == panel.dataset, "measure"])]
    paper = False
    for setting, method, rows in plot.slots(memory, panel):
        x, bar = panel.x(setting, method), panel.width / max(len(kinds), 1)
        for k, kind in enumerate(kinds):
            values = rows.loc[rows["measure"] == kind, "mb"]
            if not values.empty:
                plot.bar(ax, x + (k - (len(kinds) - 1) / 2) * bar, bar * 0.9, values, styles.color(method),
                         MEASURE_HATCHES[kind])
        row = plot.summary_row(report, panel.dataset, setting, method)  # the paper's GPU figure: on CUDA only
        if row is not None and not pd.isna(row["paper_peak_gpu_mb"]) and "CUDA allocated" in set(rows["measure"]):
            paper = True
            ax.hlines(row["paper_peak_gpu_mb"], x - panel.width / 2, x + panel.width / 2, zorder=4,
                      **plot.PAPER_STYLE)
    ax.set(title=f"{panel.dataset}: peak memory", xlabel="", ylabel="peak memory (MB)")
    return paper


def _saved_panel(ax: Any, panel: plot.Panel, saved: pd.DataFrame, styles: plot.Styles) -> None:
    """Bars labelled with their value: methods can differ tenfold, so a short bar is still read."""
    for setting, method, rows in plot.slots(saved, panel):
        values = rows["peak_saved_activation_mb"]
        plot.bar(ax, panel.x(setting, method), panel.width * 0.9, values, styles.color(method), "")
        mean = values.mean()
        ax.annotate(f"{mean:.3g}", (panel.x(setting, method), mean), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    ax.margins(y=0.12)
    ax.set(title=f"{panel.dataset}: saved activations", xlabel="", ylabel="saved for backward, one step (MB)")


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [("memory", lambda: figure(report, styles))]


VIEW = View(NAME, data=data, figures=figures)
