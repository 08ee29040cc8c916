"""Reading a whole channel from Mattermost, and writing it as CSV, with memory bounded by one page.

Mattermost serves a channel's posts newest first, one page at a time.  :func:`channel_pages`
walks back from the newest post, anchoring each request on a post already seen (``before``)
so posts arriving meanwhile do not shift the pages.  :func:`write_channel_csv` wants the file
oldest first: each page is written, already in its final row order, to a spool file as one chunk,
and the chunks are then copied out in reverse order.  Memory holds one page of posts and one
offset per page; the posts themselves live on disk.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import IO, Protocol

from gateway.models import Post, PostList, User

#: The columns of the export, in order (SPEC section 7).
CSV_COLUMNS = ("time", "user", "user id", "type", "message", "post id", "root id")
#: Mattermost's largest page of posts.
PAGE_SIZE = 200
#: Spreadsheet programs need the byte order mark to read UTF-8; Python reads it with "utf-8-sig".
CSV_ENCODING = "utf-8-sig"
ORDINARY_POST_TYPE = "message"
#: A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

UsernameLookup = Callable[[Iterable[str]], Awaitable[dict[str, str]]]


class PostPages(Protocol):
    """The one call :func:`channel_pages` makes (MattermostClient has it; so do catch-up's clients)."""

    async def channel_posts(self, channel_id: str, *, before: str = "", page: int = 0,
                            per_page: int = 200) -> PostList: ...


class UsersByIds(Protocol):
    async def users_by_ids(self, user_ids: list[str]) -> list[User]: ...


async def channel_pages(client: PostPages, channel_id: str, *, per_page: int = PAGE_SIZE,
                        on_call: Callable[[], None] | None = None) -> AsyncIterator[list[Post]]:
    """Every post of a channel (deleted ones excluded), each once, as pages ordered newest first.

    Only ``order`` is followed: a PostList also carries the roots of listed replies in ``posts``,
    and those belong to other pages.  ``before`` keeps new posts from shifting the pages, but the
    server selects ``CreateAt <`` the anchor's (store ``getPostsAround``), so posts made in the
    same millisecond as the anchor would be skipped: the next anchor is therefore the oldest post
    of the page that is *newer* than the page's last one, and the posts of that last millisecond
    already seen are dropped when they come again.  A page all of one millisecond is stepped over
    with ``page`` under the same anchor.  ``on_call`` is told of every request.
    """
    before, page_number, seen = "", 0, set[str]()
    while True:
        if on_call is not None:
            on_call()
        page = await client.channel_posts(channel_id, before=before, page=page_number, per_page=per_page)
        listed = page.listed
        batch = [post for post in listed if post.id not in seen]
        if batch:
            yield batch
        if len(page.order) < per_page or not listed:
            return
        last_ms = listed[-1].create_at
        newer = [post for post in listed if post.create_at != last_ms]
        if newer:
            before, page_number = newer[-1].id, 0
            seen = {post.id for post in listed if post.create_at == last_ms}
        else:
            page_number += 1
            seen |= {post.id for post in listed}


def iso_time(milliseconds: int) -> str:
    """Epoch milliseconds → ISO 8601 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.123Z``."""
    moment = dt.datetime.fromtimestamp(milliseconds / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"


def post_row(post: Post, username: str) -> list[str]:
    """One CSV row for a post.  File attachments are left out by design; the post itself stays."""
    return [iso_time(post.create_at), username, post.user_id, post.type or ORDINARY_POST_TYPE, post.message,
            post.id, post.root_id]


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet shows it as text: one that would start a formula gets a leading ``'``."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _csv_text(rows: Iterable[list[str]], *, safe: bool = True) -> str:
    buffer = io.StringIO()
    # Quote only where needed; fields holding commas, quotes or line breaks are quoted, and
    # embedded line breaks survive a round trip through any RFC 4180 reader.
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerows(([spreadsheet_safe(cell) for cell in row] for row in rows) if safe else rows)
    return buffer.getvalue()


def _copy_reversed(spool: IO[bytes], chunks: list[tuple[int, int]], out: IO[bytes]) -> None:
    for start, length in reversed(chunks):
        spool.seek(start)
        remaining = length
        while remaining:
            piece = spool.read(min(remaining, 1 << 20))
            if not piece:
                break
            out.write(piece)
            remaining -= len(piece)


async def write_channel_csv(pages: AsyncIterator[list[Post]], out: IO[bytes],
                            usernames: UsernameLookup, *, raw: bool = False) -> int:
    """Write the posts of ``pages`` (newest first, as :func:`channel_pages` yields them) to ``out``
    as CSV, oldest first, with a header row.  Returns the number of posts written.

    Every cell is :func:`spreadsheet_safe` unless ``raw``: a message (or a username) such as
    ``=HYPERLINK(...)`` must not run when the file is opened in a spreadsheet."""
    count = 0
    chunks: list[tuple[int, int]] = []
    with tempfile.TemporaryFile() as spool:
        async for batch in pages:
            names = await usernames({post.user_id for post in batch})
            data = _csv_text((post_row(post, names.get(post.user_id, ""))
                              for post in reversed(batch)), safe=not raw).encode("utf-8")
            chunks.append((spool.tell(), len(data)))
            spool.write(data)
            count += len(batch)
        out.write(_csv_text([list(CSV_COLUMNS)]).encode(CSV_ENCODING))
        # The final copy is plain disk work; keep it off the event loop.
        await asyncio.to_thread(_copy_reversed, spool, chunks, out)
    out.flush()
    return count


class UsernameCache:
    """Usernames for user ids, fetched in batches (``POST /users/ids``) and kept for one export."""

    def __init__(self, client: UsersByIds) -> None:
        self.client = client
        self.names: dict[str, str] = {}

    async def __call__(self, user_ids: Iterable[str]) -> dict[str, str]:
        missing = sorted({uid for uid in user_ids if uid and uid not in self.names})
        for start in range(0, len(missing), 100):
            batch = missing[start:start + 100]
            for user in await self.client.users_by_ids(batch):
                self.names[user.id] = user.username
            for uid in batch:
                self.names.setdefault(uid, "")
        return self.names


__all__ = ["CSV_COLUMNS", "CSV_ENCODING", "FORMULA_STARTS", "PAGE_SIZE", "UsernameCache", "channel_pages", "iso_time",
           "post_row", "spreadsheet_safe", "write_channel_csv"]
