"""Reporting: load result folders, aggregate over seeds, render tables and figures, and the compare gate."""

from bench.report.aggregate import *  # noqa: F403
