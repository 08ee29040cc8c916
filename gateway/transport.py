"""mattermostautodriver's client API over one shared aiohttp session.

mattermostautodriver's endpoint classes (``driver.posts.create_post(...)`` and the rest) only call
``client.get/post/put/delete``; this client answers them with aiohttp instead of httpx. httpx's
request/response model and httpcore's connection pool cost 1.5–2.5 ms of CPU per call, aiohttp
about a tenth of that (``python -m bench.transport`` measures the options side by side).

Failures are :class:`MattermostError` (status and Mattermost's error id; status 0 when the server
could not be reached or did not answer in time), never an aiohttp exception.
"""

from __future__ import annotations

import io
import re
from typing import Any

import aiohttp
from mattermostautodriver.client import BaseClient
from yarl import URL

from gateway import fastjson
from gateway.errors import MattermostError

# What ids, names, emoji names and the literal "me" are made of; anything else in a path is hostile.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._\-+@]*")
_SAFE_PATH = re.compile(r"[A-Za-z0-9._\-+@/]*")  # segments of those characters, "/" between them
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Idle connections are closed well before servers and proxies drop them (Go's net/http and nginx
# keep an idle connection 60–75 s), so a pooled connection is not found dead when reused.
_KEEPALIVE_S = 5.0
# As many connections to Mattermost at once as httpx allowed by default.
_MAX_CONNECTIONS = 100


class Response:
    """The part of an HTTP response the client reads: status, headers, the whole body."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(self, status_code: int, reason_phrase: str, headers: Any, content: bytes) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers  # case-insensitive (multidict)
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return fastjson.loads(self.content)


class AiohttpClient(BaseClient):
    """mattermostautodriver's AsyncClient API on one aiohttp.ClientSession, made on first use."""

    def __init__(self, options: dict) -> None:
        super().__init__(options)
        self._timeout = aiohttp.ClientTimeout(total=options.get("request_timeout") or options.get("timeout"))
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._verify = options.get("verify", True)
        # The Authorization header, made once per token (the token is set at login), and with the
        # JSON body's Content-Type.
        self._headers_for: tuple[str, dict[str, str] | None] | None = None
        self._json_headers_for: tuple[str, dict[str, str]] | None = None

    def _http(self) -> aiohttp.ClientSession:
        session = self._session
        if self._closed:
            raise RuntimeError("the Mattermost client is closed")  # as httpx did: a bug, not an outage
        if session is None:
            # Token authentication only: no cookies to keep (and none to leak between calls).
            connector = aiohttp.TCPConnector(limit=_MAX_CONNECTIONS, keepalive_timeout=_KEEPALIVE_S,
                                             ssl=bool(self._verify))
            proxy, proxy_auth = self._options.get("proxy"), None
            if not proxy:
                proxy, proxy_auth = _env_proxy(self._url)
            session = self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=self._timeout,
                proxy=proxy, proxy_auth=proxy_auth)
        return session

    def _auth_headers(self) -> dict[str, str] | None:
        """``auth_header()`` (mattermostautodriver's), built again only when the token changed."""
        cached = self._headers_for
        if cached is None or cached[0] != self._token:
            cached = self._headers_for = (self._token, self.auth_header())
        return cached[1]

    def _json_headers(self) -> dict[str, str]:
        """:meth:`_auth_headers` with ``Content-Type: application/json`` (the body is encoded here)."""
        cached = self._json_headers_for
        if cached is None or cached[0] != self._token:
            cached = self._json_headers_for = (self._token, {**(self._auth_headers() or {}),
                                                             "Content-Type": "application/json"})
        return cached[1]

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def make_request(self, method: str, endpoint: str, options: Any = None, params: dict | None = None,
                           data: dict | None = None, files: dict | None = None,
                           basepath: str | None = None) -> Response:
        verb = method.upper()
        check_path(endpoint, verb)
        url = self._make_url(self._scheme, self._options["url"], self._port, basepath) if basepath else self._url
        body: dict[str, Any] = {}
        headers = self._auth_headers()
        if verb in ("POST", "PUT"):  # as mattermostautodriver: only these carry a body
            if files:
                body["data"] = _form(data or {}, files)
            elif options is not None:
                body["data"], headers = fastjson.dumps(options), self._json_headers()
            elif data:
                body["data"] = data
        try:
            async with self._http().request(verb, url + endpoint, params=_query(params), headers=headers,
                                            **body) as answer:
                content = await answer.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:  # refused, reset, timed out ...
            raise MattermostError(0, "unreachable", f"{type(exc).__name__}: {exc}".rstrip(": "),
                                  method=verb, path=endpoint) from exc
        response = Response(answer.status, answer.reason or "", answer.headers, content)
        if response.status_code >= 400:
            raise error_from_response(response, verb, endpoint)
        return response

    async def get(self, endpoint: str, options: Any = None, params: dict | None = None) -> Any:
        response = await self.make_request("get", endpoint, options=options, params=params)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.json() if content_type == "application/json" else response

    async def post(self, endpoint: str, options: Any = None, params: dict | None = None, data: dict | None = None,
                   files: dict | None = None) -> Any:
        return (await self.make_request("post", endpoint, options=options, params=params, data=data,
                                        files=files)).json()

    async def put(self, endpoint: str, options: Any = None, params: dict | None = None,
                  data: dict | None = None) -> Any:
        return (await self.make_request("put", endpoint, options=options, params=params, data=data)).json()

    async def delete(self, endpoint: str, options: Any = None, params: dict | None = None,
                     data: dict | None = None) -> Any:
        return (await self.make_request("delete", endpoint, options=options, params=params, data=data)).json()


