"""The ``noprop-bench`` entry point: the one Typer app with every command, and ``main``, which turns a usage error
into one line. Light on purpose: ``report`` and ``compare`` are registered here, every other command on first use
(``bench.cli.lazy``), so ``noprop-bench --help`` answers without importing torch."""

from __future__ import annotations

import sys

import typer

from bench.cli import reporting  # noqa: F401  (registers report and compare)
from bench.cli.common import app, err_console

__all__ = ["app", "main"]


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
    main()
