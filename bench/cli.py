"""The ``noprop-bench`` command line: parse, validate, call the harness, print. No logic of its own."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bench import config as cfg
from bench import data
from bench.readers import DataError

app = typer.Typer(
    help="Matched, measured benchmarks of NoProp-DT against end-to-end backprop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

USER_ERRORS: tuple[type[Exception], ...] = (cfg.ConfigError, DataError)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear error line and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the harness's own error types (and Ctrl-C) into one line and a non-zero exit."""
    try:
        yield
    except USER_ERRORS as e:
        if _state["debug"]:
            raise
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug


DataDir = Annotated[
    str | None, typer.Option("--data-dir", help="Folder holding dataset files (else $NOPROP_BENCH_DATA, cache).")
]


@app.command()
def datasets(data_dir: DataDir = None) -> None:
    """List the datasets, their shapes, and whether (and where) their files are found here."""
    table = Table(title="Datasets")
    for col in ("dataset", "classes", "image", "train", "test", "found here"):
        table.add_column(col, overflow="fold")
    missing = []
    for spec in data.DATASETS.values():
        location = data.locate(spec, data_dir)
        shape = "x".join(str(s) for s in spec.image_shape)
        if location is None:
            missing.append(spec)
        found = f"[green]{location}[/]" if location else "[yellow]not found here[/]"
        table.add_row(spec.name, str(spec.num_classes), shape, f"{spec.train_size:,}", f"{spec.test_size:,}", found)
    console.print(table)
    roots = ", ".join(str(r) for r in data.search_roots(data.DATASETS["mnist"], data_dir))
    console.print(f"Searched, in order: {roots} (and {data.DEBIAN_FASHION_MNIST} for fashion-mnist)",
                  highlight=False)
    for spec in missing:
        console.print(f"- {spec.name}: downloads on first use with network; offline, {spec.how_to_get}",
                      highlight=False)


@app.command()
def configs() -> None:
    """List the bundled configs in configs/ with their key values."""
    table = Table(title=f"Configs in {cfg.CONFIG_DIR}")
    for col in ("config", "dataset", "epochs", "batch", "lr", "T", "embedding", "train subset"):
        table.add_column(col, no_wrap=col in ("config", "dataset"))
    with user_errors():
        for path in sorted(cfg.CONFIG_DIR.glob("*.yaml")):
            c = cfg.resolve(config=str(path))
            table.add_row(path.stem, c.dataset, str(c.epochs), str(c.batch_size), f"{c.lr:g}", str(c.T),
                          c.embedding, str(c.train_subset or "all"))
    console.print(table)
    console.print("Use one with --config NAME (or a path to any YAML); flags override its values.")


def parse_extra_flags(args: list[str]) -> dict[str, object]:
    """``--some-key value`` / ``--some-key=value`` pairs for any config key not given its own option."""
    found: dict[str, object] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise cfg.ConfigError(f"unexpected argument '{arg}'; config keys are given as --key value")
        name, eq, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise cfg.ConfigError(f"option '{arg}' needs a value")
            value, i = args[i + 1], i + 1
        if key not in cfg.KEYS:
            raise cfg.ConfigError(f"unknown option '--{name}'; config keys: {', '.join(cfg.KEYS)}")
        found[key] = cfg.parse_override(key, value)
        i += 1
    return found


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option(help="mnist, fashion-mnist, cifar10 or cifar100.")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma list: noprop (= noprop-dt), backprop.")] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma list of seeds, e.g. 0,1,2.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per run (default from the config).")] = None,
    config: Annotated[str | None, typer.Option(help="A config name in configs/ or a YAML path.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N.")] = None,
    out: Annotated[str | None, typer.Option(help="Results folder (default results/).")] = None,
    train_subset: Annotated[int | None, typer.Option(help="Use N class-balanced training images.")] = None,
    test_subset: Annotated[int | None, typer.Option(help="Use N class-balanced test images.")] = None,
    val_size: Annotated[int | None, typer.Option(help="Carve N validation images from the training set.")] = None,
    data_dir: DataDir = None,
    resume: Annotated[bool, typer.Option(help="Skip completed runs; continue interrupted ones.")] = False,
    in_process: Annotated[bool, typer.Option(help="Run in this process (debugging; RSS is then shared).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    jsonl: Annotated[bool, typer.Option(help="Print progress events as JSON lines.")] = False,
) -> None:
    """Train and measure methods on a dataset; rows go to OUT/runs.csv and OUT/epochs.csv.

    Any other config key can be set as --key value (e.g. --embedding learned --lr 3e-4).
    """
    from bench import progress
    from bench.results import ResultsError
    from bench.runner import RunError
    from bench.sweep import SweepInterrupted, run_sweep

    with user_errors():
        overrides = parse_extra_flags(ctx.args)
        flags = {"methods": methods, "seeds": seeds}
        overrides.update({k: cfg.parse_override(k, v) for k, v in flags.items() if v is not None})
        overrides.update(epochs=epochs, device=device, out=out, train_subset=train_subset, test_subset=test_subset,
                         val_size=val_size, data_dir=data_dir)
        run_config = cfg.resolve(dataset=dataset, config=config, overrides=overrides)
        try:
            if jsonl or quiet:
                rows = run_sweep(run_config, resume=resume, in_process=in_process,
                                 emit=progress.jsonl if jsonl else progress.quiet)
            else:
                console.print(f"[bold]{run_config.dataset}[/]: {', '.join(run_config.methods)} x seeds "
                              f"{run_config.seeds}, {run_config.epochs} epochs -> {run_config.out}/", highlight=False)
                with progress.RichDisplay(console) as display:
                    rows = run_sweep(run_config, resume=resume, in_process=in_process, emit=display)
        except SweepInterrupted:
            raise fail(f"interrupted; the run in progress is recorded as 'interrupted' in {run_config.out}/runs.csv; "
                       "add --resume to the same command to continue it", 130) from None
        except (ResultsError, RunError) as e:
            raise fail(str(e)) from None
    if not quiet and not jsonl:
        console.print(progress.summary_table(rows))
        console.print(f"rows written to {run_config.out}/runs.csv and {run_config.out}/epochs.csv", highlight=False)
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        raise fail(f"{len(bad)} of {len(rows)} runs did not finish ok: "
                   + "; ".join(f"{r['method']} seed {r['seed']}: {r['status']} {r.get('reason', '')}" for r in bad), 1)


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

    from bench import figures
    from bench import report as rep

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

    from bench import compare as gate
    from bench.results import ResultsError

    try:
        from_file = gate.read_thresholds(thresholds) if thresholds else {}
        limits = gate.make_thresholds(from_file, {"max_accuracy_drop": max_accuracy_drop,
                                                  "max_slowdown": max_slowdown,
                                                  "max_memory_growth": max_memory_growth})
        result = gate.compare(gate.load_runs(baseline, "baseline"), gate.load_runs(candidate, "candidate"), limits)
    except (gate.CompareError, ResultsError) as e:
        if _state["debug"]:
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="noprop-bench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
