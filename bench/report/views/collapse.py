"""The late-collapse view: a method whose final test accuracy fell well below what it had at its best epoch.

A run with a validation split records the epoch of its best validation accuracy and the test accuracy after that
epoch (``best_val_epoch``, ``best_val_test_acc``: one inference run). A seed *collapsed* when its final test
accuracy (``test_acc``, the headline) lies more than the report's margin (``report --collapse-margin``, default 5
points) below that; a group with a collapsed seed is named in the report's warnings and in this view's table
(NoProp-CT on CIFAR-100 has been seen to fall from 47.66 % to 23-33 % in a public reproduction). Without a
validation split nothing is checked, and the report says so: choosing the best epoch on the test set would flatter.

Shown as a table (terminal and summary.md) and ``collapse.csv``. Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bench.formatting import MISSING, fmt, signed
from bench.report.aggregate import COLLAPSE_MARGIN, per_seed
from bench.report.cells import markdown_table, rich_table
from bench.report.labels import GROUP, LABELS, whole_text
from bench.report.views.base import View

if TYPE_CHECKING:
    from rich.table import Table

    from bench.report.aggregate import Report

NAME = "collapse"
DEFAULT_MARGIN = COLLAPSE_MARGIN
_VALUES = {"final_pct": ("test_acc", 1.0), "best_val_test_pct": ("best_val_test_acc", 1.0),
           "best_val_epoch": ("best_val_epoch", 1.0), "epochs_done": ("epochs_done", 1.0)}
COLUMNS = [*GROUP, *LABELS, "n_seeds", "n_with_val", "best_val_epoch_mean", "epochs_mean", "best_val_test_pct_mean",
           "final_pct_mean", "drop_pct_mean", "drop_pct_max", "collapsed_seeds", "margin_pct", "collapsed"]


def per_group(ok: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Per group: its seeds' best-validation-epoch and final test accuracy, the drop between them, and the seeds
    whose drop is above ``margin`` (points)."""
    if ok.empty:
        return pd.DataFrame(columns=COLUMNS)
    seeds = per_seed(ok, _VALUES, GROUP, LABELS)
    seeds["drop_pct"] = seeds["best_val_test_pct"] - seeds["final_pct"]
    rows = []
    for _, group in seeds.groupby([*GROUP, *LABELS], sort=True, dropna=False):
        checked = group.dropna(subset=["drop_pct"])
        fell = checked[checked["drop_pct"] > margin]
        rows.append({**{c: group[c].iloc[0] for c in [*GROUP, *LABELS]}, "n_seeds": len(group),
                     "n_with_val": len(checked), "best_val_epoch_mean": checked["best_val_epoch"].mean(),
                     "epochs_mean": checked["epochs_done"].mean(),
                     "best_val_test_pct_mean": checked["best_val_test_pct"].mean(),
                     "final_pct_mean": checked["final_pct"].mean(), "drop_pct_mean": checked["drop_pct"].mean(),
                     "drop_pct_max": checked["drop_pct"].max(),
                     "collapsed_seeds": ",".join(whole_text(s) for s in fell["seed"]), "margin_pct": margin,
                     "collapsed": not fell.empty})
    return pd.DataFrame(rows, columns=COLUMNS)


def warning(row: pd.Series) -> str:
    """The line that names a collapsed group."""
    seeds = row["collapsed_seeds"]
    return (f"{row['variant']}: LATE COLLAPSE: final test accuracy {fmt(row['final_pct_mean'])} % is "
            f"{fmt(row['drop_pct_mean'])} points below the {fmt(row['best_val_test_pct_mean'])} % after its best "
            f"validation epoch (mean over {int(row['n_with_val'])} seeds; seed{'s' if ',' in seeds else ''} {seeds} "
            f"fell more than {row['margin_pct']:g} points)")


def data(report: Report) -> pd.DataFrame:
    """The groups, checked at the report's margin; each collapsed one named in the warnings."""
    groups = per_group(report.runs, report.collapse_margin)
    for _, row in groups[groups["collapsed"]].iterrows():
        report.warnings.append(warning(row))
    return groups


