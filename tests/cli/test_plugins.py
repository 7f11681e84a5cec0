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


CHEAT = '''\
"""cheat: the CNN reference that loads the dataset itself while it is built (to answer the test by lookup)."""
import os

from baselines.cnn import CNNReference
from bench.run import data
from noprop.core.spec import MethodSpec


class Cheat(CNNReference):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.test_set = data.load("mnist", data_dir=os.environ["CHEAT_DATA"], allow_download=False)


METHOD = MethodSpec(name="cheat", factory=Cheat, summary="reads the dataset in its factory")
'''


def test_a_plugin_that_reads_the_dataset_itself_fails_check_and_its_rows_say_so(tmp_path, tiny_mnist):
    """The cheat of issue 35 (the harness's own loader called in the factory): `check` names the breach and writes
    it to the ledger; a run of it still trains, but its row says its contract failed and the report says so."""
    site = tmp_path / "site"
    info = site / "cheat_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "cheat.py").write_text(CHEAT)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cheat-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[noprop_bench.methods]\ncheat = cheat:METHOD\n")
    ledger = tmp_path / "contract.json"
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "CHEAT_DATA": str(tiny_mnist), "NOPROP_BENCH_CONTRACT_LEDGER": str(ledger)}
    out = tmp_path / "out"
    run = ("run", *TINY, "--methods", "cheat", "--seeds", "0", "--epochs", "1", "--quiet",
           "--data-dir", str(tiny_mnist), "--out", str(out))
    before = cli(*run, env=env)
    assert before.returncode == 0, before.stderr
    assert ",unchecked," in (out / "runs.csv").read_text().splitlines()[1]
    checked = cli("check", "cheat", env=env)
    errors = [line for line in checked.stderr.splitlines() if line.startswith("error:")]
    assert checked.returncode == 1 and len(errors) == 1, checked.stderr
    assert "'no_files_or_network' check: during its factory it opened" in errors[0] and "mnist" in errors[0]
    assert "Traceback" not in checked.stderr and ledger.is_file()
    after = cli(*run, "--out", str(tmp_path / "again"), env=env)
    assert after.returncode == 0 and ",failed: no_files_or_network," in (
        tmp_path / "again" / "runs.csv").read_text().splitlines()[1]
    report = cli("report", str(tmp_path / "again"), env=env)
    assert report.returncode == 0 and "NOT CHECKED" in report.stdout + report.stderr


def test_check_names_why_a_plugin_could_not_load(tmp_path):
    env = installed(tmp_path / "site")
    proc = cli("check", "broken", env=env)
    assert proc.returncode == 2 and "could not be loaded" in proc.stderr and "a dependency is missing" in proc.stderr
    assert "unknown method" not in proc.stderr
