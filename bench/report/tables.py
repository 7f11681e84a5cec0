"""Writing the report as text: the terminal tables, summary.md and the CSVs. Each view adds its own
(``bench.report.views.VIEWS``, in that order) around what every report has: summary.csv and its table, the runs
left out, the configs, the warnings and the figures' list.

Nothing is computed here (the numbers come from ``bench.report.aggregate`` and the views); the cells read as
``bench.report.cells`` writes them. Terminal tables are sized for an 80-column terminal; summary.md has every
column.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bench.formatting import MISSING
from bench.report import paper
from bench.report.aggregate import Report, status_counts
from bench.report.cells import display_rows, markdown_table, rich_table
from bench.report.labels import switch_text, whole_text
from bench.report.views import VIEWS
from bench.report.views.base import View

if TYPE_CHECKING:
    from rich.table import Table

TABLE_LEGEND = (
    "mean ± sd and se over seeds (sd: sample, ddof = 1; \"-\" for one seed); setting: what tells a group apart "
    "from the others of its dataset (the config keys and switches that differ; the embedding where there is one "
    "setting), the label of its figures and files too (Configs below gives each its config hash); paper % (Δ): the "
    "paper's accuracy and ours − paper in points; det. test acc %: mean "
    "over seeds of the deterministic reading of the same weights (z_0 = 0, no injected noise; the headline is the "
    "stochastic one, as in the paper); infer ms/img: one test pass of the headline reading divided by its images "
    "(batches of 1000), in parentheses the ODE steps of methods that integrate one; s/epoch: the mean epoch "
    "(training steps only), median s/epoch: each run's median epoch (a first epoch's warm-up does not inflate it), "
    "both averaged over seeds; peak MB: CUDA allocated / reserved, or CPU RSS as what the run added + what its process "
    "started from (Python, torch: the same for every method; the whole peak where a row did not record the start, "
    "summary.csv has both); saved act. MB: what autograd saves "
    "for backward in one step (MB = 2^20 bytes); baseline: the method this one is measured against (the matched "
    "baseline it declares, or report --baseline); time / base, mem / base: its time per epoch and peak memory (CUDA "
    "allocated, else the RSS the run added, else the whole RSS) over those of the baseline's group"
)
NOT_OK_COLUMNS = ["results_dir", "run_id", "dataset", "method", "embedding", "seed", "status", "epochs_done", "reason"]
_CONFIG_KEYS = ("embedding", "epochs", "batch_size", "T", "width", "lr", "embed_dim", "order", "train_subset",
                "test_subset", "eval_repeats")


def not_ok_rows(not_ok: pd.DataFrame) -> list[list[str]]:
    """The runs left out of the numbers, one line each."""
    return [[str(r["results_dir"]), str(r["run_id"]), r["dataset"], r["method"], r["embedding"],
             whole_text(r["seed"]), r["status"] or "unknown", whole_text(r["epochs_done"]), r["reason"] or MISSING]
            for _, r in not_ok.iterrows()]


def not_ok_line(report: Report) -> str:
    """One line: how many runs were left out of the numbers, and why (an interrupted attempt that ``--resume``
    finished is not a run that did not finish: it is said apart)."""
    total = len(report.runs) + len(report.not_ok)
    resumed = (f" ({report.superseded} interrupted attempt{'s' if report.superseded > 1 else ''} finished by a later "
               "--resume not counted)") if report.superseded else ""
    if report.not_ok.empty:
        return f"All {total} matching runs finished ok{resumed}."
    counts = ", ".join(f"{s}: {n}" for s, n in status_counts(report.not_ok).items())
    return (f"{len(report.not_ok)} of {total} matching runs did not finish ok ({counts}){resumed}; they are listed "
            "below and left out of every number and figure.")


def terminal_tables(report: Report, views: Sequence[View] = VIEWS) -> list[Table]:
    """Rich tables for the terminal: each view's, then the runs that did not finish ok (if any)."""
    tables = [table for view in views for table in view.terminal(report)]
    if not report.not_ok.empty:
        tables.append(_not_ok_table(report))
    return tables