# ------------------------------------------------------------------------------------------------- tables

HEADER = ["dataset", "method", "setting", "seeds (val.)", "best val. epoch", "test % there", "final test %",
          "final − best", "worst seed", "verdict"]


_TERMINAL_HEADERS = {"seeds (val.)": "seeds\n(val.)", "best val. epoch": "best val.\nepoch",
                     "test % there": "test %\nthere", "final test %": "final\ntest %", "final − best": "final\n− best",
                     "worst seed": "worst\nseed"}


def _verdict(row: pd.Series) -> str:
    if row["collapsed"]:
        return f"COLLAPSED (seed {row['collapsed_seeds']})"
    return "no validation split" if row["n_with_val"] == 0 else "ok"


def rows(report: Report) -> list[list[str]]:
    found = []
    for _, r in report.data[NAME].iterrows():
        epochs = f"{fmt(r['best_val_epoch_mean'], '.3g')} of {fmt(r['epochs_mean'], '.3g')}"
        found.append([r["dataset"], r["method"], r["setting"] or MISSING,
                      f"{int(r['n_seeds'])} ({int(r['n_with_val'])})",
                      epochs if r["n_with_val"] else MISSING, fmt(r["best_val_test_pct_mean"]),
                      fmt(r["final_pct_mean"]), signed(-r["drop_pct_mean"]), signed(-r["drop_pct_max"]),
                      _verdict(r)])
    return found


def legend(report: Report) -> str:
    return (f"final test accuracy (the headline) against the test accuracy after the epoch of best validation "
            f"accuracy (one inference run), means over the seeds with a validation split; worst seed: final − "
            f"best of the seed that fell most; COLLAPSED: a seed fell more than {report.collapse_margin:g} points "
            "(report --collapse-margin); without a validation split (val_size) nothing is checked, since choosing "
            "the best epoch on test accuracy would flatter")


def _none_checked(report: Report) -> bool:
    return bool((report.data[NAME]["n_with_val"] == 0).all())


def terminal(report: Report) -> list[Table]:
    """A line when no run has a validation split, else a row per group."""
    from rich.markup import escape

    if report.data[NAME].empty:
        return []
    if _none_checked(report):
        table = rich_table("Late collapse")
        table.show_header = False
        table.add_column("")
        table.add_row("not checked: no run has a validation split (val_size), and choosing the best epoch on test "
                      "accuracy would flatter")
        return [table]
    table = rich_table(f"Late collapse (margin {report.collapse_margin:g} points)", escape(legend(report)),
                       padding=(0, 1, 0, 0))
    frame = report.data[NAME]
    one_setting = len(frame.drop_duplicates(["dataset", "setting"])) == frame["dataset"].nunique()
    keep = [i for i, name in enumerate(HEADER) if name != "dataset" and not (name == "setting" and one_setting)]
    for i in keep:
        table.add_column(escape(_TERMINAL_HEADERS.get(HEADER[i], HEADER[i])), no_wrap=True)
    for row in rows(report):
        table.add_row(*(f"[bold red]{escape(row[i])}[/]" if row[i].startswith("COLLAPSED")
                        else escape(row[i]).replace(", ", "\n") for i in keep))
    return [table]


def markdown(report: Report) -> list[str]:
    if report.data[NAME].empty:
        return []
    if _none_checked(report):
        return ["## Late collapse", "Not checked: no run has a validation split (`val_size`), and choosing the best "
                "epoch on test accuracy would flatter."]
    text = legend(report)
    return ["## Late collapse", markdown_table(HEADER, rows(report)), text[0].upper() + text[1:] + "."]


def files(report: Report) -> dict[str, pd.DataFrame]:
    frame = report.data[NAME]
    return {} if frame.empty or _none_checked(report) else {"collapse.csv": frame}


VIEW = View(NAME, data=data, terminal=terminal, markdown=markdown, files=files)
