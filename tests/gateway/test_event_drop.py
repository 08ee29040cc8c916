"""Events nobody wants are dropped at the cheapest look (issue 15): the bot's own posts (three of a start's
eight events) and events without a handler never get a task, a typed model or a regex; they still count for
the checkpoint and the catch-up dedupe."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from gateway.events import EventStream
from gateway.models import WebSocketEvent
from gateway.routing import Registry, on_event
from tests.gateway.test_mmpy_registry import ALICE, BOT, Everything, posted, reaction_added


class _Edits:
    @on_event("post_edited")
    async def on_edited(self, event: WebSocketEvent) -> None:  # pragma: no cover - never called
        raise AssertionError


def registry() -> tuple[Registry, Everything]:
    plugin = Everything()
    registry = Registry([plugin])
    registry.identify(BOT, "incident")
    return registry, plugin


def test_the_registry_wants_what_a_handler_takes_and_nothing_else():
    wanted, _ = registry()
    assert wanted.wants(posted("hello bob"))
    assert wanted.wants(reaction_added())
    assert not wanted.wants(posted("hello bob", user_id=BOT))  # its own post
    assert not wanted.wants({"event": "typing", "data": {}})
    assert not wanted.wants({"event": "channel_viewed", "data": {}})
    assert not wanted.wants({"data": {}})
    # Its own edits neither (a card refresh), whoever handles post_edited; other people's are wanted.
    edits = Registry([Everything(), _Edits()])
    edits.identify(BOT, "incident")
    edited = {"event": "post_edited", "data": {"post": {"id": "e" * 26, "user_id": BOT, "message": "card"}}}
    assert not edits.wants(edited)
    assert edits.wants({**edited, "data": {"post": {"id": "e" * 26, "user_id": ALICE, "message": "hi"}}})
    no_listeners = Registry()
    assert not no_listeners.wants(posted("hello bob"))


def _raw(event: dict) -> str:
    """As Mattermost sends it: the post as a JSON string inside ``data``."""
    data = dict(event["data"])
    if "post" in data:
        data["post"] = json.dumps(data["post"])
    return json.dumps({**event, "data": data})


async def test_the_stream_drops_unwanted_events_before_a_task_and_still_counts_them():
    wanted, plugin = registry()
    reached: list[dict] = []

    async def dispatch(event: dict) -> None:
        reached.append(event)
        await wanted.event(event)

    client = SimpleNamespace(driver=SimpleNamespace(options={}))
    stream = EventStream(client, dispatch, catch_up=False, wants=wanted.wants)  # type: ignore[arg-type]
    mine = posted("hello bob", user_id=BOT)
    mine["data"]["post"]["id"] = "m" * 26
    theirs = posted("hello bob")
    await stream._handle_event(_raw(mine))
    await stream._handle_event(_raw({"event": "typing", "seq": 5, "data": {"parent_id": ""}}))
    assert stream._tasks == set() and reached == []
    assert stream._checkpoint_dirty.is_set()  # the bot's own post moved the checkpoint
    assert not stream._seen.add(("post", "m" * 26))  # and is remembered: a catch-up copy is dropped too
    await stream._handle_event(_raw(theirs))
    await asyncio.gather(*stream._tasks)
    assert [event["event"] for event in reached] == ["posted"]
    assert reached[0]["data"]["post"]["user_id"] == ALICE  # decoded once, handed on as a dict
    assert plugin.calls and plugin.calls[-1][0] == "message"


async def test_an_observer_of_some_events_gets_those_and_no_other_is_parsed_for_it():
    from gateway.directory import Directory

    seen_by_all: list[str] = []
    seen_by_some: list[str] = []
    client = SimpleNamespace(driver=SimpleNamespace(options={}))
    stream = EventStream(client, lambda event: asyncio.sleep(0), catch_up=False)  # type: ignore[arg-type]
    stream.observe(lambda event: seen_by_some.append(event.event), Directory.OBSERVED_EVENTS)
    for name in ("user_added", "posted", "typing", "user_removed", "channel_viewed", "leave_team",
                 "channel_member_updated", "post_edited"):
        await stream._handle_event(json.dumps({"event": name, "data": {"user_id": ALICE}, "broadcast": {}}))
    assert seen_by_some == ["user_added", "user_removed", "leave_team", "channel_member_updated"]
    # An observer of every event gets every event.
    stream.observe(lambda event: seen_by_all.append(event.event))
    await stream._handle_event(json.dumps({"event": "typing", "data": {}, "broadcast": {}}))
    assert seen_by_all == ["typing"] and seen_by_some[-1] == "channel_member_updated"
