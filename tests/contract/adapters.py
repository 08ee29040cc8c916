"""Recorded exchanges as openapi-core requests and responses.

An ``Exchange`` (sandbox/records.py) — or anything with the same attributes; query and headers
may be mappings or pairs — becomes an ``ExchangeRequest`` / ``ExchangeResponse`` in
openapi-core's ``Request`` / ``Response`` protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict


def _as_headers(raw: Any) -> Headers:
    if raw is None:
        return Headers()
    if isinstance(raw, Headers):
        return raw
    items = raw.items() if hasattr(raw, "items") else raw
    return Headers([(str(k), str(v)) for k, v in items])


def _as_query(raw: Any, url: str) -> ImmutableMultiDict:
    if raw is None or raw == "":
        raw = urlsplit(url).query if url else ""
    if isinstance(raw, (str, bytes)):
        text = raw.decode() if isinstance(raw, bytes) else raw
        return ImmutableMultiDict(parse_qsl(text.lstrip("?"), keep_blank_values=True))
    pairs: list[tuple[str, str]] = []
    items = raw.items() if hasattr(raw, "items") else raw
    for key, value in items:
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return ImmutableMultiDict(pairs)


def _content_type(headers: Headers) -> str:
    # The media type is case-insensitive but parameters are not (a multipart boundary must match).
    raw = headers.get("Content-Type") or ""
    media, sep, params = raw.partition(";")
    return media.strip().lower() + (sep + params if sep else "")


def _cookies(headers: Headers) -> ImmutableMultiDict:
    jar: SimpleCookie = SimpleCookie()
    for value in headers.getlist("Cookie"):
        jar.load(value)
    return ImmutableMultiDict([(k, m.value) for k, m in jar.items()])


@dataclass
class ExchangeRequest:
    """An exchange's request in openapi-core's ``Request`` protocol."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None
    # Set once the route is resolved; openapi-core then matches the template, not the concrete path.
    path_pattern: str | None = None


@dataclass
class ExchangeResponse:
    """An exchange's response in openapi-core's ``Response`` protocol."""

    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


def path_of(exchange: Any) -> str:
    path = getattr(exchange, "path", None) or urlsplit(getattr(exchange, "url", "") or "").path
    return path.split("?", 1)[0]


def to_openapi_request(exchange: Any, host_url: str) -> ExchangeRequest:
    """Wrap an Exchange's request side; ``host_url`` replaces the recorded host (ports vary)."""
    headers = _as_headers(getattr(exchange, "headers", None))
    params = RequestParameters(
        query=_as_query(getattr(exchange, "query", None), getattr(exchange, "url", "") or ""),
        header=headers,
        cookie=_cookies(headers),
        path={},
    )
    return ExchangeRequest(
        host_url=host_url,
        path=path_of(exchange),
        method=str(exchange.method).lower(),
        parameters=params,
        content_type=_content_type(headers),
        body=exchange.body if exchange.body else None,
    )


def to_openapi_response(exchange: Any) -> ExchangeResponse:
    """Wrap an Exchange's response side."""
    headers = _as_headers(getattr(exchange, "response_headers", None))
    return ExchangeResponse(
        status_code=int(exchange.status),
        content_type=_content_type(headers),
        headers=headers,
        data=exchange.response_body if exchange.response_body else None,
    )
