"""The intervals view: how sure each final test accuracy is, and whether a method's difference to its baseline is
real: per group, the 95 % t interval of its mean over seeds, and of its difference to the baseline group it is
measured against (``bench.report.baselines``), paired by seed, marked *within noise* when that interval holds 0,
with the seeds a paired t test would need to resolve the observed difference (``bench.report.uncertainty`` says
how each is computed).

Shown as a table (terminal and summary.md) and ``intervals.csv``. Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from bench.formatting import MISSING, fmt, signed
from bench.report import uncertainty
from bench.report.baselines import baseline_row
from bench.report.cells import markdown_table, rich_table
from bench.report.labels import GROUP, LABELS, whole_text
from bench.report.views.base import View

if TYPE_CHECKING:
    from rich.table import Table

    from bench.report.aggregate import Report

NAME = "intervals"
COLUMNS = [*GROUP, *LABELS, "n_seeds", "test_acc_pct_mean", "test_acc_pct_low", "test_acc_pct_high", "baseline",
           "baseline_setting", "pairing", "n_paired", "diff_pct", "diff_pct_low", "diff_pct_high", "diff_sd_pct",
           "within_noise", "seeds_needed"]
WITHIN_NOISE, RESOLVED = "within noise", "resolved"


def seed_values(per_seed: pd.DataFrame, row: pd.Series) -> dict[float, float]:
    """The group's final test accuracy by seed (a missing seed cannot be paired, so it is left out)."""
    mine = (per_seed[GROUP].astype(str) == row[GROUP].astype(str)).all(axis=1)
    rows = per_seed[mine].dropna(subset=["seed"])
    return dict(zip(rows["seed"].astype("float64"), rows["test_acc_pct"].astype("float64"), strict=True))


def group_intervals(row: pd.Series, summary: pd.DataFrame, per_seed: pd.DataFrame) -> dict[str, object]:
    """One group's interval, and its difference to its baseline where it has one with seeds to compare."""
    own = seed_values(per_seed, row)
    mean = uncertainty.mean_interval(list(own.values()))
    found: dict[str, object] = {c: row[c] for c in [*GROUP, *LABELS, "n_seeds"]}
    found.update(test_acc_pct_mean=mean.estimate, test_acc_pct_low=mean.low, test_acc_pct_high=mean.high,
                 baseline=row["baseline"], baseline_setting="", pairing="", n_paired=0, diff_pct=math.nan,
                 diff_pct_low=math.nan, diff_pct_high=math.nan, diff_sd_pct=math.nan, within_noise=None,
                 seeds_needed=None)
    base = baseline_row(row, summary)
    diff = uncertainty.difference(own, seed_values(per_seed, base)) if base is not None else None
    if base is not None:
        found["baseline_setting"] = base["setting"]
    if diff is not None:
        found.update(pairing="paired" if diff.paired else "Welch", n_paired=len(diff.seeds) if diff.paired else 0,
                     diff_pct=diff.interval.estimate, diff_pct_low=diff.interval.low,
                     diff_pct_high=diff.interval.high, diff_sd_pct=diff.sd, within_noise=diff.within_noise,
                     seeds_needed=diff.seeds_needed)
    return found


def data(report: Report) -> pd.DataFrame:
    """Per group of the summary (its order): the intervals of its final test accuracy and of its difference."""
    rows = [group_intervals(r, report.summary, report.per_seed) for _, r in report.summary.iterrows()]
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------------------------------------- tables

HEADER = ["dataset", "method", "setting", "seeds", "test acc % [95 % CI]", "baseline", "Δ points [95 % CI]",
          "pairing", "noise", "seeds to resolve"]
LEGEND = (
    f"{uncertainty.NAME}: over seeds of a group's final test accuracy, and of its difference (method − baseline, "
    "in points) paired by seed (over the seeds both ran; Welch's unpaired interval where they share fewer than "
    "two); within noise: the difference's interval holds 0; seeds to resolve: the seeds at which a two-sided paired "
    f"t test (alpha {1 - uncertainty.LEVEL:.2f}; Welch: a two-sample t test, seeds per side) detects the observed "
    f"difference with {uncertainty.POWER:.0%} power at the observed sd of the differences (noncentral t; with few "
    "seeds that sd, and so this count, is rough); \"-\": one seed, or no baseline"
)
TERMINAL_LEGEND = (f"n: seeds; {uncertainty.LEVEL:.0%} t intervals over them; Δ: method − baseline, paired by "
                   "seed; within noise: its interval holds 0; seeds to resolve: for a paired t test at "
                   f"{uncertainty.POWER:.0%} power and the observed sd (summary.md says more)")


