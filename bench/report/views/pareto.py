"""The Pareto view: final test accuracy against what it cost, so which methods are worth their time and memory is
seen at a glance rather than read off two tables.

Per group (``bench.report.labels.GROUP``) over seeds: test accuracy (mean, min, max), training wall time (the
run's ``train_time_s``, all epochs, evaluation excluded), peak memory (CUDA allocated where measured, else CPU RSS)
and the activations autograd saves for backward in one step. A group is on a front when no other group of the same
dataset is at least as accurate at no more cost and strictly better in one of the two (``pareto_front``): the
time front against training time, the memory front against saved activations (a CPU's peak RSS barely tells the
methods apart, see ``memory``). Groups of different datasets are never compared.

Shown as ``pareto.csv`` and the ``pareto`` figure: per dataset a row of two panels sharing the accuracy axis,
accuracy against training time (marker area: peak memory) and against saved activations, each front a dashed step
from its cheapest point to its most accurate one (never beyond: a line run on past the front would pass through
points that tie with it but cost more), its points ringed. A linear cost axis starts at 0, so methods that cost
nearly the same look it rather than spread over a sliver of a megabyte.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from bench.report import plot
from bench.report.aggregate import PER_SEED, per_seed
from bench.report.labels import GROUP, LABELS, whole_text
from bench.report.views.base import FigureJob, View
from bench.report.views.memory import MEASURE_LABELS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bench.report.aggregate import Report

NAME = "pareto"
# per-seed value -> (run column, factor), as the report's own per-seed values; train time is not among those
VALUES = {**{name: PER_SEED[name] for name in ("test_acc_pct", "peak_cuda_allocated_mb", "rss_above_start_mb",
                                               "peak_rss_mb", "peak_saved_activation_mb")},
          "train_time_s": ("train_time_s", 1.0)}
SPREAD = ("test_acc_pct", "train_time_s", "peak_saved_activation_mb")  # mean, min and max over seeds
COLUMNS = [*GROUP, *LABELS, "label", "n_seeds", "seeds",
           *(f"{name}_{stat}" for name in SPREAD for stat in ("mean", "min", "max")),
           "peak_memory_mb_mean", "peak_memory_measure", "on_time_front", "on_memory_front"]
AXES = {  # panel -> (x column, its axis label, its title, front column)
    "time": ("train_time_s", "training wall time, all epochs (s)", "accuracy vs training time", "on_time_front"),
    "memory": ("peak_saved_activation_mb", "activations saved for backward, one step (MB)",
               "accuracy vs saved activations", "on_memory_front"),
}
LOG_SPAN = 10.0  # a cost axis is logarithmic when its values span more than this factor
AREA_MAX, AREA_MIN, AREA_FIXED = 420.0, 30.0, 90.0  # marker areas (points^2): the largest memory, the floor, no size
FRONT_STYLE = {"color": "0.3", "linestyle": "--", "linewidth": 1.3, "zorder": 1}
RING_GAP = 7.0  # points between a marker on the front and its ring
BAR_STYLE = {"elinewidth": 0.9, "capsize": 2.5, "ecolor": "0.3"}
LABEL_SIZE = 7.5
Point = tuple[float, float, float, str]  # a marker to label: x, y (data), its area (points^2), its text
Segment = tuple[tuple[float, float], tuple[float, float]]  # a straight piece of line, ends in data coordinates


# ------------------------------------------------------------------------------------------------ the numbers


def pareto_front(cost: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Per point, whether no other point is as accurate at no more cost and strictly better in one: lower cost and
    higher accuracy win. Equal points do not dominate each other (both are on the front); a point with a missing
    value is on no front and dominates nothing."""
    c, a = np.asarray(cost, dtype=float), np.asarray(accuracy, dtype=float)
    known = ~(np.isnan(c) | np.isnan(a))
    front = known.copy()
    for i in np.flatnonzero(known):
        better = known & (c <= c[i]) & (a >= a[i]) & ((c < c[i]) | (a > a[i]))
        front[i] = not better.any()
    return front


