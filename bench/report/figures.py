"""The report's figures, drawn from the DataFrames of ``bench.report.aggregate.Report``.

One style throughout (seaborn "whitegrid", colour-blind palette). Colour always means the method (NoProp-DT or
backprop), the comparison the figures are for; within a dataset panel the settings (configs and switches, labelled
by what differs between them, see ``bench.report.labels``) are the x categories, with the methods of one setting
side by side. Colour is never the only cue: each method also has its own marker and hatch, curves of different
settings their own line style and marker fill, memory measures their own hatch. Titles and legends are wrapped to
fit inside the figure. Figures are drawn on ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never
through pyplot, so no display is needed and no global state (backend, rcParams) is changed. The class-embedding and
NoProp-DT figures use each run's small ``.npz`` artifact (read by ``bench.report.load``); a run without one is
skipped.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.report import inference_steps, time_to_accuracy
from bench.report.aggregate import BACKPROP, GROUP, NOPROP, Report
from bench.report.labels import SETTING, value_text
from bench.report.load import read_artifacts

FORMATS = ("png", "pdf", "svg")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "--", "oo")
FILLS = ("full", "none", "left", "bottom", "right", "top")  # marker fill per setting: one-epoch curves are points
MEASURE_HATCHES = {"CUDA allocated": "", "CUDA reserved": "//", "RSS (CPU)": ".."}
PAPER_STYLE = {"colors": "black", "linestyles": "--", "linewidth": 1.8,  # white halo: visible over any bar
               "path_effects": [patheffects.withStroke(linewidth=4, foreground="white")]}
SEQUENTIAL = "mako_r"  # monotonic in lightness, so it survives grayscale printing
DPI = 150
MAX_SAMPLE_IMAGES = 32
_CHAR_IN = 0.075  # about the width of one tick-label character, in inches
_ERR = {"ecolor": "black", "elinewidth": 1.2, "capsize": 4}


@contextmanager
def _style() -> Iterator[None]:
    """The one style, applied only while a figure is drawn (rcParams are restored afterwards)."""
    params = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85)}
    params["axes.prop_cycle"] = matplotlib.cycler(color=sns.color_palette("colorblind"))
    with matplotlib.rc_context(params):
        yield


class _Styles:
    """A fixed colour, marker, line style and hatch per key (a method, or a setting), the same in every figure."""

    def __init__(self, keys: list[str]) -> None:
        self.palette = sns.color_palette("colorblind", max(len(keys), 1))
        self.index = {k: i for i, k in enumerate(keys)}

    def color(self, key: str) -> tuple[float, float, float]:
        return self.palette[self.index[key] % len(self.palette)]

    def marker(self, key: str) -> str:
        return MARKERS[self.index[key] % len(MARKERS)]

    def linestyle(self, key: str) -> str:
        return LINESTYLES[self.index[key] % len(LINESTYLES)]

    def hatch(self, key: str) -> str:
        return HATCHES[self.index[key] % len(HATCHES)]

    def fill(self, key: str) -> str:
        return FILLS[self.index[key] % len(FILLS)]


def _methods(frame: pd.DataFrame) -> list[str]:
    """NoProp-DT first, then backprop, then any other method: the order of the bars in every setting."""
    present = set(frame["method"])
    return [m for m in (NOPROP, BACKPROP) if m in present] + sorted(present - {NOPROP, BACKPROP})


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
    styles = _Styles(_methods(report.runs))
    written: list[Path] = []
    jobs: list[tuple[str, Callable[[], Figure | None]]] = [
        (f"accuracy.{fmt}", lambda: accuracy_figure(report, styles)),
        (f"curves.{fmt}", lambda: curves_figure(report, styles)),
        (f"memory.{fmt}", lambda: memory_figure(report, styles)),
        (f"throughput.{fmt}", lambda: throughput_figure(report, styles)),
        (f"time_to_accuracy.{fmt}", lambda: time_to_accuracy_figure(report, styles)),
    ]
    if not report.inference_steps.empty:  # only runs with ode_steps_sweep have one; no warning for the others
        jobs.append((f"inference_steps.{fmt}", lambda: inference_steps_figure(report, styles)))
    for name, draw in [*jobs, *_artifact_jobs(report, fmt)]:
        _save(draw, out / name, fmt, report.warnings, written)
    return written


def _save(draw: Callable[[], Figure | None], path: Path, fmt: str, warnings: list[str], written: list[Path]) -> None:
    try:
        with _style():
            fig = draw()
            if fig is None:
                warnings.append(f"{path.name} not drawn: the runs hold no data for it")
                return
            metadata = {"Software": None} if fmt == "png" else {"Creator": None, "Date": None}
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
    except Exception as e:  # one broken figure must not cost the tables and the other figures
        warnings.append(f"{path.name} could not be drawn: {type(e).__name__}: {e}")
        return
    written.append(path)


def _new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **grid: Any) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # Agg (no display), and a renderer to measure text with; pdf/svg use their own on save
    axes = fig.subplots(nrows, ncols, squeeze=False, **grid)
    return fig, axes


def _text_width(fig: Figure, artist: Any) -> float:
    return artist.get_window_extent(fig.canvas.get_renderer()).width


def _suptitle(fig: Figure, text: str) -> None:
    """The figure's title, wrapped onto as many lines as it needs to lie entirely inside the figure."""
    limit = fig.bbox.width * 0.96
    for chars in range(max(20, *(len(line) for line in text.splitlines())), 19, -4):
        wrapped = "\n".join(textwrap.fill(line, chars) for line in text.splitlines())
        title = fig.suptitle(wrapped)
        if _text_width(fig, title) <= limit:
            return


