"""The directory's definite answers for the incident list (issue 15): whole member lists kept from
events, "no" as definite as "yes", one request per channel however many lists ask, nothing kept
across a loss, the lists kept before a loss loaded again after it."""

from __future__ import annotations

import asyncio

from gateway.directory import Directory
from gateway.models import WebSocketEvent
from tests.gateway.test_membership_directory import (
    ALICE,
    BOT,
    CHANNEL,
    DAVE,
    OTHER,
    FakeClient,
    live,
    user_added,
    user_removed,
)

THIRD = "t" * 26


def lists_asked(client: FakeClient) -> list[str]:
    return [channel for channel, who in client.calls if who == "*"]


async def test_a_kept_list_answers_no_as_well_as_yes_without_a_call():
    directory, client = live({CHANNEL: {BOT, ALICE}, OTHER: {BOT, DAVE}})
    assert await directory.members_among([CHANNEL, OTHER], DAVE) == {OTHER}
    assert sorted(lists_asked(client)) == [CHANNEL, OTHER]
    client.calls.clear()
    for _ in range(3):
        assert await directory.members_among([CHANNEL, OTHER], DAVE) == {OTHER}
        assert await directory.members_among([CHANNEL, OTHER], ALICE) == {CHANNEL}
    assert client.calls == []


async def test_joins_and_leaves_change_the_answer_at_once_without_a_call():
    directory, client = live({CHANNEL: {BOT, ALICE}})
    assert await directory.members_among([CHANNEL], DAVE) == set()
    client.calls.clear()
    directory.observe(user_added(CHANNEL, DAVE))
    assert await directory.members_among([CHANNEL], DAVE) == {CHANNEL}
    for event in user_removed(CHANNEL, DAVE):
        directory.observe(event)
    assert await directory.members_among([CHANNEL], DAVE) == set()
    directory.observe(WebSocketEvent.model_validate({"event": "leave_team", "data": {"user_id": ALICE, "team_id": "t" * 26},
                                                     "broadcast": {"team_id": "t" * 26}}))
    assert await directory.members_among([CHANNEL], ALICE) == set()
    assert client.calls == []


async def test_a_channel_the_bot_is_not_in_is_no_for_everyone_until_the_bot_is_added():
    directory, client = live({CHANNEL: {DAVE}})  # the bot was removed: Mattermost would answer it 403
    assert await directory.members_among([CHANNEL], DAVE) == set()
    client.calls.clear()
    assert await directory.members_among([CHANNEL], DAVE) == set()
    assert client.calls == []
    client.members[CHANNEL].add(BOT)
    directory.observe(user_added(CHANNEL, BOT, to=BOT))
    assert await directory.members_among([CHANNEL], DAVE) == {CHANNEL}
    assert lists_asked(client) == [CHANNEL]


async def test_the_bot_removed_from_a_kept_channel_answers_no():
    directory, client = live({CHANNEL: {BOT, DAVE}})
    assert await directory.members_among([CHANNEL], DAVE) == {CHANNEL}
    for event in user_removed(CHANNEL, BOT):
        directory.observe(event)
    client.members[CHANNEL].discard(BOT)
    client.calls.clear()
    assert await directory.members_among([CHANNEL], DAVE) == set()
    assert client.calls == []


async def test_news_arriving_while_a_list_is_asked_is_not_overwritten():
    directory, client = live({CHANNEL: {BOT}})
    gate, answered = asyncio.Event(), asyncio.Event()
    original = client.channel_members

    async def slow(channel_id, **kwargs):
        answer = await original(channel_id, **kwargs)
        answered.set()
        await gate.wait()
        return answer

    client.channel_members = slow  # type: ignore[method-assign]
    asking = asyncio.create_task(directory.members_among([CHANNEL], DAVE))
    await answered.wait()  # Mattermost has answered; the answer is still on its way
    client.members[CHANNEL].add(DAVE)
    directory.observe(user_added(CHANNEL, DAVE))
    gate.set()
    assert await asking == set()  # the answer as of the request
    assert directory.kept_members(CHANNEL) is None  # ... but it is not kept over the news
    assert await directory.members_among([CHANNEL], DAVE) == {CHANNEL}


async def test_two_lists_at_once_share_one_request_per_channel():
    directory, client = live({CHANNEL: {BOT, DAVE}, OTHER: {BOT, ALICE}})
    results = await asyncio.gather(directory.members_among([CHANNEL, OTHER], DAVE),
                                   directory.members_among([OTHER, CHANNEL], ALICE))
    assert results == [{CHANNEL}, {OTHER}]
    assert sorted(lists_asked(client)) == [CHANNEL, OTHER]


async def test_without_events_every_channel_is_asked_and_nothing_is_kept():
    client = FakeClient({CHANNEL: {BOT, DAVE}, OTHER: {BOT}})
    directory = Directory(client)  # type: ignore[arg-type]  # never connected
    for _ in range(2):
        assert await directory.members_among([CHANNEL, OTHER], DAVE) == {CHANNEL}
    assert sorted(client.calls) == sorted([(CHANNEL, DAVE), (OTHER, DAVE)] * 2)
    directory.connection_changed(True)
    assert await directory.members_among([CHANNEL], DAVE) == {CHANNEL}
    directory.connection_changed(False)
    client.calls.clear()
    client.members[CHANNEL].discard(DAVE)  # removed while no events arrive
    assert await directory.members_among([CHANNEL], DAVE) == set()
    assert client.calls == [(CHANNEL, DAVE)]


async def test_after_a_loss_the_lists_kept_before_are_loaded_again_in_the_background():
    directory, client = live({CHANNEL: {BOT, DAVE}, OTHER: {BOT, DAVE}, THIRD: {BOT}})
    assert await directory.members_among([CHANNEL, OTHER], DAVE) == {CHANNEL, OTHER}
    directory.connection_changed(False)
    client.members[CHANNEL].discard(DAVE)  # the user_removed event is lost
    directory.connection_changed(True)
    assert directory.kept_members(CHANNEL) is None  # nothing from before the loss is trusted
    await asyncio.wait_for(directory.preloaded.wait(), 5)
    assert directory.kept_members(CHANNEL) == {BOT}
    assert directory.kept_members(OTHER) == {BOT, DAVE}
    assert directory.kept_members(THIRD) is None  # never needed, never loaded
    client.calls.clear()
    assert await directory.members_among([CHANNEL, OTHER], DAVE) == {OTHER}
    assert client.calls == []


async def test_a_loss_during_a_preload_stops_it_and_close_ends_it():
    directory, client = live({CHANNEL: {BOT}, OTHER: {BOT}})
    gate = asyncio.Event()
    original = client.channel_members

    async def slow(channel_id, **kwargs):
        await gate.wait()
        return await original(channel_id, **kwargs)

    client.channel_members = slow  # type: ignore[method-assign]
    directory.preload([CHANNEL, OTHER])
    assert not directory.preloaded.is_set()
    directory.connection_changed(False)
    assert directory.preloaded.is_set()
    gate.set()
    await directory.close()
    assert directory.kept_members(CHANNEL) is None and directory.kept_members(OTHER) is None
