"""Plug-in methods through the real entry-point mechanism: a distribution's metadata on the path, read by
``importlib.metadata`` in a child process, as a user's installed package would be."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from tests.conftest import TINY, cli

_PLUGINS = {
    "broken_plugin": "raise ImportError('a dependency is missing')\n",
    "wrong_plugin": "METHOD = 3\n",
    "clash_plugin": "from baselines.cnn import METHOD as CNN\nfrom dataclasses import replace\n"
                    "METHOD = replace(CNN, name='cnn')\n",
    "bad_spec_plugin": "from baselines.cnn import CNNReference\nfrom noprop.core.spec import MethodSpec\n"
                       "METHOD = MethodSpec(name='Bad Name', factory=CNNReference, summary='x')\n",
}


def installed(site: Path) -> dict[str, str]:
    """A distribution 'fake-plugins' 0.1 with four entry points, in ``site`` (put on PYTHONPATH)."""
    info = site / "fake_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    for module, source in _PLUGINS.items():
        (site / f"{module}.py").write_text(source)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [noprop_bench.methods]
        broken = broken_plugin:METHOD
        wrong = wrong_plugin:METHOD
        clash = clash_plugin:METHOD
        bad = bad_spec_plugin:METHOD
        """))
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_broken_plugins_are_one_line_each_and_the_others_work(tmp_path):
    env = installed(tmp_path / "site")
    proc = cli("methods", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "noprop-dt" in proc.stdout and "backprop" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 4, proc.stderr
    by_name = {w.split()[3]: w for w in warnings}
    assert "failed to import broken_plugin:METHOD (ImportError: a dependency is missing)" in by_name["broken"]
    assert "is a int, not a noprop.core.spec.MethodSpec" in by_name["wrong"]
    assert "its name or alias 'cnn' is already taken" in by_name["clash"]
    assert "declares itself wrongly" in by_name["bad"] and "'Bad Name'" in by_name["bad"]
    assert all("(from fake-plugins)" in w for w in warnings)


def test_asking_for_a_broken_plugin_is_one_line_and_exit_2(tmp_path):
    env = installed(tmp_path / "site")
    proc = cli("run", "--config", "smoke", "--methods", "broken", "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken (from fake-plugins) is an installed plug-in that could not be loaded" in \
        errors[0], proc.stderr
    assert not (tmp_path / "out" / "runs.csv").exists()


def docs_plugin_source() -> str:
    """The complete plug-in module that docs/plugins.md shows in its section 1, exactly as written there."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    section = text.split("## 1. The module", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_plugin_the_docs_show_installs_keeps_the_contract_and_trains(tmp_path, tiny_mnist):
    """docs/plugins.md is enough to write a working method: its own snippet, installed through an entry point as a
    user's package would be, passes `noprop-bench check` and trains to an ok row."""
    site = tmp_path / "site"
    info = site / "my_method_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "my_method.py").write_text(docs_plugin_source())
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-method-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[noprop_bench.methods]\nmy-method = my_method:METHOD\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    checked = cli("check", "my-method", env=env)
    assert checked.returncode == 0 and "my-method keeps the method contract" in checked.stdout, checked.stderr
    out = tmp_path / "out"
    ran = cli("run", *TINY, "--methods", "my-method", "--seeds", "0", "--epochs", "1", "--quiet",
              "--data-dir", str(tiny_mnist), "--out", str(out), env=env)
    assert ran.returncode == 0, ran.stderr
    row = (out / "runs.csv").read_text().splitlines()[1]
    assert ",ok," in row and "my-method-plugin" in row
