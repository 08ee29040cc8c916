"""The directory's channel membership, fed literal WebSocket events as Mattermost sends them
(server/channels/app/channel.go AddUserToChannel / removeUserFromChannel / updateChannelMember,
app/team.go LeaveTeam), against a recording fake client."""

from __future__ import annotations

import asyncio
import json

from gateway.directory import Directory
from gateway.errors import MattermostError
from gateway.models import ChannelMember, WebSocketEvent

BOT, ALICE, DAVE = "b" * 26, "a" * 26, "d" * 26
CHANNEL, OTHER = "c" * 26, "o" * 26


class FakeClient:
    """Answers GET /channels/{id}/members/{uid} and /members from ``members``; records every call."""

    user_id = BOT

    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members
        self.calls: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None  # when set, member lookups wait for it
        self.asked = asyncio.Event()  # set by every member lookup

    async def get_channel_member(self, channel_id: str, user_id: str) -> ChannelMember:
        self.calls.append((channel_id, user_id))
        self.asked.set()
        if self.gate is not None:
            await self.gate.wait()
        if user_id in self.members.get(channel_id, set()):
            return ChannelMember(channel_id=channel_id, user_id=user_id)
        raise MattermostError(403, "api.context.permissions.app_error", "no")

    async def channel_members(self, channel_id: str, *, page: int = 0, per_page: int = 200) -> list[ChannelMember]:
        self.calls.append((channel_id, "*"))
        return [ChannelMember(channel_id=channel_id, user_id=uid) for uid in sorted(self.members.get(channel_id, set()))][page * per_page:][:per_page]


def user_added(channel_id: str, user_id: str, *, to: str = "") -> WebSocketEvent:
    return WebSocketEvent.model_validate({"event": "user_added", "data": {"user_id": user_id, "team_id": "t" * 26},
            "broadcast": {"channel_id": channel_id, "user_id": to, "omit_users": None if to else {user_id: True}}})


def user_removed(channel_id: str, user_id: str) -> list[WebSocketEvent]:
    """Both copies: to the channel, and to the removed user."""
    return [WebSocketEvent.model_validate(event) for event in [{"event": "user_removed", "data": {"user_id": user_id, "remover_id": ALICE},
             "broadcast": {"channel_id": channel_id, "user_id": ""}},
            {"event": "user_removed", "data": {"channel_id": channel_id, "remover_id": ALICE},
             "broadcast": {"channel_id": "", "user_id": user_id}}]]


def live(members: dict[str, set[str]]) -> tuple[Directory, FakeClient]:
    client = FakeClient(members)
    directory = Directory(client)  # type: ignore[arg-type]
    directory.connection_changed(True)
    return directory, client


async def test_a_known_member_costs_nothing_until_an_event_says_otherwise():
    directory, client = live({CHANNEL: {BOT, ALICE, DAVE}})
    assert await directory.is_channel_member(CHANNEL, DAVE)
    assert sorted(client.calls) == [(CHANNEL, BOT), (CHANNEL, DAVE)]  # the bot's own membership, once
    client.calls.clear()
    assert await directory.is_channel_member(CHANNEL, DAVE)
    assert client.calls == []
    client.members[CHANNEL].discard(DAVE)
    for event in user_removed(CHANNEL, DAVE):
        directory.observe(event)
    assert not await directory.is_channel_member(CHANNEL, DAVE)
    assert client.calls == [(CHANNEL, DAVE)]  # a "no" is always asked


async def test_a_no_is_always_asked_so_a_joiner_is_right_even_before_the_event():
    directory, client = live({CHANNEL: {BOT, ALICE}})
    assert not await directory.is_channel_member(CHANNEL, DAVE)
    client.members[CHANNEL].add(DAVE)  # added; the event has not arrived yet
    assert await directory.is_channel_member(CHANNEL, DAVE)