def _legend(fig: Figure, handles: list[Any], labels: list[str]) -> None:
    """One legend for the whole figure, below the plots, with as many columns as fit in the figure's width."""
    if not handles:
        return
    for ncols in range(min(len(handles), 4), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)
        if ncols == 1 or _text_width(fig, legend) <= fig.bbox.width * 0.96:
            return
        legend.remove()


def _method_handles(methods: list[str], styles: _Styles, bars: bool, hatched: bool = True
                    ) -> tuple[list[Any], list[str]]:
    if bars:
        handles = [Patch(facecolor=styles.color(m), edgecolor="black", hatch=styles.hatch(m) if hatched else "")
                   for m in methods]
    else:
        handles = [Line2D([], [], color=styles.color(m), marker=styles.marker(m), markeredgecolor="black",
                          linestyle="none", markersize=8) for m in methods]
    return handles, list(methods)


# ------------------------------------------------------------------------------------------- panel layout


@dataclass
class _Panel:
    """One dataset's x axis: its settings as categories, with a slot per (setting, method) side by side."""

    dataset: str
    settings: list[str]
    methods: list[str]
    width: float  # of one method's slot, in x units (one setting spans 0.8)

    def x(self, setting: str, method: str) -> float:
        i, j = self.settings.index(setting), self.methods.index(method)
        return i + (j - (len(self.methods) - 1) / 2) * self.width

    def ticks(self, ax: Any) -> None:
        """One tick per setting, its label a line per key; faint lines between settings instead of a grid line
        through the middle of each."""
        ax.set_xticks(range(len(self.settings)), [s.replace(", ", "\n") for s in self.settings])
        ax.set_xlim(-0.5, len(self.settings) - 0.5)
        ax.grid(False, axis="x")
        for i in range(1, len(self.settings)):
            ax.axvline(i - 0.5, color="0.85", linewidth=0.8, zorder=0)


def _panels(frame: pd.DataFrame) -> list[_Panel]:
    """One panel per dataset, settings in the order of their groups, methods in the fixed order."""
    panels = []
    for dataset in sorted(frame["dataset"].unique()):
        data = frame[frame["dataset"] == dataset].sort_values(GROUP)
        settings = list(dict.fromkeys(data["setting"]))
        methods = _methods(data)
        panels.append(_Panel(dataset, settings, methods, 0.8 / len(methods)))
    return panels


