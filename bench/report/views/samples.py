"""The samples view: a grid of each group's first test images with their true and predicted classes (wrong ones
marked), for every group (of any method) whose artifacts hold sample images; one ``samples_*`` figure per group,
from its lowest seed."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import seaborn as sns

from bench.report import plot
from bench.report.artifact_groups import ArtifactGroup, artifact_groups
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bench.report.aggregate import Report

NAME = "samples"
MAX_SAMPLE_IMAGES = 32


def data(report: Report) -> list[ArtifactGroup]:
    return artifact_groups(report, ["sample_images", "sample_label", "sample_pred"])


def figure(arrays: dict[str, np.ndarray], title: str, classes: tuple[str, ...] = ()) -> Figure | None:
    """A grid of test images with true and predicted classes (by name where the dataset has names); wrong ones
    framed and marked ✗."""
    images = np.asarray(arrays.get("sample_images", np.zeros((0,))))
    if images.ndim != 4 or not len(images):
        return None
    images = images[:MAX_SAMPLE_IMAGES]
    true, pred = arrays["sample_label"], arrays["sample_pred"]
    cols = min(len(images), 8)
    rows = math.ceil(len(images) / cols)
    fig, axes = plot.new_figure(max(1.3 * cols, 6.0), 1.55 * rows + 0.6, rows, cols)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(images):
            ax.axis("off")
            continue
        _sample(ax, images[k], _name(classes, int(true[k])), _name(classes, int(pred[k])))
    plot.suptitle(fig, f"Test images: true and predicted class (wrong ones framed, ✗)\n{title}")
    return fig


def _name(classes: tuple[str, ...], label: int) -> str:
    return classes[label] if 0 <= label < len(classes) else str(label)


def _sample(ax: Any, image: np.ndarray, true: str, pred: str) -> None:
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(np.transpose(image, (1, 2, 0)))
    wrong = true != pred
    ax.set_title(f"true {true}\npred {pred}{' ✗' if wrong else ''}", fontsize=8,
                 fontweight="bold" if wrong else "normal")
    ax.grid(False)
    for spine in ax.spines.values():  # a vermilion frame shows on black and white images alike (and in grey)
        spine.set_visible(wrong)
        spine.set_linewidth(3)
        spine.set_edgecolor(sns.color_palette("colorblind")[3])


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [(g.file("samples"), lambda g=g: figure(g.arrays[0], f"{g.title}, seed {g.seeds[0]}", g.classes))
            for g in report.data[NAME]]


VIEW = View(NAME, data=data, figures=figures)
