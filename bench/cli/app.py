"""The ``noprop-bench`` command line: parse, validate, call the harness, print. No logic of its own."""

from __future__ import annotations

import enum
import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bench.cli import (
    reporting,  # noqa: F401  (registers report and compare)
    slurm_options,
)
from bench.cli.common import app, console, err_console, fail, user_errors
from bench.cli.options import overrides, shown, with_config_options
from bench.run import config as cfg
from bench.run import data, stopping
from bench.run.readers import DataError


class Executor(str, enum.Enum):
    """Where a sweep's runs go (``--executor``)."""

    local = "local"
    ray = "ray"
    slurm = "slurm"


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
    with user_errors(cfg.ConfigError, DataError):
        for path in sorted(cfg.CONFIG_DIR.glob("*.yaml")):
            c = cfg.resolve(config=str(path))
            table.add_row(path.stem, c.dataset, str(c.epochs), str(c.batch_size), f"{c.lr:g}", str(c.T),
                          c.embedding, str(c.train_subset or "all"))
    console.print(table)
    console.print("Use one with --config NAME (or a path to any YAML); flags override its values.")


@app.command()
def methods() -> None:
    """List every method (built in or from an installed plug-in): origin, version, baseline and its own config keys
    (every method also has the common ones: see `run --help`)."""
    registry = cfg.REGISTRY
    for entry in registry:
        spec = entry.spec
        origin = entry.origin if entry.origin == "built-in" else f"plug-in {entry.origin} {entry.origin_version}"
        aliases = f" (also {', '.join(spec.aliases)})" if spec.aliases else ""
        baseline = f", matched to [bold]{spec.baseline}[/]" if spec.baseline else ""
        console.print(f"[bold cyan]{spec.name}[/]{aliases}: {origin}, version {spec.version}{baseline}",
                      highlight=False)
        console.print(f"  {escape(spec.summary)}", highlight=False)
        for name, key in spec.own_keys().items():
            console.print(f"  [green]--{name.replace('_', '-')}[/] {escape(key.described())} (default "
                          f"{shown(key.default)}): {escape(key.help)}", highlight=False)
    console.print("Use them with --methods NAME,...; the keys above are options of `run` and config keys.",
                  highlight=False)
    warn_broken_plugins()


@app.command()
def check(
    method: Annotated[str, typer.Argument(help="A method's name or alias (see `noprop-bench methods`).")],
    device: Annotated[str, typer.Option(help="Torch device to check on (cuda also checks for host syncs).")] = "cpu",
) -> None:
    """Run the method contract on a method (labels never reach inference, seeded repeatability, exact resume, ...):
    the checks a plug-in must pass for its numbers to be comparable. Exit 1 naming each breach."""
    from bench.contract import ContractError, check_method

    name = cfg.REGISTRY.canonical(method)
    if name is None:
        warn_broken_plugins()
        raise fail(f"unknown method {method!r}; `noprop-bench methods` lists them")
    if device.startswith("cuda") and not torch_cuda_available():
        raise fail(f"--device {device}: CUDA is not available here; check on cpu")
    try:
        outcomes = check_method(cfg.REGISTRY.spec(name), device)
    except ContractError as e:
        raise fail(str(e), 1) from None
    for check_name, outcome in outcomes.items():
        mark = "[green]kept[/]" if outcome == "kept" else f"[yellow]{escape(outcome)}[/]"
        console.print(f"{check_name}: {mark}", highlight=False)
    console.print(f"{name} keeps the method contract", highlight=False)


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def warn_broken_plugins() -> None:
    """One line per installed plug-in that could not be loaded (the other methods work)."""
    for label, why in cfg.REGISTRY.broken.items():
        err_console.print(f"[bold yellow]warning:[/] plug-in method {escape(label)} is left out: {escape(why)}",
                          highlight=False, soft_wrap=True)


