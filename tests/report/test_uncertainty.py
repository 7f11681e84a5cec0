"""Intervals over seeds and whether a difference is within noise (``bench.report.uncertainty``, the ``intervals``
view, and ``compare``'s change row), checked against hand computations: t quantiles from a printed table, means
and sds worked out by hand, and G*Power's published sample sizes for a paired t test."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats

from bench.report import compare as gate
from bench.report import tables, uncertainty
from bench.report.build import build
from bench.report.compare_tables import compare_markdown
from bench.report.load import load
from bench.results import read_runs
from tests.report.helpers import run_row, write_folder

T_975 = {2: 4.303, 3: 3.182}  # Student's t, 0.975 quantile, from a printed table (3 decimals)


def test_mean_interval_is_the_t_interval_of_a_printed_table() -> None:
    found = uncertainty.mean_interval([78.0, 80.0, 82.0])  # mean 80, sd 2, n 3
    half = T_975[2] * 2.0 / math.sqrt(3)
    assert found.estimate == 80.0 and found.n == 3
    assert found.low == pytest.approx(80.0 - half, abs=1e-3) and found.high == pytest.approx(80.0 + half, abs=1e-3)
    assert found.holds_zero is False


def test_one_value_has_no_interval_and_equal_values_a_point() -> None:
    assert not uncertainty.mean_interval([70.0]).known
    assert (uncertainty.mean_interval([5.0, 5.0]).low, uncertainty.mean_interval([5.0, 5.0]).high) == (5.0, 5.0)


def test_paired_difference_excluding_zero_is_resolved() -> None:
    """Differences 1, 2.5, 0.5, 2 by seed: mean 1.5, sd sqrt(2.5 / 3); t(0.975, 3) = 3.182."""
    a = {0: 81.0, 1: 82.5, 2: 80.5, 3: 82.0}
    b = {0: 80.0, 1: 80.0, 2: 80.0, 3: 80.0, 9: 10.0}  # seed 9 has no partner: left out
    found = uncertainty.difference(a, b)
    sd = math.sqrt(2.5 / 3)
    half = T_975[3] * sd / 2.0
    assert found is not None and found.paired and found.seeds == (0, 1, 2, 3)
    assert found.interval.estimate == 1.5 and found.sd == pytest.approx(sd, rel=1e-12)
    assert found.interval.low == pytest.approx(1.5 - half, abs=1e-3)
    assert found.interval.high == pytest.approx(1.5 + half, abs=1e-3)
    assert found.interval.low > 0 and not found.within_noise


def test_paired_difference_holding_zero_is_within_noise() -> None:
    """Differences 1, -0.5, 2: mean 5/6, sd sqrt(19/12); t(0.975, 2) = 4.303."""
    found = uncertainty.difference({0: 81.0, 1: 79.5, 2: 82.0}, {0: 80.0, 1: 80.0, 2: 80.0})
    sd = math.sqrt(19 / 12)
    half = T_975[2] * sd / math.sqrt(3)
    assert found is not None and found.within_noise
    assert found.interval.estimate == pytest.approx(5 / 6, rel=1e-12) and found.sd == pytest.approx(sd, rel=1e-12)
    assert (found.interval.low, found.interval.high) == pytest.approx((5 / 6 - half, 5 / 6 + half), abs=1e-3)
    # a paired t test's n for 80 % power is close to the normal approximation ((z_.975 + z_.8) / d)^2 + z_.975^2 / 2
    d = (5 / 6) / sd
    approximate = ((1.95996 + 0.84162) / d) ** 2 + 1.95996**2 / 2
    assert abs(found.seeds_needed - approximate) <= 1.0


@pytest.mark.parametrize("effect, paired, n", [(0.5, True, 34), (0.8, True, 15), (1.0, True, 10),
                                               (0.5, False, 64), (0.8, False, 26)])
def test_seeds_needed_match_g_power(effect: float, paired: bool, n: int) -> None:
    """G*Power 3 (t tests, two-sided, alpha 0.05, power 0.80): matched pairs and two independent groups."""
    assert uncertainty.seeds_needed(effect, 1.0, paired) == n


def test_no_difference_needs_no_seeds_and_no_spread_needs_two() -> None:
    assert uncertainty.seeds_needed(0.0, 1.0) is None and uncertainty.seeds_text(None).startswith("never")
    assert uncertainty.seeds_needed(0.3, 0.0) == 2
    assert uncertainty.seeds_needed(0.01, 1.0) == uncertainty.MAX_SEEDS + 1
    assert uncertainty.seeds_text(uncertainty.MAX_SEEDS + 1) == f"> {uncertainty.MAX_SEEDS}"


def test_unpaired_seeds_fall_back_to_welchs_interval() -> None:
    a, b = {0: 1.0, 1: 2.0, 2: 4.0}, {5: 3.0, 6: 5.0, 7: 9.0, 8: 10.0}
    found = uncertainty.difference(a, b)
    reference = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).confidence_interval(0.95)
    assert found is not None and not found.paired
    assert (found.interval.low, found.interval.high) == pytest.approx((reference.low, reference.high), rel=1e-12)
    assert uncertainty.difference({0: 1.0}, {0: 2.0}) is None  # one seed: no interval at all


# ------------------------------------------------------------------------------------------- in the report


def _rows() -> list[dict]:
    """CIFAR-10: NoProp-DT 1.5 points above backprop, seeds agreeing (resolved); MNIST: 5/6 of a point, seeds
    disagreeing (within noise)."""
    rows = []
    for seed, (high, low) in enumerate([(81.0, 81.0), (82.5, 79.5), (80.5, 82.0), (82.0, None)]):
        rows.append(run_row(f"c-np{seed}", "cifar10", "noprop-dt", seed, high, 1.0))
        rows.append(run_row(f"c-bp{seed}", "cifar10", "backprop", seed, 80.0, 1.0))
        if low is not None:
            rows.append(run_row(f"m-np{seed}", "mnist", "noprop-dt", seed, low, 1.0))
            rows.append(run_row(f"m-bp{seed}", "mnist", "backprop", seed, 80.0, 1.0))
    return rows


def test_report_gives_each_method_its_interval_and_its_difference_to_the_baseline(tmp_path: Path) -> None:
    report = build(load([write_folder(tmp_path / "res", _rows())]))
    table = report.data["intervals"].set_index(["dataset", "method"])
    cifar, mnist = table.loc[("cifar10", "noprop-dt")], table.loc[("mnist", "noprop-dt")]
    assert (cifar["baseline"], cifar["pairing"], cifar["n_paired"], cifar["within_noise"]) == (
        "backprop", "paired", 4, False)
    half = T_975[3] * math.sqrt(2.5 / 3) / 2.0
    assert (cifar["diff_pct_low"], cifar["diff_pct_high"]) == pytest.approx((1.5 - half, 1.5 + half), abs=1e-3)
    assert mnist["within_noise"] and mnist["diff_pct"] == pytest.approx(5 / 6, rel=1e-12)
    backprop = table.loc[("cifar10", "backprop")]  # its own mean's interval: 4 equal values, a point
    assert (backprop["test_acc_pct_low"], backprop["test_acc_pct_high"], backprop["pairing"]) == (80.0, 80.0, "")
    tables.write_tables(report, tmp_path / "out")
    text = (tmp_path / "out" / "summary.md").read_text()
    # by hand: 1.5 ± 3.182 x sqrt(2.5 / 3) / 2 = [0.05, 2.95]; 5/6 ± 4.303 x sqrt(19/12) / sqrt(3) = [-2.29, 3.96]
    assert "| cifar10 | noprop-dt | one-hot | 4 | 81.50 [80.0, 83.0] | backprop | +1.50 [+0.05, +2.95] | 4 seeds | " \
           "resolved |" in text
    assert "| mnist | noprop-dt | one-hot | 3 | 80.83 [77.7, 84.0] | backprop | +0.83 [-2.29, +3.96] | 3 seeds | " \
           "within noise |" in text
    assert "Student's t interval at 95%" in text


def test_compare_marks_a_change_within_noise_and_one_beyond_it(tmp_path: Path) -> None:
    base = [run_row(f"b{s}", "cifar10", "noprop-dt", s, 80.0, 1.0) for s in range(3)]
    base += [run_row(f"c{s}", "cifar10", "backprop", s, 80.0, 1.0) for s in range(3)]
    cand = [run_row(f"b{s}x", "cifar10", "noprop-dt", s, acc, 1.0) for s, acc in enumerate([81.0, 79.5, 82.0])]
    cand += [run_row(f"c{s}x", "cifar10", "backprop", s, acc, 1.0) for s, acc in enumerate([78.0, 78.5, 77.5])]
    result = gate.compare(read_runs(write_folder(tmp_path / "b", base)), read_runs(write_folder(tmp_path / "c", cand)))
    rows = result.table.set_index("method")
    half = T_975[2] * math.sqrt(19 / 12) / math.sqrt(3)
    assert rows.loc["noprop-dt", "acc_within_noise"] and rows.loc["noprop-dt", "acc_pairing"] == "paired, 3 seeds"
    assert rows.loc["noprop-dt", ["acc_change_low", "acc_change_high"]].tolist() == pytest.approx(
        [5 / 6 - half, 5 / 6 + half], abs=1e-3)
    half = T_975[2] * 0.5 / math.sqrt(3)  # backprop: -2, -1.5, -2.5, sd 0.5
    assert not rows.loc["backprop", "acc_within_noise"]
    assert rows.loc["backprop", ["acc_change_low", "acc_change_high"]].tolist() == pytest.approx(
        [-2.0 - half, -2.0 + half], abs=1e-3)
    md = compare_markdown(result)  # by hand: 5/6 ± 4.303 x sqrt(19/12) / sqrt(3); -2 ± 4.303 x 0.5 / sqrt(3)
    assert "| test acc Δ, 95 % CI | paired, 3 seeds | - | [-2.29, +3.96] |" in md
    assert "| test acc Δ, 95 % CI | paired, 3 seeds | - | [-3.24, -0.76] |" in md
    assert md.count("| within noise |") == 1 and md.count("| resolved |") == 1
