"""Budgets (bench.run.budget): every method trains until it has spent the same GFLOP or seconds, stops at a step
boundary with less than one step's overshoot, and a resumed budgeted run ends as an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.results import read_runs
from bench.run import config as cfg
from bench.run.budget import Budget
from bench.run.loop import train_epoch
from bench.run.recipe import Run
from noprop.core.method import Pass
from tests.conftest import TINY, cli
from tests.run.resuming import cut_in_epoch_2_then_resume
from tests.run.test_loop import Scripted, three_batches

BATCH = 64  # TINY's


def test_a_gflop_budget_stops_at_the_step_that_spends_it() -> None:
    model = Scripted([Pass((1, 2))])  # two parts per image: a step on 2 images costs 2 x 10 / 2 GFLOP
    budget = Budget("gflop", 25.0, gflop_per_sample=10.0)
    train_epoch(model, three_batches, budget=budget)
    assert [e[1] for e in model.log if e[0] == "step"] == [1, 2, 1]  # 0, 10, 20 < 25 spent before each; then 30
    assert budget.spent == 30.0 and budget.images == 3.0 and budget.exhausted()


def test_a_spent_budget_makes_no_step_and_seconds_are_read_from_the_clock() -> None:
    model = Scripted([Pass((1,))])
    budget = Budget("seconds", 0.0)
    budget.start_epoch()
    train_epoch(model, three_batches, budget=budget)
    assert not [e for e in model.log if e[0] == "step"]
    budget.end_epoch(0.25)
    assert budget.spent == 0.25


@pytest.mark.parametrize(("overrides", "message"), [
    ({"budget_gflop": 1.0, "budget_seconds": 1.0}, "give one budget"),
    ({"budget_gflop": 1.0, "lr_decay": "cosine"}, "use lr_decay none with a budget"),
    ({"budget_seconds": 5.0, "block_workers": 2, "order": "interleaved", "methods": ["noprop"]},
     "a budget in seconds cannot stop block workers"),
])
def test_a_budget_that_cannot_be_kept_is_one_error(overrides: dict, message: str) -> None:
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.resolve(config="smoke", overrides=overrides)


def one_step_gflop(row: dict, parts_per_image: int) -> float:
    return BATCH * row["train_gflop_per_sample"] / parts_per_image


def test_every_method_of_a_sweep_spends_the_same_gflop_within_one_step(tiny_mnist: Path, tmp_path: Path) -> None:
    """NoProp-DT, backprop, NoProp-CT and DGL under one GFLOP budget: each stops once it has spent it, overshooting
    by less than its own step, after its own number of epochs."""
    proc = cli("run", *TINY, "--methods", "noprop,backprop,noprop-ct,dgl", "--seeds", "0", "--epochs", "40",
               "--budget-gflop", "3", "--quiet", "--data-dir", str(tiny_mnist), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = {r["method"]: r for _, r in read_runs(tmp_path).iterrows()}
    for method, parts in (("noprop-dt", 3), ("backprop", 1), ("noprop-ct", 1), ("dgl", 1)):
        r = rows[method]
        assert r["status"] == "ok" and r["budget_unit"] == "gflop" and r["budget"] == 3.0
        assert 3.0 <= r["budget_spent"] < 3.0 + one_step_gflop(r, parts), (method, r["budget_spent"])
        assert r["reason"].startswith("budget spent")
    assert rows["noprop-ct"]["epochs_done"] > rows["noprop-dt"]["epochs_done"]  # its epoch costs a third


def test_an_interrupted_budgeted_run_resumes_to_the_same_row(tiny_mnist: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def config(out: str) -> cfg.RunConfig:
        return cfg.RunConfig(dataset="mnist", data_dir=str(tiny_mnist), download=False, out=str(tmp_path / out),
                             epochs=20, batch_size=BATCH, eval_repeats=2, T=3, width=0.125, budget_gflop=4.0,
                             device="cpu")

    straight = Run(config("straight"), "noprop-dt", 0).execute()
    resumed = cut_in_epoch_2_then_resume(monkeypatch, config("cut"), "noprop-dt")
    assert straight["epochs_done"] >= 2
    for key in ("status", "reason", "epochs_done", "budget_spent", "test_acc", "train_acc"):
        assert resumed[key] == straight[key], key
    assert torch.equal(torch.tensor(read_runs(tmp_path / "cut")["test_acc"].tolist()),
                       torch.tensor([straight["test_acc"]]))
