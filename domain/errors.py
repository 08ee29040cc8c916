"""Domain errors: every message says what was wrong and, where possible, what to do."""

from __future__ import annotations

#: Stands for the slash command and its trigger (``/incident `` by default) in a domain message: the
#: domain does not know the configured trigger (``settings.command_trigger``), so where a message is
#: shown, ``gateway.messages.with_trigger`` writes the command out (``gateway.errors.user_message``
#: does it for every error). Should it ever be shown unrendered, it still reads as a slash.
COMMAND = "/\u2060"


class DomainError(Exception):
    """Base class of every error the domain raises on purpose.

    ``message`` is written for the person who caused it and can be shown as is. ``field`` names the
    input it is about, as the operation's model calls it (``"title"``, ``"description"``,
    ``"stages"``, ``"name"``, ...), or is None; a form shows the message at that field without
    reading the message.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ValidationError(DomainError):
    """Input breaks a rule (a length limit, a bad step reference, ...)."""


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it exists."""


class PermissionDenied(DomainError):
    """The caller can see the thing but may not do this to it."""


class Conflict(DomainError):
    """Someone else changed the thing first (row version mismatch, unique clash)."""


class InvalidState(DomainError):
    """The action does not fit the current state (e.g. editing an ended incident)."""