def _peak_memory(rows: pd.DataFrame) -> pd.Series:
    """A group's mean peak memory and its measure: CUDA allocated where its seeds measured it, else the CPU RSS they
    added above their processes' start, else the whole peak RSS."""
    for column in ("peak_cuda_allocated_mb", "rss_above_start_mb", "peak_rss_mb"):
        values = rows[column].dropna()
        if not values.empty:
            return pd.Series({"peak_memory_mb_mean": values.mean(), "peak_memory_measure": MEASURE_LABELS[column]})
    return pd.Series({"peak_memory_mb_mean": math.nan, "peak_memory_measure": ""})


def _on_front(table: pd.DataFrame, cost: str) -> pd.Series:
    """The front within each dataset: a method is only ever weighed against others on the same data."""
    front = pd.Series(False, index=table.index)
    for _, rows in table.groupby("dataset", sort=False):
        front[rows.index] = pareto_front(rows[cost].to_numpy(), rows["test_acc_pct_mean"].to_numpy())
    return front


def data(report: Report) -> pd.DataFrame:
    """One row per group: accuracy and costs over its seeds (each seed once), and whether it is on each front."""
    seeds = per_seed(report.runs, VALUES, GROUP, LABELS).dropna(subset=["test_acc_pct"])
    if seeds.empty:
        return pd.DataFrame(columns=COLUMNS)
    grouped = seeds.groupby(GROUP, sort=True, dropna=False)
    table = grouped.agg(variant=("variant", "first"), setting=("setting", "first"), n_seeds=("seed", "size"),
                        seeds=("seed", lambda s: ",".join(whole_text(v) for v in s)),
                        **{f"{name}_{stat}": (name, stat) for name in SPREAD for stat in ("mean", "min", "max")})
    memory = ["peak_cuda_allocated_mb", "rss_above_start_mb", "peak_rss_mb"]
    table = table.join(grouped[memory].apply(_peak_memory)).reset_index()
    # the method's label (with its version where a report holds several) is the variant less its setting
    table["label"] = [v.removesuffix(f" ({s})") for v, s in zip(table["variant"], table["setting"], strict=True)]
    for column, _, _, front in AXES.values():
        table[front] = _on_front(table, f"{column}_mean")
    return table[COLUMNS]


def files(report: Report) -> dict[str, pd.DataFrame]:
    return {"pareto.csv": report.data[NAME]}


# ------------------------------------------------------------------------------------------------ the figure


def marker_areas(memory_mb: pd.Series) -> pd.Series:
    """Marker area proportional to peak memory (the largest AREA_MAX), floored so a small one stays visible; a
    group without a memory measure gets AREA_FIXED."""
    largest = memory_mb.max()
    if pd.isna(largest) or largest <= 0:
        return pd.Series(AREA_FIXED, index=memory_mb.index)
    return (memory_mb * AREA_MAX / largest).clip(lower=AREA_MIN).fillna(AREA_FIXED)


def figure(report: Report, styles: plot.Styles) -> Figure | None:
    """Per dataset, accuracy against training time (marker area: peak memory) and against saved activations, each
    group's mean over seeds with its min-max in both directions, and each front as a dashed step."""
    table = report.data[NAME]
    if table.empty:
        return None
    table = table.assign(area=marker_areas(table["peak_memory_mb_mean"]))
    panels = plot.panels(table, styles)
    fig, axes = plot.new_figure(12.5, 4.9 * len(panels) + 1.4, len(panels), 2, sharey="row")
    settings = plot.Styles(list(dict.fromkeys(table.sort_values(GROUP)["setting"])))
    placed = []
    for row, panel in zip(axes, panels, strict=True):
        rows = table[table["dataset"] == panel.dataset]
        measures = " / ".join(sorted(set(rows["peak_memory_measure"]) - {""}))
        for ax, (name, (column, xlabel, title, front)) in zip(row, AXES.items(), strict=True):
            area = f"\n(marker area: peak {measures})" if name == "time" and measures else ""
            ax.set(title=f"{panel.dataset}: {title}{area}", xlabel=xlabel)
            sizes = rows["area"] if name == "time" else pd.Series(AREA_FIXED, index=rows.index)
            placed.append((ax, *_panel(ax, rows, column, front, sizes, styles, settings)))
        row[0].set_ylabel("final test accuracy (%)")
        low, high = row[0].get_ylim()
        row[0].set_ylim(low, min(high, 101.0))  # no room for accuracies above 100 %
    _legend(fig, table, styles, settings)
    plot.suptitle(fig, "Accuracy against cost (mean over seeds; bars: min to max)")
    fig.canvas.draw()  # lay the figure out once, then hold it, so the labels are placed where they will be drawn
    fig.set_layout_engine("none")
    for ax, points, lines in placed:
        _label(ax, points, lines)
    return fig


