"""Contract checks of recorded Mattermost REST exchanges against the official OpenAPI file.

The sandbox records every REST request/response pair as an ``Exchange``; this module validates
them with openapi-core against ``../shared/mattermost-api/openapi-v4.yaml`` (relative to the repo
root), after correcting the file's known errors (``ERRATA``) and tightening the object schemas
whose complete wire shape ``protocol.md`` §5.1 gives (``STRICT_SCHEMAS``). On top of the OpenAPI
checks, a few wire facts from protocol.md §0 that the file cannot express are checked
(``WIRE_RULES``).

Public API::

    checker = ContractChecker()                 # or the session fixture ``openapi_contract``
    problems = checker.validate_exchange(ex)    # list[str], empty when the exchange conforms
    checker.assert_exchanges_valid(exchanges)   # AssertionError listing every problem
    validate_exchange(ex); assert_exchanges_valid(exchanges)   # module-level, shared checker
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    ServerNotFound,
)
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

REPO_ROOT = Path(__file__).resolve().parents[2]
# The spec lives in the steering checkout's sibling ``shared/``; a git worktree sits one level deeper.
_SPEC_PARTS = ("shared", "mattermost-api", "openapi-v4.yaml")
SPEC_PATH = next((base.joinpath(*_SPEC_PARTS) for base in REPO_ROOT.parents if base.joinpath(*_SPEC_PARTS).exists()),
                 REPO_ROOT / ".." / "shared" / "mattermost-api" / "openapi-v4.yaml")
DEFAULT_BASE_URL = "http://127.0.0.1:8065"

Spec = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Loading


@functools.lru_cache(maxsize=1)
def _raw_spec() -> Spec:
    # The C loader parses the 850 kB file in ~0.15 s (the pure-Python one takes seconds).
    with open(SPEC_PATH, "rb") as f:
        return yaml.load(f, Loader=yaml.CSafeLoader)


def load_spec() -> Spec:
    """Return a private deep copy of the unmodified OpenAPI document (parsed once per process)."""
    return copy.deepcopy(_raw_spec())


# ---------------------------------------------------------------------------------------------
# Small schema helpers for the patches


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _s(type_: str, **kw: Any) -> dict:
    return {"type": type_, **kw}


STR, INT, BOOL, OBJ = _s("string"), _s("integer", format="int64"), _s("boolean"), _s("object")
NSTR = _s("string", nullable=True)
NBOOL = _s("boolean", nullable=True)


def _obj(props: Mapping[str, dict], required: Sequence[str] = ()) -> dict:
    schema: dict = {"type": "object", "properties": dict(props)}
    if required:
        schema["required"] = list(required)
    return schema


def _schemas(spec: Spec) -> dict:
    return spec["components"]["schemas"]


def _op(spec: Spec, method: str, path: str) -> dict:
    return spec["paths"][path][method]


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def _operations(spec: Spec) -> Iterable[dict]:
    for item in spec["paths"].values():
        for method, op in item.items():
            if method in _HTTP_METHODS:
                yield op


def _add_props(spec: Spec, schema: str, props: Mapping[str, dict]) -> None:
    _schemas(spec)[schema].setdefault("properties", {}).update(props)


def _json_response(schema: dict, description: str = "") -> dict:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


# ---------------------------------------------------------------------------------------------
# Errata: the file's known errors, one record each


@dataclass(frozen=True)
class Erratum:
    """One known error of the OpenAPI file and how the harness compensates for it.

    ``patch`` corrects the loaded spec dict in place. ``out_of_scope`` (a regex on the request
    path) marks routes the file does not describe and the harness deliberately does not judge.
    """

    key: str
    target: str  # operationId(s) or components/schemas name
    spec_says: str
    server_does: str
    compensation: str
    patch: Callable[[Spec], None] | None = None
    out_of_scope: str | None = None


def _fix_duplicate_operation_id(spec: Spec) -> None:
    _op(spec, "delete", "/api/v4/users/{user_id}/posts/{post_id}/ack")["operationId"] = (
        "DeleteAcknowledgementForPost"
    )


_ATTACHMENT_FIELD = _obj({"title": STR, "value": {}, "short": BOOL})
_ACTION = _obj(
    {
        "id": STR,
        "name": STR,
        "type": STR,
        "style": STR,
        "disabled": BOOL,
        "tooltip": STR,
        "data_source": STR,
        "options": _s("array", nullable=True, items=_obj({"text": STR, "value": STR})),
        "default_option": STR,
        "integration": _obj({"url": STR, "context": _s("object", nullable=True)}),
        "cookie": STR,
    }
)


def _attachment_snake_case(spec: Spec) -> None:
    _schemas(spec)["SlackAttachmentField"] = copy.deepcopy(_ATTACHMENT_FIELD)
    _schemas(spec)["SlackAttachment"] = _obj(
        {
            # the id's type is fixed by the separate "attachment-id-integer" erratum
            "id": _schemas(spec)["SlackAttachment"]["properties"].get("Id", STR),
            "fallback": STR,
            "color": STR,
            "pretext": STR,
            "author_name": STR,
            "author_link": STR,
            "author_icon": STR,
            "title": STR,
            "title_link": STR,
            "text": STR,
            "fields": _s("array", nullable=True, items=_ref("SlackAttachmentField")),
            "image_url": STR,
            "thumb_url": STR,
            "footer": STR,
            "footer_icon": STR,
            "ts": {"oneOf": [STR, _s("integer")]},
            "actions": _s("array", nullable=True, items=copy.deepcopy(_ACTION)),
        }
    )


def _attachment_id_integer(spec: Spec) -> None:
    _add_props(spec, "SlackAttachment", {"id": _s("integer", format="int64")})


def _command_response_snake_case(spec: Spec) -> None:
    props = {
        "response_type": _s("string", enum=["in_channel", "ephemeral", ""]),
        "text": STR,
        "username": STR,
        "channel_id": STR,
        "icon_url": STR,
        "type": STR,
        "props": _s("object", nullable=True),
        "goto_location": STR,
        "trigger_id": STR,
        "skip_slack_parsing": BOOL,
        "attachments": _s("array", nullable=True, items=_ref("SlackAttachment")),
        "extra_responses": _s("array", nullable=True, items=_ref("CommandResponse")),
    }
    _schemas(spec)["CommandResponse"] = _obj(props)


def _channel_stats_fields(spec: Spec) -> None:
    _add_props(
        spec,
        "ChannelStats",
        {"guest_count": INT, "pinnedpost_count": INT, "files_count": INT, "has_new_pinned_posts": BOOL},
    )


def _timezone_strings(spec: Spec) -> None:
    _add_props(spec, "Timezone", {"useAutomaticTimezone": STR, "automaticTimezone": STR, "manualTimezone": STR})


def _app_error_fields(spec: Spec) -> None:
    _add_props(spec, "AppError", {"detailed_error": STR, "is_oauth": BOOL})


def _post_action_response(spec: Spec) -> None:
    _op(spec, "post", "/api/v4/posts/{post_id}/actions/{action_id}")["responses"]["200"] = _json_response(
        _obj({"status": _s("string", enum=["OK"]), "trigger_id": STR}, required=["status"])
    )


def _dialog_submit_response(spec: Spec) -> None:
    _op(spec, "post", "/api/v4/actions/dialogs/submit")["responses"]["200"] = _json_response(
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "errors": _s("object", nullable=True, additionalProperties=STR),
                "error": STR,
                "type": STR,
                "form": OBJ,
            },
        },
        "The integration's SubmitDialogResponse, relayed",
    )


def _dialog_cancel_without_submission(spec: Spec) -> None:
    body = _op(spec, "post", "/api/v4/actions/dialogs/submit")["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    schema["required"] = [r for r in schema["required"] if r != "submission"]
    schema["properties"]["submission"]["nullable"] = True


def _ping_without_auth(spec: Spec) -> None:
    _op(spec, "get", "/api/v4/system/ping")["security"] = []


def _token_and_cookie_auth(spec: Spec) -> None:
    spec["components"]["securitySchemes"].update(
        {
            "tokenAuth": {"type": "http", "scheme": "token"},
            "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "MMAUTHTOKEN"},
        }
    )
    spec["security"] = [{"bearerAuth": []}, {"tokenAuth": []}, {"cookieAuth": []}]


def _error_statuses(spec: Spec) -> None:
    spec["components"]["responses"]["AnyAppError"] = {
        "description": "Any error, as an AppError (added by the contract harness)",
        "content": {"application/json": {"schema": _ref("AppError")}},
    }
    error = {"$ref": "#/components/responses/AnyAppError"}
    for op in _operations(spec):
        responses = op.setdefault("responses", {})
        responses.setdefault("4XX", error)
        responses.setdefault("5XX", error)


def _get_file_200(spec: Spec) -> None:
    _op(spec, "get", "/api/v4/files/{file_id}")["responses"]["200"] = {
        "description": "The file's content, with the file's own media type",
        "content": {"*/*": {"schema": _s("string", format="binary")}},
    }


def _raw_upload(spec: Spec) -> None:
    content = _op(spec, "post", "/api/v4/files")["requestBody"]["content"]
    content["*/*"] = {"schema": _s("string", format="binary")}


def _post_props_object(spec: Spec) -> None:
    for path in ("/api/v4/posts/{post_id}", "/api/v4/posts/{post_id}/patch"):
        schema = _op(spec, "put", path)["requestBody"]["content"]["application/json"]["schema"]
        schema["properties"]["props"] = _s("object", nullable=True)


def _post_fields(spec: Spec) -> None:
    props = _schemas(spec)["Post"]["properties"]
    props.pop("hashtag", None)
    props.update(
        {
            "hashtags": STR,
            "is_pinned": BOOL,
            "reply_count": INT,
            "last_reply_at": INT,
            "participants": _s("array", nullable=True, items=_ref("User")),
            "has_reactions": BOOL,
            "message_source": STR,
            "remote_id": NSTR,
            "is_following": NBOOL,
            "file_ids": _s("array", nullable=True, items=STR),
        }
    )


def _post_metadata_nullable(spec: Spec) -> None:
    for prop in _schemas(spec)["PostMetadata"]["properties"].values():
        prop["nullable"] = True


def _post_list_fields(spec: Spec) -> None:
    _add_props(spec, "PostList", {"first_inaccessible_post_time": INT})


def _channel_fields(spec: Spec) -> None:
    _add_props(
        spec,
        "Channel",
        {
            "scheme_id": NSTR,
            "props": _s("object", nullable=True),
            "group_constrained": NBOOL,
            "shared": NBOOL,
            "total_msg_count_root": INT,
            "policy_id": NSTR,
            "last_root_post_at": INT,
            "banner_info": _s("object", nullable=True),
            "policy_enforced": BOOL,
            "autotranslation": BOOL,
            "default_category_name": STR,
        },
    )


def _channel_member_fields(spec: Spec) -> None:
    _add_props(
        spec,
        "ChannelMember",
        {
            "mention_count_root": INT,
            "urgent_mention_count": INT,
            "msg_count_root": INT,
            "scheme_guest": BOOL,
            "scheme_user": BOOL,
            "scheme_admin": BOOL,
            "explicit_roles": STR,
        },
    )
    _add_props(spec, "ChannelNotifyProps", {"ignore_channel_mentions": STR, "channel_auto_follow_threads": STR})


def _team_fields(spec: Spec) -> None:
    _add_props(
        spec,
        "Team",
        {
            "company_name": STR,
            "last_team_icon_update": INT,
            "scheme_id": NSTR,
            "group_constrained": NBOOL,
            "policy_id": NSTR,
            "cloud_limits_archived": BOOL,
        },
    )
    _add_props(spec, "TeamMember", {"scheme_guest": BOOL})


def _command_fields(spec: Spec) -> None:
    _add_props(spec, "Command", {"plugin_id": STR, "autocomplete_data": _s("object", nullable=True),
                                 "autocomplete_icon_data": STR})


def _file_info_fields(spec: Spec) -> None:
    _add_props(
        spec,
        "FileInfo",
        {"channel_id": STR, "mini_preview": NSTR, "remote_id": NSTR, "archived": BOOL},
    )
    upload = _op(spec, "post", "/api/v4/files")["responses"]["201"]["content"]["application/json"]["schema"]
    upload["additionalProperties"] = False
    upload["required"] = ["file_infos", "client_ids"]


def _reaction_fields(spec: Spec) -> None:
    _add_props(spec, "Reaction", {"update_at": INT, "delete_at": INT, "channel_id": STR, "remote_id": NSTR})


def _bot_fields(spec: Spec) -> None:
    _add_props(spec, "Bot", {"last_icon_update": INT})


def _autocomplete_suggestions_prefix(spec: Spec) -> None:
    paths = spec["paths"]
    paths["/api/v4/teams/{team_id}/commands/autocomplete_suggestions"] = paths.pop(
        "/teams/{team_id}/commands/autocomplete_suggestions"
    )


def _command_webhook(spec: Spec) -> None:
    spec["paths"]["/hooks/commands/{hook_id}"] = {
        "post": {
            "operationId": "ExecuteCommandWebhook",
            "summary": "Delayed slash-command response (protocol.md §1.5), described by the harness",
            "security": [],
            "parameters": [{"name": "hook_id", "in": "path", "required": True, "schema": STR}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("CommandResponse")},
                    "*/*": {"schema": _s("string", format="binary")},
                },
            },
            "responses": {
                "200": {"description": "Accepted", "content": {"text/plain": {"schema": _s("string", enum=["ok"])}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "404": {"$ref": "#/components/responses/NotFound"},
            },
        }
    }


def _incoming_webhook(spec: Spec) -> None:
    message = _obj(
        {
            "text": STR,
            "username": STR,
            "icon_url": STR,
            "icon_emoji": STR,
            "channel": STR,
            "type": STR,
            "props": _s("object", nullable=True),
            "attachments": _s("array", nullable=True, items=_ref("SlackAttachment")),
            "priority": _s("object", nullable=True),
        }
    )
    spec["paths"]["/hooks/{hook_id}"] = {
        "post": {
            "operationId": "ExecuteIncomingWebhook",
            "summary": "Incoming webhook (Mattermost web/webhook.go), described by the harness",
            "security": [],
            "parameters": [{"name": "hook_id", "in": "path", "required": True, "schema": STR}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": message},
                    "application/x-www-form-urlencoded": {
                        "schema": _obj({"payload": STR}, required=["payload"])
                    },
                },
            },
            "responses": {
                "200": {"description": "Posted", "content": {"text/plain": {"schema": _s("string", enum=["ok"])}}},
            },
        }
    }


ERRATA: list[Erratum] = [
    Erratum(
        "duplicate-operation-id",
        "SaveAcknowledgementForPost (POST and DELETE .../ack)",
        "the same operationId on two operations",
        "two distinct operations",
        "rename the DELETE one DeleteAcknowledgementForPost; the patched document passes "
        "openapi-spec-validator",
        _fix_duplicate_operation_id,
    ),
    Erratum(
        "command-response-go-names",
        "schemas/CommandResponse (ExecuteCommand 200, /hooks/commands body)",
        "Go field names ResponseType, Text, Username, IconURL, GotoLocation, Attachments",
        "snake_case: response_type, text, username, channel_id, icon_url, type, props, goto_location, "
        "trigger_id, skip_slack_parsing, attachments, extra_responses (protocol.md §1.4)",
        "replace the schema with the snake_case wire shape",
        _command_response_snake_case,
    ),
    Erratum(
        "attachment-go-names",
        "schemas/SlackAttachment, schemas/SlackAttachmentField",
        "Go field names (Fallback, AuthorName, ImageURL, Timestamp, Fields[].Title/Value/Short ...)",
        "snake_case fields incl. ts (string or integer) and actions (protocol.md §2.1); field value may "
        "be a string or a number",
        "replace both schemas with the snake_case wire shape",
        _attachment_snake_case,
    ),
    Erratum(
        "attachment-id-integer",
        "schemas/SlackAttachment.id",
        "string",
        "integer (Go int64)",
        "type the id as integer",
        _attachment_id_integer,
    ),
    Erratum(
        "channel-stats-fields",
        "schemas/ChannelStats (GetChannelStats 200)",
        "only channel_id and member_count",
        "also guest_count, pinnedpost_count, files_count ([new] has_new_pinned_posts)",
        "add the fields",
        _channel_stats_fields,
    ),
    Erratum(
        "timezone-strings",
        "schemas/Timezone (User.timezone)",
        "useAutomaticTimezone is a boolean",
        "all three values are strings, e.g. \"true\" (protocol.md §5.1)",
        "type the three values as strings",
        _timezone_strings,
    ),
    Erratum(
        "app-error-fields",
        "schemas/AppError (every error response)",
        "status_code, id, message, request_id",
        "also detailed_error (always) and is_oauth (when set) (protocol.md §0)",
        "add the fields",
        _app_error_fields,
    ),
    Erratum(
        "post-action-response",
        "DoPostAction 200",
        "StatusOK {status}",
        "{\"status\":\"OK\",\"trigger_id\":\"...\"} (protocol.md §2.2)",
        "give the 200 its own schema with trigger_id",
        _post_action_response,
    ),
    Erratum(
        "dialog-submit-response",
        "SubmitInteractiveDialog 200",
        "StatusOK {status}",
        "the integration's SubmitDialogResponse relayed: {} or {errors:{name:msg}} or {error:msg} "
        "(protocol.md §3.4)",
        "document the 200 as SubmitDialogResponse",
        _dialog_submit_response,
    ),
    Erratum(
        "dialog-cancel-without-submission",
        "SubmitInteractiveDialog request",
        "submission is required",
        "a cancel notification (cancelled: true) carries no submission (the server forwards "
        "submission: null, protocol.md §3.4)",
        "make submission optional and nullable",
        _dialog_cancel_without_submission,
    ),
    Erratum(
        "ping-without-auth",
        "GetPing",
        "inherits the global bearerAuth requirement",
        "needs no authentication (protocol.md §5.2)",
        "security: [] on GetPing",
        _ping_without_auth,
    ),
    Erratum(
        "token-and-cookie-auth",
        "global security",
        "Authorization: Bearer only",
        "also Authorization: Token <token> and the MMAUTHTOKEN cookie (protocol.md §0)",
        "add tokenAuth and cookieAuth as alternative requirements",
        _token_and_cookie_auth,
    ),
    Erratum(
        "get-file-no-200",
        "GetFile",
        "no 200 response at all",
        "200 with the file's bytes and media type",
        "add a 200 with */* binary content",
        _get_file_200,
    ),
    Erratum(
        "raw-file-upload",
        "UploadFile request",
        "multipart/form-data only",
        "a raw body with ?channel_id=&filename= is also accepted (protocol.md §5.5)",
        "add */* binary request content",
        _raw_upload,
    ),
    Erratum(
        "post-patch-props-object",
        "UpdatePost, PatchPost request",
        "props is a string",
        "props is a JSON object (the property bag, e.g. {attachments: [...]})",
        "type props as object",
        _post_props_object,
    ),
    Erratum(
        "post-fields",
        "schemas/Post",
        "has a non-existent 'hashtag'; lacks is_pinned, reply_count, last_reply_at, participants, "
        "has_reactions, message_source, remote_id, is_following",
        "the field set of protocol.md §5.1 (hashtags, participants may be null)",
        "replace hashtag by hashtags and add the missing fields",
        _post_fields,
    ),
    Erratum(
        "post-metadata-nullable",
        "schemas/PostMetadata",
        "descriptions say each part 'will be null' when empty, but none is nullable",
        "parts are absent or null when empty (protocol.md §5.1)",
        "mark every PostMetadata property nullable",
        _post_metadata_nullable,
    ),
    Erratum(
        "post-list-fields",
        "schemas/PostList",
        "order, posts, next_post_id, prev_post_id, has_next",
        "also first_inaccessible_post_time",
        "add the field",
        _post_list_fields,
    ),
    Erratum(
        "channel-fields",
        "schemas/Channel",
        "lacks scheme_id, props, group_constrained, shared, total_msg_count_root, policy_id, "
        "last_root_post_at",
        "sends them, pointers as null (protocol.md §5.1); newer servers add banner_info, "
        "policy_enforced, autotranslation, default_category_name",
        "add the fields (nullable where the server uses pointers)",
        _channel_fields,
    ),
    Erratum(
        "channel-member-fields",
        "schemas/ChannelMember, schemas/ChannelNotifyProps",
        "lacks mention_count_root, urgent_mention_count, msg_count_root, scheme_guest, scheme_user, "
        "scheme_admin, explicit_roles; notify props lack ignore_channel_mentions, "
        "channel_auto_follow_threads",
        "sends them (protocol.md §5.1)",
        "add the fields",
        _channel_member_fields,
    ),
    Erratum(
        "team-fields",
        "schemas/Team, schemas/TeamMember",
        "Team lacks company_name, last_team_icon_update, scheme_id, group_constrained; "
        "TeamMember lacks scheme_guest",
        "sends them (protocol.md §5.1)",
        "add the fields",
        _team_fields,
    ),
    Erratum(
        "command-fields",
        "schemas/Command",
        "lacks plugin_id, autocomplete_data, autocomplete_icon_data",
        "sends plugin_id always, the others when set (protocol.md §1.1)",
        "add the fields",
        _command_fields,
    ),
    Erratum(
        "file-info-fields",
        "schemas/FileInfo, UploadFile 201",
        "FileInfo lacks channel_id, mini_preview, remote_id, archived",
        "sends them (protocol.md §5.1); the upload answer always has file_infos and client_ids",
        "add the fields",
        _file_info_fields,
    ),
    Erratum(
        "reaction-fields",
        "schemas/Reaction",
        "user_id, post_id, emoji_name, create_at",
        "newer servers also send update_at, delete_at, channel_id, remote_id",
        "add them as optional",
        _reaction_fields,
    ),
    Erratum(
        "bot-fields",
        "schemas/Bot",
        "lacks last_icon_update",
        "sends it when set (protocol.md §5.1)",
        "add the field",
        _bot_fields,
    ),
    Erratum(
        "autocomplete-suggestions-prefix",
        "ListCommandAutocompleteSuggestions path",
        "/teams/{team_id}/commands/autocomplete_suggestions (no /api/v4)",
        "/api/v4/teams/{team_id}/commands/autocomplete_suggestions",
        "move the path under /api/v4",
        _autocomplete_suggestions_prefix,
    ),
    Erratum(
        "command-webhook-undocumented",
        "POST /hooks/commands/{hook_id}",
        "absent (not under /api/v4)",
        "no auth; CommandResponse JSON or plain text body; 200 text/plain 'ok'; 404/400 AppError "
        "(protocol.md §1.5)",
        "describe the route in the patched spec so it is validated like the others",
        _command_webhook,
    ),
    Erratum(
        "incoming-webhook-undocumented",
        "POST /hooks/{hook_id}",
        "absent (not under /api/v4)",
        "no auth; JSON body {text, username, icon_url, channel, props, attachments, ...} or form field "
        "payload=<that JSON>; 200 text/plain 'ok'; AppError on failure (Mattermost server web/webhook.go; "
        "protocol.md does not cover it)",
        "describe the route in the patched spec",
        _incoming_webhook,
    ),
    Erratum(
        "error-statuses-undocumented",
        "every operation",
        "only some error statuses per operation (e.g. GetPost has no 404, GetChannelMember no 404, "
        "CreatePost no 413, ExecuteCommand no 404/500)",
        "any route can answer an AppError with 400/401/403/404/413/429/500/501 (protocol.md §0)",
        "add 4XX and 5XX AppError responses to every operation (kept after the route-adding errata); "
        "documented codes keep precedence and 2xx codes stay exact",
        _error_statuses,
    ),
    Erratum(
        "websocket-undocumented",
        "GET /api/v4/websocket",
        "absent",
        "WebSocket upgrade (protocol.md §4)",
        "out of contract scope: the WebSocket protocol is tested by the sandbox's own tests",
        out_of_scope=r"^/api/v4/websocket/?$",
    ),
    Erratum(
        "omit-users-array",
        "WebSocket intro text (broadcast.omit_users)",
        "an array of user ids",
        "a JSON object {user_id: true}",
        "out of contract scope (WebSocket); nothing in the REST schemas depends on it",
    ),
    Erratum(
        "sandbox-control-routes",
        "/_sandbox/...",
        "absent",
        "the sandbox's own control API, not a Mattermost route",
        "out of contract scope",
        out_of_scope=r"^/_sandbox(/|$)",
    ),
]

# ---------------------------------------------------------------------------------------------
# Strictness: object schemas whose full wire shape protocol.md §5.1 gives are closed (no
# undocumented keys) and their always-sent fields required, so the harness catches a sandbox
# that invents, misspells or drops fields. Applied after the errata.

STRICT_SCHEMAS: dict[str, tuple[str, ...]] = {
    "Post": (
        "id", "create_at", "update_at", "edit_at", "delete_at", "is_pinned", "user_id", "channel_id",
        "root_id", "original_id", "message", "type", "props", "hashtags", "pending_post_id",
        "reply_count", "last_reply_at", "participants",
    ),
    "PostList": ("order", "posts", "next_post_id", "prev_post_id", "has_next"),
    "Channel": (
        "id", "create_at", "update_at", "delete_at", "team_id", "type", "display_name", "name",
        "header", "purpose", "last_post_at", "total_msg_count", "extra_update_at", "creator_id",
        "scheme_id", "props", "group_constrained", "shared", "total_msg_count_root", "policy_id",
        "last_root_post_at",
    ),
    "ChannelMember": (
        "channel_id", "user_id", "roles", "last_viewed_at", "msg_count", "mention_count",
        "mention_count_root", "urgent_mention_count", "msg_count_root", "notify_props",
        "last_update_at", "scheme_guest", "scheme_user", "scheme_admin", "explicit_roles",
    ),
    "ChannelStats": ("channel_id", "member_count", "guest_count", "pinnedpost_count", "files_count"),
    "Team": (
        "id", "create_at", "update_at", "delete_at", "display_name", "name", "description", "email",
        "type", "allowed_domains", "invite_id", "allow_open_invite",
    ),
    "TeamMember": (
        "team_id", "user_id", "roles", "delete_at", "scheme_guest", "scheme_user", "scheme_admin",
        "explicit_roles",
    ),
    "Command": (
        "id", "token", "create_at", "update_at", "delete_at", "creator_id", "team_id", "trigger",
        "method", "username", "icon_url", "auto_complete", "auto_complete_desc", "auto_complete_hint",
        "display_name", "description", "url",
    ),
    "CommandResponse": (),
    "SlackAttachment": (),
    "SlackAttachmentField": (),
    "FileInfo": (
        "id", "user_id", "channel_id", "create_at", "update_at", "delete_at", "name", "extension",
        "size", "mime_type",
    ),
    "Reaction": ("user_id", "post_id", "emoji_name", "create_at"),
    "Bot": ("user_id", "username", "owner_id", "create_at", "update_at", "delete_at"),
    "AppError": ("id", "message", "detailed_error", "request_id", "status_code"),
    "StatusOK": ("status",),
}
# Open schemas that still get required fields (their full field list is not fixed).
REQUIRED_ONLY: dict[str, tuple[str, ...]] = {"User": ("id", "username", "roles")}


def _loosen_request_bodies(spec: Spec, names: set[str]) -> None:
    # Strictness describes what the server sends; clients may omit server-set fields (Reaction's
    # create_at, Command's id...), so request bodies get a private copy of the lenient schema.
    schemas = _schemas(spec)
    for op in _operations(spec):
        for media in op.get("requestBody", {}).get("content", {}).values():
            ref = media.get("schema", {}).get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if name in names:
                media["schema"] = copy.deepcopy(schemas[name])


def _apply_strictness(spec: Spec) -> None:
    schemas = _schemas(spec)
    _loosen_request_bodies(spec, set(STRICT_SCHEMAS) | set(REQUIRED_ONLY))
    for name, required in STRICT_SCHEMAS.items():
        schema = schemas[name]
        schema["additionalProperties"] = False
        if required:
            schema["required"] = list(required)
    for name, required in REQUIRED_ONLY.items():
        schemas[name]["required"] = list(required)
    schemas["StatusOK"]["properties"]["status"]["enum"] = ["OK"]


def patched_spec(
    errata: Sequence[Erratum] = ERRATA,
    *,
    strict: bool = True,
    base_url: str = DEFAULT_BASE_URL,
) -> Spec:
    """The OpenAPI document with ``errata`` applied (in order), strictness, and ``servers`` = base_url."""
    spec = load_spec()
    for erratum in errata:
        if erratum.patch is not None:
            erratum.patch(spec)
    if strict:
        _apply_strictness(spec)
    spec["servers"] = [{"url": base_url}]
    return spec


def build_openapi(
    base_url: str = DEFAULT_BASE_URL,
    errata: Sequence[Erratum] = ERRATA,
    *,
    strict: bool = True,
    check_document: bool = False,
) -> OpenAPI:
    """Build an openapi-core ``OpenAPI`` for ``base_url`` from the patched document.

    The document check (openapi-spec-validator, ~1 s) is off by default; the test suite runs it
    once on the fully patched document instead.
    """
    return openapi_from_spec(patched_spec(errata, strict=strict, base_url=base_url), check_document=check_document)


def openapi_from_spec(spec: Spec, *, check_document: bool = False) -> OpenAPI:
    """Wrap an already patched document (with the memoising path finder)."""
    config = Config(path_finder_cls=_MemoPathFinder)
    if not check_document:
        config.spec_validator_cls = None
    return OpenAPI.from_dict(spec, config=config)


class _MemoPathFinder(APICallPathFinder):
    """openapi-core's finder scans all ~340 path templates per call; remember each answer.

    The checker passes the resolved template as ``path_pattern``, so the lookup key is
    (method, template URL): a bounded set, one entry per operation used.
    """

    def __init__(self, spec: Any, base_url: str | None = None):
        super().__init__(spec, base_url=base_url)
        self._memo: dict[tuple[str, str], Any] = {}

    def find(self, method: str, name: str) -> Any:
        key = (method, name)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = super().find(method, name)
        return found


@dataclass(frozen=True)
class Route:
    """A request path resolved to its OpenAPI path template."""

    template: str
    variables: dict[str, str]


class RouteIndex:
    """Resolves concrete request paths to path templates with openapi-core's precedence.

    A literal template beats templated ones, fewer variables beat more, and the first candidate
    that has the method wins (so ``POST /users/ids`` is not ``/users/{user_id}``).
    """

    def __init__(self, paths: Mapping[str, Mapping[str, Any]]):
        self._by_length: dict[int, list[tuple[str, list[str], int, frozenset[str]]]] = {}
        for template, item in paths.items():
            segments = template.split("/")
            n_vars = sum(1 for seg in segments if seg.startswith("{"))
            methods = frozenset(m for m in item if m in _HTTP_METHODS)
            self._by_length.setdefault(len(segments), []).append((template, segments, n_vars, methods))
        for candidates in self._by_length.values():
            candidates.sort(key=lambda c: c[2])  # stable: keeps document order among equals
        self.resolve = functools.lru_cache(maxsize=8192)(self._resolve)

    def _resolve(self, method: str, path: str) -> Route | str:
        """The Route, or "path" / "method" naming what is missing from the contract."""
        segments = path.split("/")
        path_known = False
        for template, t_segments, _, methods in self._by_length.get(len(segments), ()):
            variables = {}
            for t_seg, seg in zip(t_segments, segments):
                if t_seg.startswith("{"):
                    if not seg:
                        break
                    variables[t_seg[1:-1]] = seg
                elif t_seg != seg:
                    break
            else:
                path_known = True
                if method in methods:
                    return Route(template, variables)
        return "method" if path_known else "path"


# ---------------------------------------------------------------------------------------------
# Exchange -> openapi-core request/response protocols


def _as_headers(raw: Any) -> Headers:
    if raw is None:
        return Headers()
    if isinstance(raw, Headers):
        return raw
    items = raw.items() if hasattr(raw, "items") else raw
    return Headers([(str(k), str(v)) for k, v in items])


def _as_query(raw: Any, url: str) -> ImmutableMultiDict:
    if raw is None or raw == "":
        raw = urlsplit(url).query if url else ""
    if isinstance(raw, (str, bytes)):
        text = raw.decode() if isinstance(raw, bytes) else raw
        return ImmutableMultiDict(parse_qsl(text.lstrip("?"), keep_blank_values=True))
    pairs: list[tuple[str, str]] = []
    items = raw.items() if hasattr(raw, "items") else raw
    for key, value in items:
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return ImmutableMultiDict(pairs)


def _content_type(headers: Headers) -> str:
    # The media type is case-insensitive but parameters are not (a multipart boundary must match).
    raw = headers.get("Content-Type") or ""
    media, sep, params = raw.partition(";")
    return media.strip().lower() + (sep + params if sep else "")


def _cookies(headers: Headers) -> ImmutableMultiDict:
    jar: SimpleCookie = SimpleCookie()
    for value in headers.getlist("Cookie"):
        jar.load(value)
    return ImmutableMultiDict([(k, m.value) for k, m in jar.items()])


@dataclass
class ExchangeRequest:
    """An exchange's request in openapi-core's ``Request`` protocol."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None
    # Set once the route is resolved; openapi-core then matches the template, not the concrete path.
    path_pattern: str | None = None


