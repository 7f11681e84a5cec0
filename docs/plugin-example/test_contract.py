"""The plug-in keeps noprop-bench's method contract: run with `pytest docs/plugin-example/test_contract.py`."""

import pytest
from random_features import METHOD

from bench.contract import CHECKS, run_check


@pytest.mark.parametrize("check", CHECKS)
def test_contract(check: str) -> None:
    skipped = run_check(METHOD, check)
    if skipped:
        pytest.skip(skipped)
