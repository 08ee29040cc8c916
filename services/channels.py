"""Whether someone may post in a channel, asked as the server decides it for a post — one check for
the playbook settings (a broadcast channel is configured) and for each status update's copies (it is
sent).

The server's rule (api4/post.go ``createPost`` → app/authorization.go
``SessionHasPermissionToChannel(create_post)``): a channel member may post when one of their
channel roles grants ``create_post``. The membership and its roles come from
``GET /channels/{id}/members/{user_id}`` (which needs read_channel: the bot asks from inside the
channel); whether the roles grant the permission from ``POST /roles/names``. A moderated channel
(a channel scheme whose user role lacks create_post) is therefore refused like the server refuses
the post — not guessed from role names.

**Cost.** The roles' answer is cached per set of role names for :data:`ROLES_TTL_MS` (most members
share a few role sets, e.g. ``channel_user``): per check, one membership read, plus one
``POST /roles/names`` when that role set was not asked in the last 30 s. This is sound because a
moderation that takes create_post away first gives the channel its own scheme roles (new names,
so a new cache entry, asked at once); only a later edit of an existing scheme role's permissions
is seen up to 30 s late.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.api import MattermostAPI
from gateway.errors import MattermostError
from gateway.models import ChannelMember

#: How long a roles answer (role set → grants create_post) is reused.
ROLES_TTL_MS = 30_000
#: Role sets remembered at most (a bounded cache: the oldest answer is dropped).
ROLES_CACHE_MAX = 256


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class ChannelPosting:
    """The one "may this person post in that channel" check (see the module docstring)."""

    def __init__(self, client: MattermostAPI, *, ttl_ms: int = ROLES_TTL_MS,
                 clock: Callable[[], int] = _monotonic_ms) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self.clock = clock
        self._grants: dict[frozenset[str], tuple[int, bool]] = {}

    async def member(self, channel_id: str, user_id: str) -> ChannelMember | None:
        """The user's membership of the channel (with its roles), or None when not a member (or the
        bot may not read it: 403/404)."""
        try:
            return await self.client.get_channel_member(channel_id, user_id)
        except MattermostError as error:
            if error.status in (403, 404):
                return None
            raise

    async def roles_may_post(self, roles: str) -> bool:
        """Whether channel roles (a member's ``roles``) grant ``create_post``; cached per role set."""
        names = frozenset(roles.split())
        if not names:
            return False
        now = self.clock()
        cached = self._grants.get(names)
        if cached is not None and now - cached[0] < self.ttl_ms:
            return cached[1]
        granted = await self.client.roles_grant(sorted(names), "create_post")
        self._grants.pop(names, None)
        if len(self._grants) >= ROLES_CACHE_MAX:
            self._grants.pop(next(iter(self._grants)))
        self._grants[names] = (now, granted)
        return granted

    async def may_post(self, channel_id: str, user_id: str) -> tuple[bool, bool]:
        """(is a member, may post) of ``user_id`` in ``channel_id``, asked now."""
        member = await self.member(channel_id, user_id)
        if member is None:
            return False, False
        return True, await self.roles_may_post(member.roles)


__all__ = ["ROLES_TTL_MS", "ChannelPosting"]