def _panel(ax: Any, rows: pd.DataFrame, column: str, front: str, sizes: pd.Series, styles: plot.Styles,
           settings: plot.Styles) -> tuple[list[Point], list[Segment]]:
    """One panel's markers and front; returns what its labels must find room beside: (x, y, marker area, text)
    per marker, and the error bars' and the front's straight pieces."""
    shown = rows.dropna(subset=[f"{column}_mean"])
    if shown.empty:
        ax.text(0.5, 0.5, "not measured in these runs", transform=ax.transAxes, ha="center", va="center",
                color="0.4")
        ax.set_xticks([])
        return [], []
    points, lines = [], []
    several = shown.groupby("label")["setting"].nunique()  # a method in several settings is labelled with each
    for _, r in shown.iterrows():
        lines += _marker(ax, r, column, sizes[r.name], styles, settings)
        text = r["label"] if several[r["label"]] < 2 else f"{r['label']}\n{textwrap.fill(r['setting'], 26)}"
        points.append((r[f"{column}_mean"], r["test_acc_pct_mean"], sizes[r.name], text))
    _scale(ax, shown[[f"{column}_min", f"{column}_max"]].to_numpy(dtype=float))
    ax.margins(x=0.12, y=0.14)
    ax.autoscale_view()
    if ax.get_xscale() == "linear":
        ax.set_xlim(0, ax.get_xlim()[1])  # no cost is negative, and equal costs look equal
    else:
        plot.log_axis(ax, "x")
    return points, lines + _front(ax, shown[shown[front]], column, sizes)


def _front(ax: Any, on: pd.DataFrame, column: str, sizes: pd.Series) -> list[Segment]:
    """The front's points ringed, and a dashed step through them from the cheapest to the most accurate: along at
    the lower accuracy, then up (what is reached for no more than each cost). Returns its straight pieces."""
    on = on.sort_values([f"{column}_mean", "test_acc_pct_mean"])
    x, y = on[f"{column}_mean"].to_list(), on["test_acc_pct_mean"].to_list()
    if not x:
        return []
    rings = [(math.sqrt(sizes[i]) + RING_GAP) ** 2 for i in on.index]
    ax.scatter(x, y, s=rings, facecolors="none", edgecolors="0.3", linewidths=1.0, zorder=2)
    ax.plot(x, y, drawstyle="steps-post", **FRONT_STYLE)
    return [piece for i in range(len(x) - 1)
            for piece in (((x[i], y[i]), (x[i + 1], y[i])), ((x[i + 1], y[i]), (x[i + 1], y[i + 1])))]


def _marker(ax: Any, r: pd.Series, column: str, area: float, styles: plot.Styles, settings: plot.Styles
            ) -> list[Segment]:
    """The mean as the method's marker (its fill: the setting), with min-max bars where there are several seeds;
    returns the bars."""
    def spread(name: str) -> list[list[float]] | None:
        low, mean, high = (r[f"{name}_{stat}"] for stat in ("min", "mean", "max"))
        return None if r["n_seeds"] < 2 or pd.isna(low) else [[mean - low], [high - mean]]

    fill, color = settings.fill(r["setting"]), styles.color(r["method"])
    x, y, xerr, yerr = r[f"{column}_mean"], r["test_acc_pct_mean"], spread(column), spread("test_acc_pct")
    ax.errorbar(x, y, xerr=xerr, yerr=yerr,
                fmt=styles.marker(r["method"]), markersize=math.sqrt(area), color=color, fillstyle=fill,
                markerfacecoloralt="white", markeredgecolor=color if fill == "none" else "black",
                markeredgewidth=1.6 if fill == "none" else 0.8, alpha=0.9, zorder=3, **BAR_STYLE)
    bars = [((x - xerr[0][0], y), (x + xerr[1][0], y))] if xerr else []
    return bars + ([((x, y - yerr[0][0]), (x, y + yerr[1][0]))] if yerr else [])


