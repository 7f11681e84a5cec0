"""What every command shares: the Typer app, the consoles, and turning user errors into one line and an exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from bench.cli.lazy import LazyGroup
from bench.run import stopping

app = typer.Typer(
    cls=LazyGroup,  # run, sweep and the commands that read the methods load on use: --help imports no torch
    help="Matched, measured benchmarks of NoProp-DT against end-to-end backprop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
state = {"debug": False}


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear error line and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Turn the given error types (and Ctrl-C) into one line and a non-zero exit (tracebacks with --debug)."""
    try:
        yield
    except kinds as e:
        if state["debug"]:
            raise
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", stopping.exit_code()) from None


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
) -> None:
    state["debug"] = debug
