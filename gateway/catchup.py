"""Catching up over REST with what the WebSocket missed while it was down (protocol.md §4.4).

Mattermost does not replay events to a client that reconnects without resume parameters, so
after an outage the bot asks for every post changed since the last moment it knew it was in
sync (``GET /channels/{id}/posts?since=``, per channel the bot belongs to) and turns what it
finds back into the events the server would have sent: ``posted`` for new posts and
``reaction_added`` for reactions added in the meantime.  They are handed to the same dispatch
as live events, which drops anything already handled.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Mattermost answers a ``since`` query with at most this many posts and offers no paging.
SINCE_CAP = 1000


class CatchUpClient(Protocol):
    """The REST calls catch-up needs (gateway.client.MattermostClient provides them)."""

    user_id: str
    username: str

    async def my_teams(self) -> list[dict]: ...
    async def my_channels(self, team_id: str) -> list[dict]: ...
    async def channel_posts_since(self, channel_id: str, since: int) -> dict: ...
    async def post_reactions(self, post_id: str) -> list[dict]: ...
    async def get_user(self, user_id: str) -> dict: ...


Dispatch = Callable[[dict[str, Any]], Awaitable[None]]


class CatchUp:
    """Rebuilds the ``posted`` and ``reaction_added`` events a disconnected bot missed."""

    def __init__(self, client: CatchUpClient, *, parallel: int = 4) -> None:
        self.client = client
        self._parallel = parallel
        self._usernames: dict[str, str] = {}

    async def missed_events(self, since: int) -> list[dict[str, Any]]:
        """Every post created and reaction added after ``since`` (server ms) in the bot's
        channels, as WebSocket event dicts (nested values JSON-encoded like the server's), oldest first."""
        self._usernames = {}
        channels = await self._channels()
        limit = asyncio.Semaphore(self._parallel)

        async def one(channel: dict) -> list[tuple[int, dict[str, Any]]]:
            async with limit:
                return await self._channel_events(channel, since)

        found: list[tuple[int, dict[str, Any]]] = []
        for events in await asyncio.gather(*(one(channel) for channel in channels)):
            found.extend(events)
        found.sort(key=lambda item: item[0])
        return [event for _, event in found]

    async def replay(self, since: int, dispatch: Dispatch) -> int:
        """Dispatch the missed events in order; returns how many were found."""
        events = await self.missed_events(since)
        for event in events:
            await dispatch(event)
        return len(events)

    async def _channels(self) -> list[dict]:
        by_id: dict[str, dict] = {}
        for team in await self.client.my_teams():
            # Direct and group channels come back once per team; keep one copy.
            for channel in await self.client.my_channels(team["id"]):
                if not channel.get("delete_at"):
                    by_id.setdefault(channel["id"], channel)
        return list(by_id.values())

    async def _channel_events(self, channel: dict, since: int) -> list[tuple[int, dict[str, Any]]]:
        post_list = await self.client.channel_posts_since(channel["id"], since)
        posts = (post_list or {}).get("posts") or {}
        if len(posts) >= SINCE_CAP:
            log.warning("catch-up: ~%s has %d changed posts since %d (the server's cap); older ones may be missed",
                        channel.get("name", channel["id"]), len(posts), since)
        events: list[tuple[int, dict[str, Any]]] = []
        for post in posts.values():
            if post.get("delete_at"):
                continue
            if int(post.get("create_at") or 0) > since and not str(post.get("type") or "").startswith("system_") \
                    and post.get("user_id") != self.client.user_id:
                events.append((int(post["create_at"]), await self._posted(channel, post)))
            for reaction in await self._reactions(post):
                if int(reaction.get("create_at") or 0) > since and not reaction.get("delete_at"):
                    reaction = {**reaction, "channel_id": reaction.get("channel_id") or channel["id"]}
                    events.append((int(reaction["create_at"]), {
                        "event": "reaction_added", "data": {"reaction": json.dumps(reaction)},
                        "broadcast": _broadcast(channel["id"]), "replayed": True}))
        return events

    async def _reactions(self, post: dict) -> list[dict]:
        metadata = post.get("metadata") or {}
        if "reactions" in metadata:
            return list(metadata.get("reactions") or [])
        if post.get("has_reactions"):
            return await self.client.post_reactions(post["id"])
        return []

    async def _posted(self, channel: dict, post: dict) -> dict[str, Any]:
        data: dict[str, Any] = {
            "post": json.dumps(post), "channel_type": channel.get("type", ""),
            "channel_display_name": channel.get("display_name", ""), "channel_name": channel.get("name", ""),
            "sender_name": "@" + await self._username(post.get("user_id", "")), "team_id": channel.get("team_id", ""),
        }
        if self.client.username and f"@{self.client.username}" in str(post.get("message", "")):
            data["mentions"] = json.dumps([self.client.user_id])
        return {"event": "posted", "data": data, "broadcast": _broadcast(channel["id"]), "replayed": True}

    async def _username(self, user_id: str) -> str:
        if user_id not in self._usernames:
            try:
                self._usernames[user_id] = str((await self.client.get_user(user_id)).get("username", ""))
            except Exception:  # noqa: BLE001  (a name only feeds mmpy_bot's own-message filter; the post still counts)
                log.warning("catch-up: cannot look up user %s", user_id)
                return ""
        return self._usernames[user_id]


def _broadcast(channel_id: str) -> dict[str, Any]:
    return {"omit_users": None, "user_id": "", "channel_id": channel_id, "team_id": "",
            "connection_id": "", "omit_connection_id": ""}
