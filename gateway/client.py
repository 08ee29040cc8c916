"""The one outbound Mattermost client: mattermostautodriver's AsyncDriver (over aiohttp, see
gateway.transport) with timeouts and retries."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mattermostautodriver import AsyncDriver

from gateway.errors import MattermostError
from gateway.models import (
    Channel,
    ChannelMember,
    ClientConfig,
    FileInfo,
    Post,
    PostList,
    Reaction,
    Team,
    TeamMember,
    User,
)
from gateway.transport import AiohttpClient

log = logging.getLogger(__name__)
T = TypeVar("T")

_IDEMPOTENT_METHODS = {"GET", "PUT", "DELETE", "HEAD"}
# Mattermost remembers a pending_post_id for 30 s (app/post.go); retries of one post stay well inside.
_POST_RETRY_WINDOW = 20.0
# Trigger ids are short-lived (3 s on older servers): a dialog is either opened quickly or not at all.
_DIALOG_RETRY_WINDOW = 2.5
# How far the server's clock may be behind ours when recognising a channel this call created.
_CLOCK_SKEW_MS = 60_000
# Direct channels remembered (one small dict per person the bot talked to).
_DIRECT_CHANNELS_KEPT = 10_000
_EPHEMERAL_PERMISSION = "create_post_ephemeral"


class MattermostClient:
    """All REST calls to Mattermost go through here.

    Every call has a timeout; calls that failed without effect (429, or 5xx/connection errors on
    idempotent methods) are retried with exponential backoff and jitter. Two creations are made
    safe to repeat as well: posts carry a fresh ``pending_post_id`` (Mattermost returns the post
    it already made for a repeated id), and a channel whose creation answer was lost is recognised
    and adopted when the retry finds its name taken (see :meth:`create_channel`).
    """

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, max_attempts: int = 4,
                 backoff_base: float = 0.2, backoff_cap: float = 5.0) -> None:
        scheme, _, rest = url.partition("://")
        host_port, _, basepath = rest.partition("/")
        host, _, port = host_port.partition(":")
        self.base_url = url.rstrip("/")
        self.driver = AsyncDriver(
            {
                "scheme": scheme,
                "url": host,
                "port": int(port) if port else (443 if scheme == "https" else 80),
                "basepath": ("/" + basepath.rstrip("/")) if basepath else "",
                "token": token,
                "request_timeout": timeout,
                "timeout": timeout,
            },
            client_cls=AiohttpClient,
        )
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.user_id = ""
        self.username = ""
        self.server_version = ""
        #: Whether Mattermost lets this bot post ephemeral messages (``create_post_ephemeral``, a system
        #: permission: only system admins have it by default); learned at login, and from a refusal.
        self.may_post_ephemeral = False
        self._last_pending_ms = 0
        self._pending_tag = secrets.token_hex(4)  # this client's own: see _pending_post_id
        # user id -> the bot's direct channel with them. A DM channel's id never changes (its name is
        # the two user ids, app/channel.go GetOrCreateDirectChannel), so asking again would only repeat.
        self._direct_channels: OrderedDict[str, Channel] = OrderedDict()

    # Life cycle ----------------------------------------------------------------------------

    async def login(self) -> User:
        """Identify the bot (GET /users/me), read the server version from X-Version-Id, and learn its rights."""
        self.driver.client.token = self.driver.options["token"]
        response = await self.call("GET", lambda: self.driver.client.make_request("get", "/api/v4/users/me"))
        me = User.model_validate(response.json())
        self.driver.client.userid = self.user_id = me.id
        self.driver.client.username = self.username = me.username
        self.server_version = _server_version(response.headers.get("X-Version-Id", ""))
        self.may_post_ephemeral = await self._may_post_ephemeral(me.role_names)
        return me

    async def _may_post_ephemeral(self, role_names: list[str]) -> bool:
        """Whether the bot's system roles grant ``create_post_ephemeral`` — the one permission
        api4/post.go ``createEphemeralPost`` checks (``SessionHasPermissionTo``, system scope, so the
        bot's own roles decide; system_admin has every permission). Asked once, with the roles'
        permissions (POST /roles/names, open to any session); if that cannot be read, from the names."""
        if "system_admin" in role_names:
            return True
        if not role_names:
            return False
        try:
            roles = await self.call("POST", lambda: self.driver.roles.get_roles_by_names(role_names), idempotent=True)
        except MattermostError as error:
            log.warning("could not read the bot's roles (%s %s); assuming it may not post ephemeral messages",
                        error.status, error.error_id)
            return False
        return any(_EPHEMERAL_PERMISSION in (role.get("permissions") or []) for role in roles or []
                   if isinstance(role, dict))

    async def close(self) -> None:
        await self.driver.client.aclose()

    # The retry loop ------------------------------------------------------------------------

    async def call(self, method: str, operation: Callable[[], Awaitable[T]], *, idempotent: bool | None = None,
                   retry_window: float | None = None) -> T:
        """Run one REST operation with retries; ``idempotent`` defaults from the HTTP method.

        ``retry_window`` (seconds from the first attempt) bounds when a new attempt may start.
        """
        safe_to_repeat = method.upper() in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        first_started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                return await operation()
            except MattermostError as error:
                # A 429 was rejected before any effect, so even a POST may be repeated.
                may_retry = error.status == 429 or (error.retryable and safe_to_repeat)
                if not may_retry or attempt >= self.max_attempts:
                    raise
                delay = min(error.retry_after if error.retry_after is not None else self._backoff(attempt),
                            self.backoff_cap)
                if retry_window is not None and time.monotonic() - first_started + delay > retry_window:
                    raise
                log.warning("mattermost %s %s failed (%s %s) after %.0f ms; retry %d in %.2f s",
                            error.method or method, error.path, error.status, error.error_id,
                            (time.perf_counter() - started) * 1000, attempt, delay)
                await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    # Endpoints the bot uses ----------------------------------------------------------------
    # Thin wrappers so the rest of the code never builds paths or JSON for Mattermost itself.

    async def ping(self, timeout: float = 2.0) -> bool:
        """Whether Mattermost answers at all, once and quickly (api4/system.go ``getSystemPing``: no
        session needed); for /healthz, never retried."""
        try:
            async with asyncio.timeout(timeout):
                response = await self.driver.client.make_request("get", "/api/v4/system/ping")
        except Exception:
            return False
        return 200 <= response.status_code < 300

    async def client_config(self) -> ClientConfig:
        """The server's client configuration (api4/config.go ``getClientConfig``: any signed-in session,
        bots included, gets config/client.go ``GenerateClientConfig``, e.g. ``PostEditTimeLimit``)."""
        return ClientConfig.model_validate(await self.call(
            "GET", lambda: self.driver.system.get_client_config(params={"format": "old"})))

    async def my_teams(self) -> list[Team]:
        return [Team.model_validate(team) for team in
                await self.call("GET", lambda: self.driver.teams.get_teams_for_user("me")) or []]

    async def get_user(self, user_id: str) -> User:
        return User.model_validate(await self.call("GET", lambda: self.driver.users.get_user(user_id)))

    async def get_user_by_username(self, username: str) -> User:
        return User.model_validate(await self.call(
            "GET", lambda: self.driver.users.get_user_by_username(username)))

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.model_validate(await self.call("GET", lambda: self.driver.channels.get_channel(channel_id)))

    async def get_channel_member(self, channel_id: str, user_id: str) -> ChannelMember:
        return ChannelMember.model_validate(await self.call(
            "GET", lambda: self.driver.channels.get_channel_member(channel_id, user_id)))

    async def roles_grant(self, role_names: list[str], permission: str) -> bool:
        """``RolesGrantPermission``: whether any of the roles (read with POST /roles/names, open to
        any session) has ``permission``; system_admin has every permission."""
        if "system_admin" in role_names:
            return True
        names = [name for name in role_names if name]
        if not names:
            return False
        roles = await self.call("POST", lambda: self.driver.roles.get_roles_by_names(names), idempotent=True)
        return any(permission in (role.get("permissions") or []) for role in roles or [] if isinstance(role, dict))

    async def get_team_member(self, team_id: str, user_id: str) -> TeamMember:
        return TeamMember.model_validate(await self.call(
            "GET", lambda: self.driver.teams.get_team_member(team_id, user_id)))

    async def channel_members(self, channel_id: str, *, page: int = 0, per_page: int = 200) -> list[ChannelMember]:
        return [ChannelMember.model_validate(member) for member in await self.call(
            "GET", lambda: self.driver.channels.get_channel_members(
                channel_id, params={"page": page, "per_page": per_page})) or []]

    async def users_by_ids(self, user_ids: list[str]) -> list[User]:
        if not user_ids:
            return []
        return [User.model_validate(user) for user in await self.call(
            "POST", lambda: self.driver.users.get_users_by_ids(user_ids), idempotent=True) or []]

    async def channel_by_name(self, team_id: str, name: str) -> Channel:
        return Channel.model_validate(await self.call(
            "GET", lambda: self.driver.channels.get_channel_by_name(team_id, name)))

    async def create_channel(self, team_id: str, name: str, display_name: str, *, private: bool,
                             purpose: str = "") -> Channel:
        """Create a channel; retried after 5xx or a lost answer without ever making two.

        When an attempt may have created the channel without our hearing, a later attempt that
        finds the name taken adopts that channel if it is the one we just made (see
        :meth:`_channel_we_just_created`); otherwise the "exists" error is raised as usual.
        """
        body = {"team_id": team_id, "name": name, "display_name": display_name,
                "type": "P" if private else "O", "purpose": purpose}
        started_ms = int(time.time() * 1000)
        outcome_unknown = False

        async def attempt() -> Channel:
            nonlocal outcome_unknown
            try:
                return Channel.model_validate(await self.driver.channels.create_channel(body))
            except MattermostError as error:
                if error.retryable and error.status != 429:
                    outcome_unknown = True
                elif outcome_unknown and error.status == 400 and "exists" in error.error_id:
                    adopted = await self._channel_we_just_created(body, started_ms)
                    if adopted is not None:
                        log.info("adopted channel %s created by an attempt whose answer was lost", adopted.id)
                        return adopted
                raise

        return await self.call("POST", attempt, idempotent=True)

    async def _channel_we_just_created(self, body: dict, started_ms: int) -> Channel | None:
        """The channel named ``body["name"]`` if this very creation made it: created by us, after the
        call began, with exactly what we sent, and nobody but us in it yet (the caller adds people
        only after creation returns; an older incident's channel has its commander in it)."""
        try:
            channel = await self.channel_by_name(body["team_id"], body["name"])
        except MattermostError as error:
            if error.status in (403, 404):
                return None
            raise
        same = (channel.creator_id == self.user_id and not channel.delete_at
                and channel.create_at >= started_ms - _CLOCK_SKEW_MS
                and (channel.type, channel.display_name, channel.purpose)
                == (body["type"], body["display_name"], body["purpose"]))
        if not same:
            return None
        members = await self.channel_members(channel.id, per_page=2)
        return channel if [m.user_id for m in members] == [self.user_id] else None

    async def archive_channel(self, channel_id: str) -> None:
        # Archiving an archived channel is harmless, so this may be repeated.
        await self.call("DELETE", lambda: self.driver.channels.delete_channel(channel_id))

    async def add_channel_member(self, channel_id: str, user_id: str) -> ChannelMember:
        # Adding an existing member is a no-op in Mattermost, so this may be repeated.
        return ChannelMember.model_validate(await self.call("POST", lambda: self.driver.channels.add_channel_member(
            channel_id, {"user_id": user_id}), idempotent=True))

    async def remove_channel_member(self, channel_id: str, user_id: str) -> None:
        # Removing someone who already left is a 404 the caller may ignore, so this may be repeated.
        await self.call("DELETE", lambda: self.driver.channels.remove_user_from_channel(channel_id, user_id),
                        idempotent=True)

    async def get_post(self, post_id: str) -> Post:
        return Post.model_validate(await self.call("GET", lambda: self.driver.posts.get_post(post_id)))

    async def pin_post(self, post_id: str) -> None:
        await self.call("POST", lambda: self.driver.posts.pin_post(post_id), idempotent=True)

    async def create_ephemeral_post(self, user_id: str, channel_id: str, message: str,
                                    props: dict | None = None) -> Post:
        """Post a message only ``user_id`` sees; callers ask only when :attr:`may_post_ephemeral`.
        A 403 (the permission was taken away since login) is remembered, then raised."""
        post: dict[str, Any] = {"channel_id": channel_id, "message": message}
        if props:
            post["props"] = props
        # Ephemeral posts are not stored: after a lost answer a retry may show the text twice,
        # which beats telling the user an action failed when it did not.
        try:
            return Post.model_validate(await self.call("POST", lambda: self.driver.posts.create_post_ephemeral(
                {"user_id": user_id, "post": post}), idempotent=True))
        except MattermostError as error:
            if error.status == 403:
                self.may_post_ephemeral = False
            raise

    async def execute_command(self, channel_id: str, command: str, team_id: str = "") -> dict:
        body = {"channel_id": channel_id, "command": command}
        if team_id:
            body["team_id"] = team_id
        return await self.call("POST", lambda: self.driver.commands.execute_command(body))

    async def list_commands(self, team_id: str) -> list[dict]:
        return await self.call("GET", lambda: self.driver.commands.list_commands(
            params={"team_id": team_id, "custom_only": "true"}))

    async def create_command(self, command: dict) -> dict:
        return await self.call("POST", lambda: self.driver.commands.create_command(command))

    async def update_command(self, command_id: str, command: dict) -> dict:
        return await self.call("PUT", lambda: self.driver.commands.update_command(command_id, command))

    async def create_post(self, channel_id: str, message: str, *, props: dict | None = None,
                          root_id: str = "", file_ids: list[str] | None = None) -> Post:
        """Create one post; safe to retry because every logical post gets its own pending_post_id."""
        body: dict[str, Any] = {"channel_id": channel_id, "message": message,
                                "pending_post_id": self._pending_post_id()}
        if props:
            body["props"] = props
        if root_id:
            body["root_id"] = root_id
        if file_ids:
            body["file_ids"] = file_ids
        return Post.model_validate(await self.call("POST", lambda: self.driver.posts.create_post(body),
                                                   idempotent=True, retry_window=_POST_RETRY_WINDOW))

    def _pending_post_id(self) -> str:
        """The web app's ``<user id>:<ms>``, made unique within this client, and across replicas by a
        random part of this client's own: Mattermost keys its create-post deduplication on the raw
        string, globally, for 30 s (server/channels/app/post.go ``deduplicateCreatePost``), so two
        replicas posting in the same millisecond would otherwise get each other's post back."""
        self._last_pending_ms = max(int(time.time() * 1000), self._last_pending_ms + 1)
        return f"{self.user_id}:{self._last_pending_ms}:{self._pending_tag}"

    async def patch_post(self, post_id: str, patch: dict) -> Post:
        return Post.model_validate(await self.call("PUT", lambda: self.driver.posts.patch_post(post_id, patch)))

    async def delete_post(self, post_id: str) -> None:
        # Deleting an already deleted post answers 404, which callers may treat as done.
        await self.call("DELETE", lambda: self.driver.posts.delete_post(post_id))

    async def direct_channel_with(self, user_id: str) -> Channel:
        """The bot's direct channel with ``user_id`` (asked once per person, then remembered)."""
        known = self._direct_channels.get(user_id)
        if known is not None:
            self._direct_channels.move_to_end(user_id)
            return known
        # Creating a DM that exists returns the existing one, so repeating is harmless.
        channel = Channel.model_validate(await self.call(
            "POST", lambda: self.driver.channels.create_direct_channel([self.user_id, user_id]), idempotent=True))
        if channel.id:
            self._direct_channels[user_id] = channel
            while len(self._direct_channels) > _DIRECT_CHANNELS_KEPT:
                self._direct_channels.popitem(last=False)
        return channel

    async def upload_file(self, channel_id: str, filename: str, data: bytes,
                          content_type: str = "application/octet-stream") -> FileInfo:
        """Upload one file to a channel (multipart); returns its FileInfo, to attach via ``file_ids``."""
        # A repeated upload only leaves an unattached file behind, which nobody sees.
        result = await self.call("POST", lambda: self.driver.files.upload_file(
            files={"files": (filename, data, content_type)}, data={"channel_id": channel_id}), idempotent=True)
        return FileInfo.model_validate(result["file_infos"][0])

    async def file_info(self, file_id: str) -> FileInfo:
        return FileInfo.model_validate(await self.call("GET", lambda: self.driver.files.get_file_info(file_id)))

    async def file_content(self, file_id: str) -> bytes:
        # Raw bytes whatever the content type (the autodriver would parse a JSON file).
        response = await self.call("GET", lambda: self.driver.client.make_request("get", f"/api/v4/files/{file_id}"))
        return response.content

    async def channel_posts(self, channel_id: str, *, before: str = "", page: int = 0,
                            per_page: int = 200) -> PostList:
        """One PostList page, newest first; ``before`` anchors paging so new posts do not shift pages."""
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        if before:
            params["before"] = before
        return PostList.model_validate(await self.call(
            "GET", lambda: self.driver.posts.get_posts_for_channel(channel_id, params=params)) or {})

    async def my_channels(self, team_id: str) -> list[Channel]:
        """The bot's channels in a team, direct and group messages included."""
        return [Channel.model_validate(channel) for channel in await self.call(
            "GET", lambda: self.driver.channels.get_channels_for_team_for_user("me", team_id)) or []]

    async def channel_posts_since(self, channel_id: str, since: int) -> PostList:
        """PostList of every post whose update_at is after ``since`` (ms): new, edited, reacted-to, deleted."""
        return PostList.model_validate(await self.call(
            "GET", lambda: self.driver.posts.get_posts_for_channel(channel_id, params={"since": since})) or {})

    async def post_reactions(self, post_id: str) -> list[Reaction]:
        return [Reaction.model_validate(reaction) for reaction in
                await self.call("GET", lambda: self.driver.reactions.get_reactions(post_id)) or []]

    async def upload_file_stream(self, channel_id: str, filename: str, stream: Any,
                                 content_type: str = "text/csv") -> FileInfo:
        """Upload an open binary file, streamed rather than read into memory (rewound for each attempt)."""
        def send():
            stream.seek(0)
            return self.driver.files.upload_file(files={"files": (filename, stream, content_type)},
                                                 data={"channel_id": channel_id})
        response = await self.call("POST", send, idempotent=True)
        return FileInfo.model_validate(response["file_infos"][0])

    async def open_dialog(self, trigger_id: str, url: str, dialog: dict) -> None:
        # Opening the same dialog twice shows it once; trigger ids expire within seconds, so
        # retries happen only briefly.
        await self.call("POST", lambda: self.driver.integration_actions.open_interactive_dialog(
            {"trigger_id": trigger_id, "url": url, "dialog": dialog}), idempotent=True,
            retry_window=_DIALOG_RETRY_WINDOW)


def _server_version(version_header: str) -> str:
    """'9.11.0.9.11.0.abc.false' style X-Version-Id -> '9.11.0'."""
    parts = version_header.split(".")
    return ".".join(parts[:3]) if len(parts) >= 3 else version_header
