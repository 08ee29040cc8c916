"""Hostile input at the bot's HTTP port, against a real started bot and the sandbox.

Every forged, replayed, malformed, oversized or slow request is refused with the right status,
changes nothing (the bot's database and the sandbox's world are identical before and after),
and a genuine ``/incident help`` keeps answering promptly while the abuse goes on.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import sqlite3
import time
from urllib.parse import urlencode

import aiohttp
import pytest

from bot import CommandCenter
from gateway.ids import Route
from gateway.inbound import InboundLimits
from tests.e2e.conftest import bot_settings, make_playbook, sandbox  # noqa: F401  (fixture)
from tests.e2e.test_incidents import button_names, card, start_incident

LIMITS = InboundLimits(body_timeout_s=0.5, idle_timeout_s=1.0, linger_s=0.2, max_form_fields=200)
# Limits no attacker outlasts within a test: the attack is held until the test lets go.
PATIENT = InboundLimits(body_timeout_s=120.0, idle_timeout_s=120.0, linger_s=0.2, max_form_fields=200)
# Only against hanging forever; what is asserted is which event happened, and in which order.
HANG_GUARD_S = 30
FORM = "application/x-www-form-urlencoded"


async def started_bot(sandbox, data_dir, limits: InboundLimits):  # noqa: F811
    app = CommandCenter(bot_settings(sandbox, data_dir))
    app.inbound_limits = limits
    await app.start()
    try:
        await app.wait_connected()
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def bot(sandbox, tmp_path):  # noqa: F811
    """A started bot with short HTTP timeouts, so slow clients are dealt with within a second."""
    async for app in started_bot(sandbox, tmp_path / "data", LIMITS):
        yield app


@pytest.fixture
async def patient_bot(sandbox, tmp_path):  # noqa: F811
    """A started bot whose HTTP timeouts outlast the test: slow clients stay connected until let go."""
    async for app in started_bot(sandbox, tmp_path / "data", PATIENT):
        yield app


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=40)) as session:
        yield session


@pytest.fixture
async def genuine(sandbox, bot):  # noqa: F811
    """A real incident, plus the genuine command, click and dialog requests Mattermost made for it."""
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, _ = await start_incident(sandbox, bot, "alice", "Checkout errors")
    first_button = button_names(card(sandbox, incident))[0]
    await sandbox.user("alice").click(incident.card_post_id, first_button)
    latest = {kind: [c for c in sandbox.callbacks if c.kind == kind][-1] for kind in ("command", "action", "dialog")}
    assert all(c.status == 200 for c in latest.values())
    return latest


def url(bot: CommandCenter, route: str) -> str:
    return f"http://127.0.0.1:{bot.inbound.port}{route}"


def store_dump(bot: CommandCenter) -> list[str]:
    """Every row of the bot's database, except the WebSocket checkpoint (connection bookkeeping
    that moves with the server's clock, not state a request could change)."""
    path = bot.settings.effective_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [line for line in db.iterdump() if "'websocket.checkpoint'" not in line]


def world_state(sandbox) -> dict:  # noqa: F811
    world = sandbox.world
    return copy.deepcopy({
        "posts": world.posts, "reactions": world.reactions, "channels": world.channels,
        "members": world.channel_members, "callbacks": len(sandbox.callbacks),
        "ephemeral": {name: sandbox.user(name).ephemeral() for name in ("alice", "bob", "carol", "dave")},
        "dialogs": {name: sandbox.user(name).dialog for name in ("alice", "bob", "carol", "dave")},
    })


def snapshot(bot: CommandCenter, sandbox) -> tuple:  # noqa: F811
    return store_dump(bot), world_state(sandbox)


def fresh_trigger(user_id: str) -> str:
    """A well-formed trigger id as an attacker could mint one (Mattermost's signature is not checkable)."""
    raw = f"{time.time_ns() % 10**26:026d}:{user_id}:{int(time.time() * 1000)}:c2ln"
    return base64.b64encode(raw.encode()).decode()


async def send(http: aiohttp.ClientSession, method: str, target: str, *, body: bytes = b"",
               content_type: str | None = None, headers: dict | None = None) -> int:
    all_headers = dict(headers or {})
    if content_type:
        all_headers["Content-Type"] = content_type
    async with http.request(method, target, data=body or None, headers=all_headers) as response:
        await response.read()
        return response.status


# Forged and replayed callbacks ---------------------------------------------------------------

