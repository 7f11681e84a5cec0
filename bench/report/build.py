"""The whole report from loaded results: the numbers over seeds (``bench.report.aggregate``), then each view's own
data (``bench.report.views``), computed once here so the tables and figures only read."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bench.report.aggregate import Report, over_seeds
from bench.report.load import Loaded
from bench.report.views import VIEWS
from bench.report.views.base import View
from bench.report.views.collapse import DEFAULT_MARGIN


def build(loaded: Loaded, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None,
          targets: Sequence[float] = (), baseline: str | None = None,
          views: Sequence[View] = VIEWS, collapse_margin: float = DEFAULT_MARGIN) -> Report:
    """Filter and aggregate (``aggregate.over_seeds``), then every view's data under ``report.data[view.name]``;
    ``targets``: accuracies (%) whose time to reach is tabulated (none: chosen from the data); ``baseline``: the
    method every other one is measured against, instead of the baseline each declares; ``collapse_margin``: points a
    final test accuracy may lie below its best validation epoch's before the method is named. Pure: reads nothing,
    writes nothing."""
    report = dataclasses.replace(over_seeds(loaded, datasets, methods, baseline), targets=tuple(targets),
                                 collapse_margin=collapse_margin)
    for view in views:
        if view.data is not None:
            report.data[view.name] = view.data(report)
    return report
