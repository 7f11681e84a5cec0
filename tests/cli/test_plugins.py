"""Plug-in methods through the real entry-point mechanism: a distribution's metadata on the path, read by
``importlib.metadata`` in a child process, as a user's installed package would be."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from tests.conftest import cli

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