def _panel_inches(panel: _Panel, bars_per_method: int = 1) -> float:
    """Wide enough for the methods' slots and for the longest line of a setting's tick label."""
    longest = max(len(line) for s in panel.settings for line in s.split(", "))
    per_setting = max(0.5 * len(panel.methods) * bars_per_method, _CHAR_IN * longest + 0.4)
    return 1.1 + per_setting * len(panel.settings)


def _panel_figure(panels: list[_Panel], rows: int = 1, row_height: float = 4.0, bars_per_method: int = 1,
                  ) -> tuple[Figure, np.ndarray]:
    widths = [_panel_inches(p, bars_per_method) for p in panels]
    lines = max(len(s.split(", ")) for p in panels for s in p.settings)
    fig, axes = _new_figure(max(sum(widths), 6.0), rows * row_height + 0.18 * lines + 0.9, rows, len(panels),
                            width_ratios=widths)
    return fig, axes


def _summary_row(report: Report, dataset: str, setting: str, method: str) -> pd.Series | None:
    s = report.summary
    rows = s[(s["dataset"] == dataset) & (s["setting"] == setting) & (s["method"] == method)]
    return None if rows.empty else rows.iloc[0]


def _slots(frame: pd.DataFrame, panel: _Panel) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(setting, method, its rows) for every slot of the panel that has rows."""
    data = frame[frame["dataset"] == panel.dataset]
    for setting in panel.settings:
        for method in panel.methods:
            rows = data[(data["setting"] == setting) & (data["method"] == method)]
            if not rows.empty:
                yield setting, method, rows


def _seed_points(ax: Any, x: float, values: np.ndarray, spread: float) -> None:
    offsets = np.linspace(-spread, spread, len(values)) if len(values) > 1 else np.zeros(1)
    ax.scatter(x + offsets, values, s=22, color="0.6", edgecolor="0.25", linewidth=0.6, zorder=2)


# --------------------------------------------------------------------------------------------- the figures


def accuracy_figure(report: Report, styles: _Styles) -> Figure | None:
    """1. Final test accuracy per setting and method: every seed a point, over mean ± sd; the paper's number as a
    dashed line where it has one."""
    per_seed = report.per_seed.dropna(subset=["test_acc_pct"])
    if per_seed.empty:
        return None
    panels = _panels(per_seed)
    fig, axes = _panel_figure(panels)
    paper = False
    for ax, panel in zip(axes[0], panels, strict=True):
        for setting, method, rows in _slots(per_seed, panel):
            x, row = panel.x(setting, method), _summary_row(report, panel.dataset, setting, method)
            _seed_points(ax, x, rows["test_acc_pct"].to_numpy(), panel.width * 0.2)
            sd = row["test_acc_pct_sd"]
            ax.errorbar(x, row["test_acc_pct_mean"], yerr=None if pd.isna(sd) else sd, fmt=styles.marker(method),
                        color=styles.color(method), markeredgecolor="black", markersize=9, zorder=3, **_ERR)
            if not pd.isna(row["paper_test_acc_pct"]):
                paper = True
                ax.hlines(row["paper_test_acc_pct"], x - panel.width / 2, x + panel.width / 2, zorder=4,
                          **PAPER_STYLE)
        panel.ticks(ax)
        ax.set(title=panel.dataset, xlabel="", ylabel="final test accuracy (%)")
    handles, labels = _method_handles(_methods(per_seed), styles, bars=False)
    handles.append(Line2D([], [], marker="o", color="0.6", markeredgecolor="0.25", linestyle="none"))
    labels.append("a seed")
    if paper:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.8))
        labels.append("paper")
    _legend(fig, handles, labels)
    _suptitle(fig, "Final test accuracy: mean ± sd over seeds (coloured marker), seeds (grey points)"
              + (", the paper's number (dashed)" if paper else ""))
    return fig


def throughput_figure(report: Report, styles: _Styles) -> Figure | None:
    """4. Training throughput per setting and method (samples/s; for NoProp-DT a sample trains all T blocks once)."""
    per_seed = report.per_seed.dropna(subset=["samples_per_s"])
    if per_seed.empty:
        return None
    panels = _panels(per_seed)
    fig, axes = _panel_figure(panels)
    for ax, panel in zip(axes[0], panels, strict=True):
        for setting, method, rows in _slots(per_seed, panel):
            _bar(ax, panel.x(setting, method), panel.width * 0.9, rows["samples_per_s"], styles.color(method),
                 styles.hatch(method))
            _seed_points(ax, panel.x(setting, method), rows["samples_per_s"].to_numpy(), panel.width * 0.15)
        panel.ticks(ax)
        ax.set(title=panel.dataset, xlabel="", ylabel="training throughput (samples/s)")
    _legend(fig, *_method_handles(_methods(per_seed), styles, bars=True))
    _suptitle(fig, "Training throughput (bars: mean ± sd over seeds; points: seeds)")
    return fig


def _bar(ax: Any, x: float, width: float, values: pd.Series, color: Any, hatch: str) -> None:
    """A bar at the mean of ``values`` with an sd error bar when there are two or more."""
    values = values.dropna()
    sd = values.std(ddof=1) if len(values) > 1 else None
    ax.bar(x, values.mean(), width=width, color=color, hatch=hatch, edgecolor="black", linewidth=0.8,
           yerr=sd, error_kw=_ERR, zorder=2)


def memory_figure(report: Report, styles: _Styles) -> Figure | None:
    """3. Peak memory per setting and method in MB (CUDA allocated and reserved, else CPU RSS; hatch tells the
    measure), with the paper's GPU figures dashed where it has them; below, the bytes autograd saves for backward
    in one training step, which differ most between the methods where a CPU's peak RSS barely does."""
    memory = report.memory
    saved = report.per_seed.dropna(subset=["peak_saved_activation_mb"])
    if memory.empty and saved.empty:
        return None
    both = pd.concat([memory[["dataset", "method", *SETTING, "setting"]],
                      saved[["dataset", "method", *SETTING, "setting"]]])
    panels = _panels(both)
    kinds = [m for m in MEASURE_HATCHES if m in set(memory["measure"])]
    rows = [name for name, frame in (("peak", memory), ("saved", saved)) if not frame.empty]
    fig, axes = _panel_figure(panels, rows=len(rows), row_height=3.4, bars_per_method=max(len(kinds), 1))
    paper = False
    for column, panel in enumerate(panels):
        for r, name in enumerate(rows):
            ax = axes[r, column]
            if name == "peak":
                paper |= _peak_panel(ax, panel, memory, report, styles)
            else:
                _saved_panel(ax, panel, saved, styles)
            panel.ticks(ax)
    handles, labels = _method_handles(_methods(both), styles, bars=True, hatched=False)  # hatch: the measure
    for kind in kinds:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=MEASURE_HATCHES[kind]))
        labels.append(f"peak {kind}")
    if paper:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.8))
        labels.append("paper: peak GPU memory")
    _legend(fig, handles, labels)
    _suptitle(fig, "Peak memory per method (bars: mean ± sd over seeds; RSS where a run had no CUDA device)"
              + ("; below: activations saved for backward in one training step" if "saved" in rows else ""))
    return fig


