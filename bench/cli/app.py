"""The ``noprop-bench`` command line: parse, validate, call the harness, print. No logic of its own."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from bench.cli import reporting  # noqa: F401  (registers report and compare)
from bench.cli.common import app, console, fail, user_errors
from bench.run import config as cfg
from bench.run import data
from bench.run.readers import DataError

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
    from bench.cli import progress
    from bench.executors.local import SweepInterrupted, run_sweep
    from bench.results import ResultsError
    from bench.run.recipe import RunError

    with user_errors(cfg.ConfigError, DataError):
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="noprop-bench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
