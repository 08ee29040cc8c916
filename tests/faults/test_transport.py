"""The REST transport (gateway.transport): costs what aiohttp costs, behaves as the client always did."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
import threading

import aiohttp
import pytest

from gateway.client import MattermostClient
from gateway.errors import MattermostError
from tests.faults.sleeps import record_sleeps


def town_square(sandbox) -> str:
    return sandbox.channel("acme", "town-square")["id"]


def bot_exchanges(sandbox, path_prefix: str):
    token = sandbox.token_of("incident")
    return [e for e in sandbox.recording if e.path.startswith(path_prefix)
            and e.headers.get("Authorization") == f"Bearer {token}"]


@pytest.fixture
async def client(sandbox):
    mm = MattermostClient(sandbox.url, sandbox.token_of("incident"), timeout=2.0, backoff_base=0.01,
                          backoff_cap=0.05)
    await mm.login()
    yield mm
    await mm.close()


# Cost ----------------------------------------------------------------------------------------

def _thread_calls_per_request(url: str, token: str, channel_id: str, rounds: int) -> tuple[float, float]:
    """(ours, bare aiohttp) function calls per REST call, counted by a profiler on this thread while the
    sandbox serves from the test's event loop in another thread: only the clients' own work is counted.
    (The CPU seconds of the same comparison: ``python -m bench.transport``.)"""

    async def run() -> tuple[float, float]:
        ours = MattermostClient(url, token)
        await ours.login()
        bare = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})

        async def bare_call(method: str, path: str, body=None):
            async with bare.request(method, f"{url}/api/v4{path}", json=body) as answer:
                assert answer.status < 400, answer.status
                return await answer.json()

        async def ours_round() -> None:
            await ours.get_user("me")
            await ours.get_channel(channel_id)
            await ours.create_post(channel_id, "cost")

        async def bare_round() -> None:
            await bare_call("GET", "/users/me")
            await bare_call("GET", f"/channels/{channel_id}")
            await bare_call("POST", "/posts", {"channel_id": channel_id, "message": "cost"})

        async def calls_per_request(one_round) -> float:
            calls = 0

            def count(frame, event, arg) -> None:
                nonlocal calls
                if event in ("call", "c_call"):
                    calls += 1

            sys.setprofile(count)
            try:
                for _ in range(rounds):
                    await one_round()
            finally:
                sys.setprofile(None)
            return calls / (rounds * 3)

        try:
            await ours_round(), await bare_round()  # connections made, caches warm
            return await calls_per_request(ours_round), await calls_per_request(bare_round)
        finally:
            await ours.close()
            await bare.close()

    return asyncio.run(run())


async def test_a_call_costs_about_what_a_bare_aiohttp_call_costs(sandbox):
    sandbox.config.record = False
    ours, bare = await asyncio.to_thread(_thread_calls_per_request, sandbox.url, sandbox.token_of("incident"),
                                         town_square(sandbox), 10)
    # httpx + httpcore cost 4-9 times a bare aiohttp call (python -m bench.transport); ours about 1.1.
    assert ours <= 2.0 * bare, f"ours {ours:.0f} function calls per REST call, bare aiohttp {bare:.0f}"


async def test_calls_at_once_share_the_clients_one_session(sandbox, client):
    channel_id = town_square(sandbox)
    answers = await asyncio.gather(*(client.get_channel(channel_id) for _ in range(30)))
    assert {a.id for a in answers} == {channel_id}
    session = client.driver.client._session
    assert session is not None and not session.closed
    await asyncio.gather(*(client.get_channel(channel_id) for _ in range(30)))
    assert client.driver.client._session is session  # one session for the client's whole life


# Behaviour kept ------------------------------------------------------------------------------

async def test_an_answer_slower_than_the_timeout_is_unreachable_and_only_safe_calls_are_repeated(sandbox):
    mm = MattermostClient(sandbox.url, sandbox.token_of("incident"), timeout=0.3, backoff_base=0.01,
                          backoff_cap=0.02)
    await mm.login()
    try:
        sandbox.faults.add("slow", delay=1.0, path="/api/v4/channels/*", methods="GET", users=["incident"], limit=1)
        assert (await mm.get_channel(town_square(sandbox))).name == "town-square"  # the retry got through
        assert sandbox.faults.counts()["slow"] == 1
        sandbox.faults.add("slow", delay=1.0, path="/api/v4/commands/execute", users=["incident"], limit=1)
        with pytest.raises(MattermostError) as raised:
            await mm.execute_command(town_square(sandbox), "/echo hi", team_id=sandbox.team("acme")["id"])
        assert raised.value.unreachable and raised.value.error_id == "unreachable"
        assert "Timeout" in raised.value.message and raised.value.path == "/api/v4/commands/execute"
        assert sandbox.faults.counts()["slow"] == 2  # a command may have run: never sent twice
    finally:
        await mm.close()


async def test_a_server_that_is_down_is_unreachable_after_the_retries():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mm = MattermostClient(f"http://127.0.0.1:{port}", "x" * 26, timeout=1.0, backoff_base=0.01, backoff_cap=0.02)
    try:
        with pytest.raises(MattermostError) as raised:
            await mm.login()
        assert raised.value.status == 0 and raised.value.unreachable
        assert raised.value.method == "GET" and raised.value.path == "/api/v4/users/me"
        assert "Connect" in raised.value.message  # the cause is named, for the log line
    finally:
        await mm.close()


async def test_errors_carry_the_servers_status_and_error_id(sandbox, client):
    sandbox.clear_recording()
    with pytest.raises(MattermostError) as raised:
        await client.get_channel("a" * 26)
    sent = bot_exchanges(sandbox, "/api/v4/channels/")[-1]
    body = json.loads(sent.response_body)
    assert (raised.value.status, raised.value.error_id, raised.value.message) == (
        sent.status, body["id"], body["message"])
    assert raised.value.status in (403, 404)


async def test_rate_limit_headers_set_the_wait(sandbox, client, monkeypatch):
    sandbox.faults.add("rate_limit", path="/api/v4/users/*", retry_after=0, limit=1)
    slept = record_sleeps(monkeypatch, "gateway.client")
    assert (await client.get_user(client.user_id)).username == "incident"
    assert slept == [0]  # Retry-After: 0 was honoured, not the backoff
    assert sandbox.faults.counts()["rate_limit"] == 1


async def test_requests_go_out_as_mattermost_reads_them(sandbox, client):
    sandbox.clear_recording()
    team_id = sandbox.team("acme")["id"]
    await client.driver.client.get("/api/v4/commands", params={"team_id": team_id, "custom_only": True,
                                                               "page": 0, "skipped": None})
    with pytest.raises(MattermostError):  # a hostile value stays one value
        await client.driver.client.get("/api/v4/commands", params={"team_id": "x&custom_only=false#"})
    post = await client.create_post(town_square(sandbox), "héllo *there*", props={"k": [1, "ü"]})
    await client.pin_post(post.id)
    listed, hostile, created, pinned = bot_exchanges(sandbox, "/api/v4/")
    assert listed.query == {"team_id": team_id, "custom_only": "true", "page": "0"}
    assert hostile.query == {"team_id": "x&custom_only=false#"}
    assert created.headers["Content-Type"].startswith("application/json")
    assert json.loads(created.body)["message"] == "héllo *there*"
    assert json.loads(created.body)["props"] == {"k": [1, "ü"]}
    assert pinned.body == b"" and pinned.status == 200
    assert sandbox.posts(town_square(sandbox))[0]["message"] == "héllo *there*"
    # Token authentication only: nothing else identifies the bot, no cookie is kept or sent.
    assert all("Cookie" not in e.headers for e in (listed, created, pinned))


async def test_a_file_goes_out_with_its_name_and_bytes(sandbox, client):
    data = bytes(range(256)) * 40
    info = await client.upload_file(town_square(sandbox), 'rep"ort\r\nX-Evil: 1 é.csv', data, "text/csv")
    assert info.name == 'rep"ort__X-Evil: 1 é.csv'  # control characters cannot end the header early
    assert await client.file_content(info.id) == data


async def test_a_streamed_upload_is_sent_whole_again_after_a_dropped_connection(sandbox, client):
    sandbox.faults.add("drop_before", path="/api/v4/files", methods="POST", users=["incident"], limit=1)
    data = b"id,message\n" + b"1,hello\n" * 5000
    with tempfile.TemporaryFile() as stream:
        stream.write(data)
        info = await client.upload_file_stream(town_square(sandbox), "export.csv", stream)
        assert not stream.closed  # the caller's file stays the caller's
    assert sandbox.faults.counts()["drop_before"] == 1
    assert await client.file_content(info.id) == data


async def test_raw_answers_stay_raw(sandbox, client):
    info = await client.upload_file(town_square(sandbox), "data.json", b'{"not": "parsed"}', "application/json")
    assert await client.file_content(info.id) == b'{"not": "parsed"}'


async def test_a_closed_client_refuses_calls_and_closing_twice_is_harmless(sandbox):
    mm = MattermostClient(sandbox.url, sandbox.token_of("incident"))
    await mm.login()
    await mm.close()
    await mm.close()
    with pytest.raises(RuntimeError, match="closed"):
        await mm.get_channel(town_square(sandbox))


async def test_a_client_made_outside_the_loop_works_inside_it(sandbox):
    """The session is made on first use, inside the loop that uses it (aiohttp's rule)."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault(
        "client", MattermostClient(sandbox.url, sandbox.token_of("incident"))))
    thread.start()
    thread.join()
    mm = box["client"]
    try:
        assert (await mm.login()).username == "incident"
    finally:
        await mm.close()


async def test_proxy_settings_in_the_environment_are_honoured_as_before(sandbox, monkeypatch):
    with socket.socket() as sock:  # a "proxy" nobody listens on
        sock.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = MattermostClient(sandbox.url, sandbox.token_of("incident"), timeout=1.0, max_attempts=1)
    try:
        with pytest.raises(MattermostError) as raised:
            await proxied.login()
        assert raised.value.unreachable  # it went to the proxy
    finally:
        await proxied.close()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = MattermostClient(sandbox.url, sandbox.token_of("incident"), timeout=1.0, max_attempts=1)
    try:
        assert (await direct.login()).username == "incident"
    finally:
        await direct.close()
