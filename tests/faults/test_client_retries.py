"""The outbound client under injected faults: retries that are safe, never a duplicate."""

from __future__ import annotations

import pytest

from gateway.client import MattermostClient
from gateway.errors import MattermostError
from tests.faults.sleeps import record_sleeps


@pytest.fixture
async def client(sandbox):
    mm = MattermostClient(sandbox.url, sandbox.token_of("incident"), timeout=2.0, backoff_base=0.01,
                          backoff_cap=0.05)
    await mm.login()
    yield mm
    await mm.close()


def town_square(sandbox) -> str:
    return sandbox.channel("acme", "town-square")["id"]


def bot_posts(sandbox, channel_id, text):
    return [p for p in sandbox.posts(channel_id) if p["message"] == text]


@pytest.mark.parametrize("kind", ["drop_after", "drop_before", "error"])
async def test_a_post_whose_answer_is_lost_is_made_exactly_once(sandbox, client, kind):
    sandbox.faults.add(kind, path="/api/v4/posts", methods="POST", users=["incident"], limit=2)
    post = await client.create_post(town_square(sandbox), "exactly once")
    assert [p["id"] for p in bot_posts(sandbox, town_square(sandbox), "exactly once")] == [post.id]
    assert sandbox.faults.counts()[kind] == 2


async def test_each_logical_post_gets_its_own_pending_post_id(sandbox, client):
    first = await client.create_post(town_square(sandbox), "same text")
    second = await client.create_post(town_square(sandbox), "same text")
    assert first.id != second.id
    assert first.pending_post_id != second.pending_post_id
    assert first.pending_post_id.startswith(client.user_id + ":")


async def test_rate_limit_is_retried_after_the_advertised_reset(sandbox, client):
    sandbox.faults.add("rate_limit", path="/api/v4/users/*", retry_after=0, limit=3)
    me = await client.get_user(client.user_id)
    assert me.username == "incident"
    assert sandbox.faults.counts()["rate_limit"] == 3


async def test_a_persistent_outage_ends_in_an_error_and_no_post(sandbox, client):
    sandbox.faults.add("error", path="/api/v4/posts", methods="POST", users=["incident"])
    with pytest.raises(MattermostError) as raised:
        await client.create_post(town_square(sandbox), "never")
    assert raised.value.status == 500
    assert sandbox.faults.counts()["error"] == client.max_attempts
    assert bot_posts(sandbox, town_square(sandbox), "never") == []


async def test_a_proxy_error_page_is_mapped_too(sandbox, client):
    sandbox.faults.add("error", status=502, path="/api/v4/channels/*", users=["incident"])
    with pytest.raises(MattermostError) as raised:
        await client.get_channel(town_square(sandbox))
    assert raised.value.status == 502 and raised.value.error_id == "unknown"


async def test_commands_are_not_repeated_after_an_unknown_outcome(sandbox, client):
    sandbox.faults.add("drop_after", path="/api/v4/commands/execute", users=["incident"])
    with pytest.raises(MattermostError) as raised:
        await client.execute_command(town_square(sandbox), "/echo hi", team_id=sandbox.team("acme")["id"])
    assert raised.value.unreachable
    assert sandbox.faults.counts()["drop_after"] == 1


async def test_retries_stop_inside_the_window(sandbox, client, monkeypatch):
    client.backoff_base = client.backoff_cap = 1.0  # every backoff is longer than the window
    sandbox.faults.add("error", path="/api/v4/users/*", users=["incident"])
    slept = record_sleeps(monkeypatch, "gateway.client")
    with pytest.raises(MattermostError):
        await client.call("GET", lambda: client.driver.users.get_user("me"), retry_window=0.2)
    assert sandbox.faults.counts()["error"] == 1
    assert slept == []  # it gave up at once instead of waiting for a retry it could not make
    client.backoff_base = client.backoff_cap = 0.01  # the recorder does see the waits when they fit
    with pytest.raises(MattermostError):
        await client.call("GET", lambda: client.driver.users.get_user("me"), retry_window=0.2)
    assert len(slept) == client.max_attempts - 1 and all(0.005 <= delay <= 0.01 for delay in slept), slept


@pytest.mark.parametrize("kind", ["drop_after", "error"])
async def test_a_channel_whose_creation_answer_was_lost_is_adopted_not_duplicated(sandbox, client, kind):
    team_id = sandbox.team("acme")["id"]
    sandbox.faults.add(kind, path="/api/v4/channels", methods="POST", users=["incident"], limit=1)
    channel = await client.create_channel(team_id, "db-outage", "DB outage", private=False, purpose="p")
    assert channel.name == "db-outage"
    assert sandbox.channel("acme", "db-outage")["id"] == channel.id
    made = [c for c in sandbox.world.channels.values() if c["display_name"] == "DB outage"]
    assert len(made) == 1


async def test_an_older_channel_with_the_same_name_is_not_adopted(sandbox, client):
    team_id = sandbox.team("acme")["id"]
    older = await client.create_channel(team_id, "db-outage", "DB outage", private=False, purpose="p")
    await client.add_channel_member(older.id, sandbox.user_id("alice"))
    # This time nothing is created, but the client cannot know: the retry finds the name taken.
    sandbox.faults.add("drop_before", path="/api/v4/channels", methods="POST", users=["incident"], limit=1)
    with pytest.raises(MattermostError) as raised:
        await client.create_channel(team_id, "db-outage", "DB outage", private=False, purpose="p")
    assert raised.value.status == 400 and "exists" in raised.value.error_id


async def test_a_name_taken_on_the_first_attempt_is_reported_not_adopted(sandbox, client):
    team_id = sandbox.team("acme")["id"]
    await client.create_channel(team_id, "db-outage", "DB outage", private=False, purpose="p")
    with pytest.raises(MattermostError) as raised:
        await client.create_channel(team_id, "db-outage", "DB outage", private=False, purpose="p")
    assert "exists" in raised.value.error_id


async def test_faults_can_spare_the_observing_users(sandbox, client):
    sandbox.faults.add("error", users=["incident"])
    post = await sandbox.user("bob").post("town-square", "bob is unaffected")
    assert post["message"] == "bob is unaffected"
    with pytest.raises(MattermostError):
        await client.get_channel(town_square(sandbox))


@pytest.mark.parametrize("hostile", ["../../users/me", "x/../../../users/me", "ab\x14c", "x y", "%2e%2e"])
async def test_hostile_ids_never_reach_another_endpoint(sandbox, client, hostile):
    sandbox.clear_recording()
    with pytest.raises(MattermostError) as raised:
        await client.get_channel_member(town_square(sandbox), hostile)
    assert raised.value.status == 400 and raised.value.error_id == "api.context.invalid_url_param.app_error"
    assert sandbox.recording == []
