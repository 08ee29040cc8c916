"""The contract checker: recorded exchanges judged against the patched OpenAPI document.

``ContractChecker`` resolves each exchange's route (``RouteIndex``), validates the request (when
the server accepted it) and the response with openapi-core, and adds the wire facts of
protocol.md §0 that the file cannot express (``WIRE_RULES``). ``default_checker()`` is the
process-wide instance (all errata, strictness and wire rules).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    ServerNotFound,
)
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound

from tests.contract.adapters import ExchangeRequest, ExchangeResponse, path_of, to_openapi_request, to_openapi_response
from tests.contract.errata import ERRATA, Erratum, patched_spec
from tests.contract.spec import DEFAULT_BASE_URL, HTTP_METHODS, Spec


def build_openapi(
    base_url: str = DEFAULT_BASE_URL,
    errata: Sequence[Erratum] = ERRATA,
    *,
    strict: bool = True,
    check_document: bool = False,
) -> OpenAPI:
    """Build an openapi-core ``OpenAPI`` for ``base_url`` from the patched document.

    The document check (openapi-spec-validator, ~1 s) is off by default; the test suite runs it
    once on the fully patched document instead.
    """
    return openapi_from_spec(patched_spec(errata, strict=strict, base_url=base_url), check_document=check_document)


def openapi_from_spec(spec: Spec, *, check_document: bool = False) -> OpenAPI:
    """Wrap an already patched document (with the memoising path finder)."""
    config = Config(path_finder_cls=_MemoPathFinder)
    if not check_document:
        config.spec_validator_cls = None
    return OpenAPI.from_dict(spec, config=config)


class _MemoPathFinder(APICallPathFinder):
    """openapi-core's finder scans all ~340 path templates per call; remember each answer.

    The checker passes the resolved template as ``path_pattern``, so the lookup key is
    (method, template URL): a bounded set, one entry per operation used.
    """

    def __init__(self, spec: Any, base_url: str | None = None):
        super().__init__(spec, base_url=base_url)
        self._memo: dict[tuple[str, str], Any] = {}

    def find(self, method: str, name: str) -> Any:
        key = (method, name)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = super().find(method, name)
        return found


@dataclass(frozen=True)
class Route:
    """A request path resolved to its OpenAPI path template."""

    template: str
    variables: dict[str, str]


class RouteIndex:
    """Resolves concrete request paths to path templates with openapi-core's precedence.

    A literal template beats templated ones, fewer variables beat more, and the first candidate
    that has the method wins (so ``POST /users/ids`` is not ``/users/{user_id}``).
    """

    def __init__(self, paths: Mapping[str, Mapping[str, Any]]):
        self._by_length: dict[int, list[tuple[str, list[str], int, frozenset[str]]]] = {}
        for template, item in paths.items():
            segments = template.split("/")
            n_vars = sum(1 for seg in segments if seg.startswith("{"))
            methods = frozenset(m for m in item if m in HTTP_METHODS)
            self._by_length.setdefault(len(segments), []).append((template, segments, n_vars, methods))
        for candidates in self._by_length.values():
            candidates.sort(key=lambda c: c[2])  # stable: keeps document order among equals
        self.resolve = functools.lru_cache(maxsize=8192)(self._resolve)

    def _resolve(self, method: str, path: str) -> Route | str:
        """The Route, or "path" / "method" naming what is missing from the contract."""
        segments = path.split("/")
        path_known = False
        for template, t_segments, _, methods in self._by_length.get(len(segments), ()):
            variables = {}
            for t_seg, seg in zip(t_segments, segments):
                if t_seg.startswith("{"):
                    if not seg:
                        break
                    variables[t_seg[1:-1]] = seg
                elif t_seg != seg:
                    break
            else:
                path_known = True
                if method in methods:
                    return Route(template, variables)
        return "method" if path_known else "path"

# ---------------------------------------------------------------------------------------------
# Error formatting


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: BaseException) -> list[str]:
    """Turn an openapi-core exception chain into short, located messages."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        chain.append(node)
        node = node.__cause__ or node.__context__
    for node in chain:
        schema_errors = getattr(node, "schema_errors", None)
        if schema_errors:
            return [
                f"{_json_path(err.absolute_path)}: {_clip(err.message)}"
                for err in sorted(schema_errors, key=lambda e: list(map(str, e.absolute_path)))
            ]
    # No schema details: join the distinct messages of the chain (outermost first).
    messages: list[str] = []
    for node in chain:
        msg = _clip(str(node) or type(node).__name__)
        if msg not in messages:
            messages.append(msg)
    return [" <- ".join(messages)]


# ---------------------------------------------------------------------------------------------
# Wire rules from protocol.md §0 that OpenAPI cannot express


WIRE_RULES: list[tuple[str, str]] = [
    ("json-content-type-exact", "JSON API responses carry Content-Type: application/json exactly"),
    ("request-id-header", "every /api/v4 response carries X-Request-Id"),
    ("version-id-header", "every /api/v4 response carries X-Version-Id"),
    ("expires-on-get", "GET /api/v4 responses carry Expires: 0"),
    ("app-error-consistent", "an AppError's status_code equals the HTTP status and request_id the X-Request-Id"),
]


