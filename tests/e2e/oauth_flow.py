"""Test helpers for "Sign in with Mattermost" (issue 19): an OAuth app registered in the sandbox by its
admin over REST, a bot started with it, and a browser-like walk through the flow."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp

from bot import CommandCenter
from sandbox import Sandbox

from .backstage import BackstageClient


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class OAuthApp:
    id: str
    secret: str
    callback: str


async def register_app(sandbox: Sandbox, callback: str, *, trusted: bool = False, admin: str = "alice") -> OAuthApp:
    """What an admin does in System Console → Integrations → OAuth 2.0 Applications."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sandbox.url}/api/v4/oauth/apps",
                             headers={"Authorization": f"Bearer {sandbox.token_of(admin)}"},
                             json={"name": "Command Center", "description": "Incident backstage",
                                   "homepage": callback.split("/backstage")[0] + "/",
                                   "callback_urls": [callback], "is_trusted": trusted}) as response:
            assert response.status == 201, await response.text()
            app = await response.json()
    return OAuthApp(app["id"], app["client_secret"], callback)


async def start_oauth_bot(start_bot, sandbox: Sandbox, *, trusted: bool = False,
                          secret: str | None = None) -> tuple[CommandCenter, OAuthApp]:
    port = free_port()
    app = await register_app(sandbox, f"http://127.0.0.1:{port}/backstage/oauth/callback", trusted=trusted)
    bot = await start_bot(listen_port=port, oauth_client_id=app.id, oauth_client_secret=secret or app.secret)
    return bot, app


def _same_url(one: str, other: str) -> bool:
    """Equal up to quoting (``%3A`` or ``:`` in a query are the same URL)."""
    a, b = urlsplit(one), urlsplit(other)
    return (a.scheme, a.netloc, a.path, parse_qs(a.query)) == (b.scheme, b.netloc, b.path, parse_qs(b.query))


HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class Flow:
    """One browser (one cookie jar for the sandbox and the bot, as a browser keeps cookies per host)."""

    def __init__(self, bot: CommandCenter, sandbox: Sandbox) -> None:
        self.browser = BackstageClient(bot)
        self.sandbox = sandbox

    @property
    def http(self) -> aiohttp.ClientSession:
        return self.browser.http

    async def go(self, url: str, *, method: str = "GET", data: dict | None = None) -> tuple[int, str, str]:
        """One request, no redirect followed: (status, Location made absolute, body)."""
        async with self.http.request(method, url, data=data, allow_redirects=False) as response:
            body = await response.text()
            location = response.headers.get("Location", "")
        if location.startswith("/"):
            parts = urlsplit(url)
            location = f"{parts.scheme}://{parts.netloc}{location}"
        return response.status, location, body

    async def to_authorize(self, next_path: str = "/backstage/") -> str:
        """Press "Sign in with Mattermost": the URL of Mattermost's authorize page."""
        status, location, _ = await self.go(self.browser.url(f"/oauth/start?next={next_path}"))
        assert status == 303 and "/oauth/authorize?" in location, location
        return location

    async def log_in_to_mattermost(self, authorize: str, username: str) -> tuple[int, str, str]:
        """Signed out at Mattermost: its login page, then back to the authorize page."""
        status, login, _ = await self.go(authorize)
        assert status == 302 and "/login?redirect_to=" in login, login
        redirect_to = parse_qs(urlsplit(login).query)["redirect_to"][0]
        status, back, _ = await self.go(f"{self.sandbox.url}/login", method="POST", data={
            "login_id": username, "password": f"{username}-password", "redirect_to": redirect_to})
        assert status == 302 and _same_url(back, authorize), (status, back)
        return await self.go(back)

    async def decide(self, allow_page: str, decision: str) -> str:
        """Press Allow or Deny on Mattermost's page: where Mattermost sends the browser."""
        fields = dict(HIDDEN.findall(allow_page))
        status, location, body = await self.go(f"{self.sandbox.url}/oauth/authorize", method="POST",
                                               data={**fields, "decision": decision})
        assert status == 302, body
        return location

    async def to_callback(self, username: str = "alice", next_path: str = "/backstage/") -> str:
        """From the start to the callback URL Mattermost redirects to (with the code), Allow pressed."""
        authorize = await self.to_authorize(next_path)
        status, location, page = await self.log_in_to_mattermost(authorize, username)
        if status == 302:  # a trusted app, or one allowed before
            return location
        assert status == 200 and 'id="allow"' in page, page
        return await self.decide(page, "allow")

    async def close(self) -> None:
        await self.browser.close()

    async def __aenter__(self) -> Flow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
