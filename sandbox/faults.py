"""Fault injection: make the sandbox misbehave the way a real Mattermost behind a real network does.

Rules pick REST requests by path pattern, method and caller (token or user) and, with a given
probability, answer them with a 5xx, a 429 with rate-limit headers, a slow answer or a dropped
connection -- either *before* the request is processed (nothing happened) or *after* it
(the change happened but the caller never hears about it, the case that duplicates work on a
naive retry). Decisions come from per-rule random generators derived from one seed, so a run
with the same seed and the same request sequence injects the same faults.

Use ``sb.faults`` at run time or ``SandboxConfig(faults=[...], fault_seed=...)``; see README.md.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .httputil import REQUEST_ID
from .keys import SB_KEY

KINDS = ("error", "rate_limit", "slow", "drop_before", "drop_after")
_PROXY_STATUSES = (502, 503, 504)  # what a reverse proxy in front of Mattermost answers itself


@dataclass
class FaultRule:
    """One way of misbehaving, and which requests it applies to.

    ``path`` is an fnmatch pattern matched against the request path (``/api/v4/posts*``);
    ``methods`` None means every method; ``tokens``/``user_ids`` None means every caller
    (a request must match both when both are given). ``limit`` caps how often the rule fires.
    """

    kind: str
    probability: float = 1.0
    path: str = "/api/v4/*"
    methods: frozenset[str] | None = None
    tokens: frozenset[str] | None = None
    user_ids: frozenset[str] | None = None
    status: int = 500          # "error": the status answered
    delay: float = 0.2         # "slow": seconds added before the request is processed
    retry_after: int = 1       # "rate_limit": seconds in X-Ratelimit-Reset / Retry-After
    limit: int | None = None
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if self.kind == "error" and not 500 <= self.status <= 599:
            raise ValueError("an injected error needs a 5xx status")

    def matches(self, method: str, path: str, token: str, user_id: str) -> bool:
        if self.limit is not None and self.fired >= self.limit:
            return False
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.tokens is not None and token not in self.tokens:
            return False
        if self.user_ids is not None and user_id not in self.user_ids:
            return False
        return fnmatch.fnmatchcase(path, self.path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (tokens are not echoed)."""
        return {"kind": self.kind, "probability": self.probability, "path": self.path,
                "methods": sorted(self.methods) if self.methods is not None else None,
                "user_ids": sorted(self.user_ids) if self.user_ids is not None else None,
                "tokens": len(self.tokens) if self.tokens is not None else None,
                "status": self.status, "delay": self.delay, "retry_after": self.retry_after,
                "limit": self.limit, "fired": self.fired}


@dataclass(frozen=True)
class FaultEvent:
    """A fault that was injected: what, and into which request."""

    kind: str
    method: str
    path: str
    user_id: str
    status: int | None  # None for drops and slow answers (the real handler answered or nobody did)


