"""Contract checks of recorded Mattermost REST exchanges against the official OpenAPI file.

The sandbox records every REST request/response pair as an ``Exchange``; the harness validates
them with openapi-core against ``../shared/mattermost-api/openapi-v4.yaml`` (relative to the repo
root), after correcting the file's known errors (``ERRATA``) and tightening the object schemas
whose complete wire shape ``protocol.md`` §5.1 gives (``STRICT_SCHEMAS``). On top of the OpenAPI
checks, a few wire facts from protocol.md §0 that the file cannot express are checked
(``WIRE_RULES``).

By concern: ``spec.py`` (loading the file, patch helpers), ``errata.py`` (its errors and the
strictness), ``adapters.py`` (exchanges as openapi-core requests/responses), ``checker.py``
(routes, validation, wire rules). This module is the public entry point::

    checker = ContractChecker()                 # or the session fixture ``openapi_contract``
    problems = checker.validate_exchange(ex)    # list[str], empty when the exchange conforms
    checker.assert_exchanges_valid(exchanges)   # AssertionError listing every problem
    validate_exchange(ex); assert_exchanges_valid(exchanges)   # module-level, shared checker
"""

from tests.contract.adapters import to_openapi_request, to_openapi_response
from tests.contract.checker import (
    WIRE_RULES,
    ContractChecker,
    RouteIndex,
    assert_exchanges_valid,
    build_openapi,
    default_checker,
    validate_exchange,
)
from tests.contract.errata import ERRATA, STRICT_SCHEMAS, Erratum, patched_spec
from tests.contract.spec import SPEC_PATH, load_spec

__all__ = [
    "ERRATA", "SPEC_PATH", "STRICT_SCHEMAS", "WIRE_RULES", "ContractChecker", "Erratum", "RouteIndex",
    "assert_exchanges_valid", "build_openapi", "default_checker", "load_spec", "patched_spec",
    "to_openapi_request", "to_openapi_response", "validate_exchange",
]
