"""Numbers as text people read: the report's terminal tables, summary.md and summary.csv, and the ``compare``
tables, all built from the same cells (``display_rows``) and one markdown helper (``markdown_table``).

Nothing is computed here (the numbers come from ``bench.report.aggregate`` and ``bench.report.compare``); the only
files written are summary.csv and summary.md. Terminal tables are sized for an 80-column terminal; summary.md has
every column.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bench.formatting import MISSING, fmt, mb, mean_sd, signed, times
from bench.report import inference_steps, paper, time_to_accuracy
from bench.report.aggregate import Report, status_counts
from bench.report.compare import SPREAD_K, Comparison, Thresholds, crossed
from bench.report.labels import switch_text, value_text
from bench.results.schema import SWITCH_COLUMNS, pandas_dtype

if TYPE_CHECKING:
    from rich.table import Table


def markdown_table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; ``|`` in a cell is escaped and a line break becomes a space."""
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ report

HEADER = ["dataset", "method", "embedding", "config", "seeds", "test acc % mean ± sd", "se", "paper % (Δ)",
          "det. test acc %", "train acc %", "infer ms/img", "s/epoch", "median s/epoch", "samples/s", "peak MB",
          "saved act. MB", "paper GPU MB", "NP/BP time", "NP/BP mem"]
TABLE_LEGEND = (
    "mean ± sd and se over seeds (sd: sample, ddof = 1; \"-\" for one seed); config: config hash and the execution "
    "switches the runs recorded; paper % (Δ): the paper's accuracy and ours − paper in points; det. test acc %: mean "
    "over seeds of the deterministic reading of the same weights (z_0 = 0, no injected noise; the headline is the "
    "stochastic one, as in the paper); infer ms/img: one test pass of the headline reading divided by its images "
    "(batches of 1000), NoProp-CT and -FM's ODE steps in parentheses; s/epoch: the mean epoch (training steps "
    "only), median s/epoch: each run's median epoch (a first epoch's warm-up does not inflate it), both averaged over "
    "seeds; peak MB: CUDA allocated / reserved, or CPU RSS; saved act. MB: what autograd saves for backward in one "
    "step (MB = 2^20 bytes); NP/BP: NoProp-DT / backprop for time per epoch and peak memory (CUDA allocated, else "
    "RSS)"
)

TERMINAL_LEGEND = (
    "mean ± sd and se over seeds (sd: sample, ddof = 1; \"-\" for one seed); config: hash prefix, and the switches "
    "that differ between rows; det. test %: the deterministic reading of the same weights (z_0 = 0, no injected "
    "noise; the headline is the stochastic one); s/ep mean, med.: mean and median epoch (training steps only), "
    "averaged over seeds; infer ms/img: one test pass divided by its images (ODE steps in parentheses); "
    "peak MB: CUDA allocated / reserved, or CPU RSS (MB = 2^20 bytes); NP/BP: NoProp-DT / backprop for time per "
    "epoch and peak memory. summary.md has every column (saved activations among them); a column empty in every "
    "row is left out here."
)


def _memory_cell(row: pd.Series) -> str:
    if not pd.isna(row["peak_cuda_allocated_mb_mean"]):
        return f"{fmt(row['peak_cuda_allocated_mb_mean'], '.0f')} / {fmt(row['peak_cuda_reserved_mb_mean'], '.0f')}"
    return f"{fmt(row['peak_rss_mb_mean'], '.0f')} RSS"


def _memory_ratio(row: pd.Series) -> float:
    on_cuda = not pd.isna(row["peak_cuda_allocated_ratio_noprop_to_backprop"])
    return row["peak_cuda_allocated_ratio_noprop_to_backprop" if on_cuda else "peak_rss_ratio_noprop_to_backprop"]


def _paper_cell(row: pd.Series) -> str:
    if pd.isna(row["paper_test_acc_pct"]):
        return MISSING
    return f"{row['paper_test_acc_pct']:.2f} ({signed(row['test_acc_minus_paper_pct'])})"


def _config_cell(row: pd.Series) -> str:
    switches = switch_text(row)
    return (row["config_hash"] or MISSING) + (f" ({switches})" if switches else "")


def _inference_cell(row: pd.Series) -> str:
    steps = row["ode_steps"]
    return fmt(row["infer_ms_per_image_mean"], ".3g") + ("" if pd.isna(steps) else f" ({int(steps)})")


