"""The ``noprop-bench`` command line."""

from bench.cli.entry import app, main

__all__ = ["app", "main"]
