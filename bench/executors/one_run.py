"""What every executor calls to carry out one planned run wherever it has placed it (a child process, a Ray task):
the recipe, or, with ``block_workers`` > 1, the recipe on rank 0 of a group of block-parallel processes."""

from __future__ import annotations

from typing import Any

from bench.results import replace_run_rows
from bench.run.config import RunConfig
from bench.run.recipe import Emit, RowWriter, Run


def execute_run(config: RunConfig, method: str, seed: int, *, resume: bool, emit: Emit, measured_in: str,
                write_rows: RowWriter | None = replace_run_rows) -> dict[str, Any]:
    """Run one (method, seed) of ``config`` here and return its run row (see ``Run.execute``)."""
    if config.block_workers > 1:
        from bench.run.block_parallel import run_block_parallel

        return run_block_parallel(config, method, seed, resume=resume, emit=emit, measured_in=measured_in,
                                  write_rows=write_rows)
    return Run(config, method, seed, resume=resume, emit=emit, measured_in=measured_in,
               write_rows=write_rows).execute()
