"""Device hygiene, checked on the CPU: the source keeps the rules whose breach only a GPU would show.

A CPU has no second device for a host tensor to meet, so a tensor or random generator made on the host inside a run
on CUDA passes every CPU test and fails on the first GPU (the first CUDA run of the suite failed 136 tests this way).
What the CPU can check is the cause, in the source:

- product code (``bench``, ``noprop``, ``baselines``, the example plug-in) names the device of every tensor it makes
  from nothing: ``torch.zeros(..., device=...)``, ``device="cpu"`` for host-side bookkeeping. A factory without one
  follows whatever default device the caller set, and lands on CUDA under ``torch.set_default_device``;
- every ``torch.Generator`` names its device, in tests too: a CPU generator handed to a CUDA op is an error;
- a random factory drawing from a given generator names its device, in tests too, so the tensor and the generator
  are on the device the author meant whatever the suite's default device is.

What only a GPU shows (kernels that round differently, TF32, host syncs, cuDNN's choices) is left to
``pytest --device cuda`` on one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("bench", "noprop", "baselines", "docs/plugin-example")
FACTORIES = frozenset({"zeros", "ones", "empty", "full", "eye", "arange", "linspace", "logspace", "tensor",
                       "as_tensor", "randn", "rand", "randint", "randperm"})
RANDOM = frozenset({"randn", "rand", "randint", "randperm", "normal"})


def python_files(*folders: str) -> list[Path]:
    return sorted(f for folder in folders for f in (ROOT / folder).rglob("*.py") if ".venv" not in f.parts)


def torch_calls(path: Path) -> list[tuple[int, str, ast.Call]]:
    """Every call of ``torch.NAME(...)`` in the file: (line, NAME, call)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
            found.append((node.lineno, node.func.attr, node))
    return found


def names_device(call: ast.Call, positional: bool = False) -> bool:
    """The call passes ``device=`` (or, for ``torch.Generator``, a first positional argument)."""
    return any(k.arg == "device" for k in call.keywords) or (positional and bool(call.args))


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def breaches(folders: tuple[str, ...], product: bool) -> list[str]:
    found = []
    for path in python_files(*folders):
        for line, name, call in torch_calls(path):
            seeded = any(k.arg == "generator" for k in call.keywords)
            if name == "Generator" and not names_device(call, positional=True):
                found.append(f"{where(path, line)}: torch.Generator() without a device")
            elif name in FACTORIES and product and not names_device(call):
                found.append(f"{where(path, line)}: torch.{name}(...) without device= (follows the caller's default "
                             "device)")
            elif name in RANDOM and seeded and not names_device(call):
                found.append(f"{where(path, line)}: torch.{name}(..., generator=) without device=")
    return found


def test_product_code_names_the_device_of_every_tensor_and_generator_it_makes() -> None:
    assert breaches(PRODUCT, product=True) == []


def test_tests_name_the_device_of_every_generator_and_of_what_they_draw_from_one() -> None:
    assert breaches(("tests",), product=False) == []


@pytest.mark.parametrize(("source", "caught"), [
    ("import torch\nx = torch.zeros(3)\n", True),
    ("import torch\nx = torch.zeros(3, device='cpu')\n", False),
    ("import torch\ng = torch.Generator()\n", True),
    ("import torch\ng = torch.Generator(x.device)\n", False),
    ("import torch\nx = torch.randn(3, generator=g)\n", True),
    ("import torch\nx = torch.randn_like(y)\n", False),
])
def test_the_rules_catch_what_they_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                        caught: bool) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(source)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert bool(breaches(("pkg",), product=True)) == caught
