"""MethodSpec: how a method declares itself to the harness, once, in its own module.

A method's module ends with ``METHOD = MethodSpec(...)``: its registry name and aliases, its factory, its settings
dataclass (whose ``setting`` fields are its config keys), what it records in a run row beyond the common columns,
and the baseline it is matched to. The harness's config, ``--key`` options, hash, ``noprop-bench methods`` and
report read these declarations; nothing else lists methods or their keys. A method from another package declares
itself the same way and is found through the ``noprop_bench.methods`` entry-point group (docs/plugins.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from noprop.core.settings import CommonSettings, Key, declared_keys

ColumnKind = Literal["int", "float", "bool", "str"]
NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class MethodSpec:
    """One method's declaration.

    ``factory(settings, prototype_data=None, generator_seed=0)`` builds the model (a ``torch.nn.Module`` behind
    ``noprop.core.method.Method``) from an instance of ``settings``. ``columns``: the run-row columns its
    ``recorded_settings()`` returns (name -> kind); a column named ``departure`` holds, where not empty, how a run
    departs from the method as its paper defines it, and the report repeats it; one named ``training_only_params``
    (int) counts the parameters that train but take no part in inference (DGL's auxiliary heads), which the report's
    summary shows apart from ``params``. ``baseline``: the method it is
    matched to (same blocks, embedding, optimiser and budget), which the report pairs it with. ``epochs_key``: a
    key of its settings that, when set, replaces the run's ``epochs`` for this method. ``version``: bumped whenever
    the method's behaviour under an unchanged config changes (a default, an initialisation), so rows made before and
    after differ.
    ``counts_flops``: False for a method whose training torch's FLOP counter cannot see (its own kernels); its rows
    then leave the FLOP columns empty instead of recording a wrong count.
    ``capturable``: True for a method whose step the harness may capture as a CUDA graph and replay (``capture:
    cuda-graph``): its host-side bookkeeping is in ``before_step``, it offers ``optimizers()`` and
    ``random_streams()`` (``noprop.core.method.Capturable``), and its ``train_step`` neither reads the host nor
    synchronises (the contract checks that a replay equals an eager step). docs/plugins.md says what it takes.
    """

    name: str
    factory: Callable[..., Any]
    summary: str
    settings: type[CommonSettings] = CommonSettings
    aliases: tuple[str, ...] = ()
    baseline: str | None = None
    columns: Mapping[str, ColumnKind] = field(default_factory=dict)
    epochs_key: str | None = None
    version: int = 1
    counts_flops: bool = True
    capturable: bool = False

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(f"method {self.name!r} declares itself wrongly: {problems[0]}")

    def problems(self) -> list[str]:
        """What is wrong with this declaration (empty when nothing is)."""
        found = []
        for label in (self.name, *self.aliases):
            if not isinstance(label, str) or not NAME.match(label):
                found.append(f"name or alias {label!r} must be lower-case letters, digits and '-'")
        if not callable(self.factory):
            found.append("factory is not callable")
        if not (isinstance(self.settings, type) and issubclass(self.settings, CommonSettings)):
            found.append("settings must be a dataclass extending noprop.core.settings.CommonSettings")
        elif self.epochs_key is not None and self.epochs_key not in self.own_keys():
            found.append(f"epochs_key {self.epochs_key!r} is not one of its settings' keys")
        bad = [f"{k}: {v}" for k, v in dict(self.columns).items() if v not in ("int", "float", "bool", "str")]
        if bad:
            found.append(f"column kinds must be int, float, bool or str ({', '.join(bad)})")
        if not isinstance(self.version, int) or self.version < 1:
            found.append("version must be an int >= 1")
        return found

    def own_keys(self) -> dict[str, Key]:
        """The config keys this method adds to the common ones."""
        common = declared_keys(CommonSettings)
        return {k: v for k, v in declared_keys(self.settings).items() if k not in common}