def _peak_panel(ax: Any, panel: _Panel, memory: pd.DataFrame, report: Report, styles: _Styles) -> bool:
    """Bars per measure in each method's slot; returns whether a paper line was drawn."""
    kinds = [m for m in MEASURE_HATCHES if m in set(memory.loc[memory["dataset"] == panel.dataset, "measure"])]
    paper = False
    for setting, method, rows in _slots(memory, panel):
        x, bar = panel.x(setting, method), panel.width / max(len(kinds), 1)
        for k, kind in enumerate(kinds):
            values = rows.loc[rows["measure"] == kind, "mb"]
            if not values.empty:
                _bar(ax, x + (k - (len(kinds) - 1) / 2) * bar, bar * 0.9, values, styles.color(method),
                     MEASURE_HATCHES[kind])
        row = _summary_row(report, panel.dataset, setting, method)  # the paper's GPU figure beside ours on CUDA only
        if row is not None and not pd.isna(row["paper_peak_gpu_mb"]) and "CUDA allocated" in set(rows["measure"]):
            paper = True
            ax.hlines(row["paper_peak_gpu_mb"], x - panel.width / 2, x + panel.width / 2, zorder=4, **PAPER_STYLE)
    ax.set(title=f"{panel.dataset}: peak memory", xlabel="", ylabel="peak memory (MB)")
    return paper


