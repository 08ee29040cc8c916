"""The streamed channel CSV: quoting, order, paging, and a round trip through Python's csv reader.

Most tests feed :func:`write_channel_csv` from a fake Mattermost that pages exactly like the real
one (newest first, ``before`` anchored); the last ones read a real sandbox channel through the
bot's client.
"""

from __future__ import annotations

import csv
import io
import tempfile

import pytest

from gateway.client import MattermostClient
from gateway.export import CSV_COLUMNS, CSV_ENCODING, UsernameCache, channel_pages, iso_time, write_channel_csv
from gateway.models import PostList, User
from sandbox import Sandbox
from tests.e2e.conftest import DEMO_SEED

ALICE, BOB, BOT = "a" * 26, "b" * 26, "c" * 26


def make_post(number: int, message: str, *, user: str = ALICE, type_: str = "", root: str = "",
              files: bool = False) -> dict:
    post = {"id": f"p{number:025d}", "create_at": 1_700_000_000_000 + number * 1000, "user_id": user,
            "message": message, "type": type_, "root_id": root, "props": {}}
    if files:
        post["file_ids"] = [f"f{number:025d}"]
        post["metadata"] = {"files": [{"id": f"f{number:025d}", "name": "secret.bin"}]}
    return post


class FakeMattermost:
    """Serves a channel's posts (held oldest first) the way GET /channels/{id}/posts does."""

    def __init__(self, posts: list[dict], users: dict[str, str]) -> None:
        self.posts = posts
        self.users = users
        self.requests: list[dict] = []
        self.user_requests: list[list[str]] = []

    async def channel_posts(self, channel_id: str, *, before: str = "", page: int = 0,
                            per_page: int = 200) -> PostList:
        self.requests.append({"before": before, "page": page, "per_page": per_page})
        newest_first = list(reversed(self.posts))
        if before:
            index = next(i for i, post in enumerate(newest_first) if post["id"] == before)
            newest_first = newest_first[index + 1:]
        window = newest_first[page * per_page:(page + 1) * per_page]
        by_id = {post["id"]: post for post in window}
        # Like Mattermost, roots of listed replies ride along in `posts` without being in `order`.
        for post in window:
            if post["root_id"]:
                by_id.setdefault(post["root_id"], next(p for p in self.posts if p["id"] == post["root_id"]))
        return PostList.model_validate({"order": [post["id"] for post in window], "posts": by_id})

    async def users_by_ids(self, user_ids: list[str]) -> list[User]:
        self.user_requests.append(list(user_ids))
        return [User(id=uid, username=self.users[uid]) for uid in user_ids if uid in self.users]


async def export(fake, *, per_page: int = 200) -> tuple[bytes, int]:
    with tempfile.TemporaryFile() as out:
        count = await write_channel_csv(channel_pages(fake, "channel", per_page=per_page), out, UsernameCache(fake))
        out.seek(0)
        return out.read(), count


def read_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(CSV_ENCODING), newline="")))


TRICKY = [
    "plain",
    "commas, in, the, middle",
    'she said "hello", then left',
    '"starts and ends with quotes"',
    "first line\nsecond line",
    "windows\r\nline break",
    "trailing newline\n",
    "ünïcödé — 🚨 中文 العربية",
    "",
    "   spaced   ",
    "semi;colons\tand tabs",
    "=HYPERLINK(\"x\")",
]


async def test_tricky_messages_survive_the_round_trip():
    posts = [make_post(n, message) for n, message in enumerate(TRICKY)]
    data, count = await export(FakeMattermost(posts, {ALICE: "alice"}))
    rows = read_rows(data)
    assert rows[0] == list(CSV_COLUMNS)
    assert count == len(TRICKY) == len(rows) - 1
    # The one formula comes out as text (tests/gateway/test_export_safety.py); everything else verbatim.
    assert [row[4] for row in rows[1:]] == [("'" + m if m.startswith("=") else m) for m in TRICKY]
    assert all(len(row) == len(CSV_COLUMNS) for row in rows)


async def test_header_bom_and_quoting_on_the_wire():
    posts = [make_post(0, 'a "quoted", text'), make_post(1, "no quoting needed")]
    data, _ = await export(FakeMattermost(posts, {ALICE: "alice"}))
    assert data.startswith(b"\xef\xbb\xbftime,user,user id,type,message,post id,root id\r\n")
    text = data.decode(CSV_ENCODING)
    assert '"a ""quoted"", text"' in text          # doubled quotes inside a quoted field
    assert ",no quoting needed," in text             # minimal quoting


async def test_columns_replies_system_messages_and_file_posts():
    root = make_post(0, "root message", user=ALICE)
    posts = [
        root,
        make_post(1, "a reply", user=BOB, root=root["id"]),
        make_post(2, "bob joined the channel.", user=BOB, type_="system_join_channel"),
        make_post(3, "", user=BOB, files=True),
        make_post(4, "card", user=BOT, type_="slack_attachment"),
    ]
    data, _ = await export(FakeMattermost(posts, {ALICE: "alice", BOB: "bob", BOT: "incident"}))
    rows = read_rows(data)[1:]
    assert rows[0] == [iso_time(root["create_at"]), "alice", ALICE, "message", "root message", root["id"], ""]
    assert rows[1] == [iso_time(posts[1]["create_at"]), "bob", BOB, "message", "a reply", posts[1]["id"], root["id"]]
    assert rows[2][3] == "system_join_channel" and rows[2][4] == "bob joined the channel."
    assert rows[3][3:5] == ["message", ""]           # the file post is there, its attachment is not
    assert b"secret.bin" not in data and posts[3]["file_ids"][0].encode() not in data
    assert rows[4][1:4] == ["incident", BOT, "slack_attachment"]


