"""How sure a number over seeds is: a confidence interval on a mean over seeds, one on a difference between two
methods (or two sides of ``compare``) paired by seed, whether that difference is within noise, and how many seeds
would resolve it.

- An interval is Student's t interval at ``LEVEL`` (95 %): ``mean ± t(1 - (1 - LEVEL) / 2, n - 1) · sd / sqrt(n)``,
  sd the sample sd (ddof = 1), the quantile from ``scipy.stats.t``. It needs two values; all values equal give the
  interval [mean, mean].
- A difference a - b is paired by seed where the two hold two or more seeds in common (the per-seed differences'
  t interval, over those seeds only: a seed shares its data order and initialisation, so pairing removes that
  spread); else, with two or more seeds on each side, Welch's unpaired t interval (Welch-Satterthwaite degrees of
  freedom). It is *within noise* when its interval holds 0.
- Seeds needed: the smallest n at which a two-sided t test at alpha = 1 - ``LEVEL`` detects the observed difference
  with probability ``POWER`` (80 %), the effect taken as observed (|mean difference| / sd of the per-seed
  differences for a paired test; for Welch's, / the two sides' root-mean-square sd, n per side): the power of a t
  test from the noncentral t distribution (``scipy.stats.nct``), the standard calculation (G*Power's, statsmodels').
  With few seeds the sd, and so n, is itself rough; no difference observed needs no seeds (None).

Pure: numbers in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # confidence level of every interval
POWER = 0.8  # the power at which a difference counts as resolvable
MAX_SEEDS = 1000  # seeds_needed searches up to this; beyond it reads "more than MAX_SEEDS"
NAME = f"Student's t interval at {LEVEL:.0%} (scipy.stats.t)"  # what the report and docs call it


@dataclass(frozen=True)
class Interval:
    """An estimate and its confidence interval (NaN bounds where it has fewer than two values)."""

    estimate: float
    low: float
    high: float
    n: int

    @property
    def known(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def holds_zero(self) -> bool:
        return self.known and self.low <= 0.0 <= self.high


def t_quantile(df: float, level: float = LEVEL) -> float:
    """The two-sided critical value of Student's t with ``df`` degrees of freedom at ``level``."""
    return float(stats.t.ppf(0.5 + level / 2, df))


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The mean of ``values`` and its t interval; NaN bounds for fewer than two values."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype="float64")
    if len(x) == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if len(x) < 2:
        return Interval(mean, math.nan, math.nan, 1)
    half = t_quantile(len(x) - 1, level) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return Interval(mean, mean - half, mean + half, len(x))


@dataclass(frozen=True)
class Difference:
    """a - b over seeds: its interval, how it was formed, the spread it was judged at and the seeds it needs."""

    interval: Interval
    paired: bool  # paired by seed, else Welch's unpaired interval
    seeds: tuple[float, ...]  # the seeds paired (paired), or every seed of either side (Welch)
    sd: float  # sd of the per-seed differences (paired), or the two sides' root-mean-square sd (Welch)
    seeds_needed: int | None  # for POWER at the observed difference and sd; None: no difference observed

    @property
    def within_noise(self) -> bool:
        return self.interval.holds_zero


def difference(a: Mapping[float, float], b: Mapping[float, float], level: float = LEVEL) -> Difference | None:
    """a - b, each a value per seed: paired by seed where two or more seeds are common, else Welch's interval
    where each side has two or more; None where neither is possible."""
    a = {s: v for s, v in a.items() if not math.isnan(v)}
    b = {s: v for s, v in b.items() if not math.isnan(v)}
    common = sorted(set(a) & set(b))
    if len(common) >= 2:
        diffs = [a[s] - b[s] for s in common]
        interval = mean_interval(diffs, level)
        sd = float(np.std(diffs, ddof=1))
        return Difference(interval, True, tuple(common), sd, seeds_needed(interval.estimate, sd, True, level))
    if len(a) >= 2 and len(b) >= 2:
        interval, sd = welch_interval(list(a.values()), list(b.values()), level)
        seeds = tuple(sorted(set(a) | set(b)))
        return Difference(interval, False, seeds, sd, seeds_needed(interval.estimate, sd, False, level))
    return None


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> tuple[Interval, float]:
    """Welch's t interval on mean(a) - mean(b), and the root-mean-square of the two sides' sd."""
    xa, xb = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    estimate = float(xa.mean() - xb.mean())
    rms_sd = math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Interval(estimate, estimate, estimate, len(xa) + len(xb)), rms_sd
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    half = t_quantile(df, level) * se
    return Interval(estimate, estimate - half, estimate + half, len(xa) + len(xb)), rms_sd


def power(n: np.ndarray, effect: float, paired: bool, level: float = LEVEL) -> np.ndarray:
    """The power of a two-sided t test at alpha = 1 - ``level`` with ``n`` seeds (per side when not paired) against
    a standardised difference ``effect``: P(|T| > t_crit) for T noncentral t."""
    n = np.asarray(n, dtype="float64")
    df = n - 1 if paired else 2 * n - 2
    shift = effect * np.sqrt(n if paired else n / 2)
    critical = stats.t.ppf(0.5 + level / 2, df)
    return stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift)


def seeds_needed(mean: float, sd: float, paired: bool = True, level: float = LEVEL, target: float = POWER
                 ) -> int | None:
    """The fewest seeds (two or more; per side for Welch) at which the t test detects ``mean`` with probability
    ``target`` when the sd is ``sd``; ``MAX_SEEDS + 1`` when more than ``MAX_SEEDS``; None when ``mean`` is 0."""
    if math.isnan(mean) or math.isnan(sd) or mean == 0.0:
        return None
    if sd == 0.0:
        return 2  # no spread: the smallest sample with an sd at all
    n = np.arange(2, MAX_SEEDS + 1)
    enough = np.flatnonzero(power(n, abs(mean) / sd, paired, level) >= target)
    return int(n[enough[0]]) if len(enough) else MAX_SEEDS + 1


def seeds_text(n: int | None) -> str:
    """How the seeds a difference needs read in a table."""
    if n is None:
        return "never (Δ = 0)"
    return f"> {MAX_SEEDS}" if n > MAX_SEEDS else str(n)