def _saved_panel(ax: Any, panel: _Panel, saved: pd.DataFrame, styles: _Styles) -> None:
    """Bars labelled with their value: the two methods can differ tenfold, so a short bar is still read."""
    for setting, method, rows in _slots(saved, panel):
        values = rows["peak_saved_activation_mb"]
        _bar(ax, panel.x(setting, method), panel.width * 0.9, values, styles.color(method), "")
        mean = values.mean()
        ax.annotate(f"{mean:.3g}", (panel.x(setting, method), mean), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    ax.margins(y=0.12)
    ax.set(title=f"{panel.dataset}: saved activations", xlabel="", ylabel="saved for backward, one step (MB)")


def curves_figure(report: Report, styles: _Styles) -> Figure | None:
    """2. Test accuracy vs epoch and vs cumulative training time: mean line, band = ± sd across seeds."""
    curves = report.curves.dropna(subset=["test_acc_pct_mean"])
    if curves.empty:
        return None
    datasets = sorted(curves["dataset"].unique())
    fig, axes = _new_figure(12.5, 3.6 * len(datasets) + 0.6, len(datasets), 2)
    for row_axes, dataset in zip(axes, datasets, strict=True):
        data = curves[curves["dataset"] == dataset].sort_values(GROUP)
        settings = _Styles(list(dict.fromkeys(data["setting"])))
        for ax, x, xlabel in ((row_axes[0], "epoch", "epoch"),
                              (row_axes[1], "cum_train_time_s_mean", "cumulative training time (s)")):
            for method in _methods(data):
                for setting, line in data[data["method"] == method].groupby("setting", sort=False):
                    _curve(ax, line.sort_values("epoch"), x, styles, method, settings, setting)
            ax.set(title=f"{dataset}: test accuracy vs {xlabel.split(' (')[0]}", xlabel=xlabel,
                   ylabel="test accuracy (%)")
        if data["epoch"].max() <= 20:
            row_axes[0].set_xticks(sorted(data["epoch"].unique()))
        seconds = data["cum_train_time_s_mean"][data["cum_train_time_s_mean"] > 0]
        if len(seconds) and seconds.max() > 20 * seconds.min():  # settings minutes apart: each still readable
            row_axes[1].set_xscale("log")
            row_axes[1].set_xlabel("cumulative training time (s, log scale)")
        row_axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    _suptitle(fig, "Test accuracy during training (line: mean over seeds; band: ± sd)")
    return fig


def time_to_accuracy_figure(report: Report, styles: _Styles) -> Figure | None:
    """3. Accuracy (validation, else test) against cumulative training time, one panel per dataset and measure:
    targets as dotted lines, and where a group first reached each target (mean over the runs that did) a marker."""
    curves = report.accuracy_vs_time.dropna(subset=["acc_mean"])
    if curves.empty:
        return None
    panels = list(curves.groupby(["dataset", "measured_on"], sort=True).groups)
    targets = sorted(report.time_to_accuracy["target_pct"].unique())
    reached = time_to_accuracy.per_group(report.time_to_accuracy)
    reached = reached[reached["n_reached"] > 0]
    fig, axes = _new_figure(7.5, 3.8 * len(panels) + 0.6, len(panels), 1)
    for ax, (dataset, measure) in zip(axes[:, 0], panels, strict=True):
        data = curves[(curves["dataset"] == dataset) & (curves["measured_on"] == measure)].sort_values(GROUP)
        settings = _Styles(list(dict.fromkeys(data["setting"])))
        for method in _methods(data):
            for setting, line in data[data["method"] == method].groupby("setting", sort=False):
                _curve(ax, line, "cum_train_time_s_mean", styles, method, settings, setting, y="acc_mean", sd=None)
        for target in targets:
            ax.axhline(target, color="0.2", linestyle=(0, (1, 2)), linewidth=1.4, zorder=1)
            ax.annotate(f"{value_text(target)} %", (1.0, target), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8, color="0.35")
        hits = reached[(reached["dataset"] == dataset) & (reached["measured_on"] == measure)]
        for _, hit in hits.iterrows():
            ax.scatter(hit["cum_train_time_s_mean"], hit["target_pct"], s=70, marker="|", linewidths=2.2,
                       color=styles.color(hit["method"]), zorder=3)
        ax.set(title=f"{dataset}: {measure} accuracy vs training time", xlabel="cumulative training time (s)",
               ylabel=f"{measure} accuracy (%)")
        ax.set_xlim(left=0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.1, 1.0), frameon=False)
    _suptitle(fig, "Time to accuracy (dotted: targets; bar: where a method first reached one, mean over runs)")
    return fig


