"""What a view is: one thing the report shows, with its own data, tables, files and figures.

A view says what it adds at each place the report is written, and nothing elsewhere knows its name: the builder
stores its ``data`` under ``report.data[view.name]``, the terminal prints its ``terminal`` tables, summary.md holds
its ``markdown`` sections, its ``files`` are written as CSVs, its ``figures`` drawn. Each part is optional.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from rich.table import Table

    from bench.report.aggregate import Report
    from bench.report.plot import Styles

Draw = Callable[[], "Figure | None"]  # draws one figure; None when the runs hold no data for it
FigureJob = tuple[str, Draw]  # a file stem (without the format's suffix) and how to draw it


def _nothing(*_: Any) -> list:
    return []


def _no_files(_: Report) -> dict[str, pd.DataFrame]:
    return {}


@dataclass(frozen=True)
class View:
    """One view's parts; ``data`` runs once when the report is built, the others read ``report.data[name]``."""

    name: str
    data: Callable[[Report], Any] | None = None
    terminal: Callable[[Report], list[Table]] = _nothing  # rich tables, in order
    markdown: Callable[[Report], list[str]] = _nothing  # summary.md blocks (headings, tables, legends)
    files: Callable[[Report], dict[str, pd.DataFrame]] = _no_files  # file name -> frame written as CSV
    figures: Callable[[Report, Styles], list[FigureJob]] = _nothing
