"""Mattermost's built-in slash commands that playbook steps run: ``/header``, ``/purpose``, ``/echo``.

Mirrors app/slashcommands/command_channel_header.go (HeaderProvider), command_channel_purpose.go
(PurposeProvider) and command_echo.go (EchoProvider): the caller's permission, a non-empty text,
and a 200 answer with an ephemeral text for every refusal. ``BUILTIN_TRIGGERS`` are the triggers
the built-in providers reserve (a custom command cannot take them; only these three run here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the Sandbox is handed in; app.py imports this module
    from .app import Sandbox

BUILTIN_TRIGGERS = {
    "away", "code", "collapse", "dnd", "echo", "expand", "groupmsg", "header", "help",
    "invite", "invite_people", "join", "kick", "leave", "logout", "me", "msg", "mute",
    "offline", "online", "open", "purpose", "remove", "rename", "search", "settings",
    "shortcuts", "shrug", "status",
}


def _empty_command_response() -> dict:
    return {"response_type": "", "text": "", "username": "", "channel_id": "", "icon_url": "", "type": "",
            "props": None, "goto_location": "", "trigger_id": "", "skip_slack_parsing": False,
            "attachments": None, "extra_responses": None}


def _ephemeral_command_response(text: str) -> dict:
    """How the built-in providers refuse: a 200 answer with an ephemeral text for the caller."""
    return {**_empty_command_response(), "response_type": "ephemeral", "text": text}


def _builtin_channel_property(sb: Sandbox, user: dict, ch: dict, text: str, field: str) -> dict:
    """``/header text`` and ``/purpose text`` as HeaderProvider / PurposeProvider run them
    (app/slashcommands/command_channel_header.go, command_channel_purpose.go): the *caller's*
    manage_*_channel_properties in the channel, then a non-empty text, then the patch and its
    system post. Each refusal is an ephemeral answer, not an HTTP error."""
    world = sb.world
    noun = "header" if field == "header" else "purpose"
    if ch["type"] not in ("O", "P") and field == "purpose":
        return _ephemeral_command_response("Unable to update the channel purpose of direct or group messages.")
    permission = "manage_public_channel_properties" if ch["type"] == "O" else "manage_private_channel_properties"
    if ch["type"] in ("O", "P") and not world.has_channel_permission(user["id"], ch, permission):
        return _ephemeral_command_response(f"You don't have the appropriate permissions to edit the channel {noun}.")
    if ch["type"] not in ("O", "P") and not world.is_member(ch["id"], user["id"]):
        return _ephemeral_command_response(f"You don't have the appropriate permissions to edit the channel {noun}.")
    if not text:
        return _ephemeral_command_response(f"Message must be provided with the /{noun} command.")
    old = ch.get(field, "")
    world.patch_channel(ch, {field: text})
    world.create_post(user_id=user["id"], channel_id=ch["id"], type=f"system_{field}_change",
                      message=f"{user['username']} updated the channel {noun} from: {old} to: {text}",
                      props={"username": user["username"], f"old_{field}": old, f"new_{field}": text})
    return _empty_command_response()


def _builtin_header(sb: Sandbox, user: dict, ch: dict, text: str, root_id: str) -> dict:
    """``/header text``: set the channel header, with Mattermost's system post."""
    return _builtin_channel_property(sb, user, ch, text, "header")


def _builtin_purpose(sb: Sandbox, user: dict, ch: dict, text: str, root_id: str) -> dict:
    """``/purpose text``: set the channel purpose, with Mattermost's system post."""
    return _builtin_channel_property(sb, user, ch, text, "purpose")


def _builtin_echo(sb: Sandbox, user: dict, ch: dict, text: str, root_id: str) -> dict:
    """``/echo text``: post the text as the user (EchoProvider; an empty text is refused)."""
    if not text:
        return _ephemeral_command_response("A message must be provided with the /echo command.")
    sb.world.create_post(user_id=user["id"], channel_id=ch["id"], message=text, root_id=root_id)
    return _empty_command_response()


# The built-in commands a bot's playbook steps commonly run (Mattermost has more).
BUILT_IN_COMMANDS: dict[str, Callable[[Sandbox, dict, dict, str, str], dict]] = {"header": _builtin_header, "purpose": _builtin_purpose, "echo": _builtin_echo}
