"""A sweep grid (``noprop-bench sweep GRID.yaml``): fixed config keys plus a ``grid`` of keys to values, expanded
into one validated RunConfig per point of the grid's product.

    config: smoke                 # optional: a config name or YAML path the points start from
    methods: [noprop]             # fixed keys, as in a config file
    seeds: [0, 1]
    grid:                         # every combination is one point; each point runs methods x seeds
      embedding: [one-hot, learned]
      order: [paper, interleaved]

Points are ordered as the grid lists them (the last key varies fastest). Every point is an ordinary config: its
runs are ordinary rows, resumed and reported as those of ``run`` are, and the report tells the points apart by the
keys whose values differ (``bench.report.labels``). Pure: a file in, configs out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.formatting import setting_part, value_text
from bench.run.config import KEYS, ConfigError, RunConfig, read_mapping, resolve

SWEPT_BY_RUN = ("methods", "seeds")  # lists every config already runs over: fixed keys, never grid keys


@dataclass(frozen=True)
class Point:
    """One point of the grid: its values of the grid keys and its resolved config."""

    values: dict[str, Any]
    config: RunConfig

    def label(self) -> str:
        """``learned, order=paper``: as the report labels the group and trackers name its runs."""
        return _label(self.values)


def read_grid(path: str | Path, overrides: dict[str, Any] | None = None) -> list[Point]:
    """Every point of the grid file at ``path`` (``overrides``, from the command line, fix keys for all points);
    ConfigError (one line) for an unreadable file, an unknown key, an empty grid or a value a key refuses."""
    spec = read_mapping(Path(path), "a mapping with a 'grid'")
    base = spec.pop("config", None)
    grid = spec.pop("grid", None)
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{path}: needs a 'grid' mapping of config keys to lists of values, e.g. "
                          "grid: {embedding: [one-hot, learned]}")
    _check(grid, spec, str(path))
    fixed = {**spec, **(overrides or {})}
    clash = sorted(set(grid) & set(overrides or {}))
    if clash:
        raise ConfigError(f"--{clash[0].replace('_', '-')} is a grid key in {path}; drop the option or the key")
    points = []
    for combo in itertools.product(*(grid[k] for k in grid)):
        values = dict(zip(grid, combo, strict=True))
        try:
            config = resolve(dataset=fixed.get("dataset"), config=base, overrides={**fixed, **values})
        except ConfigError as e:
            raise ConfigError(f"{path}: point {_label(values)}: {e}") from None
        points.append(Point(values, config))
    if len({p.config.out for p in points}) > 1:  # 'out' as a grid key, or a default that follows the dataset
        raise ConfigError(f"{path}: every point of a grid writes to one results folder; fix 'out' (not a grid key)")
    return points


def _check(grid: dict[str, Any], fixed: dict[str, Any], where: str) -> None:
    for key in [*grid, *fixed]:
        if key not in KEYS:
            raise ConfigError(f"{where}: unknown config key '{key}'; allowed keys: config, grid, {', '.join(KEYS)}")
    for key, values in grid.items():
        if key in SWEPT_BY_RUN:
            raise ConfigError(f"{where}: '{key}' is swept by every point already; give it as a fixed key")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid key '{key}' needs a non-empty list of values, e.g. {key}: [a, b]")
        if len({value_text(v) for v in values}) != len(values):
            raise ConfigError(f"{where}: grid key '{key}' lists a value twice")
        if key in fixed:
            raise ConfigError(f"{where}: '{key}' is both a grid key and a fixed key; keep one")


def _label(values: dict[str, Any]) -> str:
    return ", ".join(setting_part(k, v) for k, v in values.items())
