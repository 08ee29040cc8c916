"""The Sandbox: one aiohttp server (REST v4, WebSocket, hooks, /_sandbox) over a World."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from . import (
    dialogs,
    errors,
    faults,
    ids,
    oauth,
    post_actions,
    rest_channels,
    rest_core,
    rest_posts,
    simulate,
    slash_commands,
    webhooks,
    websocket,
)
from .errors import AppError
from .faults import FaultInjector, FaultRule
from .gates import Gates
from .httputil import REQUEST_ID, USER, json_response
from .ids import new_id
from .keys import SB_KEY
from .oauth import OAuthState
from .pending_posts import PendingPostCache
from .records import Callback, Exchange
from .seed import Seed, load_seed
from .simulate import SimUser
from .state import World

log = logging.getLogger("sandbox")

# Routes under /api/v4 that need no session (Mattermost registers them as plain API handlers).
PUBLIC_API = {"/api/v4/system/ping", "/api/v4/config/client", "/api/v4/actions/dialogs/open", "/api/v4/websocket"}


@dataclass
class SandboxConfig:
    """Tunables of the fake server; defaults match a stock Mattermost server."""

    host: str = "127.0.0.1"
    port: int = 0
    site_url: str | None = None
    integration_timeout: float = 30.0
    # 3 s: released servers that still check trigger ids against model.InteractiveDialogTriggerTimeoutMilliseconds
    # (model/integration_action.go DecodeAndVerifyTriggerId); newer ones allow
    # ServiceSettings.OutgoingIntegrationRequestsTimeout (30 s) instead. The sandbox takes the strictest.
    trigger_id_lifetime: float = 3.0
    max_body_bytes: int = 100 * 1024 * 1024
    record: bool = False
    server_version: str = "11.7.15"   # the v11.7 ESR, oldest supported release (README, version.py)
    ws_auth_timeout: float = 5.0
    ws_ping_interval: float = 60.0
    command_hook_lifetime: float = 30 * 60.0
    command_hook_max_uses: int = 5
    # ServiceSettings.EnablePostUsernameOverride / EnablePostIconOverride (both off by default):
    # whether incoming webhooks may set override_username / override_icon_url.
    enable_post_username_override: bool = False
    enable_post_icon_override: bool = False
    faults: list[dict] = field(default_factory=list)   # fault rules (sandbox/faults.py), active from the start
    fault_seed: int = 0
    # Released servers send an action's `update` to UpdatePost, which cannot find an ephemeral post
    # (404, post_actions._ephemeral_update_refused); only the newest source updates it in place.
    update_ephemeral_in_place: bool = False
    # ServiceSettings.PostEditTimeLimit: seconds after creation a post may still be changed; -1 = always.
    post_edit_time_limit: int = -1
    # ServiceSettings.EnableOAuthServiceProvider (model/config.go default: on): the OAuth 2.0 provider
    # (sandbox/oauth.py); off, its routes answer 501 as the server's do.
    enable_oauth_service_provider: bool = True


class Sandbox:
    """A Mattermost-compatible server for tests, demos and benchmarks.

    Use as ``async with Sandbox(seed, config=cfg) as sb:``; see sandbox/README.md.
    """

    def __init__(self, seed: str | Path | dict | Seed | None = None, *,
                 config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.seed = load_seed(seed)
        self.world = World(self.seed, self.config.server_version)
        self.world.post_edit_time_limit = self.config.post_edit_time_limit
        self._advanced_clock = False
        self.recording: list[Exchange] = []
        self.callbacks: list[Callback] = []
        self.signing_key = secrets.token_bytes(32)
        # Handler.ServeHTTP (server/channels/web/handlers.go) sends X-Version-Id as
        # "<CurrentVersion>.<BuildNumber>.<ClientConfigHash>.<licensed>"; release builds use the version as build.
        self.version_id = (f"{self.config.server_version}.{self.config.server_version}."
                           f"{hashlib.md5(self.config.server_version.encode()).hexdigest()}.false")
        self.host = self.config.host
        self.port = self.config.port
        self.url = ""
        self.site_url = ""
        self._runner: web.AppRunner | None = None
        self.http: aiohttp.ClientSession | None = None
        self._sim_users: dict[str, SimUser] = {}
        self.ws_connections: set[Any] = set()
        self.ws_blocked: set[str] = set()  # user ids whose WebSockets are refused and silenced
        self.ws_refused: dict[str, int] = {}  # user id -> connections refused while blocked
        self.gates = Gates()
        self.faults = FaultInjector(self.config.fault_seed, self.config.faults, resolve_user=self._user_id_of)
        self.pending_posts = PendingPostCache()  # create-post deduplication by pending_post_id
        # OAuth apps, codes, access tokens and the sessions of browser logins (sandbox/oauth.py).
        self.oauth = OAuthState(enabled=self.config.enable_oauth_service_provider)
        self.app = self._build_app()
        # Every person is "logged in" from the start, so no ephemeral post or dialog is missed.
        for user in self.world.users.values():
            self.user(user["username"])

    # ------------------------------------------------------------------ lifecycle
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware],
                              client_max_size=self.config.max_body_bytes)
        app[SB_KEY] = self
        for module in (rest_core, rest_channels, rest_posts, slash_commands, post_actions, dialogs, webhooks,
                       websocket, simulate, faults, oauth):
            module.setup(app)
        return app

    async def start(self) -> Sandbox:
        """Bind the port and start serving."""
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.integration_timeout),
            headers={"User-Agent": "Mattermost-Bot/1.1"})
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self.site_url = (self.config.site_url or self.url).rstrip("/")
        return self

    async def close(self) -> None:
        """Close every WebSocket, stop serving and release the port."""
        self.gates.release_all()
        for conn in list(self.ws_connections):
            await conn.close()
        for sim in self._sim_users.values():
            await sim.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self._advanced_clock:  # the simulated time ends with the sandbox that made it
            ids.reset_clock()
            self._advanced_clock = False

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ middleware
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        rid = new_id()
        request[REQUEST_ID] = rid
        path = request.path
        body = b""
        fault, fault_user = self._pick_fault(request)
        if fault is not None:
            early = await self.faults.before(fault, request, fault_user)
            if early is not None:  # an injected error or a dropped connection replaces the answer
                early.headers["X-Request-Id"] = rid
                early.headers["X-Version-Id"] = self.version_id
                return early
        try:
            if request.content_length and request.content_length > self.config.max_body_bytes:
                raise errors.too_large()
            http_exc = request.match_info.http_exception
            if http_exc is not None:
                raise errors.not_found_route()
            if self._recorded(path):
                body = await request.read()
            if path.startswith("/api/v4/") and path.rstrip("/") not in PUBLIC_API:
                request[USER] = self._authenticate(request)
            elif path.startswith("/api/v4/"):
                request[USER] = self._authenticate(request, required=False)
            await self.gates.pass_through(request.method, path, self.token_from_request(request), after=False)
            if request.transport is None or request.transport.is_closing():
                raise asyncio.CancelledError  # the client left while the request was held: nothing happens
            resp = await handler(request)
            await self.gates.pass_through(request.method, path, self.token_from_request(request), after=True)
        except AppError as exc:
            resp = self._error_response(exc, rid)
        except web.HTTPRequestEntityTooLarge:
            resp = self._error_response(errors.too_large(), rid)
        except web.HTTPException as exc:  # only raised by aiohttp internals
            resp = self._error_response(AppError(exc.status, "api.context.unexpected.app_error",
                                                 exc.reason or "Unexpected error."), rid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the catch-all: never a traceback to the client
            log.exception("unhandled error on %s %s", request.method, path)
            resp = self._error_response(errors.internal(repr(exc)), rid)
        if isinstance(resp, web.WebSocketResponse) or resp.prepared:
            return resp
        if fault is not None and fault.kind == "drop_after":
            return self.faults.after(fault, request, fault_user, resp)
        resp.headers["X-Request-Id"] = rid
        resp.headers["X-Version-Id"] = self.version_id
        if request.method == "GET" and path.startswith("/api/"):
            resp.headers["Expires"] = "0"
        if self._recorded(path):
            resp_body = resp.body if isinstance(resp, web.Response) and isinstance(resp.body, bytes) else b""
            headers = dict(resp.headers)
            if isinstance(resp, web.Response) and resp.content_type and "Content-Type" not in headers:
                headers["Content-Type"] = resp.content_type
            self.recording.append(Exchange(
                method=request.method, url=str(request.url), path=path, query=dict(request.query),
                headers=dict(request.headers), body=body, status=resp.status,
                response_headers=headers, response_body=resp_body))
        return resp

    def _recorded(self, path: str) -> bool:
        """Whether an exchange is kept in the recording: REST and hooks, not the simulation API, the
        WebSocket or the web app's pages (``oauth.WEB_PAGES``: HTML the API contract does not cover)."""
        return (self.config.record and not path.startswith("/_sandbox") and path != "/api/v4/websocket"
                and path.rstrip("/") not in oauth.WEB_PAGES)

    def _pick_fault(self, request: web.Request) -> tuple[FaultRule | None, str]:
        """The fault rule that fires for this REST request (never the simulation API or the WebSocket)."""
        path = request.path
        if not self.faults.rules or path.startswith("/_sandbox") or path == "/api/v4/websocket":
            return None, ""
        token = self.token_from_request(request)
        user = self.world.user_of_token(token) if token else None
        user_id = user["id"] if user else ""
        return self.faults.pick(request.method, path, token, user_id), user_id

    def _user_id_of(self, name_or_id: str) -> str:
        return self.world.user_by_name.get(name_or_id, name_or_id)

    @staticmethod
    def _error_response(exc: AppError, rid: str) -> web.Response:
        return json_response(exc.to_dict(rid), status=exc.status)

    def _authenticate(self, request: web.Request, required: bool = True) -> dict | None:
        token = self.token_from_request(request)
        if token in self.oauth.sessions and self.oauth.live_session(token, ids.now_ms()) is None:
            oauth.end_session(self, token)  # an expired login or OAuth session signs nobody in
        user = self.world.user_of_token(token) if token else None
        if user is None and required:
            raise errors.session_expired()
        if user is not None:
            oauth.check_cookie_csrf(self, request, token)
        return user

    @staticmethod
    def token_from_request(request: web.Request) -> str:
        """The token of a request: Authorization Bearer/Token, MMAUTHTOKEN cookie, access_token."""
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        return request.cookies.get("MMAUTHTOKEN") or request.query.get("access_token", "")

    # ------------------------------------------------------------------ Python API
    def team(self, name: str) -> dict | None:
        """The Team (as served) with that name, or None."""
        tid = self.world.team_by_name.get(name)
        return copy.deepcopy(self.world.teams[tid]) if tid else None

    def user_id(self, username: str) -> str:
        """The id of a user or bot by username (KeyError if unknown)."""
        return self.world.user_by_name[username]

    def token_of(self, username: str) -> str:
        """The first access token of a user or bot."""
        uid = self.user_id(username)
        return next(tok for tok, owner in self.world.tokens.items() if owner == uid)

    def user(self, username: str) -> Any:  # SimUser; Any until demo/ and bench/ type their uses
        """The SimUser acting as ``username`` (one per user, created on first use)."""
        if username not in self._sim_users:
            self._sim_users[username] = SimUser(self, username)
        return self._sim_users[username]

    def channel(self, team: str, name: str) -> dict | None:
        """A team's channel by name (as served), or None."""
        tid = self.world.team_by_name.get(team, team if team in self.world.teams else "")
        cid = self.world.channel_by_name.get((tid, name))
        return copy.deepcopy(self.world.channels[cid]) if cid else None

    def channel_by_id(self, channel_id: str) -> dict | None:
        ch = self.world.channels.get(channel_id)
        return copy.deepcopy(ch) if ch else None

    def channel_members(self, channel_id: str) -> set[str]:
        return set(self.world.channel_members.get(channel_id, {}))

    def posts(self, channel_id: str, include_deleted: bool = False) -> list[dict]:
        """The channel's posts, oldest first, as served to clients."""
        return [copy.deepcopy(self.world.posts[pid])
                for pid in self.world.channel_post_ids(channel_id, include_deleted=include_deleted)]

    def pinned(self, channel_id: str) -> list[dict]:
        return [p for p in self.posts(channel_id) if p["is_pinned"]]

    def commands(self, team_id: str) -> list[dict]:
        """Registered (not deleted) commands of a team, with their tokens."""
        return [copy.deepcopy(c) for c in self.world.commands.values()
                if c["team_id"] == team_id and not c["delete_at"]]

    def clear_recording(self) -> None:
        self.recording.clear()

    def drop_websockets(self, username: str | None = None) -> int:
        """Reset the WebSocket connections of ``username`` (everyone's when None), like a network
        failure; returns how many were dropped.  Clients may reconnect unless blocked."""
        return websocket.drop_connections(self, None if username is None else self.user_id(username))

    def block_websockets(self, username: str, blocked: bool = True) -> None:
        """While blocked, ``username``'s open WebSockets go silent (a dead peer: events are lost)
        and new ones are refused; ``blocked=False`` lets the next connection in."""
        uid = self.user_id(username)
        (self.ws_blocked.add if blocked else self.ws_blocked.discard)(uid)
        self.world.touch()

    def advance_clock(self, seconds: float) -> int:
        """Let ``seconds`` of simulated time pass at once (edit limit, trigger ids, hooks, timestamps);
        returns the new server time in ms. The clock is process-wide and rewinds when this sandbox closes."""
        now = ids.advance_clock(seconds)
        self._advanced_clock = True
        self.world.touch()
        return now

    def now_ms(self) -> int:
        """The server's current time (wall clock plus any simulated advance), in ms."""
        return ids.now_ms()

    async def wait_for(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Re-evaluate ``fn`` after every state change until truthy; return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            fut = self.world.changed_future()
            value = fn()
            if inspect.isawaitable(value):
                value = await value
            if value:
                fut.cancel()
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                fut.cancel()
                raise TimeoutError(f"timed out after {timeout}s waiting for {_describe(fn)}")
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                pass


def _describe(fn: Callable) -> str:
    try:
        src = inspect.getsource(fn).strip()
        return src if len(src) < 300 else src[:300] + "..."
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))
