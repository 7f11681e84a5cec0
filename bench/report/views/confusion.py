"""The confusion view: each group's confusion matrix over the test set, summed over its seeds, for every group
(of any method) whose artifacts hold its test predictions; one ``confusion_*`` figure per group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import seaborn as sns

from bench.report import plot
from bench.report.artifact_groups import ArtifactGroup, artifact_groups
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bench.report.aggregate import Report

NAME = "confusion"


def data(report: Report) -> list[ArtifactGroup]:
    return artifact_groups(report, ["label", "pred"])


def figure(all_arrays: list[dict[str, np.ndarray]], title: str, classes: tuple[str, ...] = ()) -> Figure | None:
    """The confusion matrix, summed over the seeds' test predictions (first inference repeat); the classes named
    where the dataset has names (``classes``) and there are at most 20 of them."""
    pairs = [(np.asarray(a["label"], dtype=np.int64), np.asarray(a["pred"], dtype=np.int64)) for a in all_arrays]
    pairs = [(y, p) for y, p in pairs if y.size and y.shape == p.shape]
    if not pairs:
        return None
    names = classes
    embedding = all_arrays[0].get("embedding")  # its rows are the classes, some of which no test image may show
    known = int(embedding.shape[0]) if embedding is not None else 0
    classes = max(known, *(int(max(y.max(), p.max())) + 1 for y, p in pairs))
    counts = np.zeros((classes, classes), dtype=np.int64)
    for y, p in pairs:
        np.add.at(counts, (y, p), 1)
    totals = counts.sum(axis=1, keepdims=True)
    percent = np.divide(100.0 * counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    small = classes <= 20
    named = small and len(names) >= classes
    side = (6.5 if named else 5.5) if small else 9.0
    fig, axes = plot.new_figure(side + 1.0, side + 0.4)
    ax = axes[0, 0]
    ticks: object = list(names[:classes]) if named else (1 if small else 10)
    sns.heatmap(percent, ax=ax, cmap=plot.SEQUENTIAL, vmin=0, vmax=100, square=True, annot=counts if small else False,
                fmt="d", annot_kws={"fontsize": 8}, cbar_kws={"label": "% of the true class"},
                xticklabels=ticks, yticklabels=ticks, linewidths=0.3 if small else 0)
    if named:  # names upright on the rows; turned on the columns, so neighbours never touch
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
    ax.set(xlabel="predicted class", ylabel="true class")
    n = sum(len(y) for y, _ in pairs)
    plot.suptitle(fig, f"Confusion matrix ({'counts; ' if small else ''}colour: % of true class)\n"
                       f"{title}, {len(pairs)} seed(s), {n} test predictions")
    return fig


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [(g.file("confusion"), lambda g=g: figure(g.arrays, g.title, g.classes)) for g in report.data[NAME]]


VIEW = View(NAME, data=data, figures=figures)
