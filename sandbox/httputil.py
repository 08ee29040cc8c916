"""Small helpers shared by the route modules: JSON bodies, params, the caller."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from . import errors
from .state import check_id

JSON = "application/json"
# A route variable that only matches Mattermost-style ids (so literal siblings like /commands/execute win).
ID = "{%s:[A-Za-z0-9]+}"
USER: web.RequestKey[dict | None] = web.RequestKey("sandbox_user")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("sandbox_request_id", str)


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with the bare ``application/json`` content type (no charset), as Mattermost sends it."""
    return web.Response(body=dumps(data), status=status, content_type=JSON)


def status_ok() -> web.Response:
    return json_response({"status": "OK"})


async def read_json(request: web.Request, name: str, *, expect: type | tuple = dict,
                    allow_empty: bool = False) -> Any:
    """Parse the request body as JSON of type ``expect``; 400 invalid_body_param otherwise."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {} if expect is dict else None
        raise errors.invalid_body_param(name)
    try:
        data = json.loads(raw)
    except ValueError:
        raise errors.invalid_body_param(name) from None
    if not isinstance(data, expect):
        raise errors.invalid_body_param(name)
    return data


def caller(request: web.Request) -> dict:
    """The authenticated user (the auth middleware guarantees one on session routes)."""
    user = request[USER]
    assert user is not None, "caller() on a route without a session"
    return user


def path_id(request: web.Request, name: str) -> str:
    """An id path parameter, validated like Mattermost's ``Require*Id`` helpers."""
    return check_id(request.match_info[name], name)


def user_path_id(request: web.Request, name: str = "user_id") -> str:
    """A user id path parameter where ``me`` stands for the caller."""
    value = request.match_info[name]
    if value == "me":
        return caller(request)["id"]
    return check_id(value, name)


def paging(request: web.Request, default: int = 60, maximum: int = 200) -> tuple[int, int]:
    """``page``/``per_page`` query params; bad values are 400, large per_page is clamped."""
    try:
        page = int(request.query.get("page", "0"))
        per_page = int(request.query.get("per_page", str(default)))
    except ValueError:
        raise errors.invalid_url_param("page") from None
    if page < 0:
        raise errors.invalid_url_param("page")
    if per_page < 0:
        raise errors.invalid_url_param("per_page")
    return page, min(per_page, maximum)


def flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() == "true"
