"""The equal-cost view: each method's test accuracy against what its training cost, in training GFLOP and in
training seconds, and a table of accuracy at a few budgets common to the methods of a dataset.

An epoch is not the same work for every method, so "after 2 epochs" compares unequal budgets. Read from the rows
the report already has (epochs.csv: ``test_acc`` after each epoch, ``cum_train_time_s``; runs.csv: the cost):

- a run's cumulative GFLOP after epoch e is ``train_gflop_per_sample`` x the images it trained by then: the images
  of an epoch (``train_subset``, or the dataset's training set less ``val_size``; for a row without a readable
  config, ``samples_per_s`` x ``train_time_s`` / ``epochs_done``) times e; its last epoch may be partial under a
  budget, so its last point is ``budget_spent`` under a GFLOP budget and ``train_gflop_per_sample`` x
  ``samples_per_s`` x ``train_time_s`` (the images the row says it trained) otherwise;
- its cumulative seconds are ``cum_train_time_s`` (training steps only, as everywhere);
- its accuracy at a budget is read by linear interpolation between the two evaluations around it, never
  extrapolated: past its last evaluation a run did *not reach* the budget, before its first it has *no reading yet*;
- the budgets, per dataset and unit, are chosen from the data. A group's total is the least any of its runs spent
  by its last evaluation; the budgets are the smallest group total (every run of every method reached it), below
  it the first cost at which every run has an evaluation (rounded up to two significant digits) and a half and a
  quarter of the smallest group total (rounded down) where every run has one by then, and above it the largest
  group total (reached by some methods only);
- a group's value at a budget is the mean ± sd over its runs that have a reading there, with [k/n] where not all do.

Shown as a table per dataset and unit (terminal and summary.md), ``equal_cost.csv`` (per group and budget) and the
``equal_cost`` figure. Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.formatting import MISSING, fmt, mean_sd
from bench.report import plot
from bench.report.cells import markdown_table, rich_table
from bench.report.labels import GROUP, LABELS
from bench.report.views.base import FigureJob, View

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from rich.table import Table

    from bench.report.aggregate import Report

NAME = "equal_cost"
UNITS = {"gflop": "training GFLOP", "seconds": "training seconds"}  # cost column -> what it is
SUFFIX = {"gflop": " GFLOP", "seconds": " s"}
READ, NOT_REACHED, NOT_YET = "read", "not reached", "no reading yet"
POINT_COLUMNS = [*GROUP, *LABELS, "results_dir", "run_id", "seed", "epoch", "test_acc", "gflop", "seconds"]
RUN_COLUMNS = [*GROUP, *LABELS, "results_dir", "run_id", "seed", "unit", "budget", "state", "test_acc"]
GROUP_COLUMNS = [*GROUP, *LABELS, "unit", "budget", "n_runs", "n_read", "n_not_reached", "n_not_yet",
                 "test_acc_pct_mean", "test_acc_pct_sd"]


# --------------------------------------------------------------------------------------------- the costs


def images_per_epoch(run: pd.Series) -> float:
    """Images one epoch of the run trains: its config's ``train_subset``, or the dataset's training set less
    ``val_size``; from its throughput where the config is unreadable (then its epochs must all be whole)."""
    from bench.run.data import DATASETS

    config = run["config"] if isinstance(run.get("config"), dict) else {}
    subset, spec = config.get("train_subset"), DATASETS.get(str(run["dataset"]))
    if isinstance(subset, int) and subset > 0:
        return float(subset)
    if spec is not None and config:
        return float(spec.train_size - int(config.get("val_size") or 0))
    whole = str(run.get("budget_unit") or "epochs") == "epochs"
    done = float(run["epochs_done"]) if not pd.isna(run["epochs_done"]) else math.nan
    return float(run["samples_per_s"]) * float(run["train_time_s"]) / done if whole and done else math.nan


def gflop_after(run: pd.Series, epochs: np.ndarray) -> np.ndarray:
    """Cumulative training GFLOP of the run after each of ``epochs`` (its last possibly partial); NaN where the
    run has no FLOP count."""
    per_image = float(run["train_gflop_per_sample"]) if not pd.isna(run["train_gflop_per_sample"]) else math.nan
    cost = per_image * images_per_epoch(run) * epochs.astype("float64")
    if len(cost) and not math.isnan(per_image):
        if str(run.get("budget_unit")) == "gflop" and not pd.isna(run.get("budget_spent")):
            cost[-1] = float(run["budget_spent"])
        elif str(run.get("budget_unit")) == "seconds":
            cost[-1] = per_image * float(run["samples_per_s"]) * float(run["train_time_s"])
    return cost


def cost_points(ok: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """One row per ok run and evaluated epoch: its test accuracy and cumulative training GFLOP and seconds."""
    ids = ["results_dir", "run_id"]
    if ok.empty or epochs.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    frames = []
    rows = epochs[[*ids, "epoch", "test_acc", "cum_train_time_s"]].astype(
        {"results_dir": str, "run_id": str, "epoch": "float64", "test_acc": "float64", "cum_train_time_s": "float64"})
    for _, run in ok.iterrows():
        mine = rows[(rows["results_dir"] == str(run["results_dir"])) & (rows["run_id"] == str(run["run_id"]))]
        mine = mine.dropna(subset=["test_acc"]).sort_values("epoch")
        if mine.empty:
            continue
        frame = pd.DataFrame({c: [run[c]] * len(mine) for c in [*GROUP, *LABELS, *ids, "seed"]})
        frame["epoch"] = mine["epoch"].to_numpy()
        frame["test_acc"] = mine["test_acc"].to_numpy()
        frame["gflop"] = gflop_after(run, mine["epoch"].to_numpy())
        frame["seconds"] = mine["cum_train_time_s"].to_numpy()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[POINT_COLUMNS] if frames else pd.DataFrame(columns=POINT_COLUMNS)


# ---------------------------------------------------------------------------------------- reading budgets


def read_at(costs: np.ndarray, accs: np.ndarray, budget: float) -> tuple[str, float]:
    """A run's accuracy at ``budget``: (READ, the linear interpolation between the evaluations around it), or
    (NOT_REACHED | NOT_YET, NaN) past its last or before its first evaluation."""
    if budget > costs[-1]:
        return NOT_REACHED, math.nan
    if budget < costs[0]:
        return NOT_YET, math.nan
    return READ, float(np.interp(budget, costs, accs))


def _two_digits(value: float, up: bool) -> float:
    """``value`` rounded to two significant digits, down or up (a budget a reader can say)."""
    if value <= 0:
        return value
    step = 10 ** (math.floor(math.log10(value)) - 1)
    return (math.ceil(value / step - 1e-9) if up else math.floor(value / step + 1e-9)) * step


def choose_budgets(points: pd.DataFrame, unit: str) -> list[float]:
    """The budgets of one dataset and unit (see the module docstring): every method reached all but the last."""
    runs = points.dropna(subset=[unit]).groupby(["results_dir", "run_id"], sort=False)
    if not len(runs):
        return []
    first, last = runs[unit].min(), runs[unit].max()
    group_of = runs[[*GROUP]].first().astype(str).agg("|".join, axis=1)
    reach = last.groupby(group_of).min()
    smallest, largest, readable = float(reach.min()), float(reach.max()), float(first.max())
    below = [_two_digits(readable, up=True), *(_two_digits(smallest * f, up=False) for f in (0.25, 0.5))]
    budgets = [b for b in below if readable <= b < smallest] + [smallest]
    if largest > smallest * 1.01:
        budgets.append(largest)
    return sorted(dict.fromkeys(budgets))


def per_run(points: pd.DataFrame) -> pd.DataFrame:
    """Every run's reading at every budget of its dataset, in both units."""
    rows = []
    for _, data in points.groupby("dataset", sort=True):
        for unit in UNITS:
            budgets = choose_budgets(data, unit)
            for _, run in data.dropna(subset=[unit]).groupby(["results_dir", "run_id"], sort=True):
                first = run.iloc[0]
                for budget in budgets:
                    state, acc = read_at(run[unit].to_numpy(), run["test_acc"].to_numpy(), budget)
                    rows.append([*(first[c] for c in [*GROUP, *LABELS, "results_dir", "run_id", "seed"]), unit,
                                 budget, state, acc])
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def per_group(runs: pd.DataFrame) -> pd.DataFrame:
    """Per group, unit and budget: how many runs read it (or had not reached it, or had no reading yet), and the
    mean and sd of the readings."""
    if runs.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    frame = runs.assign(test_acc=runs["test_acc"].astype("float64"))
    for name, state in (("read", READ), ("not_reached", NOT_REACHED), ("not_yet", NOT_YET)):
        frame[f"is_{name}"] = frame["state"] == state
    grouped = frame.groupby([*GROUP, *LABELS, "unit", "budget"], sort=True, dropna=False)
    table = grouped.agg(n_runs=("run_id", "size"), n_read=("is_read", "sum"), n_not_reached=("is_not_reached", "sum"),
                        n_not_yet=("is_not_yet", "sum"), test_acc_pct_mean=("test_acc", "mean"),
                        test_acc_pct_sd=("test_acc", "std")).reset_index()
    return table[GROUP_COLUMNS]