async def test_replayed_and_forged_callbacks_are_refused_and_change_nothing(sandbox, bot, genuine, http):  # noqa: F811
    before = snapshot(bot, sandbox)
    command, action, dialog = genuine["command"], genuine["action"], genuine["dialog"]
    alice, bob = sandbox.user_id("alice"), sandbox.user_id("bob")

    # Slash commands: replayed as sent, and stripped of (or with a wrong) token.
    fields = {key: values[0] for key, values in command.form().items()}
    token = fields["token"]
    cases = [
        (command.body, {"Authorization": f"Token {token}"}),
        (urlencode({**fields, "trigger_id": fresh_trigger(alice), "token": ""}), {}),
        (urlencode({k: v for k, v in fields.items() if k != "token"} | {"trigger_id": fresh_trigger(alice)}), {}),
        (urlencode({**fields, "trigger_id": fresh_trigger(alice), "token": "x" * 26}), {}),
        (urlencode({**fields, "trigger_id": fresh_trigger(alice)}), {"Authorization": "Token " + "y" * 26}),
        (urlencode({**fields, "trigger_id": fresh_trigger(bob)}), {}),  # trigger id of someone else
    ]
    for body, headers in cases:
        data = body if isinstance(body, bytes) else body.encode()
        assert await send(http, "POST", url(bot, Route.COMMAND), body=data, content_type=FORM, headers=headers) == 401

    # Clicks: replayed as sent; context moved to another channel, altered, unsigned or missing.
    click = action.json()
    other_channel = sandbox.channel("acme", "off-topic")["id"]
    context = click["context"]
    forged_clicks = [
        click,
        {**click, "trigger_id": fresh_trigger(bob)},  # the user does not match the trigger id
        {**click, "trigger_id": fresh_trigger(alice), "channel_id": other_channel},
        {**click, "trigger_id": fresh_trigger(alice),
         "context": {**context, "payload": {**context["payload"], "x": "1"}}},
        {**click, "trigger_id": fresh_trigger(alice), "context": {**context, "action": "end"}},
        {**click, "trigger_id": fresh_trigger(alice),
         "context": {k: v for k, v in context.items() if k != "signature"}},
        {**click, "trigger_id": fresh_trigger(alice), "context": None},
        {**click, "trigger_id": "not base64 at all"},
    ]
    for body in forged_clicks:
        assert await send(http, "POST", url(bot, Route.ACTION), body=json.dumps(body).encode(),
                          content_type="application/json") == 401, body

    # Dialog submissions: replayed, state tampered with, or sent as another user or dialog.
    submission = dialog.json()
    encoded, signature = submission["state"].split(".")
    state = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    other_user_state = base64.urlsafe_b64encode(json.dumps({**state, "u": bob}).encode()).decode().rstrip("=")
    forged_dialogs = [
        submission,
        {**submission, "state": other_user_state + "." + signature, "user_id": bob},
        {**submission, "state": encoded + "." + signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")},
        {**submission, "user_id": bob},
        {**submission, "state": ""},
        {**submission, "callback_id": "somethingelse"},
    ]
    for body in forged_dialogs:
        assert await send(http, "POST", url(bot, Route.DIALOG), body=json.dumps(body).encode(),
                          content_type="application/json") == 401, body

    assert snapshot(bot, sandbox) == before


# Malformed, oversized and badly encoded bodies -------------------------------------------------

async def test_malformed_bodies_are_refused_with_the_right_status(sandbox, bot, genuine, http):  # noqa: F811
    before = snapshot(bot, sandbox)
    fields = {key: values[0] for key, values in genuine["command"].form().items()}
    alice = sandbox.user_id("alice")

    def command_form(**extra) -> bytes:
        return urlencode({**fields, "trigger_id": fresh_trigger(alice), **extra}).encode()

    click = genuine["action"].json()
    cases = [
        # (method, route, body, content type, expected status)
        ("POST", Route.COMMAND, command_form() + b"&text=%FF%FE", FORM, 400),           # bad UTF-8, escaped
        ("POST", Route.COMMAND, b"token=" + fields["token"].encode() + b"&text=\xff\xfe", FORM, 400),  # raw
        ("POST", Route.COMMAND, b"&".join(b"f%d=1" % i for i in range(5000)), FORM, 400),  # too many fields
        ("POST", Route.COMMAND, json.dumps(fields).encode(), "application/json", 415),
        ("POST", Route.COMMAND, command_form(), "multipart/form-data; boundary=x", 415),
        ("POST", Route.COMMAND, command_form(), None, 415),
        ("POST", Route.COMMAND, command_form(text="help " + "x" * (2 * 1024 * 1024)), FORM, 413),
        ("POST", Route.ACTION, b'{"user_id": "\xff\xfe"}', "application/json", 400),   # bad UTF-8
        ("POST", Route.ACTION, json.dumps(click).encode()[:-10], "application/json", 400),  # truncated JSON
        ("POST", Route.ACTION, b"[" * 100_000 + b"]" * 100_000, "application/json", 400),  # nesting bomb
        ("POST", Route.ACTION, b'["not", "an", "object"]', "application/json", 400),
        ("POST", Route.ACTION, b'{"user_id": 1e999999, "channel_id": 7}', "application/json", 400),
        ("POST", Route.ACTION, json.dumps(click).encode(), FORM, 415),
        ("POST", Route.ACTION, json.dumps(click).encode(), "text/plain", 415),
        ("POST", Route.ACTION, b"{" + b'"k":1,' * 100_000 + b'"z":1}', "application/json", 400),  # 100k keys
        ("POST", Route.ACTION, json.dumps({**click, "pad": "x" * 900_000}).encode(), "application/json", 401),
        ("POST", Route.DIALOG, b"", "application/json", 400),
        ("POST", Route.DIALOG, b"\x00\x01\x02", "application/json", 400),
        ("GET", Route.ACTION, b"", None, 405),
        ("PUT", Route.COMMAND, b"", None, 405),
        ("POST", "/../../etc/passwd", b"", None, 404),
        ("GET", "/mattermost/command/extra", b"", None, 404),
    ]
    for method, route, body, content_type, expected in cases:
        status = await send(http, method, url(bot, route), body=body, content_type=content_type)
        assert status == expected, (method, route, body[:60], content_type, status)

    # Headers that exceed the limits are refused by the HTTP parser itself.
    many = {f"X-Filler-{i}": "y" for i in range(200)}
    assert await send(http, "GET", url(bot, Route.HEALTH), headers=many) == 400
    assert await send(http, "GET", url(bot, Route.HEALTH) + "?" + "a" * 10_000) == 400
    assert snapshot(bot, sandbox) == before


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes; a reset (our unread bytes) also counts as closed."""
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


async def raw_request(bot: CommandCenter, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", bot.inbound.port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def test_truncated_and_never_completed_bodies(sandbox, bot, genuine):  # noqa: F811
    before = snapshot(bot, sandbox)
    click = json.dumps({**genuine["action"].json(), "trigger_id": fresh_trigger(sandbox.user_id("alice"))}).encode()
    head = (f"POST {Route.ACTION} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(click)}\r\n\r\n").encode()

    # Half the body, then the client vanishes: nothing to answer, nothing done.
    _, writer = await raw_request(bot, head + click[: len(click) // 2])
    writer.close()
    # Half the body, then silence: answered 408 once the body timeout passes, and the connection closed
    # by the server (the rest of the body never comes; we keep our end open until it has closed).
    reader, writer = await raw_request(bot, head + click[: len(click) // 2])
    answer = await asyncio.wait_for(read_until_closed(reader), HANG_GUARD_S)
    assert reader.at_eof() and not writer.is_closing()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and b"did not arrive in time" in answer
    # A chunked body with a broken chunk is refused by the parser.
    reader, writer = await raw_request(bot, (f"POST {Route.ACTION} HTTP/1.1\r\nHost: bot\r\nContent-Type: "
                                             "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                             "zz\r\n{}\r\n0\r\n\r\n").encode())
    assert (await asyncio.wait_for(read_until_closed(reader), HANG_GUARD_S)).split(b" ")[1] == b"400"
    writer.close()
    assert snapshot(bot, sandbox) == before


# Slow clients and floods, while a genuine user keeps getting answers ------------------------------

TRICKLE = f"OST {Route.COMMAND} HTTP/1.1\r\nHost: bot\r\nX-Slow: {'z' * 200}"
# A byte per twentieth of the idle timeout: the whole trickle lasts ten times the idle timeout.
TRICKLE_PACE_S = LIMITS.idle_timeout_s / 20


async def slowloris(bot: CommandCenter) -> tuple[int, bytes]:
    """Trickle a request's headers byte by byte until the server closes the connection; return how many
    bytes were still to be sent when it did (0: the trickle ended first) and what the server sent."""
    reader, writer = await raw_request(bot, b"P")
    closed = asyncio.ensure_future(read_until_closed(reader))
    try:
        unsent = len(TRICKLE)
        for byte in TRICKLE:
            if closed.done():
                break
            writer.write(byte.encode())
            unsent -= 1
            await asyncio.sleep(TRICKLE_PACE_S)  # the attacker's pace, not synchronisation
        return unsent, await asyncio.wait_for(closed, HANG_GUARD_S)
    finally:
        closed.cancel()
        writer.close()


async def stalled_body(bot: CommandCenter) -> bytes:
    reader, writer = await raw_request(bot, (f"POST {Route.COMMAND} HTTP/1.1\r\nHost: bot\r\nContent-Type: {FORM}"
                                             "\r\nContent-Length: 5000\r\n\r\ntoken=").encode())
    try:
        return await asyncio.wait_for(read_until_closed(reader), HANG_GUARD_S)
    finally:
        writer.close()


async def flood(bot: CommandCenter, http: aiohttp.ClientSession, rounds: int) -> list[tuple[int, int]]:
    """Bad requests of every kind; returns (expected, got) status pairs."""
    kinds = [
        ("POST", Route.COMMAND, b"team_id=x&user_id=y&channel_id=z&text=help", FORM, 401),
        ("POST", Route.COMMAND, b"text=help", FORM, 401),
        ("POST", Route.COMMAND, b"a=%FF", FORM, 400),
        ("POST", Route.ACTION, b'{"user_id": "u", "channel_id": "c", "context": {"a": "x", "c": "c", "v": {}}}',
         "application/json", 401),
        ("POST", Route.DIALOG, b'{"type": "dialog_submission", "callback_id": "nope"}', "application/json", 401),
        ("POST", Route.ACTION, b"\xff", "application/json", 400),
        ("POST", Route.ACTION, b"{}", "text/plain", 415),
        ("GET", Route.DIALOG, b"", None, 405),
        ("POST", "/admin", b"", None, 404),
    ]
    results: list[tuple[int, int]] = []

    async def one(i: int) -> None:
        method, route, body, content_type, expected = kinds[i % len(kinds)]
        results.append((expected, await send(http, method, url(bot, route), body=body, content_type=content_type)))

    await asyncio.gather(*(one(i) for i in range(rounds)))
    return results


async def test_trickled_headers_are_cut_at_the_idle_timeout_and_stalled_bodies_answered_408(sandbox, bot):  # noqa: F811
    store_before = store_dump(bot)
    slow = [asyncio.ensure_future(slowloris(bot)) for _ in range(30)]
    stalled = [asyncio.ensure_future(stalled_body(bot)) for _ in range(20)]
    held = await asyncio.gather(*slow)
    # Trickling never extends the deadline: each connection is closed by the server while its
    # trickle (ten idle timeouts long) still had bytes to send, and no request was ever answered.
    assert all(unsent > 0 and received == b"" for unsent, received in held), held
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in await asyncio.gather(*stalled))
    assert store_dump(bot) == store_before


async def held_open(bot: CommandCenter, request: bytes) -> tuple[asyncio.Future, asyncio.StreamWriter]:
    """A connection that sent ``request`` (incomplete) and waits; the future ends when the server closes it."""
    reader, writer = await raw_request(bot, request)
    return asyncio.ensure_future(read_until_closed(reader)), writer


async def test_slow_clients_and_floods_do_not_block_a_genuine_command(sandbox, patient_bot, http):  # noqa: F811
    bot = patient_bot
    posts_before, store_before = copy.deepcopy(sandbox.world.posts), store_dump(bot)
    alice = sandbox.user("alice")
    slow = [await held_open(bot, b"P" + TRICKLE[:30].encode()) for _ in range(30)]
    stalled = [await held_open(bot, (f"POST {Route.COMMAND} HTTP/1.1\r\nHost: bot\r\nContent-Type: {FORM}"
                                     "\r\nContent-Length: 5000\r\n\r\ntoken=").encode()) for _ in range(20)]
    flooding = asyncio.ensure_future(flood(bot, http, 600))

    result = await alice.command("town-square", "/incident help")
    assert result.status == 200 and result.ephemeral and "/incident" in result.ephemeral[0]
    # Answered while every slow client was still holding its connection: nobody waited for them.
    assert not [closed for closed, _ in slow + stalled if closed.done()]

    outcomes = await flooding
    assert len(outcomes) == 600 and all(expected == got for expected, got in outcomes), \
        {pair for pair in outcomes if pair[0] != pair[1]}
    assert not [closed for closed, _ in slow + stalled if closed.done()]
    for closed, writer in slow + stalled:
        writer.close()
        closed.cancel()
    # The abuse left nothing behind; the genuine /incident help spent its trigger id (one row).
    after = store_dump(bot)
    added = [line for line in after if line not in store_before]
    assert len(added) == 1 and added[0].startswith("INSERT INTO \"single_use_keys\" VALUES('trigger',"), added
    assert sandbox.world.posts == posts_before and [line for line in after if line not in added] == store_before
