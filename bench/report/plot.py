"""What every figure of the report is drawn with: the one style, a fixed colour, marker, line style and hatch per
method (in ``bench.report.baselines.method_order``), dataset panels with the settings as x categories and the
methods side by side, and titles and legends wrapped to lie inside the figure.

Colour always means the method; colour is never the only cue: each method also has its own marker and hatch,
curves of different settings their own line style and marker fill. Figures are ``matplotlib.figure.Figure``
objects rendered by the Agg canvas, never through pyplot, so no display is needed and no global state (backend,
rcParams) is changed. Each view (``bench.report.views``) draws its own figures with these.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.report.labels import GROUP

if TYPE_CHECKING:
    from bench.report.aggregate import Report

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "--", "oo")
FILLS = ("full", "none", "left", "bottom", "right", "top")  # marker fill per setting: one-epoch curves are points
PAPER_STYLE = {"colors": "black", "linestyles": "--", "linewidth": 1.8,  # white halo: visible over any bar
               "path_effects": [patheffects.withStroke(linewidth=4, foreground="white")]}
SEQUENTIAL = "mako_r"  # monotonic in lightness, so it survives grayscale printing
_CHAR_IN = 0.075  # about the width of one tick-label character, in inches
ERR = {"ecolor": "black", "elinewidth": 1.2, "capsize": 4}


@contextmanager
def style() -> Iterator[None]:
    """The one style, applied only while a figure is drawn (rcParams are restored afterwards)."""
    params = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85)}
    params["axes.prop_cycle"] = matplotlib.cycler(color=sns.color_palette("colorblind"))
    with matplotlib.rc_context(params):
        yield


class Styles:
    """A fixed colour, marker, line style and hatch per key (a method, or a setting), the same in every figure.

    ``keys`` are in the order of bars and legends. ``ranks`` (for methods: ``baselines.registry_rank``) fix each
    key's style by its place among all keys there can be, not among those present, so a method has one colour in
    every report whoever else is in it; without them a key is styled by its place in ``keys``."""

    def __init__(self, keys: list[str], ranks: dict[str, int] | None = None) -> None:
        self.order = list(keys)
        self.index = {k: (ranks[k] if ranks else i) for i, k in enumerate(keys)}
        self.palette = sns.color_palette("colorblind", max([10, *(i + 1 for i in self.index.values())]))

    def present(self, frame: pd.DataFrame, column: str = "method") -> list[str]:
        """The keys found in ``frame[column]``, in this order (the order of the bars and legends)."""
        found = set(frame[column])
        return [k for k in self.order if k in found]

    def color(self, key: str) -> tuple[float, float, float]:
        return self.palette[self.index[key]]  # the colorblind palette's 10 colours repeat past 10; markers differ

    def marker(self, key: str) -> str:
        return MARKERS[self.index[key] % len(MARKERS)]

    def linestyle(self, key: str) -> str:
        return LINESTYLES[self.index[key] % len(LINESTYLES)]

    def hatch(self, key: str) -> str:
        return HATCHES[self.index[key] % len(HATCHES)]

    def fill(self, key: str) -> str:
        return FILLS[self.index[key] % len(FILLS)]


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **grid: Any) -> tuple[Figure, np.ndarray]:
    """An Agg-backed figure with a grid of axes (always 2-D)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # Agg (no display), and a renderer to measure text with; pdf/svg use their own on save
    axes = fig.subplots(nrows, ncols, squeeze=False, **grid)
    return fig, axes


def _text_width(fig: Figure, artist: Any) -> float:
    return artist.get_window_extent(fig.canvas.get_renderer()).width


def suptitle(fig: Figure, text: str) -> None:
    """The figure's title, wrapped onto as many lines as it needs to lie entirely inside the figure."""
    limit = fig.bbox.width * 0.96
    for chars in range(max(20, *(len(line) for line in text.splitlines())), 19, -4):
        wrapped = "\n".join(textwrap.fill(line, chars) for line in text.splitlines())
        title = fig.suptitle(wrapped)
        if _text_width(fig, title) <= limit:
            return


def legend(fig: Figure, handles: list[Any], labels: list[str]) -> None:
    """One legend for the whole figure, below the plots, with as many columns as fit in the figure's width."""
    if not handles:
        return
    for ncols in range(min(len(handles), 4), 0, -1):
        box = fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)
        if ncols == 1 or _text_width(fig, box) <= fig.bbox.width * 0.96:
            return
        box.remove()


