"""``noprop-bench report`` and ``noprop-bench compare``: read result folders, print, write; no logic of their own."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bench.cli.common import app, console, err_console, fail, user_errors
from bench.results.schema import SWITCH_COLUMNS

if TYPE_CHECKING:
    from bench.report.aggregate import Report
    from bench.report.compare import Comparison

Switch = Enum("Switch", {name: name for name in SWITCH_COLUMNS}, type=str)  # the choices of --across


def _warn(lines: list[str]) -> None:
    from rich.markup import escape

    for line in lines:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


@app.command()
def report(
    results_dirs: Annotated[list[Path] | None, typer.Argument(
        help="Result folders (each holding runs.csv, or subfolders that do); default results/.")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to write (default: FIRST_RESULTS_DIR/report/).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset, e.g. mnist.")] = None,
    methods: Annotated[str | None, typer.Option(
        help="Comma list of methods, by registry name or alias as `run --methods` takes them, e.g. dt,ct,fm,bp.")
    ] = None,
    baseline: Annotated[str | None, typer.Option(
        help="Measure every other method against this one (time and memory ratios) instead of the matched "
             "baseline each declares.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Figure format: png, pdf or svg.")] = "png",
    targets: Annotated[str | None, typer.Option(
        help="Accuracies (%) whose time to reach is tabulated, e.g. 80,85,90 (default: per dataset, the highest whole "
             "5 % every method reached and the two 5 points below).", show_default=False)] = None,
    collapse_margin: Annotated[float, typer.Option(
        min=0, help="Name a method whose final test accuracy lies more than this many points below the test "
                    "accuracy after its best validation epoch (late collapse; needs val_size).")] = 5.0,
) -> None:
    """Compare methods over seeds from runs.csv / epochs.csv: a table here, summary.csv/.md and figures in OUT."""
    from bench.report import aggregate, figures, load, tables
    from bench.report.build import build
    from bench.report.views.time_to_accuracy import parse_targets

    if fmt not in figures.FORMATS:
        raise fail(f"unknown --format '{fmt}'; use one of {', '.join(figures.FORMATS)}")
    try:
        target_values = parse_targets(targets) if targets is not None else []
    except ValueError as e:
        raise fail(f"bad --targets: {e}") from None
    folders = results_dirs or [Path("results")]
    out = out or folders[0] / "report"
    result = build(load.load(folders), datasets=[dataset] if dataset else None,
                   methods=methods.split(",") if methods else None, targets=target_values, baseline=baseline,
                   collapse_margin=collapse_margin)
    if result.empty:
        _warn(result.warnings)
        raise fail(aggregate.nothing_to_report(result))
    _warn(result.warnings)
    for table in tables.terminal_tables(result):
        console.print(table)
    _write(result, out, fmt)
    _attach_to_trackers(folders, out)


def _write(result: Report, out: Path, fmt: str) -> None:
    """The report's figures and tables into ``out``, listed; warnings the figures raise are shown after them."""
    from rich.markup import escape

    from bench.report import figures, tables

    shown = len(result.warnings)
    try:
        written = figures.write_figures(result, out, fmt)
        written = tables.write_tables(result, out, written) + written
    except OSError as e:
        raise fail(f"could not write the report to {out}: {e.strerror or e}") from None
    _warn(result.warnings[shown:])
    console.print(f"wrote {len(written)} files to {escape(str(out))}/:", highlight=False)
    for path in written:
        console.print(f"  {escape(str(path))}", highlight=False, soft_wrap=True)


def _attach_to_trackers(folders: list[Path], out: Path) -> None:
    """The report's files as artifacts of the MLflow experiments the results were tracked in; a failure is a
    warning (the report is written)."""
    from bench.tracking import TrackingError
    from bench.tracking.base import root_cause
    from bench.tracking.mlflow import attach_report

    try:
        for experiment in attach_report(folders, out):
            console.print(f"attached the report to MLflow experiment {experiment!r} (run 'report')", highlight=False)
    except TrackingError as e:
        _warn([f"the report was not attached to MLflow: {e}"])
    except Exception as e:  # MLflow's errors: the report itself is written either way
        _warn([f"the report was not attached to MLflow ({root_cause(e)})"])


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Results folder of the reference runs (holds runs.csv).")],
    candidate: Annotated[Path, typer.Argument(help="Results folder of the runs to check (holds runs.csv).")],
    max_accuracy_drop: Annotated[float | None, typer.Option(
        help="Allowed drop of mean test accuracy in points, plus 2 pooled se of the seeds. Default 0.5.")] = None,
    max_slowdown: Annotated[float | None, typer.Option(
        help="Allowed candidate/baseline ratio of the median epoch time (time per epoch where a side lacks it). "
             "Default 1.25.")] = None,
    max_memory_growth: Annotated[float | None, typer.Option(
        help="Allowed candidate/baseline ratio of peak memory and saved activations. Default 1.25.")] = None,
    thresholds: Annotated[Path | None, typer.Option(
        help="YAML file with any of max_accuracy_drop, max_slowdown, max_memory_growth; flags override it.")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="table (the terminal's) or markdown: the comparison as one markdown document, for a job "
        "summary ($GITHUB_STEP_SUMMARY) or a pull-request comment.")] = "table",
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="The same as --format markdown.", hidden=True)] = False,
    across: Annotated[list[Switch] | None, typer.Option(
        help="Pair runs that differ in this execution switch on purpose (it is left out of the match key), e.g. "
             "a channels_last=false baseline against a channels_last=true candidate. Repeatable.")] = None,
) -> None:
    """CI regression gate: compare CANDIDATE's ok runs with BASELINE's; exit 1 when a threshold is crossed.

    Runs are matched by (dataset, method, embedding, config_hash) and the execution switches (precision,
    channels_last, batched_blocks, block_workers), less those given with --across; see docs/usage.md, "CI
    regression gate".

    Exit codes: 0 pass, 1 a threshold crossed, 2 bad input (missing folder, schema mismatch, bad thresholds).
    """
    from bench.report import compare as gate
    from bench.report import load
    from bench.results import ResultsError

    if fmt not in ("table", "markdown"):
        raise fail(f"unknown --format '{fmt}'; use table or markdown")
    markdown = markdown or fmt == "markdown"
    with user_errors(load.InputError, ResultsError):
        from_file = gate.read_thresholds(thresholds) if thresholds else {}
        limits = gate.make_thresholds(from_file, {"max_accuracy_drop": max_accuracy_drop,
                                                  "max_slowdown": max_slowdown,
                                                  "max_memory_growth": max_memory_growth})
        sides = [load.read_side(baseline, "baseline"), load.read_side(candidate, "candidate")]
        result = gate.compare_sides(*sides, limits, across=[s.value for s in across or []])
    _print_comparison(result, [w for side in sides for w in side.warnings], markdown, str(baseline), str(candidate))
    if result.failed:
        raise typer.Exit(1)


def _print_comparison(result: Comparison, warnings: list[str], markdown: bool, baseline: str, candidate: str) -> None:
    """Markdown on stdout, or the tables, then warnings and notes (stderr), then the verdict lines."""
    from rich.markup import escape

    from bench.report import compare_tables

    if markdown:
        console.file.write(compare_tables.compare_markdown(result, baseline, candidate))
        return
    for table in compare_tables.compare_tables(result):
        console.print(table)
    _warn(warnings + compare_tables.other_lines(result))
    style = "bold red" if result.failed else "bold green"
    for line in compare_tables.verdict_lines(result):
        console.print(f"[{style}]{escape(line)}[/]", highlight=False, soft_wrap=True)
