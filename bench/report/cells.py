"""How the report's numbers read as text: the summary's cells (``display_rows``, shared by summary.md and the
terminal tables), the narrow terminal form of a config, one rich table builder and one markdown table helper.

Nothing is computed here: the numbers come from ``bench.report.aggregate`` and the views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from bench.formatting import MISSING, fmt, mean_sd, signed
from bench.report.labels import switch_text, value_text
from bench.results.schema import SWITCH_COLUMNS, pandas_dtype

if TYPE_CHECKING:
    from rich.table import Table

    from bench.report.aggregate import Report

HEADER = ["dataset", "method", "embedding", "config", "seeds", "test acc % mean ± sd", "se", "paper % (Δ)",
          "det. test acc %", "train acc %", "infer ms/img", "s/epoch", "median s/epoch", "samples/s", "peak MB",
          "saved act. MB", "paper GPU MB", "baseline", "time / base", "mem / base"]
KEYS = ("dataset", "method", "embedding", "config")  # the columns every terminal table keeps
_TERMINAL_HEADERS = {  # two-line headers, so columns are as narrow as their values
    "test acc % mean ± sd": "test acc %\nmean ± sd", "paper % (Δ)": "paper %\n(Δ)",
    "det. test acc %": "det.\ntest %", "train acc %": "train\nacc %",
    "s/epoch": "s/ep\nmean", "median s/epoch": "s/ep\nmed.", "samples/s": "img/s", "paper GPU MB": "paper\nGPU\nMB",
    "time / base": "time/\nbase", "mem / base": "mem/\nbase", "peak MB": "peak\nMB", "infer ms/img": "infer\nms/img",
    "saved act. MB": "saved\nact. MB",
}
# How a switch value reads in a narrow terminal cell; any other switch or value reads as name=value.
_SHORT_SWITCHES = {("channels_last", "true"): "NHWC", ("channels_last", "false"): "NCHW"}


def markdown_table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; ``|`` in a cell is escaped and a line break becomes a space."""
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def config_cell(row: pd.Series) -> str:
    """A group's config hash with its recorded switches: ``1f72bee20605 (precision=fp32)``."""
    switches = switch_text(row)
    return (row["config_hash"] or MISSING) + (f" ({switches})" if switches else "")


def short_config(row: pd.Series) -> str:
    """A config hash prefix, as git shows one (for narrow terminal cells)."""
    return (row["config_hash"] or MISSING)[:6]


def _memory_cell(row: pd.Series) -> str:
    if not pd.isna(row["peak_cuda_allocated_mb_mean"]):
        return f"{fmt(row['peak_cuda_allocated_mb_mean'], '.0f')} / {fmt(row['peak_cuda_reserved_mb_mean'], '.0f')}"
    return f"{fmt(row['peak_rss_mb_mean'], '.0f')} RSS"


def _memory_ratio(row: pd.Series) -> float:
    on_cuda = not pd.isna(row["peak_cuda_allocated_ratio_to_baseline"])
    return row["peak_cuda_allocated_ratio_to_baseline" if on_cuda else "peak_rss_ratio_to_baseline"]


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
            r["dataset"], r["method"], r["embedding"], config_cell(r), str(int(r["n_seeds"])),
            mean_sd(r["test_acc_pct_mean"], r["test_acc_pct_sd"]), fmt(r["test_acc_pct_se"]), _paper_cell(r),
            fmt(r["test_acc_det_pct_mean"]), fmt(r["train_acc_pct_mean"]), _inference_cell(r),
            fmt(r["time_per_epoch_s_mean"], ".3g"),
            fmt(r["epoch_time_median_s_mean"], ".3g"), fmt(r["samples_per_s_mean"], ".0f"), _memory_cell(r),
            fmt(r["peak_saved_activation_mb_mean"], ".1f"), fmt(r["paper_peak_gpu_mb"], ".0f"),
            r["baseline"] or MISSING, fmt(r["time_per_epoch_ratio_to_baseline"]), fmt(_memory_ratio(r)),
        ])
    return list(HEADER), rows


def _short_switch(name: str, value: str) -> str:
    """A text switch by its value (``bf16``); a boolean one by what it chooses (``NHWC``) or as name=value."""
    if pandas_dtype(name) != "boolean":
        return value or "?"
    return _SHORT_SWITCHES.get((name, value), f"{name}={value_text(value)}")


def _terminal_config(summary: pd.DataFrame) -> list[str]:
    """A hash prefix, and under it the switches that differ between the rows, if any."""
    varying = [s for s in SWITCH_COLUMNS if summary[s].nunique() > 1]
    cells = []
    for _, r in summary.iterrows():
        shown = [_short_switch(s, r[s]) for s in varying]
        cells.append("\n".join([short_config(r), " ".join(shown)]) if shown else short_config(r))
    return cells


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
    configs = _terminal_config(report.summary)
    table = rich_table(title, caption)
    picked = [header.index(name) for name in columns
              if name in KEYS or any(row[header.index(name)] != MISSING for row in rows)]
    for i in picked:
        table.add_column(_TERMINAL_HEADERS.get(header[i], header[i]), no_wrap=True)
    for row, config in zip(rows, configs, strict=True):
        table.add_row(*(escape(config if header[i] == "config" else row[i]) for i in picked))
    return table