def method_handles(methods: list[str], styles: Styles, bars: bool, hatched: bool = True
                   ) -> tuple[list[Any], list[str]]:
    """Legend entries for the methods: a patch per method for bars, else its marker."""
    if bars:
        handles = [Patch(facecolor=styles.color(m), edgecolor="black", hatch=styles.hatch(m) if hatched else "")
                   for m in methods]
    else:
        handles = [Line2D([], [], color=styles.color(m), marker=styles.marker(m), markeredgecolor="black",
                          linestyle="none", markersize=8) for m in methods]
    return handles, list(methods)


# ------------------------------------------------------------------------------------------- log axes

# the ticks of a logarithmic axis, densest first: every mantissa, then 1-2-5, then the decades alone
LOG_SUBS = ((1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0), (1.0, 2.0, 5.0), (1.0,))


def log_axis(ax: Any, axis: str = "x") -> None:
    """The one way a figure makes an axis logarithmic: ticks read as plain numbers (20, 0.5; never 2×10¹), none on
    the minor ticks, and the densest of ``LOG_SUBS`` that puts two or more ticks in view without two labels
    touching (measured on the laid-out figure), else the decades alone. Call it once the data are drawn."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(NullFormatter())
    for subs in LOG_SUBS:
        target.set_major_locator(LogLocator(subs=subs))
        shown = _tick_labels(ax, target)
        if len(shown) >= 2 and not overlapping([label.get_window_extent() for label in shown]):
            return
    target.set_major_locator(LogLocator(subs=(1.0,)))


def _tick_labels(ax: Any, target: Any) -> list[Any]:
    """The major tick labels drawn in view, on the laid-out figure."""
    ax.figure.canvas.draw()
    low, high = sorted(ax.get_xlim() if target is ax.xaxis else ax.get_ylim())
    return [label for tick, label in zip(target.get_majorticklocs(), target.get_majorticklabels(), strict=False)
            if low <= tick <= high and label.get_visible() and label.get_text()]


def overlapping(boxes: list[Any]) -> bool:
    """Whether any two of the boxes (display coordinates) overlap."""
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


# ------------------------------------------------------------------------------------------- panel layout


@dataclass
class Panel:
    """One dataset's x axis: its settings as categories, with a slot per (setting, method) side by side."""

    dataset: str
    settings: list[str]
    methods: list[str]
    width: float  # of one method's slot, in x units (one setting spans 0.8)

    def x(self, setting: str, method: str) -> float:
        i, j = self.settings.index(setting), self.methods.index(method)
        return i + (j - (len(self.methods) - 1) / 2) * self.width

    def ticks(self, ax: Any, filled: Iterable[tuple[str, str]]) -> None:
        """Each filled slot (setting, method) named by its method on the axis (upright where the names fit their
        slots, else turned), and under them one label per setting, a line per key; faint lines between settings
        instead of a grid line through the middle of each."""
        slots = sorted(set(filled), key=lambda slot: self.x(*slot))
        ax.xaxis.remove_overlapping_locs = False  # the middle slot of an odd count sits on its setting's tick
        ax.set_xticks([self.x(*slot) for slot in slots], [method for _, method in slots], minor=True)
        ax.set_xticks(range(len(self.settings)), [s.replace(", ", "\n") for s in self.settings])
        ax.set_xlim(-0.5, len(self.settings) - 0.5)
        ax.grid(False, axis="x")
        for i in range(1, len(self.settings)):
            ax.axvline(i - 0.5, color="0.85", linewidth=0.8, zorder=0)
        ax.tick_params(axis="x", which="minor", labelsize=8, length=3)
        ax.figure.canvas.draw()  # lay the figure out, so the slots have their final width
        names = ax.xaxis.get_ticklabels(minor=True)
        slot_px = ax.transData.transform((self.width, 0))[0] - ax.transData.transform((0, 0))[0]
        if any(label.get_window_extent().width > 0.95 * slot_px for label in names):
            ax.tick_params(axis="x", which="minor", labelrotation=90)
            ax.figure.canvas.draw()
        tallest = max((label.get_window_extent().height for label in names), default=0.0) * 72 / ax.figure.dpi
        below = 3 + matplotlib.rcParams["xtick.minor.pad"] + tallest  # the names' tick, gap and text, in points
        ax.tick_params(axis="x", which="major", length=0, pad=below + 4)


