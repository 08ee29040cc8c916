"""The one registry of handlers and the one dispatch pipeline every transport goes through.

Plugins are mmpy_bot ``Plugin`` classes whose handlers are declared on their methods:

- direct messages with mmpy_bot's own ``listen_to`` (its ``MessageFunction``: a regex, ``direct_only``),
- slash subcommands, button actions, dialog submissions and WebSocket events with the decorators
  here, in the same style: ``on_command("check")``, ``on_action(Action.CHECK)``,
  ``on_dialog(Dialog.START)``, ``on_event("reaction_added")``.

:meth:`Registry.include` collects both kinds (mmpy_bot's ``PluginManager`` collects the ``listen_to``
methods and owns their regexes) and refuses two handlers for one key — except WebSocket events, which
are news with no answer: every plugin that handles one gets it, in turn.  Inbound HTTP (gateway/inbound.py),
the WebSocket and its catch-up (gateway/events.py) and direct messages all end in :meth:`Registry.dispatch`.
"""

from __future__ import annotations

import inspect
import logging
import re
import typing
from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from typing import Any, cast

from mmpy_bot import Plugin
from mmpy_bot.function import MessageFunction
from mmpy_bot.plugins import PluginManager
from mmpy_bot.wrappers import Message

from gateway.ids import Action, Dialog
from gateway.models import (
    ActionCallback,
    ActionReply,
    CommandReply,
    DialogReply,
    DialogSubmission,
    SlashCommand,
    WebSocketEvent,
)
from gateway.payloads import ActionPayload, DialogPayload, Payload, PayloadError

log = logging.getLogger(__name__)

CommandHandler = Callable[[SlashCommand], Awaitable[CommandReply]]
ActionHandler = Callable[[ActionCallback], Awaitable[ActionReply]]
DialogHandler = Callable[[DialogSubmission], Awaitable[DialogReply]]
EventHandler = Callable[[WebSocketEvent], Awaitable[None]]
Handler = Callable[[Any], Awaitable[Any]]

_MARK = "_command_center_routes"
DEFAULT_COMMAND = ""  # the handler for no subcommand and unknown subcommands
OUTDATED = ""  # the action handler for buttons signed in a previous format (see on_outdated_button)


class _Empty(Payload):
    """The payload of a handler that declares none: nothing may be in it."""


class Surface(StrEnum):
    """Where a handler is reached from; each surface keys its handlers by one string."""

    COMMAND = "command"  # the subcommand (first word after the trigger)
    ACTION = "action"  # the action id in a button's signed context
    DIALOG = "dialog"  # the dialog's callback id
    EVENT = "event"  # the WebSocket event's name
    MESSAGE = "message"  # a listen_to regex (mmpy_bot's)