def _not_ok_table(report: Report) -> Table:
    from rich.markup import escape

    left_out = rich_table(escape(not_ok_line(report)))
    for name in NOT_OK_COLUMNS:  # identifiers whole; the folder and the reason fold
        left_out.add_column(name, overflow="fold", no_wrap=name not in ("results_dir", "reason"))
    for row in not_ok_rows(report.not_ok):
        left_out.add_row(*(f"[red]{escape(cell)}[/]" if i == 6 else escape(cell) for i, cell in enumerate(row)))
    return left_out


def _config_rows(runs: pd.DataFrame) -> list[list[str]]:
    """Per setting of each dataset: its label, config hash, recorded switches and the main config values."""
    rows = []
    for (dataset, setting), group in runs.groupby(["dataset", "setting"], sort=True):
        config = group["config"].iloc[0]
        hashes = ", ".join(sorted(set(group["config_hash"]))) or MISSING
        rows.append([dataset, setting, hashes, switch_text(group.iloc[0]) or MISSING]
                    + [str(config.get(k, MISSING)) for k in _CONFIG_KEYS])
    return rows


def _figure_lines(figures: Sequence[Path], out: Path | None) -> list[str]:
    lines = ["## Figures"] if figures else []
    for path in figures:
        link = path.relative_to(out) if out is not None and path.is_relative_to(out) else path
        lines.append(f"![{path.stem}]({link.as_posix()})" if path.suffix != ".pdf" else f"- [{link}]({link})")
    return lines


def summary_markdown(report: Report, figures: Sequence[Path] = (), out: Path | None = None,
                     views: Sequence[View] = VIEWS) -> str:
    """summary.md: the summary table, each view's sections, the runs left out (with a line saying how many),
    configs, warnings, figures."""
    header, rows = display_rows(report.summary)
    parts = [
        "# noprop-bench report",
        "Results from: " + ", ".join(f"`{s}`" for s in report.sources) + ".",
        "## Final test accuracy and cost per dataset, method, embedding and config",
        markdown_table(header, rows),
        f"Test accuracy per seed is the mean over its inference repeats. {TABLE_LEGEND}, same dataset, embedding, "
        "config and switches (else flagged under Warnings). Runs that differ in an execution switch are never "
        f"averaged together. Paper: {paper.SOURCE} (3 seeds × 5 inference runs; learned embedding = its \"dim 20\"; "
        "peak GPU memory for one-hot only); its configs are the full ones, so a shortened run is not expected to "
        "match it. Every number is also in summary.csv, with full precision.",
    ]
    parts += [block for view in views for block in view.markdown(report)]
    parts += ["## Runs not ok", not_ok_line(report)]
    if not report.not_ok.empty:
        parts.append(markdown_table(NOT_OK_COLUMNS, not_ok_rows(report.not_ok)))
    parts += ["## Configs", markdown_table(["dataset", "setting", "config hash", "switches", *_CONFIG_KEYS],
                                           _config_rows(report.runs))]
    if report.warnings:
        parts += ["## Warnings", "\n".join(f"- {w}" for w in report.warnings)]
    parts += _figure_lines(figures, out)
    return "\n\n".join(parts) + "\n"


def write_tables(report: Report, out: Path, figures: Sequence[Path] = (), views: Sequence[View] = VIEWS
                 ) -> list[Path]:
    """Write summary.csv (full precision), each view's CSVs and summary.md into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    frames = {"summary.csv": report.summary} | {name: f for view in views for name, f in view.files(report).items()}
    written = []
    for name, frame in frames.items():
        written.append(out / name)
        frame.to_csv(written[-1], index=False)
    md_path = out / "summary.md"
    md_path.write_text(summary_markdown(report, figures, out, views), encoding="utf-8")
    return [*written, md_path]
