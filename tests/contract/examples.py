"""Hand-written exchanges in the real Mattermost wire format (protocol.md §0, §1, §5).

Used by the harness's own tests; they need no sandbox. Ids are 26 lowercase base32 characters,
timestamps int64 milliseconds, JSON answers carry exactly ``Content-Type: application/json`` and
the ``X-Request-Id`` / ``X-Version-Id`` headers, like the real server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TEAM_ID = "t7gzq4c3jbfzmx8dkf1u9ayk3e"
CHANNEL_ID = "c4xk9f3qgtd8jyb7nuwr1ezm5o"
USER_ID = "u1p8w6skfjgxb3qhm5nyzd2tca"
BOT_ID = "b9d3nzq6w4fj8ctqkyx1ha7rme"
POST_ID = "p5m2ngwz8y4dxfqc7b1kuoje3h"
FILE_ID = "f3qj8y1nbkz6wd5gm2xhoc4rpt"
COMMAND_ID = "k2d8fy6nqz4mwj1bxc3hpao5tg"
HOOK_ID = "h6z1wq8nb3ycxj4fkm5rd2gopt"
REQUEST_ID = "r8bq3nz5wy1kdj6fmx4hctg2pe"
TOKEN = "x3nq8wz1kd5bjy6fmc4hrtg2pa"
NOW = 1_717_171_717_171

JSON_HEADERS = {
    "Content-Type": "application/json",
    "X-Request-Id": REQUEST_ID,
    "X-Version-Id": "9.11.0.12345.a1b2c3d4.false",
}


@dataclass
class SyntheticExchange:
    """Same fields as the sandbox's recorded ``Exchange``."""

    method: str
    url: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    extra: dict[str, Any] = field(default_factory=dict)


def _encode(payload: Any) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload).encode()


def exchange(
    method: str,
    path: str,
    *,
    status: int = 200,
    body: Any = None,
    response: Any = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
    auth: bool = True,
) -> SyntheticExchange:
    """Build an exchange; dict/list payloads become JSON with the real server's headers."""
    req_headers: dict[str, str] = {}
    if auth:
        req_headers["Authorization"] = f"Bearer {TOKEN}"
    if body is not None and not isinstance(body, bytes):
        req_headers["Content-Type"] = "application/json"
    req_headers.update(headers or {})
    resp_headers = dict(JSON_HEADERS)
    if method.upper() == "GET":
        resp_headers["Expires"] = "0"
    resp_headers.update(response_headers or {})
    url = f"http://127.0.0.1:41234{path}" + (f"?{query}" if query else "")
    return SyntheticExchange(
        method=method,
        url=url,
        path=path,
        query=query,
        headers=req_headers,
        body=_encode(body),
        status=status,
        response_headers=resp_headers,
        response_body=_encode(response),
    )


def app_error(status: int, error_id: str, message: str = "Something went wrong.") -> dict:
    """An AppError body as the real server sends it."""
    return {
        "id": error_id,
        "message": message,
        "detailed_error": "",
        "request_id": REQUEST_ID,
        "status_code": status,
    }


def post(**overrides: Any) -> dict:
    """A Post as served to clients (protocol.md §5.1)."""
    value = {
        "id": POST_ID,
        "create_at": NOW,
        "update_at": NOW,
        "edit_at": 0,
        "delete_at": 0,
        "is_pinned": False,
        "user_id": USER_ID,
        "channel_id": CHANNEL_ID,
        "root_id": "",
        "original_id": "",
        "message": "Database is down",
        "type": "",
        "props": {},
        "hashtags": "",
        "pending_post_id": "",
        "reply_count": 0,
        "last_reply_at": 0,
        "participants": None,
        "metadata": {},
    }
    value.update(overrides)
    return value


def post_list(*posts: dict, **overrides: Any) -> dict:
    """A PostList, newest first."""
    value = {
        "order": [p["id"] for p in posts],
        "posts": {p["id"]: p for p in posts},
        "next_post_id": "",
        "prev_post_id": "",
        "has_next": False,
    }
    value.update(overrides)
    return value


def channel(**overrides: Any) -> dict:
    """A public Channel."""
    value = {
        "id": CHANNEL_ID,
        "create_at": NOW,
        "update_at": NOW,
        "delete_at": 0,
        "team_id": TEAM_ID,
        "type": "O",
        "display_name": "Incident 42",
        "name": "incident-42",
        "header": "",
        "purpose": "",
        "last_post_at": NOW,
        "total_msg_count": 3,
        "extra_update_at": 0,
        "creator_id": BOT_ID,
        "scheme_id": None,
        "props": None,
        "group_constrained": None,
        "shared": None,
        "total_msg_count_root": 3,
        "policy_id": None,
        "last_root_post_at": NOW,
    }
    value.update(overrides)
    return value


