"""The embeddings view: each group's trained class embeddings, prototypes as images (as the paper's Figure 2) and
vectors as a 2-D PCA, for groups with a trained embedding (learned or prototype) whose artifacts hold it, of any
method; one ``embeddings_*`` figure per group, from its lowest seed."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import seaborn as sns

from bench.report import plot
from bench.report.artifact_groups import ArtifactGroup, artifact_groups
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bench.report.aggregate import Report

NAME = "embeddings"
TRAINED = ("learned", "prototype")  # embeddings that training changes (one-hot is fixed: nothing to show)


def data(report: Report) -> list[ArtifactGroup]:
    return [g for g in artifact_groups(report, ["embedding"]) if g.embedding in TRAINED]


def figure(arrays: dict[str, np.ndarray], title: str, classes: tuple[str, ...] = ()) -> Figure | None:
    """Trained class embeddings: prototypes as images (as the paper's Figure 2), vectors as a 2-D PCA; each class
    by its name where the dataset has names."""
    embedding = np.asarray(arrays["embedding"], dtype=np.float64)
    shape = tuple(int(s) for s in arrays.get("image_shape", ()))
    kind = str(arrays.get("embedding_kind", ""))
    names = [classes[k] if k < len(classes) else str(k) for k in range(embedding.shape[0])]
    if kind == "prototype" and shape and math.prod(shape) == embedding.shape[1]:
        return _prototype_images(embedding, shape, title, names)
    return _pca_scatter(embedding, title, names)


def _prototype_images(embedding: np.ndarray, shape: tuple[int, ...], title: str, names: list[str]) -> Figure:
    classes = embedding.shape[0]
    cols = min(classes, 10)
    rows = math.ceil(classes / cols)
    fig, axes = plot.new_figure(max(1.25 * cols, 6.0), 1.45 * rows + 0.6, rows, cols)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= classes:
            continue
        image = embedding[k].reshape(shape)
        lo, hi = image.min(), image.max()
        image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
        if shape[0] == 1:
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(np.transpose(image, (1, 2, 0)))
        ax.set_title(names[k], fontsize=9)
    plot.suptitle(fig, f"Trained prototype embeddings (one per class, each scaled to its own range)\n{title}")
    return fig


def _pca_scatter(embedding: np.ndarray, title: str, names: list[str]) -> Figure:
    centred = embedding - embedding.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(len(coords))])
    variance = singular**2 / max(float((singular**2).sum()), 1e-30)
    variance = np.pad(variance, (0, max(0, 2 - len(variance))))
    fig, axes = plot.new_figure(6.0, 5.4)
    ax = axes[0, 0]
    sns.scatterplot(x=coords[:, 0], y=coords[:, 1], ax=ax, color="0.3", s=40, edgecolor="black")
    size = 9 if len(coords) <= 20 else 6
    for k, (x, y) in enumerate(coords):
        ax.annotate(names[k], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=size)
    ax.set(xlabel=f"PC 1 ({100 * variance[0]:.0f} % of variance; embedding units)",
           ylabel=f"PC 2 ({100 * variance[1]:.0f} % of variance; embedding units)")
    plot.suptitle(fig, f"Trained class embeddings, 2-D PCA (each point a class)\n{title}")
    return fig


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [(g.file("embeddings"), lambda g=g: figure(g.arrays[0], f"{g.title}, seed {g.seeds[0]}", g.classes))
            for g in report.data[NAME]]


VIEW = View(NAME, data=data, figures=figures)