@dataclass
class EqualCost:
    """The view's data: every run's evaluations with their costs, and its readings at the chosen budgets."""

    points: pd.DataFrame
    per_run: pd.DataFrame


def data(report: Report) -> EqualCost:
    points = cost_points(report.runs, report.epochs)
    if points.empty:
        return EqualCost(points=points, per_run=per_run(points))
    lacking = sorted(set(report.runs["variant"]) - set(points.dropna(subset=["gflop"])["variant"]))
    if lacking:
        report.warnings.append(f"accuracy at equal GFLOP leaves out {', '.join(lacking)}: no FLOP count "
                               "(train_gflop_per_sample) or no epochs")
    return EqualCost(points=points, per_run=per_run(points))


# ------------------------------------------------------------------------------------------------- tables

LEGEND = (
    "test accuracy (%) at the same training cost: each run read by linear interpolation between the evaluations "
    "around the budget (after each epoch), never extrapolated; mean ± sd over the runs read, [k/n] where only k of "
    "n were; not reached: the runs stopped before the budget; no reading yet: their first evaluation came after it. "
    "Budgets per dataset (a group's total: the least any of its runs spent): the smallest group total, which every "
    "run reached; below it, the first cost at which every run has an evaluation, and a half and a quarter of the "
    "smallest total where every run has one; above it, the largest group total. GFLOP: the FLOP counter's matmuls "
    "and convolutions (train_gflop_per_sample x images trained); seconds: training steps only"
)