@dataclass
class ExchangeResponse:
    """An exchange's response in openapi-core's ``Response`` protocol."""

    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


def _path_of(exchange: Any) -> str:
    path = getattr(exchange, "path", None) or urlsplit(getattr(exchange, "url", "") or "").path
    return path.split("?", 1)[0]


def to_openapi_request(exchange: Any, host_url: str) -> ExchangeRequest:
    """Wrap an Exchange's request side; ``host_url`` replaces the recorded host (ports vary)."""
    headers = _as_headers(getattr(exchange, "headers", None))
    params = RequestParameters(
        query=_as_query(getattr(exchange, "query", None), getattr(exchange, "url", "") or ""),
        header=headers,
        cookie=_cookies(headers),
        path={},
    )
    return ExchangeRequest(
        host_url=host_url,
        path=_path_of(exchange),
        method=str(exchange.method).lower(),
        parameters=params,
        content_type=_content_type(headers),
        body=exchange.body if exchange.body else None,
    )


def to_openapi_response(exchange: Any) -> ExchangeResponse:
    """Wrap an Exchange's response side."""
    headers = _as_headers(getattr(exchange, "response_headers", None))
    return ExchangeResponse(
        status_code=int(exchange.status),
        content_type=_content_type(headers),
        headers=headers,
        data=exchange.response_body if exchange.response_body else None,
    )


