"""PostList construction with Mattermost's paging and ``since`` semantics."""

from __future__ import annotations

from typing import Mapping

from . import errors
from .ids import is_valid_id
from .state import World

SINCE_CAP = 1000


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
    if "since" in query:
        try:
            since = int(query["since"])
        except ValueError:
            raise errors.invalid_url_param("since") from None
        changed = [pid for pid in world.channel_posts[channel_id] if world.posts[pid]["update_at"] > since]
        order = list(reversed(changed))[:SINCE_CAP]
        return _post_list(world, order)
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
    if after:
        if after not in oldest_first:
            return _post_list(world, [])
        newer = oldest_first[oldest_first.index(after) + 1:]
        window = newer[start:end][::-1]
        has_more = len(newer) > end
    else:
        if before:
            if before not in newest_first:
                return _post_list(world, [])
            pool = newest_first[newest_first.index(before) + 1:]
        else:
            pool = newest_first
        window = pool[start:end]
        has_more = len(pool) > end
    next_id = prev_id = ""
    if window:
        i_newest = newest_first.index(window[0])
        i_oldest = newest_first.index(window[-1])
        next_id = newest_first[i_newest - 1] if i_newest > 0 else ""
        prev_id = newest_first[i_oldest + 1] if i_oldest + 1 < len(newest_first) else ""
    return _post_list(world, window, next_id=next_id, prev_id=prev_id, has_next=has_more)


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
