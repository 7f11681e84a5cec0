"""The report's figures, drawn with seaborn from the DataFrames of ``bench.report.Report``.

One style throughout (seaborn "whitegrid", colour-blind palette) and readable in grayscale: every method/embedding
variant also has its own marker, line style and hatch, so colour is never the only cue. Figures are drawn on
``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never through pyplot, so no display is needed and
no global state (backend, rcParams) is changed. The class-embedding and NoProp-DT figures read each run's small
``.npz`` artifact (``bench.results.artifacts``); a run without one is skipped for those figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.report import GROUP, NOPROP, Report

FORMATS = ("png", "pdf", "svg")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "--", "oo")
MEASURE_HATCHES = {"CUDA allocated": "", "CUDA reserved": "//", "RSS (CPU)": ".."}
PAPER_STYLE = {"colors": "black", "linestyles": "--", "linewidth": 1.8,  # white halo: visible over any bar
               "path_effects": [patheffects.withStroke(linewidth=4, foreground="white")]}
SEQUENTIAL = "mako_r"  # monotonic in lightness, so it survives grayscale printing
DPI = 150
MAX_SAMPLE_IMAGES = 32


@contextmanager
def _style() -> Iterator[None]:
    """The one style, applied only while a figure is drawn (rcParams are restored afterwards)."""
    params = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85)}
    params["axes.prop_cycle"] = matplotlib.cycler(color=sns.color_palette("colorblind"))
    with matplotlib.rc_context(params):
        yield


class _Styles:
    """A fixed colour, marker, line style and hatch per variant, the same in every figure."""

    def __init__(self, variants: list[str]) -> None:
        self.palette = sns.color_palette("colorblind", max(len(variants), 1))
        self.index = {v: i for i, v in enumerate(variants)}

    def color(self, variant: str) -> tuple[float, float, float]:
        return self.palette[self.index[variant] % len(self.palette)]

    def marker(self, variant: str) -> str:
        return MARKERS[self.index[variant] % len(MARKERS)]

    def linestyle(self, variant: str) -> str:
        return LINESTYLES[self.index[variant] % len(LINESTYLES)]

    def hatch(self, variant: str) -> str:
        return HATCHES[self.index[variant] % len(HATCHES)]


def write_figures(report: Report, out: Path, fmt: str = "png") -> list[Path]:
    """Draw every figure the report's data allows into ``out``; returns the files written.

    A figure that has no data, or fails to draw, is skipped with a line in ``report.warnings`` so the rest of the
    report is still written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; use one of {', '.join(FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    if report.empty:
        return []
    styles = _Styles(sorted(report.runs["variant"].unique()))
    written: list[Path] = []
    jobs: list[tuple[str, Callable[[], Figure | None]]] = [
        (f"accuracy.{fmt}", lambda: accuracy_figure(report, styles)),
        (f"curves.{fmt}", lambda: curves_figure(report, styles)),
        (f"memory.{fmt}", lambda: memory_figure(report, styles)),
        (f"throughput.{fmt}", lambda: throughput_figure(report, styles)),
    ]
    for name, draw in jobs:
        _save(draw, out / name, fmt, report.warnings, written)
    for name, draw in _artifact_jobs(report, fmt):
        _save(draw, out / name, fmt, report.warnings, written)
    return written


def _save(draw: Callable[[], Figure | None], path: Path, fmt: str, warnings: list[str], written: list[Path]) -> None:
    try:
        with _style():
            fig = draw()
            if fig is None:
                warnings.append(f"{path.name} not drawn: the runs hold no data for it")
                return
            FigureCanvasAgg(fig)  # Agg (no display); pdf/svg use their own vector canvases on save
            metadata = {"Software": None} if fmt == "png" else {"Creator": None, "Date": None}
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
    except Exception as e:  # one broken figure must not cost the tables and the other figures
        warnings.append(f"{path.name} could not be drawn: {type(e).__name__}: {e}")
        return
    written.append(path)


def _new_figure(nrows: int, ncols: int, width: float, height: float, sharey: bool = False) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, axes


def _tick(variant: str) -> str:
    return variant.replace(" (", "\n(")


def _variants(frame: pd.DataFrame, styles: _Styles) -> list[str]:
    return [v for v in styles.index if v in set(frame["variant"])]


def _datasets(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["dataset"].unique())


def _legend(fig: Figure, axes: np.ndarray) -> None:
    """One legend for the whole figure, below the plots, without repeated entries."""
    seen: dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if seen:
        fig.legend(list(seen.values()), list(seen.keys()), loc="outside lower center", ncols=min(len(seen), 4),
                   frameon=False)


# --------------------------------------------------------------------------------------------- the figures


def _dataset_panels(frame: pd.DataFrame, styles: _Styles, per_variant_in: float = 1.1, base_in: float = 1.6
                    ) -> tuple[Figure, Any, list[tuple[Any, str, pd.DataFrame, list[str]]]]:
    """One axis per dataset, sized for its variants: (figure, axes, [(axis, dataset, its rows, variant order)])."""
    datasets = _datasets(frame)
    fig, axes = _new_figure(1, len(datasets), base_in + per_variant_in * frame["variant"].nunique(), 4.2)
    panels = []
    for ax, dataset in zip(axes[0], datasets, strict=True):
        data = frame[frame["dataset"] == dataset]
        panels.append((ax, dataset, data, _variants(data, styles)))
    return fig, axes, panels


def accuracy_figure(report: Report, styles: _Styles) -> Figure | None:
    """1. Final test accuracy per method and dataset: every seed as a point, over mean ± sd, paper marked."""
    per_seed = report.per_seed.dropna(subset=["test_acc_pct"])
    if per_seed.empty:
        return None
    fig, axes, panels = _dataset_panels(per_seed, styles)
    for ax, dataset, data, order in panels:
        sns.stripplot(data=data, x="variant", y="test_acc_pct", order=order, ax=ax, color="0.6", size=5,
                      jitter=0.12, linewidth=0.6, edgecolor="0.25", label="seed", legend=False, zorder=1)
        summary = report.summary[report.summary["dataset"] == dataset].set_index("variant")
        for i, variant in enumerate(order):
            row = summary.loc[variant]
            sd = row["test_acc_pct_sd"]
            ax.errorbar(i, row["test_acc_pct_mean"], yerr=None if pd.isna(sd) else sd, fmt=styles.marker(variant),
                        color=styles.color(variant), markeredgecolor="black", markersize=9, capsize=6,
                        elinewidth=1.5, ecolor="black", zorder=3, label="mean ± sd over seeds")
            if not pd.isna(row["paper_test_acc_pct"]):
                ax.hlines(row["paper_test_acc_pct"], i - 0.35, i + 0.35, zorder=2, label="paper", **PAPER_STYLE)
        ax.set_xticks(range(len(order)), [_tick(v) for v in order])
        ax.set(title=dataset, xlabel="", ylabel="final test accuracy (%)")
    _dedupe_seed_label(axes)
    fig.suptitle("Final test accuracy: seeds (grey points), mean ± sd over seeds, paper (dashed)")
    _legend(fig, axes)
    return fig


def _dedupe_seed_label(axes: np.ndarray) -> None:
    """stripplot labels one collection per category; keep the label on one only so the legend shows it once."""
    for ax in axes.flat:
        first = True
        for collection in ax.collections:
            if collection.get_label() == "seed":
                if not first:
                    collection.set_label("_nolegend_")
                first = False


def curves_figure(report: Report, styles: _Styles) -> Figure | None:
    """2. Test accuracy vs epoch and vs cumulative training time: mean line, band = ± sd across seeds."""
    curves = report.curves.dropna(subset=["test_acc_pct_mean"])
    if curves.empty:
        return None
    datasets = _datasets(curves)
    fig, axes = _new_figure(len(datasets), 2, 5.2, 3.4)
    for row_axes, dataset in zip(axes, datasets, strict=True):
        data = curves[curves["dataset"] == dataset]
        for ax, x, xlabel in ((row_axes[0], "epoch", "epoch"),
                              (row_axes[1], "cum_train_time_s_mean", "cumulative training time (s)")):
            for variant in _variants(data, styles):
                line = data[data["variant"] == variant].sort_values("epoch")
                mean, sd = line["test_acc_pct_mean"].to_numpy(), line["test_acc_pct_sd"].to_numpy(dtype=float)
                ax.plot(line[x], mean, color=styles.color(variant), marker=styles.marker(variant),
                        linestyle=styles.linestyle(variant), markersize=5, label=variant)
                ax.fill_between(line[x], mean - sd, mean + sd, color=styles.color(variant), alpha=0.18, linewidth=0)
            ax.set(title=f"{dataset}: test accuracy vs {xlabel.split(' (')[0]}", xlabel=xlabel,
                   ylabel="test accuracy (%)")
        if data["epoch"].max() <= 20:
            row_axes[0].set_xticks(sorted(data["epoch"].unique()))
    fig.suptitle("Test accuracy during training (line: mean over seeds; band: ± sd)")
    _legend(fig, axes)
    return fig


def memory_figure(report: Report, styles: _Styles) -> Figure | None:
    """3. Peak memory per method in MB: CUDA allocated and reserved, else CPU RSS; the paper's GPU figures dashed."""
    memory = report.memory
    if memory.empty:
        return None
    fig, axes, panels = _dataset_panels(memory, styles, per_variant_in=1.3, base_in=1.8)
    for ax, dataset, data, order in panels:
        measures = [m for m in MEASURE_HATCHES if m in set(data["measure"])]
        sns.barplot(data=data, x="variant", y="mb", hue="measure", order=order, hue_order=measures, ax=ax,
                    errorbar="sd", palette=sns.color_palette("colorblind", len(measures)), edgecolor="black",
                    err_kws={"color": "black", "linewidth": 1.2}, capsize=0.15)
        for container, measure in zip(ax.containers, measures, strict=False):
            for bar in container:
                bar.set_hatch(MEASURE_HATCHES[measure])
        for handle in ax.get_legend_handles_labels()[0]:
            label = getattr(handle, "get_label", lambda: "")()
            if label in MEASURE_HATCHES and hasattr(handle, "set_hatch"):
                handle.set_hatch(MEASURE_HATCHES[label])
        summary = report.summary[report.summary["dataset"] == dataset].set_index("variant")
        for i, variant in enumerate(order):
            value = summary.loc[variant, "paper_peak_gpu_mb"]
            if not pd.isna(value):
                ax.hlines(value, i - 0.42, i + 0.42, zorder=4, label="paper: peak GPU memory", **PAPER_STYLE)
        ax.set_xticks(range(len(order)), [_tick(v) for v in order])
        ax.set(title=dataset, xlabel="", ylabel="peak memory (MB)")
    _legend_hatched(fig, axes)
    fig.suptitle("Peak memory per method (mean ± sd over seeds; RSS where a run had no CUDA device)")
    return fig


def _legend_hatched(fig: Figure, axes: np.ndarray) -> None:
    """Like ``_legend``, with the legend patches hatched as their bars are (the grayscale cue)."""
    _legend(fig, axes)
    for legend in fig.legends:
        for patch, text in zip(legend.get_patches(), legend.get_texts(), strict=False):
            patch.set_hatch(MEASURE_HATCHES.get(text.get_text(), ""))
            patch.set_edgecolor("black")


def throughput_figure(report: Report, styles: _Styles) -> Figure | None:
    """4. Training throughput per method (samples/s; for NoProp-DT one sample trains all T blocks once)."""
    per_seed = report.per_seed.dropna(subset=["samples_per_s"])
    if per_seed.empty:
        return None
    fig, axes, panels = _dataset_panels(per_seed, styles)
    for ax, dataset, data, order in panels:
        sns.barplot(data=data, x="variant", y="samples_per_s", order=order, hue="variant", hue_order=order,
                    palette=[styles.color(v) for v in order], errorbar="sd", edgecolor="black", ax=ax, legend=False,
                    err_kws={"color": "black", "linewidth": 1.2}, capsize=0.15)
        for container, variant in zip(ax.containers, order, strict=False):
            for bar in container:
                bar.set_hatch(styles.hatch(variant))
        sns.stripplot(data=data, x="variant", y="samples_per_s", order=order, ax=ax, color="0.3", size=4,
                      jitter=0.1, legend=False)
        ax.set_xticks(range(len(order)), [_tick(v) for v in order])
        ax.set(title=dataset, xlabel="", ylabel="training throughput (samples/s)")
    fig.suptitle("Training throughput (bars: mean ± sd over seeds; points: seeds)")
    return fig


# ------------------------------------------------------------------------------- figures from run artifacts


def _slug(*parts: str) -> str:
    return "_".join("".join(c if c.isalnum() or c in "-." else "-" for c in p) for p in parts if p)


def _artifact_jobs(report: Report, fmt: str) -> list[tuple[str, Callable[[], Figure | None]]]:
    """Figures 5 and 6: one set per group, from the artifacts of its runs (lowest seed first)."""
    from bench.results import artifacts  # imports torch; only paid when a report draws these figures

    jobs: list[tuple[str, Callable[[], Figure | None]]] = []
    runs = report.runs.sort_values([*GROUP, "seed"])
    for key, group in runs.groupby(GROUP, sort=True):
        dataset, method, embedding, config_hash = key
        if embedding not in ("learned", "prototype") and method != NOPROP:
            continue
        loaded = []
        for row in group.itertuples():
            try:
                arrays = artifacts.load(Path(row.results_dir), row.run_id)
            except Exception as e:  # a damaged file: say so, draw from the others
                report.warnings.append(f"artifact of run {row.run_id} could not be read ({type(e).__name__}: {e}); "
                                       "skipped")
                continue
            if arrays is not None:
                loaded.append((row, arrays))
        if not loaded:
            continue
        variant = group["variant"].iloc[0]
        suffix = config_hash[:6] if "[" in variant else ""
        title = f"{dataset}, {variant}"
        first_row, first = loaded[0]
        seed = _seed_text(first_row.seed)
        if embedding in ("learned", "prototype"):
            name = _slug("embeddings", dataset, method, embedding, suffix) + f".{fmt}"
            jobs.append((name, lambda a=first, t=title, s=seed: embedding_figure(a, f"{t}, seed {s}")))
        if method == NOPROP:
            all_arrays = [a for _, a in loaded]
            name = _slug("confusion", dataset, method, embedding, suffix) + f".{fmt}"
            jobs.append((name, lambda a=all_arrays, t=title: confusion_figure(a, t)))
            name = _slug("samples", dataset, method, embedding, suffix) + f".{fmt}"
            jobs.append((name, lambda a=first, t=title, s=seed: samples_figure(a, f"{t}, seed {s}")))
    return jobs


def _seed_text(seed: object) -> str:
    return "?" if pd.isna(seed) else str(int(seed))


def embedding_figure(arrays: dict[str, np.ndarray], title: str) -> Figure | None:
    """5. Trained class embeddings: prototypes as images (as the paper's Figure 2), vectors as a 2-D PCA."""
    embedding = np.asarray(arrays["embedding"], dtype=np.float64)
    shape = tuple(int(s) for s in arrays.get("image_shape", ()))
    kind = str(arrays.get("embedding_kind", ""))
    if kind == "prototype" and shape and math.prod(shape) == embedding.shape[1]:
        return _prototype_images(embedding, shape, title)
    return _pca_scatter(embedding, title)


def _prototype_images(embedding: np.ndarray, shape: tuple[int, ...], title: str) -> Figure:
    classes = embedding.shape[0]
    cols = min(classes, 10)
    rows = math.ceil(classes / cols)
    fig, axes = _new_figure(rows, cols, 1.25, 1.45)
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
        ax.set_title(f"class {k}", fontsize=9)
    fig.suptitle(f"Trained prototype embeddings (one per class, each scaled to its own range)\n{title}")
    return fig


def _pca_scatter(embedding: np.ndarray, title: str) -> Figure:
    centred = embedding - embedding.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(len(coords))])
    variance = singular**2 / max(float((singular**2).sum()), 1e-30)
    variance = np.pad(variance, (0, max(0, 2 - len(variance))))
    fig, axes = _new_figure(1, 1, 5.5, 5.0)
    ax = axes[0, 0]
    sns.scatterplot(x=coords[:, 0], y=coords[:, 1], ax=ax, color="0.3", s=40, edgecolor="black")
    size = 9 if len(coords) <= 20 else 6
    for k, (x, y) in enumerate(coords):
        ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=size)
    ax.set(xlabel=f"PC 1 ({100 * variance[0]:.0f} % of variance; embedding units)",
           ylabel=f"PC 2 ({100 * variance[1]:.0f} % of variance; embedding units)")
    fig.suptitle(f"Trained class embeddings, 2-D PCA (numbers: class index)\n{title}")
    return fig


