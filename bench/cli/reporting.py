"""``noprop-bench report`` and ``noprop-bench compare``: read result folders, print, write; no logic of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.cli.common import app, console, err_console, fail, state


@app.command()
def report(
    results_dirs: Annotated[list[Path] | None, typer.Argument(
        help="Result folders (each holding runs.csv, or subfolders that do); default results/.")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to write (default: FIRST_RESULTS_DIR/report/).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset, e.g. mnist.")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma list: noprop (= noprop-dt), backprop.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Figure format: png, pdf or svg.")] = "png",
) -> None:
    """Compare methods over seeds from runs.csv / epochs.csv: a table here, summary.csv/.md and figures in OUT."""
    from rich.markup import escape

    from bench import report as rep
    from bench.report import figures

    if fmt not in figures.FORMATS:
        raise fail(f"unknown --format '{fmt}'; use one of {', '.join(figures.FORMATS)}")
    folders = results_dirs or [Path("results")]
    out = out or folders[0] / "report"
    result = rep.build(rep.load(folders), datasets=[dataset] if dataset else None,
                       methods=methods.split(",") if methods else None)
    for line in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
    if result.empty:
        raise fail(rep.nothing_to_report(result))
    for table in rep.terminal_tables(result):
        console.print(table)
    shown = len(result.warnings)
    try:
        written = figures.write_figures(result, out, fmt)
        written = rep.write_tables(result, out, written) + written
    except OSError as e:
        raise fail(f"could not write the report to {out}: {e.strerror or e}") from None
    for line in result.warnings[shown:]:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
    console.print(f"wrote {len(written)} files to {escape(str(out))}/:", highlight=False)
    for path in written:
        console.print(f"  {escape(str(path))}", highlight=False, soft_wrap=True)


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Results folder of the reference runs (holds runs.csv).")],
    candidate: Annotated[Path, typer.Argument(help="Results folder of the runs to check (holds runs.csv).")],
    max_accuracy_drop: Annotated[float | None, typer.Option(
        help="Allowed drop of mean test accuracy in points, plus 2 pooled se of the seeds. Default 0.5.")] = None,
    max_slowdown: Annotated[float | None, typer.Option(
        help="Allowed candidate/baseline ratio of median time per epoch. Default 1.25.")] = None,
    max_memory_growth: Annotated[float | None, typer.Option(
        help="Allowed candidate/baseline ratio of peak memory and saved activations. Default 1.25.")] = None,
    thresholds: Annotated[Path | None, typer.Option(
        help="YAML file with any of max_accuracy_drop, max_slowdown, max_memory_growth; flags override it.")] = None,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="Print markdown (for CI logs and PR comments) instead of the terminal table.")] = False,
) -> None:
    """CI regression gate: compare CANDIDATE's ok runs with BASELINE's; exit 1 when a threshold is crossed.

    Runs are matched by (dataset, method, embedding, config_hash); see the README's "CI regression gate".

    Exit codes: 0 pass, 1 a threshold crossed, 2 bad input (missing folder, schema mismatch, bad thresholds).
    """
    from rich.markup import escape

    from bench.report import compare as gate
    from bench.results import ResultsError

    try:
        from_file = gate.read_thresholds(thresholds) if thresholds else {}
        limits = gate.make_thresholds(from_file, {"max_accuracy_drop": max_accuracy_drop,
                                                  "max_slowdown": max_slowdown,
                                                  "max_memory_growth": max_memory_growth})
        result = gate.compare(gate.load_runs(baseline, "baseline"), gate.load_runs(candidate, "candidate"), limits)
    except (gate.CompareError, ResultsError) as e:
        if state["debug"]:
            raise
        raise fail(str(e)) from None
    if markdown:
        console.file.write(gate.markdown(result, str(baseline), str(candidate)))
    else:
        for table in gate.rich_tables(result):
            console.print(table)
        for line in gate.other_lines(result):
            err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
        for line in gate.verdict_lines(result):
            style = "bold red" if result.failed else "bold green"
            console.print(f"[{style}]{escape(line)}[/]", highlight=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)
