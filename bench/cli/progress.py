"""How a sweep is shown: Rich progress bars and a summary table, JSON lines for scripts, or nothing."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.formatting import BYTES_PER_MB, fmt


class RichDisplay:
    """One bar per run (method, seed, epochs done, what it is doing now, loss, last test accuracy, elapsed), then a
    summary table. What a run is doing comes from its ``phase`` events (loading data, starting block workers, epoch
    k), so a run that has not finished an epoch yet shows it is alive. With ``total_runs`` (a grid sweep), a first
    bar for the whole sweep: runs done of all, and the time left estimated from the runs finished so far (their mean
    wall time times the runs to go; skipped runs count as done)."""

    def __init__(self, console: Console, total_runs: int | None = None) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[phase]}"),
            TextColumn("loss {task.fields[loss]}"), TextColumn("test {task.fields[acc]}"), TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, int] = {}
        self.sweep = SweepClock(total_runs) if total_runs else None
        self.sweep_task = None if self.sweep is None else self.progress.add_task(
            "sweep", total=total_runs, phase="", loss="-", acc="-")

    def __enter__(self) -> RichDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind, key = event["event"], event.get("key", "")
        if kind == "start":
            self.tasks[key] = self.progress.add_task(
                f"{event['method']:<9} seed {event['seed']}", total=event["epochs"], completed=event["epoch"],
                phase="starting", loss="-", acc="-",
            )
        elif kind == "phase" and key in self.tasks:
            self.progress.update(self.tasks[key], phase=event["phase"])
        elif kind == "epoch" and key in self.tasks:
            self.progress.update(self.tasks[key], completed=event["epoch"], loss=fmt(event["loss"], ".4f"),
                                 acc=fmt(event["test_acc"], ".2f") + "%")
        elif kind == "end" and key in self.tasks:
            status = event["row"]["status"]
            self.progress.update(self.tasks[key], phase="done" if status == "ok" else f"[red]{status}[/]")
            self.progress.stop_task(self.tasks[key])
        elif kind == "skipped":
            self.console.print(f"skipping {event['method']} seed {event['seed']}: already completed (--resume)")
        if kind in ("end", "skipped") and self.sweep is not None:
            self.sweep.done(trained=kind == "end")
            self.progress.update(self.sweep_task, completed=self.sweep.finished,
                                 description=f"sweep ({self.sweep.left()})")


class SweepClock:
    """Runs finished of a sweep's total, and the time left: the mean wall time of the runs trained so far times
    the runs still to go."""

    def __init__(self, total: int) -> None:
        self.total, self.finished, self.trained = total, 0, 0
        self.started = time.monotonic()
        self.skipped_until = self.started  # skipped runs take no time: the clock of trained runs starts after them

    def done(self, trained: bool) -> None:
        self.finished += 1
        if trained:
            self.trained += 1
        elif self.trained == 0:
            self.skipped_until = time.monotonic()

    def left(self) -> str:
        if self.trained == 0:
            return "time left unknown"
        per_run = (time.monotonic() - self.skipped_until) / self.trained
        return f"about {_duration(per_run * (self.total - self.finished))} left"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def summary_table(rows: list[dict]) -> Table:
    """Method x seed: status, final test accuracy, training time, throughput, peak memory (fits 80 columns)."""
    table = Table(title="Runs", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    columns = ("method", "seed", "status", "test acc %", "train s", "s/epoch", "img/s", "GFLOP/s", "mem MB")
    for col in columns:
        table.add_column(col, justify="left" if col in ("method", "status") else "right", no_wrap=True)
    for r in rows:
        mem = r.get("peak_cuda_allocated_bytes") or r.get("peak_rss_bytes")
        acc = fmt(r.get("test_acc"), ".2f")
        if r.get("test_acc") is not None and r.get("test_acc_std") is not None:
            acc += f"±{r['test_acc_std']:.2f}"
        status = r["status"] if r["status"] == "ok" else f"[red]{r['status']}[/]"
        table.add_row(r["method"], str(r["seed"]), status, acc, fmt(r.get("train_time_s"), ".1f"),
                      fmt(r.get("time_per_epoch_s"), ".2f"), fmt(r.get("samples_per_s"), ".0f"),
                      fmt(r.get("train_gflop_per_s"), ".0f"), fmt(mem / BYTES_PER_MB if mem else None, ".0f"))
    return table


def jsonl(event: dict[str, Any]) -> None:
    """Print one event as a JSON line (for scripts and CI logs)."""
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


def quiet(event: dict[str, Any]) -> None:
    """Show nothing while running."""