def _cell(row: pd.Series) -> str:
    if row["n_read"] == 0:
        return NOT_REACHED if row["n_not_reached"] else NOT_YET
    partial = f" [{int(row['n_read'])}/{int(row['n_runs'])}]" if row["n_read"] < row["n_runs"] else ""
    return mean_sd(row["test_acc_pct_mean"], row["test_acc_pct_sd"], missing_sd=None) + partial


def budget_text(budget: float, unit: str) -> str:
    return f"{fmt(budget, '.4g')}{SUFFIX[unit]}"


def tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per dataset and unit: a row per group (method, setting), a column per budget."""
    groups = per_group(report.data[NAME].per_run)
    found = []
    for (dataset, unit), rows in groups.groupby(["dataset", "unit"], sort=True):
        budgets = sorted(rows["budget"].unique())
        header = ["method", "setting", *(f"at {budget_text(b, unit)}" for b in budgets)]
        body = []
        for _, same in rows.groupby([*GROUP], sort=True, dropna=False):
            cells = {r["budget"]: _cell(r) for _, r in same.iterrows()}
            body.append([same.iloc[0]["method"], same.iloc[0]["setting"] or MISSING,
                         *(cells.get(b, MISSING) for b in budgets)])
        found.append((f"{dataset}: test accuracy at equal {UNITS[unit]}", header, body))
    return found


TERMINAL_LEGEND = ("mean ± sd over seeds, each run read between its evaluations (never extrapolated); [k/n]: only "
                   "k of n runs read; how the budgets are chosen: summary.md")


def terminal(report: Report) -> list[Table]:
    """Narrow: the setting column only where a dataset has more than one, a partial count on a line of its own."""
    from rich.markup import escape

    found = tables(report)
    result = []
    for index, (title, header, body) in enumerate(found):
        caption = escape(TERMINAL_LEGEND) if index == len(found) - 1 else None
        table = rich_table(escape(title), caption, padding=(0, 1, 0, 0))
        keep = [i for i, name in enumerate(header) if name != "setting" or len({r[1] for r in body}) > 1]
        for i in keep:
            table.add_column(escape(header[i].replace("at ", "at\n", 1)), no_wrap=header[i] != "setting",
                             overflow="fold")
        for row in body:
            table.add_row(*(escape(row[i]).replace(" [", "\n[") for i in keep))
        result.append(table)
    return result


def markdown(report: Report) -> list[str]:
    found = tables(report)
    if not found:
        return []
    parts = ["## Accuracy at equal cost"]
    for title, header, body in found:
        parts += [f"**{title}**", markdown_table(header, body)]
    return [*parts, LEGEND[0].upper() + LEGEND[1:] + ". Per group and budget: equal_cost.csv."]


def files(report: Report) -> dict[str, pd.DataFrame]:
    groups = per_group(report.data[NAME].per_run)
    return {} if groups.empty else {"equal_cost.csv": groups}


# ------------------------------------------------------------------------------------------------- figure


def group_curve(points: pd.DataFrame, unit: str) -> pd.DataFrame:
    """A group's accuracy against ``unit``: at every evaluation cost of its runs inside the range all of them
    cover, the mean and sd over runs of each run's interpolated accuracy (never extrapolated). Where the runs share
    no range (one evaluation each, at different seconds), the mean cost and accuracy per epoch instead."""
    runs = [(r[unit].to_numpy(), r["test_acc"].to_numpy())
            for _, r in points.dropna(subset=[unit]).groupby(["results_dir", "run_id"], sort=True)]
    if not runs:
        return pd.DataFrame(columns=["x", "mean", "sd"])
    low, high = max(c[0] for c, _ in runs), min(c[-1] for c, _ in runs)
    if low > high:
        means = points.dropna(subset=[unit]).groupby("epoch", sort=True)
        return pd.DataFrame({"x": means[unit].mean(), "mean": means["test_acc"].mean(),
                             "sd": means["test_acc"].std()}).reset_index(drop=True)
    xs = np.unique(np.clip(np.concatenate([c for c, _ in runs]), low, high))
    ys = np.array([np.interp(xs, c, a) for c, a in runs])
    sd = ys.std(axis=0, ddof=1) if len(runs) > 1 else np.full(len(xs), np.nan)
    return pd.DataFrame({"x": xs, "mean": ys.mean(axis=0), "sd": sd})


def _draw_group(ax: Axes, rows: pd.DataFrame, readings: pd.DataFrame, unit: str, styles: plot.Styles,
                settings: plot.Styles) -> None:
    """One group's line (± sd band) and, as markers, its table readings at the budgets (hollow where only some of
    its runs had a reading there)."""
    method, setting = rows["method"].iloc[0], rows["setting"].iloc[0]
    label = method if len(settings.index) == 1 else f"{method}\n{setting}"
    curve = group_curve(rows, unit)
    color = styles.color(method)
    ax.plot(curve["x"], curve["mean"], color=color, linestyle=settings.linestyle(setting), label=label)
    if curve["sd"].notna().any():
        ax.fill_between(curve["x"], curve["mean"] - curve["sd"], curve["mean"] + curve["sd"], color=color,
                        alpha=0.15, linewidth=0)
    every, some = readings["n_read"] == readings["n_runs"], readings["n_read"] > 0
    for read, fill in ((readings[every], settings.fill(setting)), (readings[~every & some], "none")):
        ax.plot(read["budget"], read["test_acc_pct_mean"], linestyle="none", marker=styles.marker(method),
                color=color, fillstyle=fill, markeredgecolor="black" if fill != "none" else color, markersize=7,
                markeredgewidth=1.0 if fill != "none" else 1.8, zorder=3)


def _panel(ax: Axes, data: pd.DataFrame, groups: pd.DataFrame, unit: str, styles: plot.Styles) -> None:
    """One dataset against one unit: every group's curve, the budgets as dotted lines."""
    settings = plot.Styles(list(dict.fromkeys(data["setting"])))
    for method in styles.present(data):
        for key, rows in data[data["method"] == method].groupby(GROUP, sort=True, dropna=False):
            mine = (groups[GROUP].astype(str) == pd.Series(key, index=GROUP).astype(str)).all(axis=1)
            _draw_group(ax, rows, groups[mine], unit, styles, settings)
    for budget in sorted(groups["budget"].unique()):
        ax.axvline(budget, color="0.4", linestyle=":", linewidth=1.0, zorder=1)
    costs = data[unit][data[unit] > 0]
    if len(costs) and costs.max() > 20 * costs.min():
        ax.set_xscale("log")
    ax.set(xlabel=f"cumulative {UNITS[unit]}" + (" (log scale)" if ax.get_xscale() == "log" else ""),
           ylabel="test accuracy (%)", title=f"{data['dataset'].iloc[0]}: test accuracy vs {UNITS[unit]}")


