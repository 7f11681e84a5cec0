"""Settings: what every method of a run shares (``CommonSettings``), how a method declares keys of its own
(``setting``), and the learning-rate schedule they describe.

A method's settings are a frozen dataclass that extends ``CommonSettings`` with its own keys, each declared once with
``setting(default, help, ...)``: its type (a ``Literal`` for choices), default, help, range and whether it enters the
config hash. The harness reads these declarations to build the config, the ``--key`` options, the hash and
``noprop-bench methods``; the dataclass checks its own values, so a method built outside the harness is checked the
same way. Every method of a run is built from the same common values, which is what keeps them matched.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

Hashed = Literal["always", "unless-default"]
MODEL, OPTIMISER = "Model", "Optimiser (the same for every method)"
SWITCH = "Execution switches (recorded per run)"
_BOUNDS = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
           "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}


def setting(default: Any, help: str, *, section: str = MODEL, hashed: Hashed = "unless-default",
            switch: bool = False, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None) -> Any:
    """Declare one config key of a settings dataclass.

    ``hashed``: "unless-default" (the rule for every new key, a plug-in's included) enters the config hash only when
    set to something else than its default, so results made before the key existed keep their hash;
    "always" is for the keys that were hashed from the first results on. ``switch``: an execution switch (how a run
    computes, not what it trains): never hashed, recorded as a results column of its own.
    """
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    meta = {"help": help, "section": SWITCH if switch else section, "hashed": hashed, "switch": switch,
            "bounds": bounds}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Key:
    """One declared key, as the harness reads it."""

    name: str
    annotation: Any
    default: Any
    help: str
    section: str
    hashed: Hashed
    switch: bool
    bounds: dict[str, float]

    @property
    def choices(self) -> tuple[Any, ...] | None:
        inner = _without_none(self.annotation)
        return typing.get_args(inner) if typing.get_origin(inner) is Literal else None

    @property
    def optional(self) -> bool:
        return type(None) in typing.get_args(self.annotation)

    def check(self, owner: str, value: Any) -> None:
        """Raise ValueError naming the key, the value and what is allowed."""
        if value is None and self.optional:
            return
        choices = self.choices
        if choices is not None and value not in choices:
            raise ValueError(f"{owner}.{self.name}={value!r} is invalid; allowed: {', '.join(map(str, choices))}")
        for kind, bound in self.bounds.items():
            sign, ok = _BOUNDS[kind]
            if not ok(value, bound):
                raise ValueError(f"{owner}.{self.name}={value!r} is invalid; allowed: {sign} {bound}")

    def described(self) -> str:
        """What is allowed, in words: choices or range (for ``noprop-bench methods``)."""
        if self.choices is not None:
            return "|".join(map(str, self.choices))
        kind = _without_none(self.annotation)
        text = " ".join([getattr(kind, "__name__", str(kind))] + [f"{_BOUNDS[k][0]} {b:g}"
                                                                  for k, b in self.bounds.items()])
        return text + (" or none" if self.optional else "")


def _without_none(annotation: Any) -> Any:
    """``X`` for ``X | None``; anything else unchanged."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1
    return args[0] if optional else annotation


def declared_keys(settings: type) -> dict[str, Key]:
    """The keys a settings dataclass declares with ``setting`` (inherited ones included), by name."""
    hints = typing.get_type_hints(settings)
    return {f.name: Key(f.name, hints[f.name], f.default, f.metadata["help"], f.metadata["section"],
                        f.metadata["hashed"], f.metadata["switch"], dict(f.metadata["bounds"]))
            for f in dataclasses.fields(settings) if "help" in f.metadata}


@dataclass(frozen=True)
class CommonSettings:
    """What every method of a run shares: the data's shape, the network's size and the optimiser.

    The first four fields come from the data and the run length, not from the config. Step counts (``warmup_steps``,
    ``total_steps``) count updates of ONE block: one mini-batch step. Every block of NoProp-DT and the whole backprop
    network receive the same number of updates per epoch (the mini-batches of one pass), so
    ``total_steps = epochs * batches_per_pass`` for both and every parameter follows the same lr trajectory as a
    function of its own updates. Subclasses add a method's own keys and check cross-key rules in ``check``.
    """

    in_channels: int
    image_size: int
    num_classes: int
    total_steps: int | None = None
    T: int = setting(10, "number of blocks (diffusion steps)", hashed="always", ge=1)
    embedding: Literal["one-hot", "learned", "prototype"] = setting("one-hot", "label embedding", hashed="always")
    embed_dim: int = setting(20, "dimension of a learned embedding", hashed="always", ge=1)
    width: float = setting(1.0, "channel and hidden width multiplier (1.0 = the paper's)", hashed="always", gt=0)
    dropout: float = setting(0.2, "dropout probability in the image paths", hashed="always", ge=0, lt=1)
    lr: float = setting(1e-3, "learning rate", section=OPTIMISER, hashed="always", gt=0)
    weight_decay: float = setting(1e-3, "weight decay", section=OPTIMISER, hashed="always", ge=0)
    grad_clip: float | None = setting(None, "max gradient norm (per block for block-wise methods); none = off",
                                      section=OPTIMISER, hashed="always", gt=0)
    warmup_steps: int = setting(0, "linear lr warm-up over this many optimiser steps", section=OPTIMISER,
                                hashed="always", ge=0)
    lr_decay: Literal["none", "cosine"] = setting("none", "cosine: decay the lr to 0 over the run",
                                                  section=OPTIMISER, hashed="always")

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name, bound in (("in_channels", 1), ("image_size", 4), ("num_classes", 2)):
            if getattr(self, name) < bound:
                raise ValueError(f"{owner}.{name}={getattr(self, name)!r} is invalid; allowed: >= {bound}")
        if self.total_steps is not None and self.total_steps < 1:
            raise ValueError(f"{owner}.total_steps={self.total_steps!r} is invalid; allowed: None or >= 1")
        for key in declared_keys(type(self)).values():
            key.check(owner, getattr(self, key.name))
        if self.lr_decay == "cosine" and self.total_steps is None:
            raise ValueError(f"{owner}.total_steps=None is invalid; allowed: an int >= 1 when lr_decay='cosine'")
        self.check()

    def check(self) -> None:
        """Rules across a method's own keys (raise ValueError); none for the common ones."""

    def check_block_workers(self, n: int) -> None:
        """Whether these settings let the method split its blocks over ``n`` processes (``block_workers``; raise
        ValueError saying why not). A method trains in one process unless it says otherwise here."""
        if n > 1:
            raise ValueError(f"block_workers {n} splits a method's blocks over processes, which it cannot do; "
                             "run it in a sweep of its own without block_workers")


def values_of(settings: CommonSettings) -> Iterator[tuple[str, Any]]:
    """(key, value) of every declared key of ``settings``."""
    for name in declared_keys(type(settings)):
        yield name, getattr(settings, name)


def lr_factor(step: float, s: CommonSettings) -> float:
    """Multiplier on `s.lr` for the update that follows `step` completed updates (0-based).

    Linear warm-up over `warmup_steps`, then optionally cosine decay reaching 0 at `total_steps`. `step` may
    be fractional (the shared classifier of NoProp-DT advances by 1/T per block update).
    """
    factor = 1.0
    if s.warmup_steps > 0 and step < s.warmup_steps:
        factor = (step + 1) / s.warmup_steps
    if s.lr_decay == "cosine":
        assert s.total_steps is not None  # guaranteed by __post_init__
        span = max(1, s.total_steps - s.warmup_steps)
        progress = min(1.0, max(0.0, (step - s.warmup_steps) / span))
        factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def adamw(params: Iterable[Tensor], s: CommonSettings) -> torch.optim.AdamW:
    """AdamW with the settings' lr and weight decay (NoProp-DT, its backprop baseline, the CNN reference), fused into
    one kernel over all its tensors (the same update as the default per-tensor loop, to float rounding; measured
    1.07x faster per NoProp-DT block step at the paper's width on a 2-core CPU)."""
    return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay, fused=True)


def set_lr(opt: torch.optim.Optimizer, s: CommonSettings, step: float) -> None:
    """Set every group's lr for the update that follows `step` completed updates. An lr that is a tensor (the harness
    makes it one on the device for a captured step, ``bench.run.capture``) is written in place, so a graph that
    reads it sees the new value."""
    lr = s.lr * lr_factor(step, s)
    for group in opt.param_groups:
        if isinstance(group["lr"], Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
