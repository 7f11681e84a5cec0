"""How numbers read wherever a person sees them (the run summary, ``report``, ``compare``), so that a missing value,
a megabyte and a mean ± sd look the same in every table.

No pandas or numpy import: the run summary table is drawn in a run's own process, which should not pay for them.
"""

from __future__ import annotations

from typing import Any

MISSING = "-"  # a value that was not measured, or an sd of one seed
BYTES_PER_MB = 2**20  # MB means MiB throughout, as torch and nvidia-smi count


def is_missing(value: Any) -> bool:
    """None, NaN and pandas' NA (whose comparisons have no truth value) are missing."""
    if value is None:
        return True
    try:
        return bool(value != value)  # only NaN differs from itself
    except TypeError:
        return True


def fmt(value: Any, spec: str = ".2f", missing: str = MISSING) -> str:
    """A number for a table; a missing one reads ``missing``; a value that does not take ``spec`` reads as text."""
    if is_missing(value):
        return missing
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def signed(value: Any, spec: str = "+.2f") -> str:
    """A difference, with its sign: ``+0.75``."""
    return fmt(value, spec)


def mb(n_bytes: Any, spec: str = ".1f") -> str:
    """Bytes as MB (2**20 bytes)."""
    return MISSING if is_missing(n_bytes) else format(n_bytes / BYTES_PER_MB, spec)


def times(ratio: Any) -> str:
    """A ratio as a factor: ``x1.30``."""
    return MISSING if is_missing(ratio) else f"x{ratio:.2f}"


def mean_sd(mean: Any, sd: Any, spec: str = ".2f", missing_sd: str | None = MISSING) -> str:
    """``mean ± sd``; a missing sd reads ``missing_sd``, or is left out when that is None."""
    if is_missing(sd) and missing_sd is None:
        return fmt(mean, spec)
    return f"{fmt(mean, spec)} ± {fmt(sd, spec, missing_sd or MISSING)}"


def setting_part(key: str, value: Any) -> str:
    """One key of a setting's label, as every label writes it (the report's groups, a sweep's points, tracked runs):
    ``lr=0.003``, the embedding by its value alone (``learned``)."""
    text = value_text(value)
    return text if key == "embedding" else f"{key}={text}"


def value_text(value: Any) -> str:
    """A config or switch value as a config file or option gives it: ``none`` (also for an empty CSV cell),
    ``true``, ``0.001``, lists comma-joined."""
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(value_text, value))
    return str(value)