def _env_proxy(url: str) -> tuple[Any, Any]:
    """HTTP(S)_PROXY / NO_PROXY for the server's URL, as httpx honoured them; read once, because
    aiohttp's trust_env reads the environment (and ~/.netrc) again on every request."""
    try:
        from aiohttp.helpers import get_env_proxy_for_url
        return get_env_proxy_for_url(URL(url))
    except (LookupError, ImportError):
        return None, None


def check_path(endpoint: str, method: str) -> None:
    """Refuse paths built from hostile values (a user-chosen "id" such as ``../../users/me`` or one
    with control characters) before they can address another endpoint; Mattermost would answer
    such ids with 400 invalid_url_param, and so does this."""
    path = endpoint.split("?", 1)[0]
    if _SAFE_PATH.fullmatch(path) and "/." not in path and not path.startswith("."):
        return  # every segment is made of safe characters and none starts with a dot: none is . or ..
    for segment in path.split("/"):
        if segment in (".", "..") or not _PATH_SEGMENT.fullmatch(segment):
            raise MattermostError(400, "api.context.invalid_url_param.app_error",
                                  "Invalid or missing parameter in request URL.", method=method, path=endpoint)


def _query(params: dict | None) -> dict[str, str] | None:
    """Query values as the server reads them: booleans as true/false, None left out."""
    if not params:
        return None
    return {key: ("true" if value else "false") if isinstance(value, bool) else str(value)
            for key, value in params.items() if value is not None}


def _form(data: dict, files: dict) -> aiohttp.FormData:
    """multipart/form-data with the plain fields first: Mattermost reads ``channel_id`` before the files.

    File names go out as quoted strings in UTF-8, as browsers send them and Go's mime package reads
    them (aiohttp's default would percent-encode them, and the server would keep the %XX literally);
    control characters, which could end the part's header early, become ``_``."""
    form = aiohttp.FormData(quote_fields=False)
    for key, value in data.items():
        form.add_field(key, str(value))
    for key, value in files.items():
        filename, content, content_type = (tuple(value) + (None, None))[:3] if isinstance(value, tuple) else (
            None, value, None)
        if filename is not None:
            filename = _CONTROL.sub("_", str(filename))
        if hasattr(content, "read"):
            content = _Borrowed(content)
        form.add_field(key, content, filename=filename, content_type=content_type or "application/octet-stream")
    return form


class _Borrowed(io.RawIOBase):
    """A caller's open file lent to aiohttp, which closes the files it sends: closing this leaves the
    caller's file open, so a retry can rewind and send it again (and the caller closes it)."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        return self._stream.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def fileno(self) -> int:  # lets aiohttp send a Content-Length for real files
        return self._stream.fileno()


def error_from_response(response: Response, method: str, path: str) -> MattermostError:
    error_id, message = "unknown", response.reason_phrase or "error"
    try:
        body = response.json()
        if isinstance(body, dict):
            error_id = str(body.get("id") or error_id)
            message = str(body.get("message") or message)
    except ValueError:
        pass
    return MattermostError(response.status_code, error_id, message, retry_after=retry_after(response),
                           method=method, path=path)


def retry_after(response: Response) -> float | None:
    """Seconds to wait before retrying, from Retry-After or Mattermost's X-Ratelimit-Reset."""
    for header in ("Retry-After", "X-Ratelimit-Reset"):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None