def confusion_figure(all_arrays: list[dict[str, np.ndarray]], title: str) -> Figure | None:
    """6a. NoProp-DT confusion matrix, summed over the seeds' test predictions (first inference repeat)."""
    pairs = [(np.asarray(a["label"], dtype=np.int64), np.asarray(a["pred"], dtype=np.int64)) for a in all_arrays]
    pairs = [(y, p) for y, p in pairs if y.size and y.shape == p.shape]
    if not pairs:
        return None
    classes = max(int(all_arrays[0]["embedding"].shape[0]), *(int(max(y.max(), p.max())) + 1 for y, p in pairs))
    counts = np.zeros((classes, classes), dtype=np.int64)
    for y, p in pairs:
        np.add.at(counts, (y, p), 1)
    totals = counts.sum(axis=1, keepdims=True)
    percent = np.divide(100.0 * counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = 5.5 if classes <= 20 else 9.0
    fig, axes = _new_figure(1, 1, side + 1.0, side)
    ax = axes[0, 0]
    small = classes <= 20
    sns.heatmap(percent, ax=ax, cmap=SEQUENTIAL, vmin=0, vmax=100, square=True, annot=counts if small else False,
                fmt="d", annot_kws={"fontsize": 8}, cbar_kws={"label": "% of the true class"},
                xticklabels=1 if small else 10, yticklabels=1 if small else 10, linewidths=0.3 if small else 0)
    ax.set(xlabel="predicted class", ylabel="true class")
    n = sum(len(y) for y, _ in pairs)
    fig.suptitle(f"NoProp-DT confusion matrix ({'counts; ' if small else ''}colour: % of true class)\n"
                 f"{title}, {len(pairs)} seed(s), {n} test predictions")
    return fig


def samples_figure(arrays: dict[str, np.ndarray], title: str) -> Figure | None:
    """6b. A grid of test images with true and predicted labels; wrong ones framed and marked ✗."""
    images = np.asarray(arrays.get("sample_images", np.zeros((0,))))
    if images.ndim != 4 or not len(images):
        return None
    images = images[:MAX_SAMPLE_IMAGES]
    true, pred = arrays["sample_label"], arrays["sample_pred"]
    cols = min(len(images), 8)
    rows = math.ceil(len(images) / cols)
    fig, axes = _new_figure(rows, cols, 1.3, 1.55)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(images):
            ax.axis("off")
            continue
        image = images[k]
        if image.shape[0] == 1:
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(np.transpose(image, (1, 2, 0)))
        wrong = int(true[k]) != int(pred[k])
        ax.set_title(f"true {int(true[k])}\npred {int(pred[k])}{' ✗' if wrong else ''}", fontsize=8,
                     fontweight="bold" if wrong else "normal")
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(wrong)
            spine.set_linewidth(3)
            spine.set_edgecolor("black")
    fig.suptitle(f"NoProp-DT test images: true and predicted class (wrong ones framed, ✗)\n{title}")
    return fig