async def test_fresh_asks_even_a_known_member():
    directory, client = live({CHANNEL: {BOT, DAVE}})
    assert await directory.is_channel_member(CHANNEL, DAVE)
    client.members[CHANNEL].discard(DAVE)  # removed; the event has not arrived yet
    assert await directory.is_channel_member(CHANNEL, DAVE)
    assert not await directory.is_channel_member(CHANNEL, DAVE, fresh=True)
    assert not await directory.is_channel_member(CHANNEL, DAVE)  # and that answer is kept


async def test_nothing_is_kept_for_a_channel_the_bot_is_not_in():
    """No events come from there, so a member who leaves would never be noticed."""
    directory, client = live({OTHER: {DAVE}})  # e.g. a bot with a system role may read it anyway
    assert await directory.is_channel_member(OTHER, DAVE)
    client.calls.clear()
    client.members[OTHER].discard(DAVE)
    assert not await directory.is_channel_member(OTHER, DAVE)
    assert client.calls == [(OTHER, DAVE), (OTHER, BOT)]


async def test_nothing_is_kept_while_no_events_arrive_and_everything_is_dropped_on_reconnect():
    client = FakeClient({CHANNEL: {BOT, DAVE}})
    directory = Directory(client)  # type: ignore[arg-type]
    await directory.is_channel_member(CHANNEL, DAVE)  # not connected yet: asked, not kept
    client.calls.clear()
    await directory.is_channel_member(CHANNEL, DAVE)
    assert (CHANNEL, DAVE) in client.calls
    directory.connection_changed(True)
    await directory.is_channel_member(CHANNEL, DAVE)
    directory.connection_changed(False)  # the user_removed may be lost now
    client.members[CHANNEL].discard(DAVE)
    directory.connection_changed(True)
    assert not await directory.is_channel_member(CHANNEL, DAVE)


async def test_an_answer_overtaken_by_an_event_is_not_kept():
    """Asked before dave was removed, answered after the user_removed event: the stale "yes" is used
    for that one request only (Mattermost answered it so) and never again."""
    directory, client = live({CHANNEL: {BOT, DAVE}})
    await directory.is_channel_member(CHANNEL, BOT)
    client.gate, client.asked = asyncio.Event(), asyncio.Event()
    asking = asyncio.create_task(directory.is_channel_member(CHANNEL, DAVE))
    await asyncio.wait_for(client.asked.wait(), 5)
    client.members[CHANNEL].discard(DAVE)
    for event in user_removed(CHANNEL, DAVE):
        directory.observe(event)
    # the answer Mattermost gave before the removal is still on its way back
    client.members[CHANNEL].add(DAVE)
    client.gate.set()
    assert await asking
    client.members[CHANNEL].discard(DAVE)
    client.gate = None
    assert not await directory.is_channel_member(CHANNEL, DAVE)


async def test_the_member_list_is_kept_by_events():
    directory, client = live({CHANNEL: {BOT, ALICE}})
    assert sorted(await directory.channel_member_ids(CHANNEL)) == sorted([BOT, ALICE])
    directory.observe(user_added(CHANNEL, DAVE))
    for event in user_removed(CHANNEL, ALICE):
        directory.observe(event)
    client.calls.clear()
    assert sorted(await directory.channel_member_ids(CHANNEL)) == sorted([BOT, DAVE])
    assert client.calls == []


async def test_a_channel_the_bot_created_needs_no_lookup_for_its_members():
    directory, client = live({CHANNEL: {BOT}})
    directory.channel_created(CHANNEL)
    directory.observe(user_added(CHANNEL, ALICE))
    assert sorted(await directory.channel_member_ids(CHANNEL)) == sorted([BOT, ALICE])
    assert await directory.is_channel_member(CHANNEL, ALICE)
    assert client.calls == []


async def test_the_bot_removed_from_a_channel_forgets_it():
    directory, client = live({CHANNEL: {BOT, DAVE}})
    assert await directory.is_channel_member(CHANNEL, DAVE)
    directory.observe(user_removed(CHANNEL, BOT)[1])  # the copy addressed to the bot
    client.calls.clear()
    await directory.is_channel_member(CHANNEL, DAVE)
    assert (CHANNEL, DAVE) in client.calls


