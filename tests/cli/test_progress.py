"""bench.cli.progress: a run's bar says what the run is doing (its ``phase`` events) before its first epoch row."""

from __future__ import annotations

import io

from rich.console import Console

from bench.cli.progress import RichDisplay
from bench.run.recipe import phase


def shown(display: RichDisplay) -> str:
    """The bars as the console would draw them now."""
    display.console.print(display.progress.get_renderable())
    return display.console.export_text()


def test_a_bar_shows_the_phase_of_a_run_that_has_not_finished_an_epoch() -> None:
    display = RichDisplay(Console(record=True, width=160, file=io.StringIO()))
    display({"event": "start", "key": "k", "method": "noprop-dt", "seed": 0, "epochs": 2, "epoch": 0})
    assert "starting" in shown(display)
    for what in ("loading data", "starting 3 block workers", "epoch 1"):
        display(phase("k", what))
        assert what in shown(display) and "0/2" in shown(display)
    display({"event": "epoch", "key": "k", "epoch": 1, "loss": 0.5, "test_acc": 71.0})
    display(phase("k", "epoch 2"))
    assert "1/2 epoch 2 loss 0.5000 test 71.00%" in shown(display)
    display(phase("other run", "loading data"))  # an event for a run without a bar is ignored
    display({"event": "end", "key": "k", "row": {"status": "failed"}})
    assert "1/2 failed" in shown(display)
