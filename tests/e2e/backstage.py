"""Test helpers for the backstage (issue 19): a browser-like HTTP client with a cookie jar.

``await BackstageClient.signed_in(bot, sandbox, "alice")`` signs alice in through the same one-time
login link ``/incident backstage`` sends (``bot.web_auth.login_token``), pressing Continue as a
person would; afterwards ``get``/``post`` send the session cookie, and ``post`` adds the CSRF token
read from the last page (every page carries it in ``<meta name="csrf-token">``).
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from bot import CommandCenter
from gateway.ids import BACKSTAGE_PREFIX
from sandbox import Sandbox

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


class BackstageClient:
    def __init__(self, bot: CommandCenter) -> None:
        self.bot = bot
        self.base = bot.callback_base_url
        # unsafe=True: keep cookies for an IP address host (127.0.0.1), as a browser does.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    @classmethod
    async def signed_in(cls, bot: CommandCenter, sandbox: Sandbox, username: str) -> BackstageClient:
        client = cls(bot)
        await client.login(sandbox.user_id(username))
        return client

    def url(self, path: str) -> str:
        """``/incidents`` → the backstage's absolute URL; a path already under /backstage or /api is kept."""
        if path.startswith(("http://", "https://")):
            return path
        if not path.startswith((BACKSTAGE_PREFIX, "/api/")):
            path = BACKSTAGE_PREFIX + path
        return self.base + path

    def login_token(self, user_id: str) -> str:
        assert self.bot.web_auth is not None
        return self.bot.web_auth.login_token(user_id)

    async def login(self, user_id: str) -> None:
        token = self.login_token(user_id)
        async with self.http.post(self.url("/login/link"), data={"t": token}, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        await self.get("/")

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str]:
        kwargs.setdefault("allow_redirects", False)
        async with self.http.get(self.url(path), **kwargs) as response:
            text = await response.text()
            self._learn_csrf(text)
            return response.status, text

    async def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
                   **kwargs: Any) -> tuple[int, str]:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf", self.csrf)
        kwargs.setdefault("allow_redirects", False)
        async with self.http.post(self.url(path), data=form, **kwargs) as response:
            text = await response.text()
            self._learn_csrf(text)
            return response.status, text

    def _learn_csrf(self, text: str) -> None:
        found = CSRF_META.search(text)
        if found and found.group(1):
            self.csrf = found.group(1)

    async def close(self) -> None:
        await self.http.close()

    async def __aenter__(self) -> BackstageClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
