"""The command line as a user meets it: tables, clear one-line errors, non-zero exits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.run.data import DEBIAN_FASHION_MNIST
from tests.formats import write_cifar

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("datasets", "configs", "run", "report"):
        assert command in result.output


def test_help_imports_no_torch():
    """`noprop-bench --help` answers without importing torch (seconds idle, tens of seconds on a loaded machine);
    the same process then runs a lazy command, which does import it."""
    code = ("import sys; from bench.cli import main\n"
            "def call(*args):\n"
            "    sys.argv = ['noprop-bench', *args]\n"
            "    try:\n        main()\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
            "call('--help'); print('after help:', 'torch' in sys.modules)\n"
            "call('configs'); print('after configs:', 'torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "after help: False" in proc.stdout and "after configs: True" in proc.stdout
    assert "│ run " in proc.stdout and "Train and measure methods" in proc.stdout


def test_lazy_commands_are_listed_with_their_own_help():
    """The command list reads a lazy command's docstring from source: the very help the loaded command has."""
    import inspect

    from bench.cli import lazy

    for name in lazy.LAZY:
        listed = lazy.docstring(name)
        assert listed and listed == inspect.cleandoc(lazy.load(name).help or ""), name


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_help_shows_the_extras_to_install_whole(command):
    """Option help goes through Rich markup: an extra's brackets must survive it."""
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    for extra in ("noprop-bench[ray]", "noprop-bench[slurm]", "noprop-bench[tensorboard]", "'[mlflow]'"):
        assert extra in result.output, extra


def test_datasets_shows_where_files_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "400")
    write_cifar(tmp_path / "data", "cifar10", 3, as_tar=True)
    result = runner.invoke(app, ["datasets", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert "cifar-10-python.tar.gz" in lines["cifar10"]
    assert "not found here" in lines["cifar100"] and f"cifar-100-python.tar.gz in {tmp_path / 'data'}/" in result.output
    if DEBIAN_FASHION_MNIST.is_dir():
        assert str(DEBIAN_FASHION_MNIST) in lines["fashion-mnist"]


def test_missing_data_is_one_line_naming_the_folder_before_anything_is_built(tmp_path, monkeypatch):
    """No CIFAR-10 files: the sweep stops before it makes a results folder or starts a run's process, naming the
    folder to put the files in (not a placeholder)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NOPROP_BENCH_DATA", raising=False)
    empty, out = tmp_path / "data", tmp_path / "out"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--dataset", "cifar10", "--download", "false",
                           "--data-dir", str(empty), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "1000"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cifar10: not found in" in lines[0] and f"cifar-10-python.tar.gz in {empty}/" in lines[0]
    assert not out.exists()  # nothing built: no results folder, no config written, no run started


def test_configs_lists_bundled_configs(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["configs"])
    assert result.exit_code == 0
    for name in ("mnist", "fashion-mnist", "cifar10", "cifar100", "smoke"):
        assert f"│ {name} " in result.output


def test_bad_input_is_one_line_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
