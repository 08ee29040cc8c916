"""The server-to-integration call and what every integration answer shares.

Mirrors app/integration_action.go ``DoActionRequest`` (one outbound HTTP request per callback,
bounded by ``integration_timeout``; every call is kept in ``sb.callbacks``), the 400
``api.post.do_action.action_integration.app_error`` an unusable answer becomes, and
model/slack_attachment.go ``ProcessSlackAttachments`` / ``ParseSlackLinksToMarkdown`` that
command, action and webhook answers pass through (protocol.md §1–§3).
"""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING

import aiohttp

from .errors import AppError
from .records import Callback

if TYPE_CHECKING:  # the Sandbox is handed in; app.py imports this module
    from .app import Sandbox

RESPONSE_LIMIT = 1024 * 1024
SLACK_LINK_RE = re.compile(r"<([^<>|\s]+)\|([^<>]+)>")


def action_failed(detail: str = "") -> AppError:
    return AppError(400, "api.post.do_action.action_integration.app_error",
                    "Action integration error.", detail)


async def call_integration(sb: Sandbox, kind: str, method: str, url: str, *,
                           headers: dict[str, str], body: bytes = b"") -> Callback:
    """Make one callback, recording it in ``sb.callbacks`` before it is sent.

    The returned record has ``status`` None and ``error`` set when the integration
    could not be reached or did not answer within ``integration_timeout``.
    """
    record = Callback(kind=kind, method=method, url=url, headers=dict(headers), body=body)
    sb.callbacks.append(record)
    sb.world.touch()
    assert sb.http is not None
    try:
        async with sb.http.request(method, url, data=body if method != "GET" else None,
                                   headers=headers, allow_redirects=False) as resp:
            data = await resp.content.read(RESPONSE_LIMIT)
            record.status = resp.status
            record.response_headers = dict(resp.headers)
            record.response_body = data
    except TimeoutError:
        record.error = f"timeout after {sb.config.integration_timeout}s"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    sb.world.touch()
    return record


def slack_to_markdown(text: str) -> str:
    """Convert Slack ``<url|label>`` links to Markdown like Mattermost does."""
    return SLACK_LINK_RE.sub(lambda m: f"[{m.group(2)}]({m.group(1)})", text)


def process_attachments(attachments: list, skip_parsing: bool = False) -> list:
    """Stringify field values and convert Slack links, as ``ProcessSlackAttachments`` does."""
    result = []
    for att in attachments:
        if not isinstance(att, dict):
            continue
        att = copy.deepcopy(att)
        if not skip_parsing:
            for key in ("pretext", "text", "title"):
                if isinstance(att.get(key), str):
                    att[key] = slack_to_markdown(att[key])
        for fld in att.get("fields") or []:
            if isinstance(fld, dict) and "value" in fld and not isinstance(fld["value"], str):
                fld["value"] = json.dumps(fld["value"]) if not isinstance(fld["value"], (int, float)) \
                    else str(fld["value"])
        result.append(att)
    return result


def integration_answer(record: Callback) -> dict:
    """The JSON object an action or dialog integration answered (empty body = {}); anything else
    fails the way Mattermost fails it (400 action_integration)."""
    if record.status != 200:
        raise action_failed(record.error or f"status {record.status}")
    if not record.response_body.strip():
        return {}
    try:
        resp = json.loads(record.response_body)
    except ValueError:
        raise action_failed("invalid JSON response") from None
    if not isinstance(resp, dict):
        raise action_failed("response is not an object")
    return resp
