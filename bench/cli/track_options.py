"""``run``'s tracking options (``--track``, ``--mlflow-uri``, ``--mlflow-experiment``; their own help panel), joined
to its signature as the config keys are, and the trackers they open."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.tracking import KINDS, Tracker, open_trackers

PANEL = "Tracking"


def _option(name: str, help: str) -> inspect.Parameter:
    option = typer.Option(f"--{name.replace('_', '-')}", help=help, rich_help_panel=PANEL, show_default=False)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[str | None, option])


PARAMETERS = [
    _option("track", f"Log every run to trackers too: a comma list of {', '.join(KINDS)} (each an extra: pip "
            "install 'noprop-bench\\[tensorboard]' or '\\[mlflow]'; docs/tracking.md)."),
    _option("mlflow_uri", "With --track mlflow: the tracking server or store, e.g. http://host:5000 or "
            "sqlite:///runs.db (else OUT/mlflow.db)."),
    _option("mlflow_experiment", "With --track mlflow: the experiment's name (else the results folder's name)."),
]
NAMES = [p.name for p in PARAMETERS]


@dataclass(frozen=True)
class Tracking:
    """The trackers asked for, opened once the results folder is known."""

    kinds: tuple[str, ...] = ()
    mlflow_uri: str | None = None
    mlflow_experiment: str | None = None

    def open(self, out: str | Path) -> list[Tracker]:
        """The trackers, opened; TrackingError (one line, exit 2) for a missing extra or a store that fails."""
        if not self.kinds and not (self.mlflow_uri or self.mlflow_experiment):
            return []
        return open_trackers(list(self.kinds), out, self.mlflow_uri, self.mlflow_experiment)


def take(keys: dict[str, Any]) -> Tracking:
    """Pop the tracking options out of ``keys``."""
    values = {name: keys.pop(name, None) for name in NAMES}
    kinds = tuple(k.strip() for k in (values["track"] or "").split(",") if k.strip())
    return Tracking(kinds, values["mlflow_uri"], values["mlflow_experiment"])
