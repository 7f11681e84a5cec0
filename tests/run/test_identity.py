"""bench.run.identity: run keys, device resolution, and the identity columns every row of a run shares."""

from __future__ import annotations

import json

import pytest
import torch

from bench.run import config as cfg
from bench.run import identity
from bench.run.identity import RunError


def smoke() -> cfg.RunConfig:
    return cfg.resolve(config="smoke")


def test_a_run_key_names_dataset_method_hash_switches_and_seed() -> None:
    c = smoke()
    switches = "-".join(str(c.switches()[k]).lower() for k in cfg.SWITCH_KEYS)
    expected = f"{c.dataset}-noprop-dt-{c.model_hash('noprop-dt')}-{switches}-seed3"
    assert identity.key_for(c, "noprop-dt", 3) == expected
    assert identity.run_key(c.dataset, "noprop-dt", c.model_hash("noprop-dt"), c.switches(), 3) == expected


def test_devices_resolve_and_an_unusable_one_is_one_clear_error() -> None:
    assert identity.resolve_device("cpu") == torch.device("cpu")
    assert identity.resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(RunError, match="CUDA is not available here; use --device cpu or auto"):
            identity.resolve_device("cuda")


def test_a_crashed_row_says_which_run_it_is_as_a_measured_row_does() -> None:
    c = smoke()
    measured = identity.measured_row(c, "backprop", 1, run_id=identity.new_run_id(), measured_in="subprocess",
                                     device=torch.device("cpu"))
    crashed = identity.crashed_row(c, "backprop", 1, status="oom", reason="killed", measured_in="subprocess")
    shared = identity.identity_columns(c, "backprop", 1, run_id="x", measured_in="subprocess").keys() - {"run_id"}
    assert {k: crashed[k] for k in shared} == {k: measured[k] for k in shared}
    assert crashed["run_id"].endswith("-crash1") and crashed["run_id"] != measured["run_id"]
    assert (crashed["status"], crashed["reason"]) == ("oom", "killed") and crashed["timestamp"]
    # only the process that measured a run knows its environment; the crashed row records no config either
    assert {"config_json", "hostname", "torch_version"} <= measured.keys()
    assert not {"config_json", "hostname"} & crashed.keys()
    assert cfg.RunConfig(**json.loads(measured["config_json"])).model_hash() == c.model_hash()