def _wire_problems(method: str, path: str, response: ExchangeResponse) -> list[str]:
    if not path.startswith("/api/v4/"):
        return []
    problems = []
    headers = response.headers
    raw_type = headers.get("Content-Type")
    if raw_type is not None and raw_type.split(";")[0].strip().lower() == "application/json" and raw_type != "application/json":
        problems.append(f"wire: Content-Type is {raw_type!r}, the real server sends exactly 'application/json'")
    request_id = headers.get("X-Request-Id")
    if not request_id:
        problems.append("wire: missing X-Request-Id header")
    if not headers.get("X-Version-Id"):
        problems.append("wire: missing X-Version-Id header")
    if method == "get" and headers.get("Expires") != "0":
        problems.append(f"wire: GET answered with Expires {headers.get('Expires')!r}, the real server sends '0'")
    if response.status_code >= 400 and response.data and raw_type and raw_type.startswith("application/json"):
        try:
            body = json.loads(response.data)
        except ValueError:
            body = None
        if isinstance(body, dict):
            if "status_code" in body and body["status_code"] != response.status_code:
                problems.append(
                    f"wire: AppError status_code {body['status_code']!r} != HTTP status {response.status_code}"
                )
            if request_id and "request_id" in body and body["request_id"] != request_id:
                problems.append("wire: AppError request_id differs from the X-Request-Id header")
    return problems


# ---------------------------------------------------------------------------------------------
# The checker


_ROUTE_ERRORS = (PathNotFound, OperationNotFound, ServerNotFound)


def _route_problem(request: ExchangeRequest, exc: Exception) -> str:
    what = "method not documented for this path" if isinstance(exc, OperationNotFound) else "path not in the contract"
    return f"unknown route: {request.method.upper()} {request.path} ({what})"


@dataclass
class ContractChecker:
    """Validates recorded exchanges against the patched Mattermost OpenAPI document."""

    base_url: str = DEFAULT_BASE_URL
    errata: Sequence[Erratum] = field(default_factory=lambda: list(ERRATA))
    strict: bool = True
    wire_rules: bool = True

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        spec = patched_spec(self.errata, strict=self.strict, base_url=self.base_url)
        self.openapi = openapi_from_spec(spec)
        self.routes = RouteIndex(spec["paths"])
        self._out_of_scope = [re.compile(e.out_of_scope) for e in self.errata if e.out_of_scope]

    def in_scope(self, exchange: Any) -> bool:
        """False for routes an erratum declares out of contract scope (WebSocket, sandbox control)."""
        path = path_of(exchange)
        return not any(rx.search(path) for rx in self._out_of_scope)

    def validate_exchange(self, exchange: Any) -> list[str]:
        """Return every contract problem of one exchange (empty list when it conforms).

        The request is judged only when the server accepted it (status < 400): a rejected request
        is allowed to be invalid, but its error response must still match the contract.
        """
        if not self.in_scope(exchange):
            return []
        request = to_openapi_request(exchange, self.base_url)
        route = self.routes.resolve(request.method, request.path)
        if not isinstance(route, Route):
            what = "method not documented for this path" if route == "method" else "path not in the contract"
            return [f"unknown route: {request.method.upper()} {request.path} ({what})"]
        request.path_pattern = route.template
        request.parameters.path = route.variables
        response = to_openapi_response(exchange)
        problems: list[str] = []
        if response.status_code < 400:
            try:
                self.openapi.validate_request(request)
            except _ROUTE_ERRORS as exc:
                return [_route_problem(request, exc)]
            except Exception as exc:
                problems += [f"request: {msg}" for msg in _describe(exc)]
        try:
            self.openapi.validate_response(request, response)
        except _ROUTE_ERRORS as exc:
            return [_route_problem(request, exc)]
        except ResponseNotFound as exc:
            problems.append(f"response: status {response.status_code} is not documented ({_clip(str(exc))})")
        except Exception as exc:
            problems += [f"response: {msg}" for msg in _describe(exc)]
        if self.wire_rules:
            problems += _wire_problems(request.method, request.path, response)
        return problems

    def check(self, exchanges: Iterable[Any]) -> tuple[int, list[str]]:
        """Validate many exchanges: (number judged, problems each prefixed by method, path, status)."""
        judged = 0
        problems: list[str] = []
        for ex in exchanges:
            if not self.in_scope(ex):
                continue
            judged += 1
            for problem in self.validate_exchange(ex):
                problems.append(f"{str(ex.method).upper()} {path_of(ex)} -> {ex.status}: {problem}")
        return judged, problems

    def assert_exchanges_valid(self, exchanges: Iterable[Any]) -> int:
        """Raise AssertionError listing every problem; return how many exchanges were judged."""
        judged, problems = self.check(exchanges)
        if problems:
            raise AssertionError(
                f"{len(problems)} contract problem(s) in {judged} exchange(s):\n" + "\n".join(problems)
            )
        return judged


@functools.lru_cache(maxsize=1)
def default_checker() -> ContractChecker:
    """The process-wide checker with all errata, strictness and wire rules."""
    return ContractChecker()


def validate_exchange(exchange: Any) -> list[str]:
    """Problems of one exchange according to ``default_checker()``."""
    return default_checker().validate_exchange(exchange)


def assert_exchanges_valid(exchanges: Iterable[Any]) -> int:
    """Assert every exchange conforms (``default_checker()``); return how many were judged."""
    return default_checker().assert_exchanges_valid(exchanges)