def inference_steps_figure(report: Report, styles: _Styles) -> Figure | None:
    """Test accuracy and inference time per image against the ODE step count (log scale), one line per group and
    integrator: what a user reads to choose ``ode_steps``. None when no run measured a step sweep."""
    groups = inference_steps.per_group(report.inference_steps)
    if groups.empty:
        return None
    fig, axes = _new_figure(11, 4.2, ncols=2)
    lines = groups.groupby(["dataset", "method", "setting", "integrator"], sort=True)
    settings = _Styles(sorted(groups["setting"].unique()))
    for (dataset, method, setting, integrator), line in lines:
        label = f"{method} {integrator}" + (f"\n{textwrap.fill(setting, 28)}" if len(settings.index) > 1 else "")
        label += f" ({dataset})" if groups["dataset"].nunique() > 1 else ""
        style = dict(color=styles.color(method), marker=styles.marker(method), fillstyle=settings.fill(setting),
                     linestyle="--" if integrator == "heun" else settings.linestyle(setting), markersize=6)
        axes[0, 0].plot(line["steps"], line["test_acc_pct_mean"], label=label, **style)
        axes[0, 1].plot(line["steps"], line["infer_ms_per_image_mean"], **style)
    for ax, ylabel in ((axes[0, 0], "test accuracy (%)"), (axes[0, 1], "inference time per image (ms)")):
        ax.set_xscale("log")
        ax.set_xlabel("ODE steps at inference")
        ax.set_ylabel(ylabel)
    axes[0, 1].set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    _suptitle(fig, "Inference steps: accuracy and time (one seeded pass per run and step count; mean over runs)")
    return fig


