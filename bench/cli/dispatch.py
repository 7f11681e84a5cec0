"""What ``run`` and ``sweep`` share after parsing: the executor, the display and the trackers every event goes to,
one or more configs run one after another, the stop signals, the summary and the exit code."""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.markup import escape

from bench.cli.common import console, err_console, fail
from bench.run import config as cfg
from bench.run import stopping

PANEL = "Run"


class Executor(str, enum.Enum):
    """Where a sweep's runs go (``--executor``)."""

    local = "local"
    ray = "ray"
    slurm = "slurm"


# The options run and sweep share, declared once.
Resume = Annotated[bool, typer.Option(help="Skip completed runs; continue interrupted ones.", rich_help_panel=PANEL)]
InProcess = Annotated[bool, typer.Option(help="Run in this process (debugging; RSS is then shared).",
                                         rich_help_panel=PANEL)]
ExecutorOption = Annotated[Executor, typer.Option(
    help="local: each run in its own process here, one after another; ray: each run a Ray task, here or on a "
    "cluster (needs pip install 'noprop-bench\\[ray]'); slurm: each run a SLURM job (needs pip install "
    "'noprop-bench\\[slurm]' and sbatch; docs/clusters.md).", rich_help_panel=PANEL)]
RayAddress = Annotated[str | None, typer.Option(
    help="With --executor ray: the Ray cluster to join, e.g. HOST:6379 (else $RAY_ADDRESS; neither: start Ray on "
    "this machine).", rich_help_panel=PANEL, show_default=False)]
