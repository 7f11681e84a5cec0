"""The contract holds for every registered method and catches each deliberately broken one, naming the breach."""

from __future__ import annotations

import pytest

from bench.contract import CHECKS, ContractError, check_method, run_check
from bench.run.config import REGISTRY
from tests.conftest import suite_device
from tests.contract.broken_methods import BROKEN


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("method", list(REGISTRY.methods))
def test_every_registered_method_keeps_the_contract(method: str, check: str) -> None:
    skipped = run_check(REGISTRY.spec(method), check, suite_device())
    if skipped:
        pytest.skip(skipped)


@pytest.mark.parametrize("check", BROKEN)
def test_a_broken_method_fails_the_check_for_its_breach_naming_it(check: str) -> None:
    spec = BROKEN[check]
    with pytest.raises(ContractError, match=f"breaks the contract's '{check}' check") as caught:
        run_check(spec, check, suite_device())
    assert caught.value.method == spec.name


def test_the_label_peeking_method_breaks_that_check_alone() -> None:
    """It is the CNN reference but for its peek, so every other check passes on it: the checks are specific."""
    with pytest.raises(ContractError) as caught:
        check_method(BROKEN["labels_never_reach_inference"], suite_device())
    assert caught.value.check == "labels_never_reach_inference"
    assert "permuting the test labels changed" in caught.value.detail


def test_an_unknown_check_is_named() -> None:
    with pytest.raises(KeyError, match="no contract check 'speed'"):
        run_check(REGISTRY.spec("cnn"), "speed")


def test_a_method_that_raises_inside_a_check_breaks_it_with_its_error_and_place_named() -> None:
    """Not a traceback: the breach, the error and where in the method's own code it was raised."""
    from torch import Tensor

    from baselines.cnn import CNNReference
    from noprop.core.spec import MethodSpec

    class Raising(CNNReference):
        def train_step(self, x: Tensor, y: Tensor, part: object = "all") -> Tensor:
            raise RuntimeError("shape mismatch in my layer")

    spec = MethodSpec(name="raising", factory=Raising, summary="raises in its step")
    with pytest.raises(ContractError, match=r"'seeded_repeatability' check: the method raised RuntimeError: "
                                            r"shape mismatch in my layer \(at .*test_checks.py:\d+\)"):
        run_check(spec, "seeded_repeatability", suite_device())