def display_rows(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The summary as short strings (HEADER), shared by the terminal tables and summary.md."""
    rows = []
    for _, r in summary.iterrows():
        rows.append([
            r["dataset"], r["method"], r["embedding"], _config_cell(r), str(int(r["n_seeds"])),
            mean_sd(r["test_acc_pct_mean"], r["test_acc_pct_sd"]), fmt(r["test_acc_pct_se"]), _paper_cell(r),
            fmt(r["test_acc_det_pct_mean"]), fmt(r["train_acc_pct_mean"]), _inference_cell(r),
            fmt(r["time_per_epoch_s_mean"], ".3g"),
            fmt(r["epoch_time_median_s_mean"], ".3g"), fmt(r["samples_per_s_mean"], ".0f"), _memory_cell(r),
            fmt(r["peak_saved_activation_mb_mean"], ".1f"), fmt(r["paper_peak_gpu_mb"], ".0f"),
            fmt(r["time_per_epoch_ratio_noprop_to_backprop"]), fmt(_memory_ratio(r)),
        ])
    return list(HEADER), rows


TIME_TO_ACCURACY_LEGEND = (
    "training time (evaluation excluded) until the accuracy checked after each epoch first reached the target, mean "
    "over the runs that reached it, with the epoch count; [k/n]: only k of n runs reached it; accuracy: validation, "
    "or test where the runs had no validation split (choosing on test accuracy flatters); the headline reading "
    "(stochastic for NoProp-DT)"
)


STEPS_HEADER = ["dataset", "method", "embedding", "config", "integrator", "steps", "runs", "test acc % mean ± sd",
                "infer ms/img"]
STEPS_LEGEND = ("test accuracy of one seeded inference pass per run at each ODE step count (the same noise at every "
                "count), and that pass's time per image; mean over runs")


def inference_steps_rows(report: Report) -> list[list[str]]:
    """Per group and step count (``STEPS_HEADER``), from the runs that measured a step sweep."""
    groups = inference_steps.per_group(report.inference_steps)
    return [[r["dataset"], r["method"], r["embedding"], r["config_hash"][:6], r["integrator"], str(int(r["steps"])),
             str(int(r["n_runs"])), mean_sd(r["test_acc_pct_mean"], r["test_acc_pct_sd"]),
             fmt(r["infer_ms_per_image_mean"], ".3g")] for _, r in groups.iterrows()]


def _time_cell(row: pd.Series) -> str:
    if row["n_reached"] == 0:
        return "not reached"
    partial = f" [{row['n_reached']}/{row['n_runs']}]" if row["n_reached"] < row["n_runs"] else ""
    return f"{fmt(row['cum_train_time_s_mean'], '.3g')} s ({fmt(row['epoch_mean'], '.3g')} ep){partial}"


def time_to_accuracy_rows(report: Report, config_cell: Callable[[pd.Series], str] = _config_cell
                          ) -> tuple[list[str], list[list[str]]]:
    """Per group (summary order) and accuracy measure: the time to each target, as short strings; the config as
    ``config_cell`` writes it (summary.md: hash and switches)."""
    groups = time_to_accuracy.per_group(report.time_to_accuracy)
    if groups.empty:
        return [], []
    targets = sorted(groups["target_pct"].unique())
    header = ["dataset", "method", "embedding", "config", "accuracy",
              *(f"to {value_text(t)} %" for t in targets)]
    rows = []
    keys = ["dataset", "method", "embedding", "config_hash", *SWITCH_COLUMNS, "measured_on"]
    for _, same in groups.groupby(keys, sort=False, dropna=False):
        first = same.iloc[0]
        by_target = {r["target_pct"]: _time_cell(r) for _, r in same.iterrows()}
        rows.append([first["dataset"], first["method"], first["embedding"], config_cell(first),
                     first["measured_on"], *(by_target.get(t, MISSING) for t in targets)])
    return header, rows


NOT_OK_COLUMNS = ["results_dir", "run_id", "dataset", "method", "embedding", "seed", "status", "epochs_done", "reason"]


def not_ok_rows(not_ok: pd.DataFrame) -> list[list[str]]:
    """The runs left out of the numbers, one line each."""
    return [[str(r["results_dir"]), str(r["run_id"]), r["dataset"], r["method"], r["embedding"], _int(r["seed"]),
             r["status"] or "unknown", _int(r["epochs_done"]), r["reason"] or MISSING] for _, r in not_ok.iterrows()]


def not_ok_line(report: Report) -> str:
    """One line: how many runs were left out of the numbers, and why."""
    total = len(report.runs) + len(report.not_ok)
    if report.not_ok.empty:
        return f"All {total} matching runs finished ok."
    counts = ", ".join(f"{s}: {n}" for s, n in status_counts(report.not_ok).items())
    return (f"{len(report.not_ok)} of {total} matching runs did not finish ok ({counts}); they are listed below and "
            "left out of every number and figure.")


def _int(value: object) -> str:
    return "?" if pd.isna(value) else str(int(value))


_KEYS = ("dataset", "method", "embedding", "config")
_TERMINAL_ACCURACY = (*_KEYS, "seeds", "test acc % mean ± sd", "se", "paper % (Δ)", "det. test acc %",
                      "train acc %")
_TERMINAL_COST = (*_KEYS, "s/epoch", "median s/epoch", "samples/s", "infer ms/img", "peak MB", "paper GPU MB",
                  "NP/BP time", "NP/BP mem")
_TERMINAL_HEADERS = {  # two-line headers, so columns are as narrow as their values
    "test acc % mean ± sd": "test acc %\nmean ± sd", "paper % (Δ)": "paper %\n(Δ)",
    "det. test acc %": "det.\ntest %", "train acc %": "train\nacc %",
    "s/epoch": "s/ep\nmean", "median s/epoch": "s/ep\nmed.", "samples/s": "img/s", "paper GPU MB": "paper\nGPU\nMB",
    "NP/BP time": "NP/BP\ntime", "NP/BP mem": "NP/BP\nmem", "peak MB": "peak\nMB", "infer ms/img": "infer\nms/img",
    "saved act. MB": "saved\nact. MB",
}
# How a switch value reads in a narrow terminal cell; any other switch or value reads as name=value.
_SHORT_SWITCHES = {("channels_last", "true"): "NHWC", ("channels_last", "false"): "NCHW"}


def _short_switch(name: str, value: str) -> str:
    """A text switch by its value (``bf16``); a boolean one by what it chooses (``NHWC``) or as name=value."""
    if pandas_dtype(name) != "boolean":
        return value or "?"
    return _SHORT_SWITCHES.get((name, value), f"{name}={value_text(value)}")


def _terminal_config(summary: pd.DataFrame) -> list[str]:
    """A hash prefix (as git shows one), and under it the switches that differ between the rows, if any."""
    varying = [s for s in SWITCH_COLUMNS if summary[s].nunique() > 1]
    cells = []
    for _, r in summary.iterrows():
        shown = [_short_switch(s, r[s]) for s in varying]
        cells.append("\n".join([(r["config_hash"] or MISSING)[:6], " ".join(shown)]) if shown
                     else (r["config_hash"] or MISSING)[:6])
    return cells


def terminal_tables(report: Report) -> list[Table]:
    """Rich tables for the terminal: the summary as an accuracy and a cost table (a column with no value in any row
    is left out; summary.md keeps it), then the runs that did not finish ok (if any)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    header, rows = display_rows(report.summary)
    configs = _terminal_config(report.summary)
    tables = []
    for title, columns, caption in (
        ("Accuracy (ok runs; mean ± sd over seeds)", _TERMINAL_ACCURACY, None),
        ("Cost", _TERMINAL_COST, TERMINAL_LEGEND),
    ):
        table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, padding=0)
        picked = [header.index(name) for name in columns
                  if name in _KEYS or any(row[header.index(name)] != MISSING for row in rows)]
        for i in picked:
            table.add_column(_TERMINAL_HEADERS.get(header[i], header[i]), no_wrap=True)
        for row, config in zip(rows, configs, strict=True):
            table.add_row(*(escape(config if header[i] == "config" else row[i]) for i in picked))
        tables.append(table)
    tta_header, tta_rows = time_to_accuracy_rows(report, lambda r: (r["config_hash"] or MISSING)[:6])
    if tta_rows:  # narrow: the config as its hash prefix, each time over its epochs
        table = Table(title="Time to accuracy", caption=escape(TIME_TO_ACCURACY_LEGEND), box=box.SIMPLE_HEAD,
                      show_edge=False, padding=(0, 1, 0, 0))
        keep = [i for i, name in enumerate(tta_header) if name != "embedding"]
        for i in keep:
            table.add_column(tta_header[i].replace("accuracy", "acc.\non"), no_wrap=True)
        for row in tta_rows:
            cells = [row[i].replace(" (", "\n(").replace("not reached", "not\nreached") for i in keep]
            table.add_row(*map(escape, cells))
        tables.append(table)
    steps_rows = inference_steps_rows(report)
    if steps_rows:
        table = Table(title="Inference steps", caption=escape(STEPS_LEGEND), box=box.SIMPLE_HEAD, show_edge=False,
                      padding=(0, 1, 0, 0))
        keep = [i for i, name in enumerate(STEPS_HEADER) if name not in ("embedding", "config")]
        for i in keep:
            table.add_column(STEPS_HEADER[i].replace("test acc % ", "test acc %\n"), no_wrap=True)
        for row in steps_rows:
            table.add_row(*(escape(row[i]) for i in keep))
        tables.append(table)
    if not report.not_ok.empty:
        tables.append(_not_ok_table(report))
    return tables


