"""What the REST API (backstage/api.py) accepts in request bodies, and how a body is read.

A body is JSON (``Content-Type: application/json``, else 415), at most ``MAX_BODY_BYTES`` (else
413, checked while reading, so a chunked body without a length is cut off too), one object whose
fields are exactly those of the operation's model: an unknown field, a wrong type (no coercion:
``"1"`` is not a number), a value too long or a nesting too deep is a 400 naming the field.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from domain import limits
from domain.errors import ValidationError

#: The largest body any operation accepts: a status update of ``UPDATE_TEXT_MAX`` characters of
#: four-byte UTF-8, JSON-escaped, fits.
MAX_BODY_BYTES = 96 * 1024
JSON = "application/json"

Body = TypeVar("Body", bound=BaseModel)


class TooLarge(web.HTTPRequestEntityTooLarge):
    def __init__(self) -> None:
        super().__init__(max_size=MAX_BODY_BYTES, actual_size=MAX_BODY_BYTES + 1,
                         text=f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB; send less.")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CheckBody(_Body):
    """Check or uncheck a step. ``mark``: the step's ``mark`` as last read (``GET /incidents/{id}``):
    if the step has changed since, nothing changes and the answer is 409."""

    mark: str | None = Field(default=None, max_length=200)


class CommanderBody(_Body):
    """The new commander, by user id or by username (exactly one)."""

    user_id: str | None = Field(default=None, max_length=64)
    username: str | None = Field(default=None, max_length=64)


class UpdateBody(_Body):
    """A status update; ``next_in``: when the next one is due (``default``, a duration such as ``30m``,
    or ``none``), as in the chat's dialog."""

    text: str = Field(max_length=limits.UPDATE_TEXT_MAX)
    next_in: str | None = Field(default=None, max_length=32)


class StartBody(_Body):
    """Start an incident from a playbook (in ``team_id``, by default the caller's first team)."""

    playbook_id: str = Field(max_length=64)
    name: str = Field(max_length=limits.INCIDENT_NAME_MAX * 4)
    description: str = Field(default="", max_length=limits.INCIDENT_DESCRIPTION_MAX * 4)
    team_id: str | None = Field(default=None, max_length=64)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_body(request: web.Request, model: type[Body], *, optional: bool = False) -> Body:
    """The request's body as ``model``; ``optional``: an empty body stands for ``{}``."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise TooLarge()
    # Read already, within the time and server size limits, by the backstage's body middleware (app.py).
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge()
    if not raw.strip() and optional:
        return model()
    if request.content_type != JSON:
        raise web.HTTPUnsupportedMediaType(text="Send the body as JSON, with “Content-Type: application/json”.")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise ValidationError("The JSON body is nested too deeply.", field="body") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ValidationError(f"The body is not valid JSON: {str(error)[:120]}.", field="body") from None
    if not isinstance(data, dict):
        raise ValidationError("The body must be a JSON object, e.g. {\"text\": \"…\"}.", field="body")
    try:
        return model.model_validate(data)
    except RecursionError:
        raise ValidationError("The JSON body is nested too deeply.", field="body") from None
    except pydantic.ValidationError as error:
        problem = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        if problem["type"] == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            message = f"“{where[:64]}” is not a field of this request; the fields are: {allowed}."
        elif problem["type"] == "missing":
            message = f"“{where}” is required."
        else:
            message = f"“{where}”: {problem['msg']}."
        raise ValidationError(message, field=where[:64]) from None