def figure(report: Report, styles: plot.Styles) -> Figure | None:
    """Test accuracy against cumulative training GFLOP and seconds, a row per dataset: line: mean over a group's
    runs (band ± sd), markers: the table's readings at the budgets (dotted lines; hollow where only some runs have
    one)."""
    view = report.data[NAME]
    points = view.points
    units = [u for u in UNITS if points[u].astype("float64").notna().any()] if not points.empty else []
    if not units:
        return None
    groups = per_group(view.per_run)
    datasets = sorted(points["dataset"].unique())
    fig, axes = plot.new_figure(6.0 * len(units) + 1.8, 3.8 * len(datasets) + 0.6, len(datasets), len(units))
    for row_axes, dataset in zip(axes, datasets, strict=True):
        data = points[points["dataset"] == dataset].sort_values(GROUP)
        for ax, unit in zip(row_axes, units, strict=True):
            mine = groups[(groups["dataset"] == dataset) & (groups["unit"] == unit)]
            _panel(ax, data.dropna(subset=[unit]), mine, unit, styles)
        row_axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    plot.suptitle(fig, "Test accuracy at equal training cost (line: mean over seeds, interpolated between "
                       "evaluations; band: ± sd; markers: the table's readings at its budgets, dotted; hollow: only "
                       "some seeds read)")
    return fig


def figures(report: Report, styles: plot.Styles) -> list[FigureJob]:
    return [("equal_cost", lambda: figure(report, styles))]


VIEW = View(NAME, data=data, terminal=terminal, markdown=markdown, files=files, figures=figures)