@app.command(context_settings={"help_option_names": ["--help", "-h"]})
@with_config_options(extra=slurm_options.PARAMETERS)
def run(
    config: Annotated[str | None, typer.Option(
        help="A config name in configs/ (see `noprop-bench configs`) or a YAML path; the options below override "
        "its keys.", rich_help_panel="Run")] = None,
    resume: Annotated[bool, typer.Option(help="Skip completed runs; continue interrupted ones.",
                                         rich_help_panel="Run")] = False,
    in_process: Annotated[bool, typer.Option(help="Run in this process (debugging; RSS is then shared).",
                                             rich_help_panel="Run")] = False,
    executor: Annotated[Executor, typer.Option(
        help="local: each run in its own process here, one after another; ray: each run a Ray task, here or on "
        "a cluster (needs pip install 'noprop-bench\\[ray]'); slurm: each run a SLURM job (needs pip install "
        "'noprop-bench\\[slurm]' and sbatch; docs/clusters.md).", rich_help_panel="Run")] = Executor.local,
    ray_address: Annotated[str | None, typer.Option(
        help="With --executor ray: the Ray cluster to join, e.g. HOST:6379 (else $RAY_ADDRESS; neither: start "
        "Ray on this machine).", rich_help_panel="Run", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.", rich_help_panel="Run")] = False,
    jsonl: Annotated[bool, typer.Option(help="Print progress events as JSON lines.", rich_help_panel="Run")] = False,
    **keys: Any,
) -> None:
    """Train and measure methods on a dataset; rows go to OUT/runs.csv and OUT/epochs.csv.

    Every config key is an option (defaults: the config file, else configs/DATASET.yaml, else the paper's).
    """
    from bench.cli import progress
    from bench.executors.sweep import SweepInterrupted
    from bench.results import ResultsError
    from bench.run.recipe import RunError

    slurm = slurm_options.take(keys, executor is Executor.slurm)
    run_sweep = _executor(executor, in_process, ray_address, slurm)
    stopping.stop_on_signals()  # SIGTERM (a scheduler, timeout, scancel) and SIGHUP stop a sweep as Ctrl-C does
    warn_broken_plugins()
    with user_errors(cfg.ConfigError, DataError, ResultsError, RunError):
        given = overrides(keys)
        run_config = cfg.resolve(dataset=given.pop("dataset", None), config=config, overrides=given)
        try:
            rows = _sweep(run_config, resume, quiet, jsonl, run_sweep, progress)
        except SweepInterrupted as e:
            raise fail(f"interrupted ({stopping.reason()}); runs in progress are recorded as 'interrupted' in "
                       f"{run_config.out}/runs.csv; add --resume to the same command to continue it",
                       e.exit_code) from None
    if not quiet and not jsonl:
        console.print(progress.summary_table(rows))
        console.print(f"rows written to {run_config.out}/runs.csv and {run_config.out}/epochs.csv", highlight=False)
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        raise fail(f"{len(bad)} of {len(rows)} runs did not finish ok: "
                   + "; ".join(f"{r['method']} seed {r['seed']}: {r['status']} {r.get('reason', '')}" for r in bad), 1)


def _executor(executor: Executor, in_process: bool, ray_address: str | None, slurm: Any = None
              ) -> Callable[..., list[dict]]:
    """The chosen executor's ``run_sweep`` with its own options bound; a combination that means nothing is a
    usage error (exit 2) before anything runs."""
    if in_process and executor is Executor.slurm:
        raise fail("--in-process runs the sweep in this process; it does not combine with --executor slurm")
    if executor is Executor.slurm:
        if ray_address:
            raise fail("--ray-address applies to --executor ray; drop it")
        from bench.executors import slurm as slurm_executor

        return functools.partial(slurm_executor.run_sweep, options=slurm)
    if executor is Executor.ray:
        if in_process:
            raise fail("--in-process runs the sweep in this process; it does not combine with --executor ray")
        from bench.executors import ray

        return functools.partial(ray.run_sweep, address=ray_address)
    if ray_address:
        raise fail("--ray-address applies to --executor ray; add that or drop --ray-address")
    from bench.executors import local

    return functools.partial(local.run_sweep, in_process=in_process)


def budget(config: cfg.RunConfig) -> str:
    """Each method's epochs, naming the key that set them where a method's own key replaces ``epochs``."""
    epochs = {m: config.epochs_for(m) for m in config.methods}
    if len(set(epochs.values())) == 1:
        return f"{next(iter(epochs.values()))} epochs"
    keys = {m: cfg.REGISTRY.spec(m).epochs_key for m in config.methods}
    return ", ".join(f"{m} {n} epochs" + (f" ({keys[m]})" if keys[m] and n != config.epochs else "")
                     for m, n in epochs.items())


def _sweep(config: cfg.RunConfig, resume: bool, quiet: bool, jsonl: bool, run_sweep: Callable[..., list[dict]],
           progress: Any) -> list[dict]:
    """Run the sweep with the chosen display: JSON lines, nothing, or Rich progress bars."""
    if jsonl or quiet:
        return run_sweep(config, resume=resume, emit=progress.jsonl if jsonl else progress.quiet)
    console.print(f"[bold]{config.dataset}[/]: {', '.join(config.methods)} x seeds {config.seeds}, {budget(config)} "
                  f"-> {config.out}/", highlight=False)
    with progress.RichDisplay(console) as display:
        return run_sweep(config, resume=resume, emit=display)


def _usage_error_type() -> type[Exception]:
    """Typer 0.29 vendors click and raises ``typer.TyperException``; older Typer raises click's own."""
    found = getattr(typer, "TyperException", None)
    if found is None:
        import click

        found = click.ClickException
    return found


def main() -> None:
    """Console-script entry point: a usage error (unknown option, bad value) is one line and exit 2, too."""
    try:
        code = app(prog_name="noprop-bench", standalone_mode=False)
    except _usage_error_type() as e:
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        err_console.print(f"[bold red]error:[/] {message} (see --help)", highlight=False, soft_wrap=True)
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
