"""PostList construction with Mattermost's paging and ``since`` semantics."""

from __future__ import annotations

import random
from collections.abc import Mapping

from . import errors
from .ids import is_valid_id
from .state import World

# store/sqlstore/post_store.go GetPostsSince: the changed rows are picked with ``LIMIT 1000``.
SINCE_CAP = 1000
# strconv.ParseBool, which api4 getPostsForChannel uses for its boolean query flags.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}


def _post_list(world: World, order: list[str], *, next_id: str = "", prev_id: str = "",
               has_next: bool = False) -> dict:
    posts = {pid: world.posts[pid] for pid in order}
    # Thread roots of listed replies ride along in `posts` without appearing in `order`.
    for pid in order:
        root_id = world.posts[pid]["root_id"]
        if root_id and root_id not in posts and root_id in world.posts:
            posts[root_id] = world.posts[root_id]
    return {"order": order, "posts": posts, "next_post_id": next_id, "prev_post_id": prev_id,
            "has_next": has_next, "first_inaccessible_post_time": 0}


def channel_post_list(world: World, channel_id: str, query: Mapping[str, str],
                      include_deleted: bool = False) -> dict:
    """GET /channels/{id}/posts: page/per_page, before/after, or since."""
    since = 0
    if query.get("since", ""):
        try:
            since = int(query["since"])
        except ValueError:
            raise errors.invalid_url_param("since") from None
    # api4 getPostsForChannel: only ``since > 0`` selects GetPostsSince (then before/after/page are
    # ignored); ``since=0`` lists the newest page like no ``since`` at all.
    if since > 0:
        return posts_since(world, channel_id, since, collapsed=query.get("collapsedThreads", "") in _TRUE)
    try:
        page = int(query.get("page", "0"))
        per_page = min(int(query.get("per_page", "60")), 200)
    except ValueError:
        raise errors.invalid_url_param("page") from None
    if page < 0 or per_page < 0:
        raise errors.invalid_url_param("page")
    before, after = query.get("before", ""), query.get("after", "")
    if before and not is_valid_id(before):
        raise errors.invalid_url_param("before")
    if after and not is_valid_id(after):
        raise errors.invalid_url_param("after")
    start, end = page * per_page, (page + 1) * per_page
    if not before and not after:
        # The common case walks back from the newest post only as far as the page needs.
        collected: list[str] = []
        for pid in reversed(world.channel_posts[channel_id]):
            if include_deleted or not world.posts[pid]["delete_at"]:
                collected.append(pid)
                if len(collected) > end:
                    break
        window = collected[start:end]
        has_more = len(collected) > end
        next_id = collected[start - 1] if window and start > 0 else ""
        prev_id = collected[end] if window and has_more else ""
        return _post_list(world, window, next_id=next_id, prev_id=prev_id, has_next=has_more)
    oldest_first = world.channel_post_ids(channel_id, include_deleted=include_deleted)
    newest_first = oldest_first[::-1]
    # store getPostsAround: ``CreateAt < / > (SELECT CreateAt FROM Posts WHERE Id = anchor)``, so
    # an unknown anchor gives nothing, and posts made in the same millisecond as the anchor are
    # in neither direction (a client paging with before= must allow for that).
    anchor = world.posts.get(after or before)
    if anchor is None:
        return _post_list(world, [])
    at = anchor["create_at"]
    if after:
        newer = [pid for pid in oldest_first if world.posts[pid]["create_at"] > at]
        window = newer[start:end][::-1]
        has_more = len(newer) > end
    else:
        pool = [pid for pid in newest_first if world.posts[pid]["create_at"] < at]
        window = pool[start:end]
        has_more = len(pool) > end
    next_id = prev_id = ""
    if window:
        i_newest = newest_first.index(window[0])
        i_oldest = newest_first.index(window[-1])
        next_id = newest_first[i_newest - 1] if i_newest > 0 else ""
        prev_id = newest_first[i_oldest + 1] if i_oldest + 1 < len(newest_first) else ""
    return _post_list(world, window, next_id=next_id, prev_id=prev_id, has_next=has_more)


def posts_since(world: World, channel_id: str, since: int, *, collapsed: bool = False) -> dict:
    """``GET /channels/{id}/posts?since=``: rows changed after ``since``, as the store selects them.

    store/sqlstore/post_store.go ``GetPostsSince``: ``UpdateAt > since AND ChannelId = ?`` with
    ``LIMIT 1000`` and no ORDER BY inside the limited query, so past the cap the rows kept are
    arbitrary (a seeded shuffle here, never "oldest first").  Deleted posts and the edit-history
    copies (``original_id`` set) count and are served too; the thread roots of the selected rows
    join ``posts`` (and ``order`` only when they changed too); the result is sorted newest first.
    ``getPostsSinceCollapsedThreads`` (``collapsedThreads=true``) keeps root rows only and does
    order them, ``CreateAt DESC LIMIT 1000``.
    Each live post comes with its current reactions in ``metadata`` (api4 ``getPostsForChannel``
    hands the list to app ``PreparePostListForClient``), so a reaction taken off shows as a post
    whose ``update_at`` moved and whose reactions no longer hold it (store reaction ``Delete``
    bumps the post's ``UpdateAt``) — what the bot's catch-up reads after an outage.
    """
    rows = world.channel_posts[channel_id] + world.post_history.get(channel_id, [])
    changed = [pid for pid in rows if world.posts[pid]["update_at"] > since]
    if collapsed:
        changed = [pid for pid in changed if not world.posts[pid]["root_id"]]
        changed.sort(key=lambda pid: world.posts[pid]["create_at"], reverse=True)
        picked = changed[:SINCE_CAP]
    else:
        if len(changed) > SINCE_CAP:
            random.Random(f"{channel_id}:{since}").shuffle(changed)
        picked = changed[:SINCE_CAP]
        roots = {world.posts[pid]["root_id"] for pid in picked} - {""} - set(picked)
        picked += [rid for rid in roots if rid in world.posts]
    picked.sort(key=lambda pid: world.posts[pid]["create_at"], reverse=True)
    order = [pid for pid in picked if world.posts[pid]["update_at"] > since]
    posts = {pid: world.posts[pid] for pid in picked}
    return {"order": order, "posts": posts, "next_post_id": "", "prev_post_id": "",
            "has_next": False, "first_inaccessible_post_time": 0}


def pinned_post_list(world: World, channel_id: str) -> dict:
    order = [pid for pid in reversed(world.channel_posts[channel_id])
             if world.posts[pid]["is_pinned"] and not world.posts[pid]["delete_at"]]
    return _post_list(world, order)


def thread_post_list(world: World, root_id: str) -> dict:
    root = world.posts[root_id]
    order = [pid for pid in reversed(world.channel_posts[root["channel_id"]])
             if (pid == root_id or world.posts[pid]["root_id"] == root_id)
             and not world.posts[pid]["delete_at"]]
    return _post_list(world, order)