class FaultInjector:
    """The sandbox's fault rules and the log of what they did (``sb.faults``)."""

    def __init__(self, seed: int = 0, rules: Iterable[dict | FaultRule] = (), *,
                 resolve_user: Callable[[str], str] | None = None) -> None:
        self._resolve_user = resolve_user or (lambda name: name)
        self.enabled = True
        self.rules: list[FaultRule] = []
        self.events: list[FaultEvent] = []
        self._seed = seed
        self._added = 0
        for rule in rules:
            self.add_rule(rule if isinstance(rule, FaultRule) else self.rule_from_dict(rule))

    # Configuration -------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        return self._seed

    def reseed(self, seed: int) -> None:
        """Restart every rule's random sequence from ``seed`` (and forget the fired counts)."""
        self._seed = seed
        self._added = 0
        for rule in self.rules:
            self._seed_rule(rule)
            rule.fired = 0

    def add(self, kind: str, *, probability: float = 1.0, path: str = "/api/v4/*",
            methods: Iterable[str] | str | None = None, users: Iterable[str] | None = None,
            tokens: Iterable[str] | None = None, status: int = 500, delay: float = 0.2,
            retry_after: int = 1, limit: int | None = None) -> FaultRule:
        """Add a rule; ``users`` are usernames or ids (only their requests are faulted)."""
        return self.add_rule(self.rule_from_dict({
            "kind": kind, "probability": probability, "path": path, "methods": methods, "users": users,
            "tokens": tokens, "status": status, "delay": delay, "retry_after": retry_after, "limit": limit}))

    def add_rule(self, rule: FaultRule) -> FaultRule:
        """Append a rule (it is tried after the existing ones) and seed its random sequence."""
        self._seed_rule(rule)
        self.rules.append(rule)
        return rule

    def _seed_rule(self, rule: FaultRule) -> None:
        rule.rng.seed(f"{self._seed}/{self._added}")
        self._added += 1

    def rule_from_dict(self, spec: dict) -> FaultRule:
        """A rule (not yet added) from its JSON/YAML form: the keyword arguments of :meth:`add` plus ``kind``."""
        allowed = {"kind", "probability", "path", "methods", "users", "tokens", "status", "delay",
                   "retry_after", "limit"}
        unknown = set(spec) - allowed
        if unknown or "kind" not in spec:
            raise ValueError(f"a fault rule needs 'kind' and only these keys: {', '.join(sorted(allowed))}")
        methods, users, tokens = spec.get("methods"), spec.get("users"), spec.get("tokens")
        if isinstance(methods, str):
            methods = [methods]
        return FaultRule(
            kind=spec["kind"], probability=float(spec.get("probability", 1.0)), path=spec.get("path", "/api/v4/*"),
            methods=frozenset(m.upper() for m in methods) if methods is not None else None,
            tokens=frozenset(tokens) if tokens is not None else None,
            user_ids=frozenset(self._resolve_user(u) for u in users) if users is not None else None,
            status=int(spec.get("status", 500)), delay=float(spec.get("delay", 0.2)),
            retry_after=int(spec.get("retry_after", 1)),
            limit=int(spec["limit"]) if spec.get("limit") is not None else None)

    def remove(self, rule: FaultRule) -> None:
        self.rules.remove(rule)

    def clear(self) -> None:
        """Drop every rule (the event log stays)."""
        self.rules.clear()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """``with sb.faults.paused():`` -- no faults inside the block (e.g. while checking state)."""
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = previous

    def counts(self) -> Counter:
        """How many faults of each kind were injected so far."""
        return Counter(event.kind for event in self.events)

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self._seed, "enabled": self.enabled, "rules": [r.to_dict() for r in self.rules],
                "counts": dict(self.counts())}

    # Deciding and injecting ----------------------------------------------------------------

    def pick(self, method: str, path: str, token: str, user_id: str) -> FaultRule | None:
        """The rule that fires for this request, if any (the first matching rule whose draw hits)."""
        if not self.enabled:
            return None
        for rule in self.rules:
            if rule.matches(method, path, token, user_id) and rule.rng.random() < rule.probability:
                rule.fired += 1
                return rule
        return None

    async def before(self, rule: FaultRule, request: web.Request, user_id: str) -> web.StreamResponse | None:
        """Act before the handler: a response that replaces it, or None to let it run.

        ``slow`` sleeps, then lets the handler run; ``drop_after`` lets it run (see :meth:`after`).
        """
        if rule.kind == "slow":
            self._log(rule, request, user_id, None)
            await asyncio.sleep(rule.delay)
            return None
        if rule.kind == "drop_after":
            return None
        if rule.kind == "drop_before":
            self._log(rule, request, user_id, None)
            return _drop(request)
        if rule.kind == "rate_limit":
            self._log(rule, request, user_id, 429)
            return _rate_limited(rule.retry_after)
        self._log(rule, request, user_id, rule.status)
        return _server_error(rule.status, request.get(REQUEST_ID, ""))

    def after(self, rule: FaultRule, request: web.Request, user_id: str, response: web.StreamResponse
              ) -> web.StreamResponse:
        """Act after the handler ran: ``drop_after`` loses the response it produced."""
        if rule.kind != "drop_after":
            return response
        self._log(rule, request, user_id, None)
        return _drop(request)

    def _log(self, rule: FaultRule, request: web.Request, user_id: str, status: int | None) -> None:
        self.events.append(FaultEvent(rule.kind, request.method, request.path, user_id, status))


def _drop(request: web.Request) -> web.Response:
    """Close the connection without a response; aiohttp then has nothing to write to."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)


def _rate_limited(retry_after: int) -> web.Response:
    # Mattermost's rate limiter (throttled) answers in plain text with these headers.
    response = web.Response(status=429, text="limit exceeded\n")
    response.headers["X-Ratelimit-Limit"] = "10"
    response.headers["X-Ratelimit-Remaining"] = "0"
    response.headers["X-Ratelimit-Reset"] = str(retry_after)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _server_error(status: int, request_id: str) -> web.Response:
    if status in _PROXY_STATUSES:
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
        return web.Response(status=status, content_type="text/html",
                            text=f"<html><head><title>{status} {reason}</title></head>"
                                 f"<body><h1>{status} {reason}</h1></body></html>\n")
    body = {"id": "api.context.unexpected.app_error", "message": "An unexpected error occurred.",
            "detailed_error": "", "request_id": request_id, "status_code": status}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


# /_sandbox/faults: the same control for drivers that are not Python ----------------------------

def setup(app: web.Application) -> None:
    async def show(request: web.Request) -> web.Response:
        return web.json_response(request.app[SB_KEY].faults.to_dict())

    async def add(request: web.Request) -> web.Response:
        faults = request.app[SB_KEY].faults
        try:
            rule = faults.add_rule(faults.rule_from_dict(await request.json()))
        except (ValueError, TypeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(rule.to_dict(), status=201)

    async def configure(request: web.Request) -> web.Response:
        faults = request.app[SB_KEY].faults
        try:
            body = await request.json()
            rules = [faults.rule_from_dict(spec) for spec in body.get("rules", [])] if "rules" in body else None
            if rules is not None:
                faults.clear()
                for rule in rules:
                    faults.add_rule(rule)
            if "seed" in body:
                faults.reseed(int(body["seed"]))
            if "enabled" in body:
                faults.enabled = bool(body["enabled"])
        except (ValueError, TypeError, AttributeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(faults.to_dict())

    async def clear(request: web.Request) -> web.Response:
        request.app[SB_KEY].faults.clear()
        return web.json_response({"status": "OK"})

    app.router.add_get("/_sandbox/faults", show)
    app.router.add_post("/_sandbox/faults", add)
    app.router.add_put("/_sandbox/faults", configure)
    app.router.add_delete("/_sandbox/faults", clear)


__all__ = ["KINDS", "FaultEvent", "FaultInjector", "FaultRule"]
