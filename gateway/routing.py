"""Handler registration: plugins mark methods, the router collects them per surface."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.ids import Action, Dialog
from gateway.models import (
    ActionCallback,
    ActionReply,
    CommandReply,
    DialogReply,
    DialogSubmission,
    SlashCommand,
)

CommandHandler = Callable[[SlashCommand], Awaitable[CommandReply]]
ActionHandler = Callable[[ActionCallback], Awaitable[ActionReply]]
DialogHandler = Callable[[DialogSubmission], Awaitable[DialogReply]]

_MARK = "_command_center_routes"
DEFAULT_COMMAND = ""  # the handler for no subcommand and unknown subcommands


def _mark(kind: str, key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        routes = getattr(function, _MARK, [])
        setattr(function, _MARK, [*routes, (kind, key)])
        return function
    return decorate


def on_command(*subcommands: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handle ``/<trigger> <subcommand> ...``; ``on_command(DEFAULT_COMMAND)`` takes the rest."""
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for name in subcommands:
            function = _mark("command", name.lower())(function)
        return function
    return decorate


def on_action(action: Action) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _mark("action", action.value)


def on_dialog(dialog: Dialog) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _mark("dialog", dialog.value)


class Router:
    """Maps subcommands, action ids and dialog callback ids to plugin methods."""

    def __init__(self) -> None:
        self.commands: dict[str, CommandHandler] = {}
        self.actions: dict[str, ActionHandler] = {}
        self.dialogs: dict[str, DialogHandler] = {}

    def include(self, plugin: object) -> None:
        tables = {"command": self.commands, "action": self.actions, "dialog": self.dialogs}
        for name in dir(type(plugin)):
            function = getattr(type(plugin), name, None)
            for kind, key in getattr(function, _MARK, []):
                table = tables[kind]
                if key in table:
                    raise ValueError(f"two handlers for {kind} {key!r}")
                table[key] = getattr(plugin, name)

    def command_handler(self, subcommand: str) -> CommandHandler:
        return self.commands.get(subcommand) or self.commands[DEFAULT_COMMAND]
