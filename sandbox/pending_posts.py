"""Mattermost's create-post deduplication by ``pending_post_id``.

The real server (``deduplicateCreatePost`` in app/post.go) keeps every non-empty
``pending_post_id`` it sees for 30 seconds in a global LRU cache of 25,000 entries:
a repeat while the first request is still being saved gets 500
``api.post.deduplicate_create_post.pending``; a repeat after it was saved gets 201 with the post
already created (read back from the database: ``pending_post_id`` empty, no ``metadata``) unless
the caller may not read it, in which case a new post is made; a failed save forgets the id so an
immediate retry creates the post. This is what makes retrying ``POST /posts`` safe.
"""

from __future__ import annotations

import time
from collections import OrderedDict

TTL_SECONDS = 30.0
CAPACITY = 25_000
_IN_FLIGHT = ""


class PendingPostCache:
    """pending_post_id -> post id ("" while the first request is being saved), with TTL and LRU."""

    def __init__(self, ttl: float = TTL_SECONDS, capacity: int = CAPACITY) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def claim(self, pending_post_id: str) -> str | None:
        """None when this request should create the post (the id is now claimed); otherwise what
        the earlier request left: a post id, or "" while it is still in flight."""
        if not pending_post_id:
            return None
        now = time.monotonic()
        entry = self._entries.get(pending_post_id)
        if entry is not None and entry[1] > now:
            self._entries.move_to_end(pending_post_id)
            return entry[0]
        self._put(pending_post_id, _IN_FLIGHT, now)
        return None

    def saved(self, pending_post_id: str, post_id: str) -> None:
        if pending_post_id:
            self._put(pending_post_id, post_id, time.monotonic())

    def failed(self, pending_post_id: str) -> None:
        self._entries.pop(pending_post_id, None)

    def _put(self, key: str, value: str, now: float) -> None:
        self._entries[key] = (value, now + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