def _interval(mean: float, low: float, high: float) -> str:
    """``80.00 [77.5, 82.5]``: the bounds to a tenth (intervals.csv has them whole)."""
    if pd.isna(mean):
        return MISSING
    return fmt(mean) if pd.isna(low) else f"{fmt(mean)} [{fmt(low, '.1f')}, {fmt(high, '.1f')}]"


def _noise(row: pd.Series) -> str:
    if row["within_noise"] is None or pd.isna(row["within_noise"]):
        return MISSING
    return WITHIN_NOISE if row["within_noise"] else RESOLVED


def _pairing(row: pd.Series) -> str:
    """How the difference was formed, or why there is none."""
    if row["pairing"] == "paired":
        return f"{int(row['n_paired'])} seeds"
    if row["pairing"]:
        return str(row["pairing"])
    if not row["baseline"]:
        return MISSING
    return "too few seeds" if row["baseline_setting"] else "no runs of it"


def _difference(row: pd.Series) -> str:
    if pd.isna(row["diff_pct"]):
        return MISSING
    if pd.isna(row["diff_pct_low"]):
        return signed(row["diff_pct"])
    return f"{signed(row['diff_pct'])} [{signed(row['diff_pct_low'])}, {signed(row['diff_pct_high'])}]"


def rows(report: Report) -> list[list[str]]:
    """A row per group (``HEADER``), as short strings."""
    found = []
    for _, r in report.data[NAME].iterrows():
        base = r["baseline"] or MISSING
        if r["baseline"] and r["baseline_setting"] and r["baseline_setting"] != r["setting"]:
            base += f" ({r['baseline_setting']})"
        needed = MISSING if pd.isna(r["diff_pct"]) else uncertainty.seeds_text(
            None if pd.isna(r["seeds_needed"]) else int(r["seeds_needed"]))
        found.append([r["dataset"], r["method"], r["setting"] or MISSING, whole_text(r["n_seeds"]),
                      _interval(r["test_acc_pct_mean"], r["test_acc_pct_low"], r["test_acc_pct_high"]), base,
                      _difference(r), _pairing(r), _noise(r), needed])
    return found


def terminal(report: Report) -> list[Table]:
    """Narrow: no dataset column where the report holds one dataset, nor setting where each has one; the baseline
    under the method, an interval under its estimate, the pairing under the difference."""
    from rich.markup import escape

    found = rows(report)
    if not found:
        return []
    frame = report.data[NAME]
    drop = {"pairing", "baseline"}
    if frame["dataset"].nunique() == 1:
        drop.add("dataset")
    if len(frame.drop_duplicates(["dataset", "setting"])) == frame["dataset"].nunique():
        drop.add("setting")
    keep = [i for i, name in enumerate(HEADER) if name not in drop]
    table = rich_table("Is the difference real? (95 % intervals over seeds)", escape(TERMINAL_LEGEND),
                       padding=(0, 1, 0, 0))
    headers = {"method": "method\nvs baseline", "Δ points [95 % CI]": "Δ points\n[95 % CI]\npairing",
               "seeds to resolve": "seeds to\nresolve", "seeds": "n"}
    for i in keep:
        name = headers.get(HEADER[i], HEADER[i].replace(" [", "\n["))
        table.add_column(escape(name), no_wrap=HEADER[i] != "setting", overflow="fold")
    for row in found:
        cells = {i: escape(row[i]).replace(" [", "\n[") for i in keep}
        cells[1] += f"\nvs {escape(row[5])}" if row[5] != MISSING else ""
        cells[6] += "\n" + escape(row[7]) if row[7] != MISSING else ""
        cells[8] = {RESOLVED: f"[bold]{RESOLVED}[/]", WITHIN_NOISE: "within\nnoise"}.get(row[8], cells[8])
        cells[9] = cells[9].replace(" (", "\n(")
        table.add_row(*(cells[i] for i in keep))
    return [table]


def markdown(report: Report) -> list[str]:
    found = rows(report)
    if not found:
        return []
    return ["## Is the difference real?", markdown_table(HEADER, found),
            LEGEND[0].upper() + LEGEND[1:] + ". Every number: intervals.csv."]


def files(report: Report) -> dict[str, pd.DataFrame]:
    frame = report.data[NAME]
    return {} if frame.empty else {"intervals.csv": frame}


VIEW = View(NAME, data=data, terminal=terminal, markdown=markdown, files=files)