def _scale(ax: Any, values: np.ndarray) -> None:
    """Logarithmic where the costs span more than LOG_SPAN (its ticks chosen by ``plot.log_axis`` once the panel's
    limits are set)."""
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0 or values.max() <= LOG_SPAN * values.min():
        return
    ax.set_xscale("log")
    ax.set_xlabel(ax.get_xlabel() + ", log scale")


def _legend(fig: Figure, table: pd.DataFrame, styles: plot.Styles, settings: plot.Styles) -> None:
    """Methods (colour and marker), settings (fill) where there are several, memory sizes and the front."""
    handles, labels = plot.method_handles(styles.present(table), styles, bars=False)
    if len(settings.index) > 1:
        for setting in settings.index:
            handles.append(Line2D([], [], color="0.35", marker="o", markersize=8, linestyle="none",
                                  fillstyle=settings.fill(setting), markerfacecoloralt="white"))
            labels.append(setting)
    memory = table["peak_memory_mb_mean"].dropna()
    if not memory.empty and memory.max() > 0:
        measure = " / ".join(sorted(set(table["peak_memory_measure"]) - {""}))
        for mb in size_examples(memory):
            area = float(marker_areas(pd.Series([mb, memory.max()])).iloc[0])
            handles.append(Line2D([], [], color="0.6", marker="o", markersize=math.sqrt(area), linestyle="none",
                                  markeredgecolor="black"))
            labels.append(f"{_mb_text(mb)} MB peak {measure}")
    handles.append(Line2D([], [], marker="o", markersize=11, markerfacecolor="none", markeredgecolor="0.3",
                          **FRONT_STYLE))
    labels.append("Pareto front (ringed: on it)")
    plot.legend(fig, handles, labels)


def size_examples(memory_mb: pd.Series) -> list[float]:
    """The memory sizes the legend reads the marker areas by: the smallest and the largest a point has (one, where
    they are within 10 % of each other), so the legend never shows a size no point has."""
    low, high = float(memory_mb.min()), float(memory_mb.max())
    return [high] if low >= 0.9 * high else [low, high]


def _mb_text(mb: float) -> str:
    """A size to three significant digits, thousands separated: ``2,150``, ``78.4``, ``0.52``."""
    return f"{float(f'{mb:.3g}'):,.{max(0, 2 - int(math.floor(math.log10(mb))))}f}" if mb > 0 else "0"


# ---------------------------------------------------------------------------------------- placing the labels


def _ring(radius: float) -> list[tuple[float, float, bool]]:
    """Offsets (points) around a marker, nearest first: right, left, above, below, then the diagonals, at growing
    distances; and whether a label there needs a line to its marker (all but the four nearest: a label set apart,
    or off at a corner, could be read as a neighbour's)."""
    found = []
    for gap in (4.0, 14.0, 28.0, 44.0, 64.0, 90.0):
        d = radius + gap
        found += [(dx, dy, gap > 4.0 or (dx != 0 and dy != 0))
                  for dx, dy in ((d, 0.0), (-d, 0.0), (0.0, d), (0.0, -d), (d, d), (-d, d), (d, -d), (-d, -d))]
    return found


def _align(dx: float, dy: float) -> dict[str, str]:
    return {"ha": "left" if dx > 0 else "right" if dx < 0 else "center",
            "va": "bottom" if dy > 0 else "top" if dy < 0 else "center"}