def _curve(ax: Any, line: pd.DataFrame, x: str, styles: _Styles, method: str, settings: _Styles, setting: str,
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


# ------------------------------------------------------------------------------- figures from run artifacts


def _slug(*parts: str) -> str:
    return "_".join("".join(c if c.isalnum() or c in "-." else "-" for c in p) for p in parts if p)


def _file_suffixes(runs: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Per group, what its artifact figures' file names add to dataset, method and embedding: nothing when it is the
    only group of those, else its hash prefix where configs differ and the switches where one config has several."""
    suffixes = {}
    groups = runs.drop_duplicates(GROUP)
    for _, same in groups.groupby(["dataset", "method", "embedding"]):
        switches = [k for k in SETTING[2:] if (same.groupby("config_hash")[k].nunique() > 1).any()]
        for _, row in same.iterrows():
            parts = [row["config_hash"][:6]] if same["config_hash"].nunique() > 1 else []
            suffixes[tuple(row[GROUP])] = "_".join([*parts, *(f"{k}-{row[k]}" for k in switches)])
    return suffixes


def _artifact_jobs(report: Report, fmt: str) -> list[tuple[str, Callable[[], Figure | None]]]:
    """Figures 5 and 6: one set per group, from the artifacts of its runs (lowest seed first)."""
    jobs: list[tuple[str, Callable[[], Figure | None]]] = []
    runs = report.runs.sort_values([*GROUP, "seed"])
    suffixes = _file_suffixes(runs)
    for key, group in runs.groupby(GROUP, sort=True):
        dataset, method, embedding = key[:3]
        if embedding not in ("learned", "prototype") and method != NOPROP:
            continue
        found = read_artifacts(group, report.warnings)
        loaded = [(row, found[(str(row.results_dir), str(row.run_id))]) for row in group.itertuples()
                  if (str(row.results_dir), str(row.run_id)) in found]
        if not loaded:
            continue
        title, stem = f"{dataset}, {group['variant'].iloc[0]}", (dataset, method, embedding, suffixes[tuple(key)])
        first, seed = loaded[0][1], _seed_text(loaded[0][0].seed)
        if embedding in ("learned", "prototype"):
            jobs.append((_slug("embeddings", *stem) + f".{fmt}",
                         lambda a=first, t=title, s=seed: embedding_figure(a, f"{t}, seed {s}")))
        if method == NOPROP:
            every = [arrays for _, arrays in loaded]
            jobs.append((_slug("confusion", *stem) + f".{fmt}", lambda a=every, t=title: confusion_figure(a, t)))
            jobs.append((_slug("samples", *stem) + f".{fmt}",
                         lambda a=first, t=title, s=seed: samples_figure(a, f"{t}, seed {s}")))
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
    fig, axes = _new_figure(max(1.25 * cols, 6.0), 1.45 * rows + 0.6, rows, cols)
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
    _suptitle(fig, f"Trained prototype embeddings (one per class, each scaled to its own range)\n{title}")
    return fig


def _pca_scatter(embedding: np.ndarray, title: str) -> Figure:
    centred = embedding - embedding.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(len(coords))])
    variance = singular**2 / max(float((singular**2).sum()), 1e-30)
    variance = np.pad(variance, (0, max(0, 2 - len(variance))))
    fig, axes = _new_figure(6.0, 5.4)
    ax = axes[0, 0]
    sns.scatterplot(x=coords[:, 0], y=coords[:, 1], ax=ax, color="0.3", s=40, edgecolor="black")
    size = 9 if len(coords) <= 20 else 6
    for k, (x, y) in enumerate(coords):
        ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=size)
    ax.set(xlabel=f"PC 1 ({100 * variance[0]:.0f} % of variance; embedding units)",
           ylabel=f"PC 2 ({100 * variance[1]:.0f} % of variance; embedding units)")
    _suptitle(fig, f"Trained class embeddings, 2-D PCA (numbers: class index)\n{title}")
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
    fig, axes = _new_figure(side + 1.0, side + 0.4)
    ax = axes[0, 0]
    small = classes <= 20
    sns.heatmap(percent, ax=ax, cmap=SEQUENTIAL, vmin=0, vmax=100, square=True, annot=counts if small else False,
                fmt="d", annot_kws={"fontsize": 8}, cbar_kws={"label": "% of the true class"},
                xticklabels=1 if small else 10, yticklabels=1 if small else 10, linewidths=0.3 if small else 0)
    ax.set(xlabel="predicted class", ylabel="true class")
    n = sum(len(y) for y, _ in pairs)
    _suptitle(fig, f"NoProp-DT confusion matrix ({'counts; ' if small else ''}colour: % of true class)\n"
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
    fig, axes = _new_figure(max(1.3 * cols, 6.0), 1.55 * rows + 0.6, rows, cols)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(images):
            ax.axis("off")
            continue
        _sample(ax, images[k], int(true[k]), int(pred[k]))
    _suptitle(fig, f"NoProp-DT test images: true and predicted class (wrong ones framed, ✗)\n{title}")
    return fig


def _sample(ax: Any, image: np.ndarray, true: int, pred: int) -> None:
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
