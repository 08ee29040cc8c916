"""Errors from Mattermost and the one place that turns any error into words for users."""

from __future__ import annotations

import logging

from domain.errors import DomainError
from gateway.messages import DEFAULT_TRIGGER, with_trigger

log = logging.getLogger(__name__)

#: app/post.go: a post past ``PostEditTimeLimit`` cannot be patched, updated or (un)pinned.
EDIT_TIME_LIMIT_ERROR = "api.post.update_post.permissions_time_limit.app_error"


class MattermostError(Exception):
    """Mattermost answered with an error object (or could not be reached at all).

    ``status`` is the HTTP status (0 when the server could not be reached), ``error_id`` the
    stable Mattermost error id such as ``api.context.permissions.app_error``.
    """

    def __init__(self, status: int, error_id: str, message: str, *, retry_after: float | None = None,
                 method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path} -> {status} {error_id}: {message}".strip())
        self.status = status
        self.error_id = error_id
        self.message = message
        self.retry_after = retry_after
        self.method = method
        self.path = path

    @property
    def unreachable(self) -> bool:
        return self.status == 0

    # What the bot decides on, named so nothing outside gateway/ compares Mattermost's id strings.

    @property
    def is_edit_time_limit(self) -> bool:
        """The post is older than ``ServiceSettings.PostEditTimeLimit`` and can no longer be changed
        (app/post.go; enforced for every REST change of a post from Mattermost v11.7)."""
        return self.error_id == EDIT_TIME_LIMIT_ERROR

    @property
    def is_name_taken(self) -> bool:
        """A channel with that name exists in the team, live or archived (store ``SaveChannel``:
        ``…save_channel.exists…`` / ``…save_channel.previously…``)."""
        return self.status == 400 and ("exists" in self.error_id or "previously" in self.error_id)

    @property
    def is_forbidden(self) -> bool:
        return self.status == 403

    @property
    def is_not_found(self) -> bool:
        return self.status == 404

    @property
    def is_refusal(self) -> bool:
        """Not allowed or not there: Mattermost answers a bot that may not see something either way."""
        return self.status in (403, 404)

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500


_MESSAGES_BY_STATUS = {
    401: "Command Center's access token was refused by Mattermost. Ask an administrator to check CC_BOT_TOKEN.",
    403: "Mattermost did not allow Command Center to do that. Ask an administrator to check the bot's "
         "permissions (it needs to be a member of the team and the channel).",
    404: "Mattermost could not find what was asked for; it may have been deleted.",
    413: "That is too large for Mattermost.",
    429: "Mattermost is rate-limiting Command Center right now. Please try again in a minute.",
    501: "That feature is switched off on this Mattermost server. Ask an administrator to enable it.",
}


def user_message(error: BaseException, trigger: str = DEFAULT_TRIGGER) -> str:
    """The one mapping from any error to a message a user understands (never a traceback); the
    commands it names are written for ``trigger`` (``settings.command_trigger``)."""
    if isinstance(error, DomainError):
        return with_trigger(str(error), trigger)
    if isinstance(error, MattermostError):
        if error.unreachable:
            return "Command Center could not reach Mattermost. Please try again in a moment."
        if error.status >= 500:
            return "Mattermost had an internal error. Nothing was changed; please try again in a moment."
        if error.status in _MESSAGES_BY_STATUS:
            return _MESSAGES_BY_STATUS[error.status]
        return f"Mattermost refused the request: {error.message}"
    log.error("unexpected error shown to a user as a generic message", exc_info=error)
    return "Something went wrong inside Command Center. Nothing was changed; the error has been logged for the operator."