def _overlap(box: Bbox, others: list[Bbox]) -> float:
    total = 0.0
    for other in others:
        w = min(box.x1, other.x1) - max(box.x0, other.x0)
        h = min(box.y1, other.y1) - max(box.y0, other.y0)
        total += max(w, 0.0) * max(h, 0.0)
    return total


@dataclass
class _Room:
    """What one panel's labels must keep clear of, in display pixels: markers, lines, the labels placed so far."""

    markers: list[tuple[float, float, float]]  # centre x, y and radius
    lines: list[Bbox]  # each line as a box a few pixels thick
    labels: list[Bbox]

    def cost(self, box: Bbox, own: int, inside: Bbox) -> float:
        """Covering another label or leaving the panel costs most (it could not be read), then covering a marker,
        then lying nearer another marker than its own (a reader could give it to that one, though a line may say
        otherwise); crossing a line costs little (the label's ground mutes it)."""
        squares = [Bbox.from_bounds(x - r, y - r, 2 * r, 2 * r) for x, y, r in self.markers]
        unreadable = _overlap(box, self.labels) + box.width * box.height - _overlap(box, [inside])
        edges = [max(math.hypot(max(box.x0 - x, 0, x - box.x1), max(box.y0 - y, 0, y - box.y1)) - r, 0.0)
                 for x, y, r in self.markers]
        ambiguous = min(edges[:own] + edges[own + 1:], default=math.inf) < edges[own] - 1
        return (100 * unreadable + 10 * _overlap(box, squares) + 0.1 * _overlap(box, self.lines)
                + (3000.0 if ambiguous else 0.0))


def _room(ax: Any, points: list[Point], lines: list[Segment]) -> _Room:
    scale = ax.figure.dpi / 72
    markers = [(*ax.transData.transform((x, y)), math.sqrt(area) / 2 * scale) for x, y, area, _ in points]
    boxes = []
    for start, end in lines:
        (x0, y0), (x1, y1) = ax.transData.transform([start, end])
        boxes.append(Bbox.from_extents(min(x0, x1) - 2, min(y0, y1) - 2, max(x0, x1) + 2, max(y0, y1) + 2))
    return _Room(markers, boxes, [])


def _place(ax: Any, points: list[Point], own: int, room: _Room) -> tuple[float, float, bool, Bbox]:
    """The offset of least cost for one label, the cost of its distance from its marker included: near and
    clear first, then farther and clear, then the least covered."""
    x, y, area, text = points[own]
    renderer, scale = ax.figure.canvas.get_renderer(), ax.figure.dpi / 72
    inside = ax.get_window_extent().padded(-3 * scale)  # a little room: text may render a shade wider when saved
    best = None
    for dx, dy, leader in _ring(math.sqrt(area) / 2):
        probe = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=LABEL_SIZE,
                            **_align(dx, dy))
        box = probe.get_window_extent(renderer).padded(scale)  # with its pale ground
        probe.remove()
        cost = room.cost(box, own, inside) + 20 * scale * (math.hypot(dx, dy) - math.sqrt(area) / 2)
        if best is None or cost < best[0]:
            best = (cost, (dx, dy, leader, box))
    return best[1]


def _label(ax: Any, points: list[Point], lines: list[Segment]) -> None:
    """Each marker's text where ``_place`` finds room, the highest markers first; one set apart gets a thin line
    to its marker, and every label a pale ground so a line under it does not cross out its text."""
    room = _room(ax, points, lines)
    for own in sorted(range(len(points)), key=lambda i: -room.markers[i][1]):
        dx, dy, leader, box = _place(ax, points, own, room)
        line = {"arrowstyle": "-", "color": "0.45", "linewidth": 0.6, "shrinkA": 1,
                "shrinkB": math.sqrt(points[own][2]) / 2}
        ax.annotate(points[own][3], points[own][:2], xytext=(dx, dy), textcoords="offset points",
                    fontsize=LABEL_SIZE, zorder=5, arrowprops=line if leader else None,
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
                    **_align(dx, dy))
        room.labels.append(box)


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [("pareto", lambda: figure(report, styles))]


VIEW = View(NAME, data=data, files=files, figures=figures)
