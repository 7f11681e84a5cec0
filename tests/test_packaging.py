"""The package as a wheel holds what a user needs without the checkout: the bundled configs, and a declared
dependency for every library the code imports (``.ci/installed`` then installs the wheel into a fresh venv and runs
it; this is the quick check)."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "noprop", "baselines")
# imported only where an older library lacks what a newer one has: Typer < 0.29 raises click's errors and depends on
# click itself, so an install that reaches this import has it
NOT_DECLARED = {"click": "bench/cli/entry.py, with Typer < 0.29 only"}


def _declared() -> set[str]:
    """Every distribution pyproject.toml asks for, in its dependencies or an extra, normalised."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values()
                                                for r in extra)]
    return {Requirement(r).name.lower().replace("_", "-") for r in requirements}


def _imported() -> dict[str, str]:
    """Top-level modules the packages import (not the standard library's, not their own), each with a file."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                         else [])
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_library_is_declared() -> None:
    declared, providers = _declared(), metadata.packages_distributions()
    missing = {}
    for module, where in _imported().items():
        distributions = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not distributions & declared and module not in NOT_DECLARED:
            missing[module] = where
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    assert {"matplotlib", "numpy"} <= declared


@pytest.mark.slow
def test_the_wheel_ships_the_configs_and_declares_matplotlib_3_7(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, cwd=tmp_path, timeout=300)
    [wheel] = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    configs = {n.removeprefix("bench/configs/") for n in names if n.startswith("bench/configs/")}
    assert {"smoke.yaml", "mnist.yaml", "fashion-mnist.yaml", "cifar10.yaml", "cifar100.yaml"} <= configs
    requires = [Requirement(line.split(":", 1)[1].strip()) for line in meta.splitlines()
                if line.startswith("Requires-Dist:")]
    matplotlib = next(r for r in requires if r.name == "matplotlib")
    assert matplotlib.specifier.contains("3.7") and not matplotlib.specifier.contains("3.6")
    assert any(r.name == "numpy" and not r.marker for r in requires)
