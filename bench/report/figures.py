"""Writing the report's figures: every view's figures (``bench.report.views.VIEWS``, in that order) into one folder,
each drawn in the one style of ``bench.report.plot`` with one colour, marker and hatch per method, the methods in
``bench.report.baselines.method_order`` (each method before its baseline).

A figure that has no data, or fails to draw, is skipped with a line in the report's warnings, so the rest of the
report is still written. What each figure shows is in its view's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.report import plot
from bench.report.aggregate import Report
from bench.report.baselines import method_order, registry_rank
from bench.report.views import VIEWS
from bench.report.views.base import Draw, View

FORMATS = ("png", "pdf", "svg")
DPI = 150


def styles_for(report: Report) -> plot.Styles:
    """The methods' styles: each method's colour, marker and hatch fixed by its place among all methods (the same in
    every report), their order that of ``method_order`` (each beside its baseline)."""
    order = method_order(report.runs)
    return plot.Styles(order, registry_rank(order))


def write_figures(report: Report, out: Path, fmt: str = "png", views: Sequence[View] = VIEWS) -> list[Path]:
    """Draw every figure the views offer for the report's data into ``out``; returns the files written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; use one of {', '.join(FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    if report.empty:
        return []
    styles = styles_for(report)
    written: list[Path] = []
    for view in views:
        for stem, draw in view.figures(report, styles):
            _save(draw, out / f"{stem}.{fmt}", fmt, report.warnings, written)
    return written


def _save(draw: Draw, path: Path, fmt: str, warnings: list[str], written: list[Path]) -> None:
    try:
        with plot.style():
            fig = draw()
            if fig is None:
                warnings.append(f"{path.name} not drawn: the runs hold no data for it")
                return
            metadata = {"Software": None} if fmt == "png" else {"Creator": None, "Date": None}
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
    except Exception as e:  # one broken figure must not cost the tables and the other figures
        warnings.append(f"{path.name} could not be drawn: {type(e).__name__}: {e}")
        return
    written.append(path)
