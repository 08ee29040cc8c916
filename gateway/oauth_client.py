"""The bot as an OAuth 2.0 client of Mattermost ("Sign in with Mattermost" on the backstage, issue 19).

Mattermost's provider endpoints (server/channels/web/oauth.go): the browser is sent to
``GET /oauth/authorize?response_type=code&client_id&redirect_uri&state``; Mattermost sends it back to
the redirect URI with ``code`` and ``state`` (or ``error=access_denied``); the bot trades the code,
server to server, at ``POST /oauth/access_token`` (form: grant_type=authorization_code, client_id,
client_secret, code, redirect_uri) for ``model.AccessResponse`` JSON, and reads who signed in from
``GET /api/v4/users/me`` with ``Authorization: Bearer <access token>``. The access token is used for
that one call and never kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from urllib.parse import urlencode

import aiohttp

from gateway.models import User

log = logging.getLogger(__name__)

#: Most bytes read from Mattermost's token or user answer (both are a few hundred bytes).
MAX_ANSWER_BYTES = 64 * 1024


class OAuthFailure(Exception):
    """Signing in through Mattermost did not work; ``reason`` is what the person is told."""

    def __init__(self, reason: str, *, status: int = 0, error_id: str = "") -> None:
        super().__init__(f"{reason} ({status} {error_id})".strip())
        self.reason = reason
        self.status = status
        self.error_id = error_id

    @property
    def unreachable(self) -> bool:
        return self.status == 0


class OAuthClient:
    """One OAuth app's client: the authorize URL, the code exchange, the identity."""

    def __init__(self, mattermost_url: str, client_id: str, client_secret: str, *, timeout: float = 10.0,
                 browser_url: Callable[[], str] | None = None) -> None:
        #: Where the bot calls Mattermost (the code exchange, the identity: server to server).
        self.base = mattermost_url.rstrip("/")
        #: Where a browser is sent to sign in: Mattermost's public address (its SiteURL), which differs from
        #: ``base`` when the bot reaches Mattermost by an internal name (deploy/docker-compose.yml).
        self._browser_url = browser_url or (lambda: self.base)
        self.client_id = client_id
        self._secret = client_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                           "state": state})
        return f"{self._browser_url().rstrip('/')}/oauth/authorize?{query}"

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _json(self, response: aiohttp.ClientResponse) -> dict:
        raw = await response.content.read(MAX_ANSWER_BYTES + 1)
        if len(raw) > MAX_ANSWER_BYTES:
            raise OAuthFailure("Mattermost's answer was not understood. Try again, or ask an admin to check the "
                               "bot's OAuth app.", status=response.status)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OAuthFailure("Mattermost's answer was not understood. Try again, or ask an admin to check the "
                               "bot's OAuth app.", status=response.status)
        return data

    async def exchange(self, code: str, redirect_uri: str) -> str:
        """The access token for ``code`` (spent by Mattermost on the first use)."""
        form = {"grant_type": "authorization_code", "client_id": self.client_id, "client_secret": self._secret,
                "code": code, "redirect_uri": redirect_uri}
        try:
            async with self._session().post(f"{self.base}/oauth/access_token", data=form) as response:
                data = await self._json(response)
                if response.status != 200:
                    error_id = str(data.get("id", ""))
                    log.warning("Mattermost refused the OAuth code exchange: %s %s", response.status, error_id)
                    if "expired_code" in error_id:
                        raise OAuthFailure("This sign-in link has been used already or has expired. Start again "
                                           "from the login page.", status=response.status, error_id=error_id)
                    if "credentials" in error_id:
                        raise OAuthFailure("Mattermost does not accept the bot's OAuth app (client id or secret). "
                                           "Ask an admin to check CC_OAUTH_CLIENT_ID and CC_OAUTH_CLIENT_SECRET.",
                                           status=response.status, error_id=error_id)
                    raise OAuthFailure("Mattermost refused this sign-in. Start again from the login page.",
                                       status=response.status, error_id=error_id)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("cannot reach Mattermost for the OAuth code exchange: %r", error)
            raise OAuthFailure("Mattermost cannot be reached right now, so nobody was signed in. Try again in a "
                               "moment.") from None
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise OAuthFailure("Mattermost's answer was not understood. Try again, or ask an admin to check the "
                               "bot's OAuth app.", status=200)
        return token

    async def identity(self, access_token: str) -> User:
        """Who the access token belongs to (``GET /api/v4/users/me``)."""
        try:
            async with self._session().get(f"{self.base}/api/v4/users/me",
                                           headers={"Authorization": f"Bearer {access_token}"}) as response:
                data = await self._json(response)
                if response.status != 200:
                    raise OAuthFailure("Mattermost did not say who signed in. Start again from the login page.",
                                       status=response.status, error_id=str(data.get("id", "")))
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("cannot reach Mattermost for the OAuth identity: %r", error)
            raise OAuthFailure("Mattermost cannot be reached right now, so nobody was signed in. Try again in a "
                               "moment.") from None
        try:
            return User.model_validate(data)
        except ValueError:
            raise OAuthFailure("Mattermost's answer was not understood. Try again, or ask an admin to check the "
                               "bot's OAuth app.", status=200) from None
