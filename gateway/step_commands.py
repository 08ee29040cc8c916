"""Which step commands the bot asks Mattermost to run with its own rights, and how the answer is read.

Mattermost runs ``POST /commands/execute`` for the bot, not for the person who clicked Run: the
route checks only that the *bot* may post in the channel (api4/command.go ``executeCommand``:
create_post at channel scope) and the command runs with the bot's identity (``args.UserId`` is
the bot's). The bot is a member of every incident channel and of the channels it was added to,
so most commands would do more for a user than they could do themselves: ``/invite @x ~channel``
adds anyone to any channel the bot is in, ``/kick`` and ``/remove`` take people out, ``/leave``
takes the bot out of the incident, ``/join``, ``/msg``, ``/groupmsg``, ``/mute``, ``/away`` …
act as the bot, ``/invite_people`` sends team invitations, and a custom command of another
integration sees the bot as its caller. The bot cannot run a command *as* the user, so it runs
only the built-ins below, whose whole effect is on the incident channel and of a kind every
member of that channel may do themselves: post a message (``/echo``, create_post) and set the
header or purpose (``/header``, ``/purpose``: manage_*_channel_properties, which the default
channel_user role has). Any other command is handed back to the user to run themselves.

An administrator who registers a custom command or installs a plugin with one of these triggers
overrides the built-in (app/command.go ``ExecuteCommand`` tries plugins, then custom commands,
then built-ins); administrators are trusted with that.
"""

from __future__ import annotations

from typing import Any

#: Built-in triggers a step may run through Mattermost with the bot's rights.
BOT_MAY_RUN = frozenset({"echo", "header", "purpose"})


def refusal_in(response: Any) -> str:
    """The answer meant only for the caller, or "".

    These built-ins answer nothing when they succeed (``&model.CommandResponse{}``) and refuse
    with an ephemeral text: HeaderProvider and PurposeProvider for a missing permission or an
    empty or too long text, EchoProvider for an empty message, a delay over 10,000 s or too many
    pending echoes. Mattermost delivers that text to the bot as an ephemeral post (app/command.go
    ``HandleCommandResponsePost``), where nobody sees it, and still answers 200.
    """
    if not isinstance(response, dict):
        return ""
    text = response.get("text")
    if response.get("response_type") in ("", None, "ephemeral") and isinstance(text, str) and text.strip():
        return text.strip()
    return ""