# ---------------------------------------------------------------------------------------------
# Error formatting


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: BaseException) -> list[str]:
    """Turn an openapi-core exception chain into short, located messages."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        chain.append(node)
        node = node.__cause__ or node.__context__
    for node in chain:
        schema_errors = getattr(node, "schema_errors", None)
        if schema_errors:
            return [
                f"{_json_path(err.absolute_path)}: {_clip(err.message)}"
                for err in sorted(schema_errors, key=lambda e: list(map(str, e.absolute_path)))
            ]
    # No schema details: join the distinct messages of the chain (outermost first).
    messages: list[str] = []
    for node in chain:
        msg = _clip(str(node) or type(node).__name__)
        if msg not in messages:
            messages.append(msg)
    return [" <- ".join(messages)]


# ---------------------------------------------------------------------------------------------
# Wire rules from protocol.md §0 that OpenAPI cannot express


WIRE_RULES: list[tuple[str, str]] = [
    ("json-content-type-exact", "JSON API responses carry Content-Type: application/json exactly"),
    ("request-id-header", "every /api/v4 response carries X-Request-Id"),
    ("version-id-header", "every /api/v4 response carries X-Version-Id"),
    ("expires-on-get", "GET /api/v4 responses carry Expires: 0"),
    ("app-error-consistent", "an AppError's status_code equals the HTTP status and request_id the X-Request-Id"),
]


def _wire_problems(method: str, path: str, response: ExchangeResponse) -> list[str]:
    if not path.startswith("/api/v4/"):
        return []
    problems = []
    headers = response.headers
    raw_type = headers.get("Content-Type")
    if raw_type is not None and raw_type.split(";")[0].strip().lower() == "application/json" and raw_type != "application/json":
        problems.append(f"wire: Content-Type is {raw_type!r}, the real server sends exactly 'application/json'")
    request_id = headers.get("X-Request-Id")
    if not request_id:
        problems.append("wire: missing X-Request-Id header")
    if not headers.get("X-Version-Id"):
        problems.append("wire: missing X-Version-Id header")
    if method == "get" and headers.get("Expires") != "0":
        problems.append(f"wire: GET answered with Expires {headers.get('Expires')!r}, the real server sends '0'")
    if response.status_code >= 400 and response.data and raw_type and raw_type.startswith("application/json"):
        try:
            body = json.loads(response.data)
        except ValueError:
            body = None
        if isinstance(body, dict):
            if "status_code" in body and body["status_code"] != response.status_code:
                problems.append(
                    f"wire: AppError status_code {body['status_code']!r} != HTTP status {response.status_code}"
                )
            if request_id and "request_id" in body and body["request_id"] != request_id:
                problems.append("wire: AppError request_id differs from the X-Request-Id header")
    return problems


# ---------------------------------------------------------------------------------------------
# The checker


_ROUTE_ERRORS = (PathNotFound, OperationNotFound, ServerNotFound)


def _route_problem(request: ExchangeRequest, exc: Exception) -> str:
    what = "method not documented for this path" if isinstance(exc, OperationNotFound) else "path not in the contract"
    return f"unknown route: {request.method.upper()} {request.path} ({what})"


@dataclass
class ContractChecker:
    """Validates recorded exchanges against the patched Mattermost OpenAPI document."""

    base_url: str = DEFAULT_BASE_URL
    errata: Sequence[Erratum] = field(default_factory=lambda: list(ERRATA))
    strict: bool = True
    wire_rules: bool = True

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        spec = patched_spec(self.errata, strict=self.strict, base_url=self.base_url)
        self.openapi = openapi_from_spec(spec)
        self.routes = RouteIndex(spec["paths"])
        self._out_of_scope = [re.compile(e.out_of_scope) for e in self.errata if e.out_of_scope]

    def in_scope(self, exchange: Any) -> bool:
        """False for routes an erratum declares out of contract scope (WebSocket, sandbox control)."""
        path = _path_of(exchange)
        return not any(rx.search(path) for rx in self._out_of_scope)

    def validate_exchange(self, exchange: Any) -> list[str]:
        """Return every contract problem of one exchange (empty list when it conforms).

        The request is judged only when the server accepted it (status < 400): a rejected request
        is allowed to be invalid, but its error response must still match the contract.
        """
        if not self.in_scope(exchange):
            return []
        request = to_openapi_request(exchange, self.base_url)
        route = self.routes.resolve(request.method, request.path)
        if not isinstance(route, Route):
            what = "method not documented for this path" if route == "method" else "path not in the contract"
            return [f"unknown route: {request.method.upper()} {request.path} ({what})"]
        request.path_pattern = route.template
        request.parameters.path = route.variables
        response = to_openapi_response(exchange)
        problems: list[str] = []
        if response.status_code < 400:
            try:
                self.openapi.validate_request(request)
            except _ROUTE_ERRORS as exc:
                return [_route_problem(request, exc)]
            except Exception as exc:
                problems += [f"request: {msg}" for msg in _describe(exc)]
        try:
            self.openapi.validate_response(request, response)
        except _ROUTE_ERRORS as exc:
            return [_route_problem(request, exc)]
        except ResponseNotFound as exc:
            problems.append(f"response: status {response.status_code} is not documented ({_clip(str(exc))})")
        except Exception as exc:
            problems += [f"response: {msg}" for msg in _describe(exc)]
        if self.wire_rules:
            problems += _wire_problems(request.method, request.path, response)
        return problems

    def check(self, exchanges: Iterable[Any]) -> tuple[int, list[str]]:
        """Validate many exchanges: (number judged, problems each prefixed by method, path, status)."""
        judged = 0
        problems: list[str] = []
        for ex in exchanges:
            if not self.in_scope(ex):
                continue
            judged += 1
            for problem in self.validate_exchange(ex):
                problems.append(f"{str(ex.method).upper()} {_path_of(ex)} -> {ex.status}: {problem}")
        return judged, problems

    def assert_exchanges_valid(self, exchanges: Iterable[Any]) -> int:
        """Raise AssertionError listing every problem; return how many exchanges were judged."""
        judged, problems = self.check(exchanges)
        if problems:
            raise AssertionError(
                f"{len(problems)} contract problem(s) in {judged} exchange(s):\n" + "\n".join(problems)
            )
        return judged


@functools.lru_cache(maxsize=1)
def default_checker() -> ContractChecker:
    """The process-wide checker with all errata, strictness and wire rules."""
    return ContractChecker()


def validate_exchange(exchange: Any) -> list[str]:
    """Problems of one exchange according to ``default_checker()``."""
    return default_checker().validate_exchange(exchange)


def assert_exchanges_valid(exchanges: Iterable[Any]) -> int:
    """Assert every exchange conforms (``default_checker()``); return how many were judged."""
    return default_checker().assert_exchanges_valid(exchanges)