def test_times_are_iso_8601_utc_with_milliseconds():
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"


async def test_pages_are_walked_back_with_before_and_written_oldest_first():
    posts = [make_post(n, f"message {n}", user=ALICE if n % 2 else BOB) for n in range(1001)]
    fake = FakeMattermost(posts, {ALICE: "alice", BOB: "bob"})
    data, count = await export(fake, per_page=200)
    rows = read_rows(data)[1:]
    assert count == 1001
    assert [row[5] for row in rows] == [post["id"] for post in posts]
    # Each page is anchored on the oldest post newer than the page's last one (that last one comes
    # again and is dropped), so a millisecond shared across a page boundary cannot be skipped.
    assert [r["before"] for r in fake.requests] == [""] + [posts[1001 - 199 * k]["id"] for k in range(1, 6)]
    assert all(r["page"] == 0 and r["per_page"] == 200 for r in fake.requests)
    # Usernames are looked up once per user, not once per post.
    assert sorted(uid for batch in fake.user_requests for uid in batch) == sorted([ALICE, BOB])


class CreateAtFakeMattermost(FakeMattermost):
    """Selects ``before`` like store getPostsAround: ``CreateAt <`` the anchor's, so posts of the
    anchor's millisecond are left out."""

    async def channel_posts(self, channel_id: str, *, before: str = "", page: int = 0,
                            per_page: int = 200) -> PostList:
        self.requests.append({"before": before, "page": page, "per_page": per_page})
        newest_first = list(reversed(self.posts))
        if before:
            at = next(p["create_at"] for p in self.posts if p["id"] == before)
            newest_first = [p for p in newest_first if p["create_at"] < at]
        window = newest_first[page * per_page:(page + 1) * per_page]
        return PostList.model_validate({"order": [p["id"] for p in window], "posts": {p["id"]: p for p in window}})


async def test_posts_sharing_a_millisecond_across_pages_are_all_exported_once():
    posts = [make_post(n, f"message {n}") for n in range(30)]
    for post in posts[5:15]:  # ten posts in one millisecond, across the page boundaries
        post["create_at"] = posts[5]["create_at"]
    fake = CreateAtFakeMattermost(posts, {ALICE: "alice"})
    data, count = await export(fake, per_page=8)
    assert count == 30
    assert sorted(row[5] for row in read_rows(data)[1:]) == sorted(p["id"] for p in posts)
    everything = [p for page in [page async for page in channel_pages(fake, "channel", per_page=4)] for p in page]
    assert sorted(p.id for p in everything) == sorted(p["id"] for p in posts)  # a page all of one ms too


async def test_reply_roots_from_other_pages_are_not_duplicated():
    root = make_post(0, "root")
    posts = [root] + [make_post(n, f"reply {n}", root=root["id"]) for n in range(1, 7)]
    data, count = await export(FakeMattermost(posts, {ALICE: "alice"}), per_page=2)
    rows = read_rows(data)[1:]
    assert count == 7
    assert [row[5] for row in rows] == [post["id"] for post in posts]


async def test_empty_channel_gives_just_the_header():
    data, count = await export(FakeMattermost([], {}))
    assert count == 0
    assert read_rows(data) == [list(CSV_COLUMNS)]


async def test_unknown_users_get_an_empty_name():
    data, _ = await export(FakeMattermost([make_post(0, "ghost", user="z" * 26)], {}))
    assert read_rows(data)[1][1:3] == ["", "z" * 26]


@pytest.fixture
async def sandbox():
    async with Sandbox(DEMO_SEED) as sb:
        yield sb


async def test_real_sandbox_channel_round_trip(sandbox):
    """The bot's own client against the sandbox: 450 posts over three pages, tricky text included."""
    world = sandbox.world
    channel_id = sandbox.channel("acme", "town-square")["id"]
    bob = sandbox.user_id("bob")
    root = world.create_post(user_id=bob, channel_id=channel_id, message="root, \"quoted\"\nnext line")
    for n in range(449):
        world.create_post(user_id=bob, channel_id=channel_id, message=f"reply {n} ✓",
                          root_id=root["id"] if n % 10 == 0 else "")
    client = MattermostClient(sandbox.url, sandbox.token_of("incident"))
    await client.login()
    try:
        with tempfile.TemporaryFile() as out:
            count = await write_channel_csv(channel_pages(client, channel_id), out, UsernameCache(client))
            out.seek(0)
            rows = read_rows(out.read())[1:]
    finally:
        await client.close()
    posts = sandbox.posts(channel_id)
    assert count == len(posts) == 450
    assert [row[5] for row in rows] == [post["id"] for post in posts]
    assert [row[4] for row in rows] == [post["message"] for post in posts]
    assert [row[6] for row in rows] == [post["root_id"] for post in posts]
    assert {row[1] for row in rows} == {"bob"}
