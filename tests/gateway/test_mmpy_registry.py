"""The one registry (gateway.routing): handlers declared on mmpy_bot Plugin methods, found through one
dispatch pipeline — slash subcommands, button actions, dialogs, WebSocket events and direct messages."""

from __future__ import annotations

import json

import pytest
from mmpy_bot import Plugin, listen_to
from mmpy_bot.wrappers import Message

from gateway.ids import Action, Dialog
from gateway.models import (
    ActionCallback,
    ActionReply,
    CommandReply,
    DialogReply,
    DialogSubmission,
    Reaction,
    SlashCommand,
    WebSocketEvent,
)
from gateway.routing import DEFAULT_COMMAND, Registry, Surface, on_action, on_command, on_dialog, on_event

BOT, ALICE, DM, TOWN = "b" * 26, "a" * 26, "d" * 26, "c" * 26


class Everything(Plugin):
    """One handler on every surface."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, object]] = []
        self.started = self.stopped = False

    def on_start(self):
        self.started = True
        return self

    def on_stop(self):
        self.stopped = True
        return self

    @on_command("ping", "pong")
    async def on_ping(self, command: SlashCommand) -> CommandReply:
        self.calls.append(("command", command))
        return CommandReply(text=f"pong {command.arguments}")

    @on_command(DEFAULT_COMMAND)
    async def on_anything_else(self, command: SlashCommand) -> CommandReply:
        self.calls.append(("default", command))
        return CommandReply(text="help")

    @on_action(Action.SHOW_HELP)
    async def on_clicked(self, callback: ActionCallback) -> ActionReply:
        self.calls.append(("action", callback))
        return ActionReply(ephemeral_text="clicked")

    @on_dialog(Dialog.START)
    async def on_submitted(self, form: DialogSubmission) -> DialogReply:
        self.calls.append(("dialog", form))
        return DialogReply(errors={"name": "taken"})

    @on_event("reaction_added")
    async def on_reaction(self, event: WebSocketEvent) -> None:
        self.calls.append(("event", event))

    @listen_to(r"^hello (\w+)$", direct_only=True)
    async def on_hello(self, message: Message, name: str) -> None:
        self.calls.append(("message", (message.text, name, message.channel_id)))


def posted(text: str, *, user_id: str = ALICE, channel_type: str = "D", channel_id: str = DM) -> dict:
    """A ``posted`` event as the event stream hands it on (nested JSON decoded)."""
    post = {"id": "p" * 26, "user_id": user_id, "channel_id": channel_id, "message": text, "root_id": "",
            "create_at": 1, "type": ""}
    return {"event": "posted", "seq": 3, "broadcast": {"channel_id": channel_id},
            "data": {"post": post, "channel_type": channel_type, "channel_name": f"{BOT}__{ALICE}",
                     "sender_name": "@alice"}}


def reaction_added(emoji: str = "rotating_light") -> dict:
    reaction = {"user_id": ALICE, "post_id": "p" * 26, "emoji_name": emoji, "create_at": 5}
    return {"event": "reaction_added", "seq": 4, "broadcast": {"channel_id": TOWN, "team_id": "t" * 26},
            "data": {"reaction": reaction}}


def command(text: str) -> SlashCommand:
    return SlashCommand(token="", channel_id=TOWN, user_id=ALICE, text=text)


@pytest.fixture
def registry() -> tuple[Registry, Everything]:
    plugin = Everything()
    registry = Registry([plugin])
    registry.identify(BOT, "incident")
    return registry, plugin


def test_every_surface_is_collected_from_the_plugin_methods(registry):
    reg, plugin = registry
    assert set(reg.commands) == {"ping", "pong", DEFAULT_COMMAND}
    assert reg.commands["ping"] == plugin.on_ping
    assert set(reg.actions) == {Action.SHOW_HELP.value}
    assert set(reg.dialogs) == {Dialog.START.value}
    assert set(reg.events) == {"reaction_added"}
    assert reg.message_patterns == [r"^hello (\w+)$"]
    assert reg.handles(Surface.COMMAND, "ping") and not reg.handles(Surface.COMMAND, "nope")


async def test_commands_dispatch_by_subcommand_and_unknown_ones_reach_the_default(registry):
    reg, plugin = registry
    assert (await reg.command(command("PONG x y"))).text == "pong x y"
    assert (await reg.command(command("nope"))).text == "help"
    assert (await reg.command(command(""))).text == "help"
    assert [kind for kind, _ in plugin.calls] == ["command", "default", "default"]


async def test_actions_and_dialogs_dispatch_by_their_ids(registry):
    reg, plugin = registry
    reply = await reg.action(ActionCallback(user_id=ALICE, channel_id=TOWN, action=Action.SHOW_HELP.value))
    assert reply.ephemeral_text == "clicked"
    answer = await reg.dialog(DialogSubmission(callback_id=Dialog.START.value, user_id=ALICE))
    assert answer.errors == {"name": "taken"} and not answer.closes
    assert [kind for kind, _ in plugin.calls] == ["action", "dialog"]
    with pytest.raises(KeyError):
        await reg.dispatch(Surface.ACTION, "unknown", None)


async def test_an_event_handler_receives_a_typed_event(registry):
    reg, plugin = registry
    await reg.event(reaction_added())
    [(kind, event)] = plugin.calls
    assert kind == "event" and isinstance(event, WebSocketEvent)
    assert event.event == "reaction_added" and event.seq == 4 and event.channel_id == TOWN
    assert event.reaction == Reaction(user_id=ALICE, post_id="p" * 26, emoji_name="rotating_light", create_at=5)
    assert event.broadcast.team_id == "t" * 26


async def test_events_without_a_handler_and_malformed_ones_reach_nobody(registry):
    reg, plugin = registry
    await reg.event({"event": "user_added", "data": {"user_id": ALICE}})
    await reg.event({"event": "reaction_added", "data": "not an object"})
    await reg.event({"data": {}})
    assert plugin.calls == []


async def test_a_direct_message_reaches_its_listen_to_handler_with_mmpy_bots_message(registry):
    reg, plugin = registry
    await reg.event(posted("hello world"))
    assert plugin.calls == [("message", ("hello world", "world", DM))]


async def test_a_leading_mention_of_the_bot_is_dropped_before_matching(registry):
    reg, plugin = registry
    await reg.event(posted("@incident hello there"))
    assert plugin.calls == [("message", ("hello there", "there", DM))]


async def test_direct_only_listeners_ignore_channels_and_the_bot_ignores_itself(registry):
    reg, plugin = registry
    await reg.event(posted("hello world", channel_type="O", channel_id=TOWN))
    await reg.event(posted("hello world", user_id=BOT))
    await reg.event(posted("goodbye"))
    assert plugin.calls == []


async def test_a_failing_handler_is_logged_and_never_stops_the_stream(caplog):
    class Broken(Plugin):
        @listen_to(".*", direct_only=True)
        async def on_any(self, message: Message) -> None:
            raise RuntimeError("boom")

        @on_event("reaction_added")
        async def on_reaction(self, event: WebSocketEvent) -> None:
            raise RuntimeError("bang")

    reg = Registry([Broken()])
    await reg.event(posted("hi"))
    await reg.event(reaction_added())
    assert "direct message handler" in caplog.text and "reaction_added handler failed" in caplog.text


@pytest.mark.parametrize("decorate", [
    lambda: on_command("ping"), lambda: on_command(DEFAULT_COMMAND), lambda: on_action(Action.SHOW_HELP),
    lambda: on_dialog(Dialog.START),
])
def test_two_handlers_for_one_key_are_refused(registry, decorate):
    reg, _ = registry

    class Second(Plugin):
        @decorate()
        async def again(self, payload):  # pragma: no cover - never called
            raise AssertionError

    before = (dict(reg.commands), dict(reg.actions), dict(reg.dialogs), dict(reg.events))
    with pytest.raises(ValueError, match="two handlers for"):
        reg.include(Second())
    assert (reg.commands, reg.actions, reg.dialogs, reg.events) == before


def test_two_keys_on_one_plugin_are_refused_too():
    class Twice(Plugin):
        @on_command("ping")
        async def one(self, command):  # pragma: no cover
            raise AssertionError

        @on_command("ping")
        async def two(self, command):  # pragma: no cover
            raise AssertionError

    with pytest.raises(ValueError, match="two handlers for command 'ping'"):
        Registry([Twice()])


async def test_two_listen_to_handlers_for_one_regex_are_refused(registry):
    reg, plugin = registry

    class Echo(Plugin):
        @listen_to(r"^hello (\w+)$", direct_only=True)
        async def on_hello(self, message: Message, name: str) -> None:  # pragma: no cover
            raise AssertionError

    with pytest.raises(ValueError, match="two handlers for message"):
        reg.include(Echo())
    # The first one still answers, and only it.
    await reg.event(posted("hello again"))
    assert plugin.calls == [("message", ("hello again", "again", DM))]


@pytest.mark.parametrize("options", [{"needs_mention": True}, {"allowed_users": ["alice"]},
                                     {"allowed_channels": ["town-square"]}])
def test_listeners_that_need_mmpy_bots_driver_are_refused(options):
    class Needy(Plugin):
        @listen_to("hi", **options)
        async def on_hi(self, message: Message) -> None:  # pragma: no cover
            raise AssertionError

    with pytest.raises(ValueError, match="Driver"):
        Registry([Needy()])


def test_mmpy_bots_plugin_life_cycle_runs_through_the_registry(registry):
    reg, plugin = registry
    reg.start()
    reg.stop()
    assert plugin.started and plugin.stopped
    assert plugin.plugin_manager is reg.plugin_manager


def test_the_typed_event_takes_the_channel_from_the_payload_when_not_broadcast():
    event = WebSocketEvent.model_validate({"event": "reaction_added", "data": {
        "reaction": {"channel_id": TOWN, "emoji_name": "x"}}})
    assert event.channel_id == TOWN and event.reaction is not None and event.reaction.emoji_name == "x"
    assert WebSocketEvent(event="posted").reaction is None
    assert json.loads(WebSocketEvent(event="hello").model_dump_json())["broadcast"]["channel_id"] == ""


async def test_an_event_goes_to_every_plugin_that_handles_it_in_turn_despite_a_failing_one(caplog):
    calls = []

    class First(Plugin):
        @on_event("reaction_added")
        async def on_reaction(self, event: WebSocketEvent) -> None:
            calls.append("first")
            raise RuntimeError("bang")

    class Second(Plugin):
        @on_event("reaction_added")
        async def on_reaction(self, event: WebSocketEvent) -> None:
            calls.append("second")

    reg = Registry([First(), Second()])
    assert reg.wants(reaction_added())
    await reg.event(reaction_added())
    assert calls == ["first", "second"]
    assert "reaction_added handler failed" in caplog.text
