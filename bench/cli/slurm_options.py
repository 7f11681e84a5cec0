"""``run``'s ``--slurm-*`` options (their own help panel) and how they become the SLURM executor's
``SlurmOptions``. They join ``run``'s signature as the config keys do (``with_config_options``), so ``run`` itself
only hands them on."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from bench.cli.common import fail

PANEL = "SLURM (--executor slurm)"


def _option(name: str, annotation: Any, default: Any, help: str, **kw: Any) -> inspect.Parameter:
    option = typer.Option(f"--{name.replace('_', '-')}", help=help, rich_help_panel=PANEL,
                          show_default=default not in (None, False), **kw)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, option])


PARAMETERS = [
    _option("slurm_partition", str | None, None, "The partition each run's job goes to (else the cluster's default)."),
    _option("slurm_time", str | None, None, "Each job's time limit: minutes, H:MM:SS or D-HH:MM."),
    _option("slurm_gpus_per_run", int, 0, "GPUs each job asks for.", min=0),
    _option("slurm_cpus_per_run", int | None, None, "CPUs each job asks for (else --threads x --block-workers).",
            min=1),
    _option("slurm_mem", str | None, None, "Memory each job asks for, e.g. 16G."),
    _option("slurm_extra", list[str] | None, None,
            "Any other sbatch option as KEY=VALUE (repeat it), e.g. account=lab or qos=short."),
    _option("slurm_requeue", bool, False, "A job nearing its time limit records its run interrupted and requeues "
            "itself; the run continues from its checkpoint."),
]
NAMES = [p.name for p in PARAMETERS]


def take(keys: dict[str, Any], slurm: bool) -> Any:
    """Pop the ``--slurm-*`` values out of ``keys``; the SLURM executor's ``SlurmOptions`` when ``slurm``, else
    None. Given without ``--executor slurm``, or malformed: a usage error (exit 2)."""
    values = {name: keys.pop(name, None) for name in NAMES}
    if not slurm:
        if any(values.values()):
            raise fail("the --slurm-* options apply to --executor slurm; add that or drop them")
        return None
    from bench.executors.slurm import SlurmOptions, parse_time

    try:
        minutes = parse_time(values["slurm_time"]) if values["slurm_time"] else None
    except ValueError as e:
        raise fail(str(e)) from None
    return SlurmOptions(values["slurm_partition"], minutes, values["slurm_gpus_per_run"] or 0,
                        values["slurm_cpus_per_run"], values["slurm_mem"], _pairs(values["slurm_extra"] or []),
                        bool(values["slurm_requeue"]))


def _pairs(items: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise fail(f"--slurm-extra {item!r} is not KEY=VALUE (an sbatch option without its dashes, e.g. qos=short)")
        pairs.append((key.strip().lstrip("-"), value))
    return tuple(pairs)
