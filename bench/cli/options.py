"""``run``'s options generated from ``RunConfig``: every config key is a typed, documented ``--key``.

The key's type gives the option's type (a choice for a Literal, true/false for a bool, a number, a comma list
for ``methods`` and ``seeds``; ``none`` clears an optional key), its description the help text, and its section
the help panel. A key added to RunConfig therefore needs no change here.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer

from bench.run.config import RunConfig

NONE_WORDS = ("none", "null")


class _NoneGiven:
    """Marks an optional key set to none on the command line (an option not given at all is None)."""

    def __repr__(self) -> str:
        return "none"


NONE = _NoneGiven()
Parser = Callable[[str], Any]
_BOOLS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False, "off": False}
_METAVARS = {bool: "true|false", int: "INT", float: "FLOAT", str: "TEXT"}


def _scalar(kind: type) -> Parser:
    def parse(text: str) -> Any:
        if kind is bool:
            if text.strip().lower() not in _BOOLS:
                raise typer.BadParameter(f"{text!r} is not true or false")
            return _BOOLS[text.strip().lower()]
        try:
            return kind(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not {'an int' if kind is int else 'a number'}") from None

    return parse


def _choice(choices: list[str]) -> Parser:
    def parse(text: str) -> str:
        if text not in choices:
            raise typer.BadParameter(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def parser_for(annotation: Any) -> tuple[Parser, str]:
    """(parse function, metavar) for a RunConfig field annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        choices = [str(a) for a in args]
        return _choice(choices), "[" + "|".join(choices) + "]"
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        parse, metavar = parser_for(inner)
        return (lambda text: NONE if text.strip().lower() in NONE_WORDS else parse(text)), f"{metavar}|none"
    if origin is list:
        parse, metavar = parser_for(args[0])
        return (lambda text: [parse(v.strip()) for v in text.split(",") if v.strip()]), f"{metavar},..."
    return _scalar(annotation), _METAVARS[annotation]


def config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per RunConfig key, as Typer reads them: ``--key`` with type, help and panel."""
    hints = typing.get_type_hints(RunConfig)
    params = []
    for name, info in RunConfig.__pydantic_fields__.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        default = info.get_default(call_default_factory=True)
        parse, metavar = parser_for(hints[name])
        option = typer.Option(f"--{name.replace('_', '-')}", parser=parse, metavar=metavar,
                              help=f"{info.description} (built-in: {shown(default)})",
                              rich_help_panel=str(extra.get("section", "Config")), show_default=False)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[Any, option]))
    return params


def with_config_options(extra: list[inspect.Parameter] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command (which takes ``**config``) one option per config key, after its own parameters and the
    ``extra`` ones (options of its own kept out of its signature, which arrive in ``**config`` too)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(command, include_extras=True)  # the command's own annotations, evaluated
        own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        params = own + list(extra) + config_parameters()
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def overrides(values: dict[str, Any]) -> dict[str, Any]:
    """The config keys given on the command line (``none`` becomes None; keys not given are left out)."""
    return {k: (None if v is NONE else v) for k, v in values.items() if v is not None}


def shown(value: Any) -> str:
    """A value as an option takes it (lists comma-joined, booleans lower-case, None as none)."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value is None else str(value)
