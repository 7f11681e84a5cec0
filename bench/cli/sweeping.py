"""``noprop-bench sweep GRID.yaml``: every point of a grid (``bench.run.grid``) run as ``run`` would run its config,
with the same executors, trackers, display and resume; ``--dry-run`` lists the points and their config hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from bench.cli import dispatch, slurm_options, track_options
from bench.cli.common import app, console, user_errors
from bench.cli.options import overrides, with_config_options
from bench.formatting import value_text
from bench.run import config as cfg
from bench.run.readers import DataError
from bench.tracking import TrackingError


@app.command(context_settings={"help_option_names": ["--help", "-h"]})
@with_config_options(extra=[*dispatch.PARAMETERS, *track_options.PARAMETERS, *slurm_options.PARAMETERS])
def sweep(
    grid: Annotated[Path, typer.Argument(help="The grid file: fixed config keys and a 'grid' of keys to lists of "
                                         "values (docs/usage.md, 'Sweeps from a grid').", show_default=False)],
    dry_run: Annotated[bool, typer.Option(help="List the points, their runs and config hashes; run nothing.",
                                          rich_help_panel=dispatch.PANEL)] = False,
    **keys: Any,
) -> None:
    """Run every combination of a grid of config keys; each point's runs are ordinary rows in OUT/runs.csv.

    The options below fix keys for every point (a grid key cannot also be an option).
    """
    from bench.results import ResultsError
    from bench.run.grid import read_grid
    from bench.run.recipe import RunError

    how = dispatch.prepare(keys)
    with user_errors(cfg.ConfigError, DataError, ResultsError, RunError, TrackingError):
        points = read_grid(grid, overrides(keys))
        if dry_run:
            console.print(_points_table(points, how.resume))
            return
        rows = how.execute([p.config for p in points], how.tracking.open(points[0].config.out),
                           labels=[p.label() for p in points])
    how.report(rows, points[0].config.out)


def _points_table(points: list[Any], resume: bool) -> Table:
    """Point, its grid values, its runs (method x seed) and each method's config hash; with --resume, how many of
    its runs are complete already."""
    from bench.executors.plan import completed_keys, key_for

    table = Table(title=f"{len(points)} points", box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("point", *points[0].values, "methods x seeds", "config hash", "done" if resume else None):
        if col is not None:
            table.add_column(col, no_wrap=True)
    done = completed_keys(Path(points[0].config.out)) if resume else set()
    for i, p in enumerate(points, 1):
        c = p.config
        hashes = ", ".join(f"{m}: {c.model_hash(m)}" for m in c.methods)
        cells = [str(i), *(value_text(v) for v in p.values.values()), f"{','.join(c.methods)} x {c.seeds}", hashes]
        if resume:
            runs = [key_for(c, m, s) for m in c.methods for s in c.seeds]
            cells.append(f"{sum(k in done for k in runs)}/{len(runs)}")
        table.add_row(*cells)
    return table
