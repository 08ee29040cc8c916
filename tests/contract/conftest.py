"""Fixtures of the contract harness."""

import pytest

from tests.contract.checker import ContractChecker, default_checker


@pytest.fixture(scope="session")
def openapi_contract() -> ContractChecker:
    """The process-wide checker: spec loaded once, all errata, strictness and wire rules."""
    return default_checker()
