"""The ``compare`` gate's tables: one small table per matched group for the terminal (it fits an 80-column CI log),
the same rows as markdown for a CI log or a pull-request comment, the legend and the verdict lines.

Nothing is judged here (``bench.report.compare`` does that); the cells read as in the report (``bench.formatting``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bench.formatting import MISSING, fmt, mb, mean_sd, signed, times
from bench.report import uncertainty
from bench.report.cells import markdown_table
from bench.report.compare import SPREAD_K, Comparison, Thresholds, crossed

if TYPE_CHECKING:
    from rich.table import Table
MEASURE_HEADER = ["measure", "baseline", "candidate", "change", "limit", "verdict"]


def _judged(value: float, limit: float) -> str:
    return "n/a" if pd.isna(value) else ("FAIL" if crossed(value, limit) else "ok")


def group_label(r: pd.Series) -> str:
    """The heading of one group: what was compared, and over how many seeds on each side."""
    return f"{r['label']}, seeds {r['n_base']} vs {r['n_cand']}"


def compare_rows(comparison: Comparison) -> list[tuple[str, list[list[str]]]]:
    """Per matched group, its label and one row per measure (MEASURE_HEADER): shared by terminal and markdown.

    Long format (a row per measure, not a column) so the terminal table stays legible in an 80-column CI log.
    """
    t = comparison.thresholds
    return [(group_label(r), _measure_rows(r, t)) for _, r in comparison.table.iterrows()]


def _measure_rows(r: pd.Series, t: Thresholds) -> list[list[str]]:
    memory = "CUDA" if r["memory_kind"] == "CUDA allocated" else "RSS"
    rows = [
        ["test acc %", mean_sd(r["acc_base"], r["acc_sd_base"], missing_sd=None),
         mean_sd(r["acc_cand"], r["acc_sd_cand"], missing_sd=None), signed(r["acc_cand"] - r["acc_base"]),
         f">= {-r['acc_allowed']:.2f}", _judged(r["acc_drop"], r["acc_allowed"])],
        noise_row(r),
        ["s/epoch" if r["time_measure"] == "mean" else "median s/epoch", fmt(r["time_base"], ".4g"),
         fmt(r["time_cand"], ".4g"), times(r["slowdown"]), f"<= x{t.max_slowdown:g}",
         _judged(r["slowdown"], t.max_slowdown)],
        ["samples/s", fmt(r["samples_base"], ".1f"), fmt(r["samples_cand"], ".1f"), times(r["samples_ratio"]),
         MISSING, MISSING],
        [f"peak {memory} MB", mb(r["memory_base"]), mb(r["memory_cand"]), times(r["memory_growth"]),
         f"<= x{t.max_memory_growth:g}", _judged(r["memory_growth"], t.max_memory_growth)],
    ]
    if not (pd.isna(r["saved_base"]) and pd.isna(r["saved_cand"])):
        rows.append(["saved act. MB", mb(r["saved_base"]), mb(r["saved_cand"]), times(r["saved_growth"]),
                     f"<= x{t.max_memory_growth:g}", _judged(r["saved_growth"], t.max_memory_growth)])
    return rows


def noise_row(r: pd.Series) -> list[str]:
    """The change of test accuracy with its interval: how it was paired, the interval, the seeds that would resolve
    it, and whether it is within noise (never a failure: the accuracy row above is the gate)."""
    if pd.isna(r["acc_change_low"]):
        return ["test acc Δ, 95 % CI", MISSING, MISSING, MISSING, MISSING, "n/a"]
    interval = f"[{signed(r['acc_change_low'])}, {signed(r['acc_change_high'])}]"
    needed = None if pd.isna(r["acc_seeds_needed"]) else int(r["acc_seeds_needed"])
    seeds = uncertainty.seeds_text(needed) + (" seeds" if needed is not None else "")
    return ["test acc Δ, 95 % CI", r["acc_pairing"], MISSING, interval, seeds,
            "within noise" if r["acc_within_noise"] else "resolved"]


def compare_legend(comparison: Comparison) -> str:
    """What the tables show and the rules they were judged by, in one paragraph."""
    t = comparison.thresholds
    paired = (f" Groups are paired across {', '.join(comparison.across)} (shown as baseline -> candidate)."
              if comparison.across else "")
    return (f"Ok runs only. Test accuracy: mean ± sd over seeds; change = candidate - baseline in points; fails "
            f"below -(max_accuracy_drop {t.max_accuracy_drop:g} + {SPREAD_K:g} x pooled se of the seeds), the se "
            f"term being 0 for a side with one seed. test acc Δ: {uncertainty.NAME} on the change, paired by seed "
            f"(Welch's unpaired interval where the sides share fewer than two seeds); within noise when it holds 0; "
            f"its limit column: the seeds a paired t test (Welch: two-sample, per side) needs to resolve the change "
            f"with {uncertainty.POWER:.0%} power at the observed sd (informative, never judged). median s/epoch: "
            f"each run's median epoch time (s/epoch: the mean epoch, where a side lacks the median), samples/s, "
            f"memory: medians over seeds; change = candidate / baseline. Peak memory is CUDA allocated when both "
            f"sides have it, else RSS; MB = 2^20 bytes.{paired}")


def verdict_lines(comparison: Comparison) -> list[str]:
    """The closing lines: PASS with how much was compared, or FAIL and one line per crossed threshold."""
    n = len(comparison.table)
    if not comparison.failed:
        return [f"PASS: {n} group(s) compared, no threshold crossed"]
    groups = sum(1 for checks in comparison.table["failed_checks"] if checks)
    return [f"FAIL: {groups} of {n} group(s) crossed a threshold", *comparison.failures]


def other_lines(comparison: Comparison) -> list[str]:
    """Groups on one side only (listed, not judged) and notes, one line each."""
    return ([f"only in baseline (not compared): {g}" for g in comparison.only_baseline]
            + [f"only in candidate (not compared): {g}" for g in comparison.only_candidate] + comparison.notes)


def compare_tables(comparison: Comparison) -> list[Table]:
    """One small table per matched group (fits an 80-column log); FAIL cells in red, the legend under the last."""
    from rich.markup import escape
    from rich.table import Table

    groups = compare_rows(comparison)
    tables = []
    for index, (label, rows) in enumerate(groups):
        caption = compare_legend(comparison) if index == len(groups) - 1 else None
        table = Table(title=escape(label), caption=caption, title_justify="left", caption_justify="left")
        for name in MEASURE_HEADER:
            table.add_column(name, justify="left" if name in ("measure", "limit", "verdict") else "right")
        for row in rows:
            cells = [escape(c) for c in row]
            cells[-1] = {"FAIL": "[bold red]FAIL[/]", "ok": "[green]ok[/]"}.get(row[-1], cells[-1])
            table.add_row(*cells)
        tables.append(table)
    return tables


def compare_markdown(comparison: Comparison, baseline: str = "baseline", candidate: str = "candidate") -> str:
    """The whole result as markdown for a CI log or a pull-request comment: verdict, table, notes."""
    rows = [[label if i == 0 else "", *row[:-1], "**FAIL**" if row[-1] == "FAIL" else row[-1]]
            for label, measures in compare_rows(comparison) for i, row in enumerate(measures)]
    verdict = verdict_lines(comparison)
    parts = ["## noprop-bench compare", f"Baseline `{baseline}` vs candidate `{candidate}`: **{verdict[0]}**",
             markdown_table(["group", *MEASURE_HEADER], rows), compare_legend(comparison)]
    if verdict[1:]:
        parts.append("\n".join(f"- {line}" for line in verdict[1:]))
    others = other_lines(comparison)
    if others:
        parts.append("Notes:\n\n" + "\n".join(f"- {line}" for line in others))
    return "\n\n".join(parts) + "\n"
