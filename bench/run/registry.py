"""The method registry: every method's declaration (``noprop.core.spec.MethodSpec``), ours and installed plug-ins'.

Built-in methods are the modules in ``BUILTIN_MODULES``, each ending with ``METHOD = MethodSpec(...)``. Plug-ins
come from other installed distributions through the ``noprop_bench.methods`` entry-point group (read with
``importlib.metadata``): each entry point names a ``MethodSpec``. A plug-in that fails to import, declares itself
wrongly or clashes with a name or key already taken is left out with one line saying why (``Registry.broken``);
every other method still works. ``bench.run.config`` loads it once per process (``config.REGISTRY``), with
the harness's own keys reserved.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
from collections.abc import Iterator
from dataclasses import dataclass, field

from noprop.core.settings import CommonSettings, Key, declared_keys
from noprop.core.spec import MethodSpec

BUILTIN_MODULES = ("noprop.dt.model", "baselines.backprop", "baselines.cnn", "noprop.continuous.ct",
                   "noprop.continuous.fm", "baselines.backprop_ckpt", "baselines.cnn_ckpt",
                   "noprop.rivals.diffusion_blocks", "noprop.rivals.dgl")
ENTRY_POINT_GROUP = "noprop_bench.methods"
BUILTIN = "built-in"


@dataclass(frozen=True)
class Registered:
    """A method's declaration and where it came from (``built-in`` or the distribution that installed it)."""

    spec: MethodSpec
    origin: str
    origin_version: str


@dataclass
class Registry:
    """Methods by name, their aliases, the keys they add to the common ones, and the plug-ins left out."""

    methods: dict[str, Registered] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    key_owners: dict[str, list[str]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # plug-in label -> why it is left out

    def canonical(self, name: str) -> str | None:
        """The registry name for a name or alias (None when unknown)."""
        name = self.aliases.get(name, name)
        return name if name in self.methods else None

    def spec(self, name: str) -> MethodSpec:
        return self.methods[self.canonical(name) or name].spec

    def find(self, name: str) -> Registered | None:
        """The registered method of a name or alias; None for a name registered nowhere (a test's stand-in built by
        a builder of its own)."""
        known = self.canonical(name)
        return self.methods[known] if known else None

    def __iter__(self) -> Iterator[Registered]:
        return iter(self.methods.values())

    def add(self, entry: Registered, reserved: frozenset[str], switches: frozenset[str]) -> str | None:
        """Register ``entry``; returns why it cannot be (a clash), registering nothing then. ``reserved``: key names
        a method may not declare; ``switches``: the switch keys the results schema has a column for."""
        spec = entry.spec
        taken = [n for n in (spec.name, *spec.aliases) if n in self.methods or n in self.aliases]
        if taken:
            return f"its name or alias {taken[0]!r} is already taken"
        own = spec.own_keys()
        for name, key in own.items():
            if name in reserved:
                return f"its key {name!r} is already a harness key"
            if key.switch and name not in switches:
                return f"its switch {name!r} has no column in the results schema (declare it as a key, not a switch)"
            if name in self.keys and self.keys[name] != key:
                return f"its key {name!r} is declared differently by {', '.join(self.key_owners[name])}"
        self.methods[spec.name] = entry
        self.aliases.update({a: spec.name for a in spec.aliases})
        for name, key in own.items():
            self.keys[name] = key
            self.key_owners.setdefault(name, []).append(spec.name)
        return None

    def baseline_of(self, name: str) -> str | None:
        """The baseline a method declares (None when it declares none or is not registered here)."""
        entry = self.find(name)
        return entry.spec.baseline if entry else None


def common_keys() -> dict[str, Key]:
    """The keys every method shares (``CommonSettings``)."""
    return declared_keys(CommonSettings)


def _builtin(module: str) -> Registered:
    spec = importlib.import_module(module).METHOD
    return Registered(spec, BUILTIN, _own_version())


def _own_version() -> str:
    try:
        return metadata.version("noprop-bench")
    except metadata.PackageNotFoundError:
        return "source"


def _plugin(ep: metadata.EntryPoint) -> Registered:
    """Load one entry point; raises ValueError with the reason it cannot be used."""
    try:
        spec = ep.load()
    except Exception as e:  # a plug-in's import may fail in any way; it must not take the others down
        raise ValueError(f"failed to import {ep.value} ({type(e).__name__}: {e})") from None
    if not isinstance(spec, MethodSpec):
        raise ValueError(f"{ep.value} is a {type(spec).__name__}, not a noprop.core.spec.MethodSpec")
    dist = ep.dist
    return Registered(spec, dist.name if dist else "unknown distribution", dist.version if dist else "")


def load(reserved: frozenset[str] = frozenset(), switches: frozenset[str] = frozenset()) -> Registry:
    """Built-ins, then plug-ins in name order (``Registry.add`` says what ``reserved`` and ``switches`` are)."""
    registry = Registry()
    for module in BUILTIN_MODULES:
        problem = registry.add(_builtin(module), reserved, switches)
        assert problem is None, f"built-in {module}: {problem}"
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        label = f"{ep.name} (from {ep.dist.name if ep.dist else 'an unknown distribution'})"
        try:
            entry = _plugin(ep)
        except ValueError as e:
            registry.broken[label] = str(e)
            continue
        problem = registry.add(entry, reserved, switches)
        if problem:
            registry.broken[label] = problem
    return registry
