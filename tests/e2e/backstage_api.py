"""Test helpers for the REST API (issue 19): a client that checks every exchange against the API's
OpenAPI document (backstage/openapi.yaml) with openapi-core, as tests/contract does for Mattermost's.

``ApiClient.with_token(bot, sandbox, "alice")`` makes alice a personal API token and sends it as
``Authorization: Bearer``; ``await api.get("/incidents")`` → ``(status, json)``. Every request the
server accepted is validated against the document, and every response is, whatever its status; a
problem fails the test at once. ``ApiClient.over_session(browser)`` sends a signed-in
``BackstageClient``'s cookie instead (and the CSRF header unless told not to).
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import aiohttp
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict
from yarl import URL

from backstage.api import openapi_document
from bot import CommandCenter
from gateway.ids import API_PREFIX
from sandbox import Sandbox
from tests.contract.adapters import ExchangeRequest, ExchangeResponse
from tests.contract.checker import Route, RouteIndex, _describe, openapi_from_spec

from .backstage import BackstageClient

HOST = "http://bot.test"


class ApiContract:
    """The API's document as openapi-core sees it, and the route index over its paths."""

    def __init__(self) -> None:
        spec = copy.deepcopy(openapi_document())
        spec["servers"] = [{"url": HOST + API_PREFIX}]
        self.spec = spec
        self.openapi = openapi_from_spec(spec, check_document=True)
        self.routes = RouteIndex(spec["paths"])

    def problems(self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
                 cookies: dict[str, str], body: bytes | None, status: int, response_headers: dict[str, str],
                 response_body: bytes) -> list[str]:
        relative = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else path
        route = self.routes.resolve(method.lower(), relative)
        if not isinstance(route, Route):
            return [f"{method} {path}: not in the API's document ({route})"]
        request_headers = Headers(list(headers.items()))
        request = ExchangeRequest(
            host_url=HOST, path=path, method=method.lower(),
            parameters=RequestParameters(query=ImmutableMultiDict(query), header=request_headers,
                                         cookie=ImmutableMultiDict(list(cookies.items())), path=route.variables),
            content_type=(headers.get("Content-Type") or "").split(";")[0].strip().lower(),
            body=body or None, path_pattern=API_PREFIX + route.template)
        response = ExchangeResponse(status_code=status,
                                    content_type=response_headers.get("Content-Type", "").split(";")[0].strip(),
                                    headers=Headers(list(response_headers.items())), data=response_body or None)
        found: list[str] = []
        if status < 400:
            try:
                self.openapi.validate_request(request)
            except Exception as exc:
                found += [f"request: {m}" for m in _describe(exc)]
        try:
            self.openapi.validate_response(request, response)
        except Exception as exc:
            found += [f"response: {m}" for m in _describe(exc)]
        return [f"{method} {path} -> {status}: {p}" for p in found]


@functools.cache
def contract() -> ApiContract:
    return ApiContract()


class ApiClient:
    def __init__(self, bot: CommandCenter, *, token: str | None = None, browser: BackstageClient | None = None,
                 csrf: bool = True) -> None:
        self.bot = bot
        self.token = token
        self.browser = browser
        self.csrf = csrf
        self.http = browser.http if browser is not None else aiohttp.ClientSession()
        self.exchanges = 0

    @classmethod
    async def with_token(cls, bot: CommandCenter, sandbox: Sandbox, username: str) -> ApiClient:
        assert bot.web_auth is not None
        issued = await bot.web_auth.create_token(sandbox.user_id(username), f"tests {username}")
        return cls(bot, token=issued.secret)

    @classmethod
    def over_session(cls, browser: BackstageClient, *, csrf: bool = True) -> ApiClient:
        return cls(browser.bot, browser=browser, csrf=csrf)

    def url(self, path: str) -> str:
        return self.bot.callback_base_url + API_PREFIX + path

    async def request(self, method: str, path: str, *, json_body: Any = None, raw: bytes | None = None,
                      params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                      content_type: str | None = None, validate: bool = True) -> tuple[int, Any]:
        sent = dict(headers or {})
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        if self.browser is not None and self.csrf and method not in ("GET", "HEAD"):
            sent.setdefault("X-CSRF-Token", self.browser.csrf)
        body = raw
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        if content_type is not None:
            sent["Content-Type"] = content_type
        cookies = {name: morsel.value for name, morsel in
                   self.http.cookie_jar.filter_cookies(URL(self.url(path))).items()}
        async with self.http.request(method, self.url(path), data=body, params=params, headers=sent,
                                     allow_redirects=False) as response:
            data = await response.read()
            status = response.status
            response_headers = {k: v for k, v in response.headers.items()}
            query = list(response.url.query.items())
            final_path = response.url.path
        self.exchanges += 1
        if validate:
            problems = contract().problems(method, final_path, query, sent, cookies, body, status, response_headers, data)
            assert not problems, "\n".join(problems)
        assert response_headers.get("Content-Type", "").startswith("application/json"), response_headers
        return status, json.loads(data) if data else None

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("POST", path, json_body=body, **kwargs)

    async def close(self) -> None:
        if self.browser is None:
            await self.http.close()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
