"""Commands loaded when they are used, so that ``noprop-bench --help`` (and ``report``, ``compare``) never import
torch: ``run`` and ``sweep`` take one option per config key, and the config knows its keys only by importing every
method (torch and all), which costs seconds on an idle machine and tens of seconds on a loaded one.

A command named in ``LAZY`` lives in a module that registers it on the one Typer app when imported. The group lists
it without importing that module: the command list shows its docstring, read from the module's source with ``ast``
(so it is the same text as the loaded command's, with nothing to keep in step). Invoking it, or asking for its own
``--help``, imports the module and builds the real command.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

Context = Any  # click's Context; Typer 0.29 vendors click, so click itself is not a dependency to import

# command -> the module that defines it (a function of the same name) and registers it when imported
LAZY: dict[str, str] = {
    "run": "bench.cli.app",
    "sweep": "bench.cli.sweeping",
    "methods": "bench.cli.app",
    "check": "bench.cli.app",
    "configs": "bench.cli.app",
    "datasets": "bench.cli.app",
}

ORDER = ("run", "sweep", "report", "compare", "methods", "check", "configs", "datasets")  # as --help lists them


def docstring(command: str) -> str:
    """The docstring of ``command``'s function, read from its module's source without importing the module."""
    spec = importlib.util.find_spec(LAZY[command])
    if spec is None or spec.origin is None:
        return ""
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == command:
            return ast.get_docstring(node) or ""
    return ""


def load(command: str) -> TyperCommand:
    """Import the module of ``command`` (which registers it on the app) and build the click command Typer makes."""
    from bench.cli.common import app  # the app is made with this module's group: imported here, not above

    importlib.import_module(LAZY[command])
    return typer.main.get_group(app).commands[command]


class LazyGroup(TyperGroup):
    """Typer's group, with the commands of ``LAZY`` listed from their docstrings and built on first use."""

    listing = False  # while the group's own help is written: lazy commands are named, not loaded

    def list_commands(self, ctx: Context) -> list[str]:
        names = dict.fromkeys([*self.commands, *LAZY])
        return sorted(names, key=lambda name: ORDER.index(name) if name in ORDER else len(ORDER))

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        if cmd_name in LAZY and cmd_name not in self.commands:
            if self.listing:
                return TyperCommand(name=cmd_name, help=docstring(cmd_name))
            self.commands[cmd_name] = load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Context, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False