def _mark(surface: Surface, key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        routes = getattr(function, _MARK, [])
        setattr(function, _MARK, [*routes, (surface, key)])
        return function
    return decorate


def on_command(*subcommands: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handle ``/<trigger> <subcommand> ...``; ``on_command(DEFAULT_COMMAND)`` takes the rest."""
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for name in subcommands:
            function = _mark(Surface.COMMAND, name.lower())(function)
        return function
    return decorate


def on_action(action: Action) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handle clicks on buttons (and menu selections) signed with ``action``."""
    return _mark(Surface.ACTION, action.value)


def on_dialog(dialog: Dialog) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handle submissions (and cancellations) of the dialog with callback id ``dialog``."""
    return _mark(Surface.DIALOG, dialog.value)


def on_outdated_button() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handle clicks on buttons posted by a previous version (a context in a format no longer read,
    genuinely signed): the handler gets the callback with the old arguments in ``args`` and answers
    "out of date" (and redraws what it can); the click itself is never acted on."""
    return _mark(Surface.ACTION, OUTDATED)


def on_event(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handle the WebSocket event ``name`` (``reaction_added`` ...), live or caught up, as a
    :class:`~gateway.models.WebSocketEvent`."""
    return _mark(Surface.EVENT, name)


class Registry:
    """Every handler of every plugin, by surface and key, and the one way to reach them."""

    def __init__(self, plugins: Iterable[object] = ()) -> None:
        self.commands: dict[str, CommandHandler] = {}
        self.actions: dict[str, ActionHandler] = {}
        self.dialogs: dict[str, DialogHandler] = {}
        self.events: dict[str, EventHandler] = {}
        #: Every handler of each event, in the order the plugins were included (several may handle one).
        self.event_handlers: dict[str, list[EventHandler]] = {}
        #: The payload model each action and dialog handler declared (its second parameter).
        self.payload_models: dict[tuple[Surface, str], type[Payload] | None] = {}
        self._tables: dict[Surface, dict[str, Any]] = {
            Surface.COMMAND: self.commands, Surface.ACTION: self.actions,
            Surface.DIALOG: self.dialogs, Surface.EVENT: self.events,
        }
        # mmpy_bot's own collection of listen_to methods (and their regexes).
        self._mmpy_plugins: list[Plugin] = []
        self.plugin_manager = PluginManager(self._mmpy_plugins)
        self._bot_user_id = ""
        self._name_prefix: re.Pattern[str] | None = None
        for plugin in plugins:
            self.include(plugin)

    # Collecting ----------------------------------------------------------------------------

    def include(self, plugin: object) -> None:
        """Collect ``plugin``'s handlers; ValueError when one's key is taken already (nothing is added then)."""
        found: list[tuple[Surface, str, Any]] = []
        for name in dir(type(plugin)):
            function = getattr(type(plugin), name, None)
            for surface, key in getattr(function, _MARK, []):
                found.append((surface, key, getattr(plugin, name)))
        seen: set[tuple[Surface, str]] = set()
        models: dict[tuple[Surface, str], type[Payload] | None] = {}
        for surface, key, handler in found:
            # A WebSocket event is news with no answer: every feature that wants it gets it (in the
            # order the plugins were included). Every other key has exactly one handler.
            if surface is not Surface.EVENT and (key in self._tables[surface] or (surface, key) in seen):
                raise ValueError(f"two handlers for {surface} {key!r}")
            seen.add((surface, key))
            if surface in (Surface.ACTION, Surface.DIALOG):
                models[(surface, key)] = _declared_payload(surface, key, handler)
        if isinstance(plugin, Plugin):
            self._include_listeners(plugin)
        self.payload_models.update(models)
        for surface, key, handler in found:
            if surface is Surface.EVENT:
                self.event_handlers.setdefault(key, []).append(handler)
                self.events[key] = self._event_fanout(key) if len(self.event_handlers[key]) > 1 else handler
            else:
                self._tables[surface][key] = handler

    def _event_fanout(self, name: str) -> EventHandler:
        """One handler for an event several plugins handle: each in turn, a failing one logged and
        never stopping the next."""
        handlers = self.event_handlers[name]

        async def every(event: WebSocketEvent) -> None:
            for handler in list(handlers):
                try:
                    await handler(event)
                except Exception:
                    log.exception("websocket %s handler failed", name)
        return every

    def _include_listeners(self, plugin: Plugin) -> None:
        """Let mmpy_bot's PluginManager collect ``plugin``'s ``listen_to`` methods.

        The plugins reach Mattermost through ``ctx.client``: mmpy_bot's synchronous ``Driver`` and its
        environment-reading ``Settings`` are never built, so listeners that would need them (mentions,
        allowed users or channels, which answer through the driver) are refused.
        """
        for attribute in dir(type(plugin)):
            function = getattr(type(plugin), attribute, None)
            if isinstance(function, MessageFunction) and (
                    function.needs_mention or function.allowed_users or function.allowed_channels):
                raise ValueError(f"{type(plugin).__name__}.{attribute}: listen_to with needs_mention, allowed_users "
                                 "or allowed_channels needs mmpy_bot's Driver, which Command Center does not run")
        self._mmpy_plugins.append(plugin)
        self.plugin_manager.message_listeners.clear()
        self.plugin_manager.initialize(cast(Any, None), cast(Any, None))
        for pattern, functions in self.plugin_manager.message_listeners.items():
            if len(functions) > 1:
                self._mmpy_plugins.pop()
                self.plugin_manager.message_listeners.clear()
                self.plugin_manager.initialize(cast(Any, None), cast(Any, None))
                raise ValueError(f"two handlers for {Surface.MESSAGE} {pattern.pattern!r}")

    @property
    def message_patterns(self) -> list[str]:
        """The regexes of the ``listen_to`` handlers."""
        return [pattern.pattern for pattern in self.plugin_manager.message_listeners]

    def identify(self, user_id: str, username: str) -> None:
        """The bot's own account: its posts are never dispatched, and a leading ``@bot`` is dropped
        from a message before it is matched (as mmpy_bot's EventHandler does)."""
        self._bot_user_id = user_id
        self._name_prefix = re.compile(rf"^@?{re.escape(username)}[:,]?\s?") if username else None

    def start(self) -> None:
        """mmpy_bot's ``on_start`` of every plugin."""
        self.plugin_manager.start()

    def stop(self) -> None:
        """mmpy_bot's ``on_stop`` of every plugin."""
        self.plugin_manager.stop()

    # Dispatching ---------------------------------------------------------------------------

    def handles(self, surface: Surface, key: str) -> bool:
        """Whether a handler is registered for exactly ``key`` (not counting the default command)."""
        return key in self._tables[surface]

    def command_handler(self, subcommand: str) -> CommandHandler:
        return self.commands.get(subcommand) or self.commands[DEFAULT_COMMAND]

    def payload(self, surface: Surface, key: str, args: object) -> Payload:
        """The verified ``args`` of a click or dialog parsed as the model its handler declared;
        :class:`~gateway.payloads.PayloadError` when they do not fit (or nobody handles ``key``)."""
        if (surface, key) not in self.payload_models:
            raise PayloadError(f"no handler for {surface} {key!r}")
        model = self.payload_models[(surface, key)] or _Empty
        return cast(Payload, model.parse(args))

    async def dispatch(self, surface: Surface, key: str, payload: Any) -> Any:
        """The one pipeline: the handler registered for ``key`` on ``surface`` gets ``payload``.

        A subcommand without a handler goes to the default one; other unknown keys raise KeyError
        (transports check :meth:`handles` first when they answer differently).
        """
        if surface is Surface.COMMAND:
            handler: Handler = self.command_handler(key)
        else:
            handler = self._tables[surface][key]
        return await handler(payload)

    async def command(self, command: SlashCommand) -> CommandReply:
        """A slash command (or the same words in a direct message, or a step's own command)."""
        return cast(CommandReply, await self.dispatch(Surface.COMMAND, command.subcommand, command))

    async def action(self, callback: ActionCallback) -> ActionReply:
        """A click: its handler gets the callback and, when it declares one, the parsed payload model
        (PayloadError before the handler runs when ``callback.args`` do not fit it)."""
        return cast(ActionReply, await self._with_payload(Surface.ACTION, callback.action, callback, callback.args))

    async def outdated(self, callback: ActionCallback) -> ActionReply | None:
        """A click on a button signed in a previous format: the ``on_outdated_button`` handler's
        answer, or None when no plugin has one."""
        handler = self.actions.get(OUTDATED)
        return None if handler is None else await handler(callback)

    async def dialog(self, form: DialogSubmission) -> DialogReply:
        """A submission: like :meth:`action`, with the dialog state's payload."""
        return cast(DialogReply, await self._with_payload(Surface.DIALOG, form.callback_id, form, form.args))

    async def _with_payload(self, surface: Surface, key: str, request: Any, args: object) -> Any:
        handler = self._tables[surface][key]
        if self.payload_models.get((surface, key)) is None:
            self.payload(surface, key, args)  # nothing may be in it
            return await handler(request)
        return await handler(request, self.payload(surface, key, args))

    def wants(self, raw: dict[str, Any]) -> bool:
        """Whether :meth:`event` would hand ``raw`` to any handler, from the cheapest look: its name has
        an ``on_event`` handler, or it is a ``posted`` event for the ``listen_to`` handlers and not the
        bot's own post (a start causes eight events; the bot's posts among them are never matched)."""
        name = raw.get("event")
        if name == "post_edited" and self._own_post(raw):
            return False  # the bot's own edits (every card refresh) are nobody's news
        if name in self.events:
            return True
        if name != "posted" or not self.plugin_manager.message_listeners:
            return False
        data = raw.get("data")
        post = data.get("post") if isinstance(data, dict) else None
        if self._bot_user_id and isinstance(post, dict) and post.get("user_id") == self._bot_user_id:
            return False
        # Listeners that take direct messages only never see a channel's post (mmpy_bot MessageFunction
        # checks ``direct_only`` against the channel type): such a post costs no task, and no dedupe key.
        direct = isinstance(data, dict) and data.get("channel_type") == "D"
        return direct or not all(function.direct_only for functions in self.plugin_manager.message_listeners.values()
                                 for function in functions)

    def _own_post(self, raw: dict[str, Any]) -> bool:
        data = raw.get("data")
        post = data.get("post") if isinstance(data, dict) else None
        return bool(self._bot_user_id) and isinstance(post, dict) and post.get("user_id") == self._bot_user_id

    async def event(self, raw: dict[str, Any]) -> None:
        """One WebSocket event (nested JSON already decoded): a ``posted`` one to the ``listen_to``
        handlers its message matches, every one to its ``on_event`` handler. A failing handler is
        logged and never stops the others."""
        name = raw.get("event")
        if not isinstance(name, str):
            return
        if name == "posted":
            await self._message(raw)
        if name in self.events:
            try:
                event = WebSocketEvent.model_validate(raw)
            except ValueError:
                log.warning("ignoring a malformed %s event", name)
                return
            try:
                await self.dispatch(Surface.EVENT, name, event)
            except Exception:
                log.exception("websocket %s handler failed", name)

    async def _message(self, raw: dict[str, Any]) -> None:
        data = raw.get("data")
        post = data.get("post") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(post, dict) or not isinstance(post.get("message", ""), str):
            return
        if self._bot_user_id and post.get("user_id") == self._bot_user_id:
            return
        if self._name_prefix is not None:
            post["message"] = self._name_prefix.sub("", post.get("message", ""))
        data.setdefault("channel_type", "")
        data.setdefault("channel_name", "")
        post.setdefault("message", "")
        post.setdefault("root_id", "")
        message = Message(raw)
        for pattern, functions in self.plugin_manager.message_listeners.items():
            match = pattern.search(message.text)
            if match is None:
                continue
            for function in functions:
                try:
                    assert function.plugin is not None  # set by PluginManager.initialize
                    await function.plugin.call_function(
                        function, message, groups=[group for group in match.groups() if group != ""])
                except Exception:
                    log.exception("direct message handler %s failed", function.name)


def _declared_payload(surface: Surface, key: str, handler: Callable[..., Any]) -> type[Payload] | None:
    """The payload model ``handler`` takes as its second parameter (None: it takes none); ValueError
    when the model belongs to another action or dialog, so a button can only reach its own handler."""
    parameters = list(inspect.signature(handler).parameters.values())
    if len(parameters) < 2 or key == OUTDATED:
        return None
    hints = typing.get_type_hints(getattr(handler, "__func__", handler))
    model = hints.get(parameters[1].name)
    base = ActionPayload if surface is Surface.ACTION else DialogPayload
    if not (isinstance(model, type) and issubclass(model, base)):
        raise ValueError(f"{getattr(handler, '__qualname__', handler)}: the second parameter must be annotated "
                         f"with a {base.__name__} model")
    owner = model.action.value if issubclass(model, ActionPayload) else model.dialog.value
    if owner != key:
        raise ValueError(f"{getattr(handler, '__qualname__', handler)} handles {surface} {key!r} "
                         f"but takes {model.__name__}, the payload of {owner!r}")
    return model
