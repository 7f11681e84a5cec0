"""The method contract: what every method, ours or a plug-in's, must keep for its numbers to be honest.

A plug-in author runs it from their own pytest (in the spirit of scikit-learn's ``check_estimator``)::

    import pytest
    from bench.contract import CHECKS, run_check
    from my_package.method import METHOD

    @pytest.mark.parametrize("check", CHECKS)
    def test_contract(check):
        skipped = run_check(METHOD, check)
        if skipped:
            pytest.skip(skipped)

or from the shell: ``noprop-bench check METHOD``, which also writes the outcome into the contract ledger
(``bench.contract.ledger``) that every run row reads. Each check trains the method briefly on a toy problem that
ships here (``bench.contract.toy``) and raises ``ContractError`` naming the breach.
"""

from bench.contract.checks import CHECKS, ContractError, check_method, contract_outcomes, run_check

__all__ = ["CHECKS", "ContractError", "check_method", "contract_outcomes", "run_check"]
