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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run() -> None:
    """Train and measure methods on a dataset (not implemented yet)."""
    raise fail("'run' is not implemented yet in this version; see the README for what works", 3)


@app.command()
def report(results_dirs: Annotated[list[Path] | None, typer.Argument()] = None) -> None:
    """Aggregate results into tables and figures (not implemented yet)."""
    raise fail("'report' is not implemented yet in this version; see the README for what works", 3)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="noprop-bench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
