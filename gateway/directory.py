"""What Mattermost knows about people and channels, asked through the one client, briefly cached.

Permission checks need facts only Mattermost has (is this user a system admin, a member of this
team or channel?).  Membership answers are cached for a few seconds only, so a user removed from a
channel loses access almost at once; the cache is dropped for a channel whenever the bot changes
its membership itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from domain import Actor
from gateway.client import MattermostClient
from gateway.errors import MattermostError

_USER_TTL_S = 60.0
_MEMBERSHIP_TTL_S = 5.0


class Directory:
    """User, team and channel lookups for permission checks and rendering."""

    def __init__(self, client: MattermostClient) -> None:
        self.client = client
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}
        self._members: dict[tuple[str, str], tuple[float, bool]] = {}

    async def user(self, user_id: str) -> dict[str, Any]:
        cached = self._users.get(user_id)
        if cached and time.monotonic() - cached[0] < _USER_TTL_S:
            return cached[1]
        user = await self.client.get_user(user_id)
        self._users[user_id] = (time.monotonic(), user)
        return user

    async def users(self, user_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The users with these ids, in order; one request for those not cached, unknown ids left out."""
        wanted = list(dict.fromkeys(user_id for user_id in user_ids if user_id))
        now = time.monotonic()
        missing = [user_id for user_id in wanted
                   if user_id not in self._users or now - self._users[user_id][0] >= _USER_TTL_S]
        if missing:
            for user in await self.client.users_by_ids(missing):
                self._users[user["id"]] = (now, user)
        return [self._users[user_id][1] for user_id in wanted if user_id in self._users]

    async def username(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        try:
            return (await self.user(user_id)).get("username", "")
        except MattermostError:
            return ""

    async def user_by_username(self, username: str) -> dict[str, Any] | None:
        """The user with this username (leading @ ignored), or None when there is none."""
        name = username.strip().lstrip("@").lower()
        if not name:
            return None
        try:
            user = await self.client.get_user_by_username(name)
        except MattermostError as error:
            if error.status in (400, 404):
                return None
            raise
        self._users[user["id"]] = (time.monotonic(), user)
        return user

    async def team_user_by_username(self, team_id: str, username: str) -> dict[str, Any] | None:
        """The active user with this username if they are in ``team_id``; None otherwise.

        The bot sees the users of every team it is in; someone asking in one team must not learn
        who exists in another, so a user outside the team is answered exactly like a missing one."""
        user = await self.user_by_username(username)
        if user is None or user.get("delete_at") or not await self.is_team_member(team_id, user["id"]):
            return None
        return user

    async def actor(self, user_id: str) -> Actor:
        user = await self.user(user_id)
        return Actor(user_id=user_id, is_system_admin="system_admin" in str(user.get("roles", "")).split())

    async def actor_in_team(self, team_id: str, user_id: str, *, vouched: bool = False) -> tuple[Actor, bool]:
        """The actor and whether they are a member of ``team_id``, asked at the same time.

        ``vouched``: Mattermost already guarantees the user may act in the team — the team of a
        slash command (api4/command.go ``executeCommand`` runs a command only for a user with
        ``create_post``/``use_slash_commands`` in the channel, and takes the team from the channel;
        in a direct message it checks the session's team membership). A system admin may pass that
        check without being a team member; every decision treats admins as allowed anyway.
        """
        if vouched:
            return await self.actor(user_id), True
        actor, is_member = await asyncio.gather(self.actor(user_id), self.is_team_member(team_id, user_id))
        return actor, is_member

    async def is_bot(self, user_id: str) -> bool:
        return bool((await self.user(user_id)).get("is_bot"))

    async def is_channel_member(self, channel_id: str, user_id: str) -> bool:
        key = (channel_id, user_id)
        cached = self._members.get(key)
        if cached and time.monotonic() - cached[0] < _MEMBERSHIP_TTL_S:
            return cached[1]
        try:
            await self.client.get_channel_member(channel_id, user_id)
            member = True
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            member = False
        self._members[key] = (time.monotonic(), member)
        return member

    async def is_team_member(self, team_id: str, user_id: str) -> bool:
        try:
            member = await self.client.get_team_member(team_id, user_id)
        except MattermostError as error:
            if error.status not in (403, 404):
                raise
            return False
        return not member.get("delete_at")

    def forget_channel(self, channel_id: str) -> None:
        for key in [key for key in self._members if key[0] == channel_id]:
            del self._members[key]

    async def channel_member_ids(self, channel_id: str) -> list[str]:
        """Every member of a channel (all pages)."""
        members: list[str] = []
        page = 0
        while True:
            batch = await self.client.channel_members(channel_id, page=page, per_page=200)
            members.extend(member["user_id"] for member in batch)
            if len(batch) < 200:
                return members
            page += 1
