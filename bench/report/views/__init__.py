"""The report's views, one module each, and ``VIEWS``: the one list that the report's builder (each view's data),
the terminal tables, summary.md, the CSVs and the figures all iterate, in this order.

A view (``base.View``) is one thing the report shows, with its own data, tables, files and figures: ``accuracy``
and ``cost`` (the summary's two terminal tables, the accuracy and throughput figures), ``curves`` (accuracy per
epoch), ``memory`` (peak memory and saved activations), ``intervals`` (95 % intervals over seeds, and whether a
difference to the baseline is within noise), ``collapse`` (a final accuracy far below the best validation
epoch's), ``equal_cost`` (accuracy against training GFLOP and seconds, and at budgets common to the methods),
``pareto`` (accuracy against training time and saved activations, with each Pareto front), ``time_to_accuracy``,
``inference_steps`` (accuracy and time against ODE steps), and the per-method figures from run artifacts:
``embeddings``, ``confusion``, ``samples``. Adding a view: one module here with a ``VIEW``, and one line in
``VIEWS``.
"""

from __future__ import annotations

from bench.report.views import (
    accuracy,
    collapse,
    confusion,
    cost,
    curves,
    embeddings,
    equal_cost,
    inference_steps,
    intervals,
    memory,
    pareto,
    samples,
    time_to_accuracy,
)
from bench.report.views.base import View

VIEWS: tuple[View, ...] = (
    accuracy.VIEW,
    curves.VIEW,
    memory.VIEW,
    cost.VIEW,
    intervals.VIEW,
    collapse.VIEW,
    equal_cost.VIEW,
    pareto.VIEW,
    time_to_accuracy.VIEW,
    inference_steps.VIEW,
    embeddings.VIEW,
    confusion.VIEW,
    samples.VIEW,
)