def _not_ok_table(report: Report) -> Table:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    left_out = Table(title=escape(not_ok_line(report)), box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    for name in NOT_OK_COLUMNS:  # identifiers whole; the folder and the reason fold
        left_out.add_column(name, overflow="fold", no_wrap=name not in ("results_dir", "reason"))
    for row in not_ok_rows(report.not_ok):
        left_out.add_row(*(f"[red]{escape(cell)}[/]" if i == 6 else escape(cell) for i, cell in enumerate(row)))
    return left_out


_CONFIG_KEYS = ("embedding", "epochs", "batch_size", "T", "width", "lr", "embed_dim", "order", "train_subset",
                "test_subset", "eval_repeats")


def _config_rows(runs: pd.DataFrame) -> list[list[str]]:
    rows = []
    for config_hash, group in runs.groupby("config_hash", sort=True):
        try:
            config = json.loads(str(group["config_json"].iloc[0]))
        except ValueError:
            config = {}
        rows.append([config_hash or MISSING, ", ".join(sorted(set(group["dataset"])))]
                    + [str(config.get(k, MISSING)) for k in _CONFIG_KEYS])
    return rows


def summary_markdown(report: Report, figures: Sequence[Path] = (), out: Path | None = None) -> str:
    """summary.md: the table, the runs left out (with a line saying how many), configs, warnings, figures."""
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
    header, rows = time_to_accuracy_rows(report)
    if rows:
        parts += ["## Time to accuracy", markdown_table(header, rows), TIME_TO_ACCURACY_LEGEND[0].upper()
                  + TIME_TO_ACCURACY_LEGEND[1:] + ". Per run: time_to_accuracy.csv."]
    steps_rows = inference_steps_rows(report)
    if steps_rows:
        parts += ["## Inference steps", markdown_table(STEPS_HEADER, steps_rows),
                  STEPS_LEGEND[0].upper() + STEPS_LEGEND[1:] + ". Per run: inference_steps.csv."]
    parts += ["## Runs not ok", not_ok_line(report)]
    if not report.not_ok.empty:
        parts.append(markdown_table(NOT_OK_COLUMNS, not_ok_rows(report.not_ok)))
    parts += ["## Configs", markdown_table(["config", "datasets", *_CONFIG_KEYS], _config_rows(report.runs))]
    if report.warnings:
        parts += ["## Warnings", "\n".join(f"- {w}" for w in report.warnings)]
    if figures:
        parts.append("## Figures")
        for path in figures:
            link = path.relative_to(out) if out is not None and path.is_relative_to(out) else path
            parts.append(f"![{path.stem}]({link.as_posix()})" if path.suffix != ".pdf" else f"- [{link}]({link})")
    return "\n\n".join(parts) + "\n"


def write_tables(report: Report, out: Path, figures: Sequence[Path] = ()) -> list[Path]:
    """Write summary.csv (full precision), time_to_accuracy.csv (per run and target), inference_steps.csv (per run
    and step count, where runs measured a step sweep) and summary.md into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, tta_path, md_path = out / "summary.csv", out / "time_to_accuracy.csv", out / "summary.md"
    report.summary.to_csv(csv_path, index=False)
    report.time_to_accuracy.to_csv(tta_path, index=False)
    written = [csv_path, tta_path]
    if not report.inference_steps.empty:
        written.append(out / "inference_steps.csv")
        report.inference_steps.to_csv(written[-1], index=False)
    md_path.write_text(summary_markdown(report, figures, out), encoding="utf-8")
    return [*written, md_path]


# ------------------------------------------------------------------------------------------------ compare

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


def compare_legend(comparison: Comparison) -> str:
    """What the tables show and the rules they were judged by, in one paragraph."""
    t = comparison.thresholds
    paired = (f" Groups are paired across {', '.join(comparison.across)} (shown as baseline -> candidate)."
              if comparison.across else "")
    return (f"Ok runs only. Test accuracy: mean ± sd over seeds; change = candidate - baseline in points; fails "
            f"below -(max_accuracy_drop {t.max_accuracy_drop:g} + {SPREAD_K:g} x pooled se of the seeds), the se "
            f"term being 0 for a side with one seed. median s/epoch: each run's median epoch time (s/epoch: the "
            f"mean epoch, where a side lacks the median), samples/s, memory: medians over seeds; change = "
            f"candidate / baseline. Peak memory is CUDA allocated when both sides have it, else RSS; "
            f"MB = 2^20 bytes.{paired}")


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