def panels(frame: pd.DataFrame, styles: Styles) -> list[Panel]:
    """One panel per dataset, settings in the order of their groups, methods in the order of ``styles``."""
    found = []
    for dataset in sorted(frame["dataset"].unique()):
        data = frame[frame["dataset"] == dataset].sort_values(GROUP)
        settings = list(dict.fromkeys(data["setting"]))
        methods = styles.present(data)
        found.append(Panel(dataset, settings, methods, 0.8 / len(methods)))
    return found


def _panel_inches(panel: Panel, bars_per_method: int = 1) -> float:
    """Wide enough for the methods' slots and for the longest line of a setting's tick label."""
    longest = max(len(line) for s in panel.settings for line in s.split(", "))
    per_setting = max(0.5 * len(panel.methods) * bars_per_method, _CHAR_IN * longest + 0.4)
    return 1.1 + per_setting * len(panel.settings)


def panel_figure(found: list[Panel], rows: int = 1, row_height: float = 4.0, bars_per_method: int = 1,
                 ) -> tuple[Figure, np.ndarray]:
    """A figure with a column of axes per panel, each as wide as its panel needs."""
    widths = [_panel_inches(p, bars_per_method) for p in found]
    lines = max(len(s.split(", ")) for p in found for s in p.settings)
    return new_figure(max(sum(widths), 6.0), rows * row_height + 0.18 * lines + 0.9, rows, len(found),
                      width_ratios=widths)


def summary_row(report: Report, dataset: str, setting: str, method: str) -> pd.Series | None:
    """The summary row of one slot (None when the group has none)."""
    s = report.summary
    rows = s[(s["dataset"] == dataset) & (s["setting"] == setting) & (s["method"] == method)]
    return None if rows.empty else rows.iloc[0]


def slots(frame: pd.DataFrame, panel: Panel) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(setting, method, its rows) for every slot of the panel that has rows."""
    data = frame[frame["dataset"] == panel.dataset]
    for setting in panel.settings:
        for method in panel.methods:
            rows = data[(data["setting"] == setting) & (data["method"] == method)]
            if not rows.empty:
                yield setting, method, rows


def filled(frame: pd.DataFrame, panel: Panel) -> list[tuple[str, str]]:
    """The (setting, method) slots of the panel that have rows in ``frame``."""
    return [(setting, method) for setting, method, _ in slots(frame, panel)]


def seed_points(ax: Any, x: float, values: np.ndarray, spread: float) -> None:
    """Each seed's value as a grey point, spread a little around ``x``."""
    offsets = np.linspace(-spread, spread, len(values)) if len(values) > 1 else np.zeros(1)
    ax.scatter(x + offsets, values, s=22, color="0.6", edgecolor="0.25", linewidth=0.6, zorder=2)


def bar(ax: Any, x: float, width: float, values: pd.Series, color: Any, hatch: str) -> None:
    """A bar at the mean of ``values`` with an sd error bar when there are two or more."""
    values = values.dropna()
    sd = values.std(ddof=1) if len(values) > 1 else None
    ax.bar(x, values.mean(), width=width, color=color, hatch=hatch, edgecolor="black", linewidth=0.8,
           yerr=sd, error_kw=ERR, zorder=2)


def curve(ax: Any, line: pd.DataFrame, x: str, styles: Styles, method: str, settings: Styles, setting: str,
          y: str = "test_acc_pct_mean", sd: str | None = "test_acc_pct_sd") -> None:
    """One group's line of ``y`` against ``x``, styled by method and setting, with a ± ``sd`` band if given."""
    label = method if len(settings.index) == 1 else f"{method}\n{textwrap.fill(setting, 28)}"
    mean = line[y].to_numpy()
    ax.plot(line[x], mean, color=styles.color(method), marker=styles.marker(method), markersize=6,
            fillstyle=settings.fill(setting), markerfacecoloralt="white", linestyle=settings.linestyle(setting),
            label=label)
    if sd is not None:
        spread = line[sd].to_numpy(dtype=float)
        ax.fill_between(line[x], mean - spread, mean + spread, color=styles.color(method), alpha=0.15, linewidth=0)
