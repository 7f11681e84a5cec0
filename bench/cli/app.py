"""The commands that read the methods' declarations (``run``, ``methods``, ``check``, ``configs``, ``datasets``):
parse, validate, call the harness, print. No logic of its own. Loaded on first use (``bench.cli.lazy``), since the
methods import torch; the entry point is ``bench.cli.entry.main``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bench.cli import dispatch, slurm_options, track_options
from bench.cli.common import app, console, fail, user_errors
from bench.cli.options import overrides, shown, with_config_options
from bench.run import config as cfg
from bench.run import data
from bench.run.readers import DataError
from bench.tracking import TrackingError

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
        console.print(f"- {spec.name}: downloads on first use with network; offline, "
                      f"{spec.how_to_get(data.data_folder(spec, data_dir))}",
                      highlight=False)


@app.command()
def configs() -> None:
    """List the bundled configs (configs/, shipped in the package as bench/configs/) with their key values."""
    table = Table(title=f"Configs in {cfg.CONFIG_DIR}")
    for col in ("config", "dataset", "epochs", "batch", "lr", "T", "embedding", "train subset"):
        table.add_column(col, no_wrap=col in ("config", "dataset"))
    with user_errors(cfg.ConfigError, DataError):
        for name in cfg.bundled_configs():
            c = cfg.resolve(config=name)
            table.add_row(name, c.dataset, str(c.epochs), str(c.batch_size), f"{c.lr:g}", str(c.T),
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
    dispatch.warn_broken_plugins()


@app.command()
def check(
    method: Annotated[str, typer.Argument(help="A method's name or alias (see `noprop-bench methods`).")],
    device: Annotated[str, typer.Option(help="Torch device to check on (cuda also checks for host syncs).")] = "cpu",
) -> None:
    """Run the method contract on a method (labels never reach inference, seeded repeatability, exact resume, no
    files or network, ...): the checks a plug-in must pass for its numbers to be comparable. The outcome is written to
    the contract ledger, which every run row of the method then quotes (column contract). Exit 1 naming each
    breach."""
    from bench.contract import ContractError, contract_outcomes, ledger
    from bench.results import ResultsError

    name = cfg.REGISTRY.canonical(method)
    if name is None:
        broken = [label for label in cfg.REGISTRY.broken if label.split(" ")[0] == method]
        if broken:
            raise fail(f"method {broken[0]} is an installed plug-in that could not be loaded: "
                       f"{cfg.REGISTRY.broken[broken[0]]}")
        raise fail(f"unknown method {method!r}; `noprop-bench methods` lists them")
    if device.startswith("cuda") and not torch_cuda_available():
        raise fail(f"--device {device}: CUDA is not available here; check on cpu")
    entry = cfg.REGISTRY.find(name)
    assert entry is not None  # canonical above
    outcomes, breaches = contract_outcomes(entry.spec, device)
    try:
        ledger.record(entry.spec, entry.origin, entry.origin_version, device, outcomes, [b.check for b in breaches])
    except ResultsError as e:
        console.print(f"[yellow]warning:[/] {escape(str(e))}", highlight=False)
    for check_name, outcome in outcomes.items():
        mark = {"kept": "[green]kept[/]", "broken": "[red]broken[/]"}.get(outcome, f"[yellow]{escape(outcome)}[/]")
        console.print(f"{check_name}: {mark}", highlight=False)
    if breaches:
        joined = ContractError(", ".join(b.check for b in breaches), name, "; ".join(b.detail for b in breaches))
        raise fail(str(joined), 1)
    console.print(f"{name} keeps the method contract", highlight=False)


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@app.command(context_settings={"help_option_names": ["--help", "-h"]})
@with_config_options(extra=[*dispatch.PARAMETERS, *track_options.PARAMETERS, *slurm_options.PARAMETERS])
def run(
    config: Annotated[str | None, typer.Option(
        help="A bundled config's name (see `noprop-bench configs`) or a YAML path; the options below override "
        "its keys.", rich_help_panel="Run")] = None,
    **keys: Any,
) -> None:
    """Train and measure methods on a dataset; rows go to OUT/runs.csv and OUT/epochs.csv.

    Every config key is an option (defaults: the config file, else the dataset's bundled config, the paper's).
    """
    from bench.results import ResultsError
    from bench.run.recipe import RunError

    how = dispatch.prepare(keys)
    with user_errors(cfg.ConfigError, DataError, ResultsError, RunError, TrackingError):
        given = overrides(keys)
        run_config = cfg.resolve(dataset=given.pop("dataset", None), config=config, overrides=given)
        rows = how.execute([run_config], how.tracking.open(run_config.out))
    how.report(rows, run_config.out)
