"""How the report's numbers read as text: the summary's cells (``display_rows``, shared by summary.md and the
terminal tables), the group's method and setting as its one label names them, one rich table builder and one
markdown table helper.

Nothing is computed here: the numbers come from ``bench.report.aggregate`` and the views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from bench.formatting import MISSING, fmt, mean_sd, signed

if TYPE_CHECKING:
    from rich.table import Table

    from bench.report.aggregate import Report

HEADER = ["dataset", "method", "setting", "seeds", "test acc % mean ± sd", "se", "paper % (Δ)",
          "det. test acc %", "train acc %", "infer ms/img", "s/epoch", "median s/epoch", "samples/s", "peak MB",
          "saved act. MB", "paper GPU MB", "baseline", "time / base", "mem / base"]
KEYS = ("dataset", "method", "setting")  # the columns every terminal table keeps
_TERMINAL_HEADERS = {  # two-line headers, so columns are as narrow as their values
    "test acc % mean ± sd": "test acc %\nmean ± sd", "paper % (Δ)": "paper %\n(Δ)",
    "det. test acc %": "det.\ntest %", "train acc %": "train\nacc %",
    "s/epoch": "s/ep\nmean", "median s/epoch": "s/ep\nmed.", "samples/s": "img/s", "paper GPU MB": "paper\nGPU\nMB",
    "time / base": "time/\nbase", "mem / base": "mem/\nbase", "peak MB": "peak\nMB", "infer ms/img": "infer\nms/img",
    "saved act. MB": "saved\nact. MB",
}


def markdown_table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; ``|`` in a cell is escaped and a line break becomes a space."""
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def method_cell(row: pd.Series) -> str:
    """A group's method as its label names it (``backprop v2`` where a report holds two versions of it)."""
    variant, setting = str(row["variant"]), str(row["setting"])
    return variant.removesuffix(f" ({setting})") if variant else str(row["method"])


def setting_cell(row: pd.Series) -> str:
    """A group's setting by the label every table, figure and file name shows (``lr=0.003, order=paper``; the
    embedding where a dataset has one setting); summary.md's Configs table maps it to its config hash."""
    return str(row["setting"]) or MISSING


def narrow_setting(row: pd.Series) -> str:
    """The setting label a line per key, for narrow terminal cells."""
    return setting_cell(row).replace(", ", "\n")


def _memory_cell(row: pd.Series) -> str:
    """CUDA allocated / reserved; on a CPU the RSS the run added + what its process started from (Python, torch),
    or the whole peak RSS for rows that did not record the start."""
    if not pd.isna(row["peak_cuda_allocated_mb_mean"]):
        return f"{fmt(row['peak_cuda_allocated_mb_mean'], '.0f')} / {fmt(row['peak_cuda_reserved_mb_mean'], '.0f')}"
    above = row["rss_above_start_mb_mean"]
    if pd.isna(above):
        return f"{fmt(row['peak_rss_mb_mean'], '.0f')} RSS"
    return f"{fmt(above, '.0f')} + {fmt(row['peak_rss_mb_mean'] - above, '.0f')} RSS"


def _memory_ratio(row: pd.Series) -> float:
    """Of the memory the cell leads with: CUDA allocated, else the RSS the run added, else the whole peak RSS."""
    for ratio in ("peak_cuda_allocated_ratio_to_baseline", "rss_above_start_ratio_to_baseline"):
        if not pd.isna(row[ratio]):
            return row[ratio]
    return row["peak_rss_ratio_to_baseline"]


def _paper_cell(row: pd.Series) -> str:
    if pd.isna(row["paper_test_acc_pct"]):
        return MISSING
    return f"{row['paper_test_acc_pct']:.2f} ({signed(row['test_acc_minus_paper_pct'])})"


def _inference_cell(row: pd.Series) -> str:
    steps = row["ode_steps"]
    return fmt(row["infer_ms_per_image_mean"], ".3g") + ("" if pd.isna(steps) else f" ({int(steps)})")


def display_rows(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The summary as short strings (HEADER), shared by the terminal tables and summary.md."""
    rows = []
    for _, r in summary.iterrows():
        rows.append([
            r["dataset"], method_cell(r), setting_cell(r), str(int(r["n_seeds"])),
            mean_sd(r["test_acc_pct_mean"], r["test_acc_pct_sd"]), fmt(r["test_acc_pct_se"]), _paper_cell(r),
            fmt(r["test_acc_det_pct_mean"]), fmt(r["train_acc_pct_mean"]), _inference_cell(r),
            fmt(r["time_per_epoch_s_mean"], ".3g"),
            fmt(r["epoch_time_median_s_mean"], ".3g"), fmt(r["samples_per_s_mean"], ".0f"), _memory_cell(r),
            fmt(r["peak_saved_activation_mb_mean"], ".1f"), fmt(r["paper_peak_gpu_mb"], ".0f"),
            r["baseline"] or MISSING, fmt(r["time_per_epoch_ratio_to_baseline"]), fmt(_memory_ratio(r)),
        ])
    return list(HEADER), rows


def rich_table(title: str, caption: str | None = None, padding: int | tuple[int, ...] = 0) -> Table:
    """A terminal table in the report's one look (simple head, no outer edge)."""
    from rich import box
    from rich.table import Table

    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, padding=padding)


def summary_table(report: Report, title: str, columns: Sequence[str], caption: str | None = None) -> Table:
    """Some columns of the summary as a terminal table; a column with no value in any row is left out (summary.md
    keeps it), the config is its narrow form."""
    from rich.markup import escape

    header, rows = display_rows(report.summary)
    settings = [narrow_setting(r) for _, r in report.summary.iterrows()]
    table = rich_table(title, caption)
    picked = [header.index(name) for name in columns
              if name in KEYS or any(row[header.index(name)] != MISSING for row in rows)]
    for i in picked:
        table.add_column(_TERMINAL_HEADERS.get(header[i], header[i]), no_wrap=True)
    for row, setting in zip(rows, settings, strict=True):
        table.add_row(*(escape(setting if header[i] == "setting" else row[i]) for i in picked))
    return table