def channel_member(**overrides: Any) -> dict:
    """A ChannelMember."""
    value = {
        "channel_id": CHANNEL_ID,
        "user_id": USER_ID,
        "roles": "channel_user",
        "last_viewed_at": 0,
        "msg_count": 0,
        "mention_count": 0,
        "mention_count_root": 0,
        "urgent_mention_count": 0,
        "msg_count_root": 0,
        "notify_props": {
            "desktop": "default",
            "email": "default",
            "push": "default",
            "mark_unread": "all",
            "ignore_channel_mentions": "default",
            "channel_auto_follow_threads": "off",
        },
        "last_update_at": NOW,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": False,
        "explicit_roles": "",
    }
    value.update(overrides)
    return value


def channel_stats(**overrides: Any) -> dict:
    """ChannelStats."""
    value = {"channel_id": CHANNEL_ID, "member_count": 3, "guest_count": 0, "pinnedpost_count": 1, "files_count": 0}
    value.update(overrides)
    return value


def user(**overrides: Any) -> dict:
    """A User as the token's owner sees it."""
    value = {
        "id": USER_ID,
        "create_at": NOW,
        "update_at": NOW,
        "delete_at": 0,
        "username": "alice",
        "auth_service": "",
        "email": "alice@example.com",
        "nickname": "",
        "first_name": "Alice",
        "last_name": "Doe",
        "position": "SRE",
        "roles": "system_user",
        "props": {},
        "notify_props": {"desktop": "mention", "email": "true", "push": "mention", "channel": "true"},
        "last_password_update": NOW,
        "locale": "en",
        "timezone": {"useAutomaticTimezone": "true", "automaticTimezone": "", "manualTimezone": ""},
        "disable_welcome_email": False,
    }
    value.update(overrides)
    return value


def team(**overrides: Any) -> dict:
    """A Team."""
    value = {
        "id": TEAM_ID,
        "create_at": NOW,
        "update_at": NOW,
        "delete_at": 0,
        "display_name": "Acme",
        "name": "acme",
        "description": "",
        "email": "",
        "type": "O",
        "company_name": "",
        "allowed_domains": "",
        "invite_id": "",
        "allow_open_invite": True,
        "last_team_icon_update": 0,
        "scheme_id": None,
        "group_constrained": None,
        "policy_id": None,
    }
    value.update(overrides)
    return value


def team_member(**overrides: Any) -> dict:
    """A TeamMember."""
    value = {
        "team_id": TEAM_ID,
        "user_id": USER_ID,
        "roles": "team_user",
        "delete_at": 0,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": False,
        "explicit_roles": "",
    }
    value.update(overrides)
    return value


def command(**overrides: Any) -> dict:
    """A registered slash Command (protocol.md §1.1)."""
    value = {
        "id": COMMAND_ID,
        "token": TOKEN,
        "create_at": NOW,
        "update_at": NOW,
        "delete_at": 0,
        "creator_id": BOT_ID,
        "team_id": TEAM_ID,
        "trigger": "incident",
        "method": "P",
        "username": "",
        "icon_url": "",
        "auto_complete": True,
        "auto_complete_desc": "Declare and run incidents",
        "auto_complete_hint": "[declare|status|resolve]",
        "display_name": "Incident",
        "description": "",
        "url": "http://127.0.0.1:8579/hooks/command",
        "plugin_id": "",
    }
    value.update(overrides)
    return value


def command_response(**overrides: Any) -> dict:
    """The execute answer: the integration's CommandResponse with the client trigger id."""
    value = {
        "response_type": "ephemeral",
        "text": "Incident INC-42 declared",
        "username": "",
        "channel_id": "",
        "icon_url": "",
        "type": "",
        "props": None,
        "goto_location": "",
        "trigger_id": "c2VjcmV0dHJpZ2dlcmlk",
        "skip_slack_parsing": False,
        "attachments": None,
        "extra_responses": None,
    }
    value.update(overrides)
    return value


def file_info(**overrides: Any) -> dict:
    """A FileInfo right after upload (not yet attached, so no post_id)."""
    value = {
        "id": FILE_ID,
        "user_id": USER_ID,
        "channel_id": CHANNEL_ID,
        "create_at": NOW,
        "update_at": NOW,
        "delete_at": 0,
        "name": "timeline.txt",
        "extension": "txt",
        "size": 12,
        "mime_type": "text/plain",
        "mini_preview": None,
        "remote_id": "",
        "archived": False,
    }
    value.update(overrides)
    return value


def reaction(**overrides: Any) -> dict:
    """A Reaction."""
    value = {"user_id": USER_ID, "post_id": POST_ID, "emoji_name": "eyes", "create_at": NOW}
    value.update(overrides)
    return value


def multipart(fields: list[tuple[str, str, bytes | str]], boundary: str = "mmBoundary42") -> tuple[bytes, str]:
    """Encode (name, filename or "", value) parts; returns (body, content type)."""
    chunks = []
    for name, filename, value in fields:
        data = value.encode() if isinstance(value, str) else value
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if filename:
            head += "Content-Type: application/octet-stream\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
