"""Every route, button action and dialog the bot knows, as enum members (never bare strings)."""

from enum import StrEnum


class Route(StrEnum):
    """HTTP routes of the bot's own server, called by Mattermost (anchored, exact paths)."""

    COMMAND = "/mattermost/command"
    ACTION = "/mattermost/action"
    DIALOG = "/mattermost/dialog"
    HEALTH = "/healthz"


class Action(StrEnum):
    """Button and menu actions on the bot's posts (alphanumeric: Mattermost's action-id rule)."""

    SHOW_HELP = "showhelp"


class Dialog(StrEnum):
    """Dialog callback ids."""

    NONE = "none"
