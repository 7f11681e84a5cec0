"""Fixtures shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.helpers import known_runs, write_folder


@pytest.fixture
def known(tmp_path: Path) -> Path:
    """A results folder of ``known_runs``: exact values, two datasets, two runs that did not finish ok."""
    runs, epochs = known_runs()
    return write_folder(tmp_path / "results", runs, epochs)
