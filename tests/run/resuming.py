"""A run stopped in its second epoch (as Ctrl-C stops it), then resumed from its checkpoint: what the resume tests
compare with a run that went straight through."""

from __future__ import annotations

import pytest

from bench.run.config import RunConfig
from bench.run.recipe import Run


def cut_in_epoch_2_then_resume(monkeypatch: pytest.MonkeyPatch, config: RunConfig, method: str) -> dict:
    """Run ``method`` (seed 0) under ``config`` until epoch 2 raises KeyboardInterrupt, then resume it; its row."""
    epoch = Run.epoch

    def cut_in_epoch_2(self: Run, n: int) -> tuple[float, float | None]:
        if n == 2:
            raise KeyboardInterrupt
        return epoch(self, n)

    monkeypatch.setattr(Run, "epoch", cut_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        Run(config, method, 0).execute()
    monkeypatch.setattr(Run, "epoch", epoch)
    return Run(config, method, 0, resume=True).execute()