async def test_leaving_the_team_leaves_every_channel_without_a_user_removed():
    directory, client = live({CHANNEL: {BOT, DAVE}, OTHER: {BOT, DAVE}})
    assert await directory.is_channel_member(CHANNEL, DAVE)
    assert await directory.is_channel_member(OTHER, DAVE)
    client.members[CHANNEL].discard(DAVE)
    client.members[OTHER].discard(DAVE)
    directory.observe(WebSocketEvent.model_validate({"event": "leave_team", "data": {"user_id": DAVE, "team_id": "t" * 26},
                                                     "broadcast": {"team_id": "t" * 26}}))
    assert not await directory.is_channel_member(CHANNEL, DAVE)
    assert not await directory.is_channel_member(OTHER, DAVE)


async def test_channel_member_updated_for_the_bot_marks_the_channel_as_one_it_is_in():
    directory, client = live({CHANNEL: {BOT, DAVE}})
    member = {"channel_id": CHANNEL, "user_id": BOT, "roles": "channel_user"}
    directory.observe(WebSocketEvent.model_validate({
        "event": "channel_member_updated", "data": {"channelMember": json.dumps(member)},
        "broadcast": {"user_id": BOT}}))
    assert await directory.is_channel_member(CHANNEL, DAVE)
    assert client.calls == [(CHANNEL, DAVE)]  # the bot's own membership is known already


async def test_hostile_events_change_nothing_and_raise_nothing():
    directory, client = live({CHANNEL: {BOT, DAVE}})
    assert await directory.is_channel_member(CHANNEL, DAVE)
    for event in ({"event": "user_removed"}, {"event": "user_removed", "data": "x", "broadcast": 3},
                  {"event": "user_added", "data": {"user_id": None}, "broadcast": {}},
                  {"event": "channel_member_updated", "data": {"channelMember": "{not json"}},
                  {"event": "channel_member_updated", "data": {"channelMember": 7}},
                  {"event": "leave_team", "data": {}}):
        try:  # the event stream hands observers only frames that are events (gateway/events.py)
            typed = WebSocketEvent.model_validate(event)
        except ValueError:
            continue
        directory.observe(typed)
    client.calls.clear()
    assert await directory.is_channel_member(CHANNEL, DAVE)
    assert client.calls == []


async def test_the_directory_learns_from_the_events_it_names_and_from_no_other():
    """The stream hands the directory only ``OBSERVED_EVENTS``: any other event, even one shaped like a
    removal, must change nothing it knows."""
    def shaped(name: str, user_id: str) -> WebSocketEvent:
        return WebSocketEvent.model_validate({"event": name, "data": {"user_id": user_id, "channel_id": CHANNEL,
                                                                      "team_id": "t" * 26},
                                              "broadcast": {"channel_id": CHANNEL, "user_id": ""}})

    for name in ("posted", "post_edited", "channel_created", "channel_updated", "channel_deleted", "channel_viewed",
                 "reaction_added", "user_updated", "typing", "status_change", "new_user", "added_to_team"):
        directory, client = live({CHANNEL: {BOT, ALICE, DAVE}})
        assert await directory.is_channel_member(CHANNEL, DAVE)
        versions = dict(directory._versions)
        directory.observe(shaped(name, DAVE))
        directory.observe(shaped(name, BOT))
        client.calls.clear()
        assert await directory.is_channel_member(CHANNEL, DAVE), name
        assert client.calls == [] and directory._versions == versions, name
    for name in ("user_removed", "leave_team"):
        assert name in Directory.OBSERVED_EVENTS
        directory, client = live({CHANNEL: {BOT, ALICE, DAVE}})
        assert await directory.is_channel_member(CHANNEL, DAVE)
        versions = dict(directory._versions)
        directory.observe(shaped(name, DAVE))
        assert directory._versions != versions, name