SetAsideTorn = Annotated[bool, typer.Option(
    help="Before running, move a torn last row of OUT/runs.csv or OUT/epochs.csv (cut part-way by a crash or a full "
    "disk) to runs.csv.torn or epochs.csv.torn, keeping every whole row; without it such a row stops the command "
    "with one line.", rich_help_panel=PANEL)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.", rich_help_panel=PANEL)]
Jsonl = Annotated[bool, typer.Option(help="Print progress events as JSON lines.", rich_help_panel=PANEL)]


def _parameter(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# Joined to run's and sweep's signatures by ``with_config_options(extra=...)``; ``prepare`` takes them back.
PARAMETERS = [_parameter("resume", Resume, False), _parameter("in_process", InProcess, False),
              _parameter("executor", ExecutorOption, Executor.local), _parameter("ray_address", RayAddress, None),
              _parameter("set_aside_torn", SetAsideTorn, False), _parameter("quiet", Quiet, False),
              _parameter("jsonl", Jsonl, False)]


@dataclass(frozen=True)
class Dispatch:
    """How a command's configs are to be run: the executor's ``run_sweep``, the trackers asked for
    (``track_options.Tracking``), and the shared switches."""

    run_sweep: Callable[..., list[dict]]
    tracking: Any
    resume: bool
    quiet: bool
    jsonl: bool
    set_aside_torn: bool = False

    def execute(self, configs: list[cfg.RunConfig], trackers: list[Any], labels: list[str] | None = None
                ) -> list[dict]:
        """``execute`` with these settings (after setting torn rows aside, when asked to)."""
        if self.set_aside_torn:
            set_aside_torn_rows(configs)
        return execute(configs, self.run_sweep, resume=self.resume, quiet=self.quiet, jsonl=self.jsonl,
                       trackers=trackers, labels=labels)

    def report(self, rows: list[dict], out: str) -> None:
        """``report_outcome`` with these settings."""
        report_outcome(rows, out, self.quiet, self.jsonl)


def prepare(keys: dict[str, Any]) -> Dispatch:
    """What ``run`` and ``sweep`` do before reading any config: take the shared, SLURM and tracking options out of
    ``keys``, choose the executor (usage errors exit 2), make SIGTERM (a scheduler, a timeout, scancel) and SIGHUP
    stop a sweep as Ctrl-C does, and warn of broken plug-ins."""
    from bench.cli import slurm_options, track_options

    given = {p.name: keys.pop(p.name, p.default) for p in PARAMETERS}
    slurm = slurm_options.take(keys, given["executor"] is Executor.slurm)
    tracking = track_options.take(keys)
    run_sweep = choose_executor(given["executor"], given["in_process"], given["ray_address"], slurm)
    stopping.stop_on_signals()
    warn_broken_plugins()
    return Dispatch(run_sweep, tracking, given["resume"], given["quiet"], given["jsonl"], given["set_aside_torn"])


def set_aside_torn_rows(configs: list[cfg.RunConfig]) -> None:
    """``--set-aside-torn``: each results folder's torn last rows moved to side files, one warning line each (a
    prompt instead would hang a batch job)."""
    from bench.results import set_aside_torn

    for out in dict.fromkeys(c.out for c in configs):
        for line in set_aside_torn(out):
            warn(line)


def choose_executor(executor: Executor, in_process: bool, ray_address: str | None, slurm: Any = None
                    ) -> Callable[..., list[dict]]:
    """The chosen executor's ``run_sweep`` with its own options bound; a combination that means nothing is a
    usage error (exit 2) before anything runs."""
    if in_process and executor is not Executor.local:
        raise fail(f"--in-process runs the sweep in this process; it does not combine with --executor "
                   f"{executor.value}")
    if ray_address and executor is not Executor.ray:
        raise fail("--ray-address applies to --executor ray; add that or drop --ray-address")
    if executor is Executor.slurm:
        from bench.executors import slurm as slurm_executor

        return functools.partial(slurm_executor.run_sweep, options=slurm)
    if executor is Executor.ray:
        from bench.executors import ray

        return functools.partial(ray.run_sweep, address=ray_address)
    from bench.executors import local

    return functools.partial(local.run_sweep, in_process=in_process)


def execute(configs: list[cfg.RunConfig], run_sweep: Callable[..., list[dict]], *, resume: bool, quiet: bool,
            jsonl: bool, trackers: list[Any], labels: list[str] | None = None) -> list[dict]:
    """Run every config's sweep, one after another, with one display; returns all their run rows. A stop signal
    is one line naming the signal and ``--resume``, with exit 128 + signal."""
    from bench.cli import progress
    from bench.executors.sweep import SweepInterrupted
    from bench.tracking.base import close_all

    show = progress.jsonl if jsonl else progress.quiet
    display = None if jsonl or quiet else progress.RichDisplay(console, total_runs=_total(configs, labels))
    rows: list[dict] = []
    try:
        with display or contextlib.nullcontext():
            for i, config in enumerate(configs):
                if display is not None:
                    _announce(config, labels[i] if labels else None)
                label = labels[i] if labels else None
                rows += run_sweep(config, resume=resume, emit=_tracked(display or show, trackers, config, label))
    except SweepInterrupted as e:
        raise fail(f"interrupted ({stopping.reason()}); runs in progress are recorded as 'interrupted' in "
                   f"{configs[0].out}/runs.csv; add --resume to the same command to continue it",
                   e.exit_code) from None
    finally:
        close_all(trackers, warn)
    return rows


def _total(configs: list[cfg.RunConfig], labels: list[str] | None) -> int | None:
    """Runs in the whole sweep, for its own bar (a grid only: one config has its bars per run)."""
    return sum(len(c.methods) * len(c.seeds) for c in configs) if labels else None


def _announce(config: cfg.RunConfig, label: str | None) -> None:
    where = f" ({label})" if label else ""
    console.print(f"[bold]{config.dataset}[/]{escape(where)}: {', '.join(config.methods)} x seeds {config.seeds}, "
                  f"{budget(config)} -> {config.out}/", highlight=False)


def _tracked(emit: Callable[[dict], None], trackers: list[Any], config: cfg.RunConfig, label: str | None
             ) -> Callable[[dict], None]:
    from bench.tracking.base import tracked_emit

    return tracked_emit(emit, trackers, config.to_dict(), warn, label) if trackers else emit


def report_outcome(rows: list[dict], out: str, quiet: bool, jsonl: bool) -> None:
    """The summary table (unless quiet), and exit 1 naming the runs that did not finish ok."""
    from bench.cli import progress

    if not quiet and not jsonl:
        console.print(progress.summary_table(rows))
        console.print(f"rows written to {out}/runs.csv and {out}/epochs.csv", highlight=False)
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        raise fail(f"{len(bad)} of {len(rows)} runs did not finish ok: "
                   + "; ".join(f"{r['method']} seed {r['seed']}: {r['status']} {r.get('reason', '')}" for r in bad), 1)


def budget(config: cfg.RunConfig) -> str:
    """Each method's epochs, naming the key that set them where a method's own key replaces ``epochs``."""
    epochs = {m: config.epochs_for(m) for m in config.methods}
    if len(set(epochs.values())) == 1:
        return f"{next(iter(epochs.values()))} epochs"
    keys = {m: cfg.REGISTRY.spec(m).epochs_key for m in config.methods}
    return ", ".join(f"{m} {n} epochs" + (f" ({keys[m]})" if keys[m] and n != config.epochs else "")
                     for m, n in epochs.items())


def warn(message: str) -> None:
    """One warning line on stderr."""
    err_console.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def warn_broken_plugins() -> None:
    """One line per installed plug-in that could not be loaded (the other methods work)."""
    for label, why in cfg.REGISTRY.broken.items():
        err_console.print(f"[bold yellow]warning:[/] plug-in method {escape(label)} is left out: {escape(why)}",
                          highlight=False, soft_wrap=True)
