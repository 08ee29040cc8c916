"""The OpenAPI file's known errors (``ERRATA``, one record each) and the strictness added on top.

Each ``Erratum`` names what the file says, what the server does and how the harness compensates
(a ``patch`` of the loaded document, or an ``out_of_scope`` path pattern). ``STRICT_SCHEMAS``
closes the object schemas whose complete wire shape protocol.md §5.1 gives. ``patched_spec()``
applies both, in that order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.contract.spec import (
    BOOL,
    DEFAULT_BASE_URL,
    INT,
    NBOOL,
    NSTR,
    OBJ,
    STR,
    Spec,
    add_props,
    json_response,
    load_spec,
    obj,
    operation_of,
    operations,
    ref,
    schemas_of,
    typed,
)

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
    operation_of(spec, "delete", "/api/v4/users/{user_id}/posts/{post_id}/ack")["operationId"] = (
        "DeleteAcknowledgementForPost"
    )


_ATTACHMENT_FIELD = obj({"title": STR, "value": {}, "short": BOOL})
_ACTION = obj(
    {
        "id": STR,
        "name": STR,
        "type": STR,
        "style": STR,
        "disabled": BOOL,
        "tooltip": STR,
        "data_source": STR,
        "options": typed("array", nullable=True, items=obj({"text": STR, "value": STR})),
        "default_option": STR,
        "integration": obj({"url": STR, "context": typed("object", nullable=True)}),
        "cookie": STR,
    }
)


def _attachment_snake_case(spec: Spec) -> None:
    schemas_of(spec)["SlackAttachmentField"] = copy.deepcopy(_ATTACHMENT_FIELD)
    schemas_of(spec)["SlackAttachment"] = obj(
        {
            # the id's type is fixed by the separate "attachment-id-integer" erratum
            "id": schemas_of(spec)["SlackAttachment"]["properties"].get("Id", STR),
            "fallback": STR,
            "color": STR,
            "pretext": STR,
            "author_name": STR,
            "author_link": STR,
            "author_icon": STR,
            "title": STR,
            "title_link": STR,
            "text": STR,
            "fields": typed("array", nullable=True, items=ref("SlackAttachmentField")),
            "image_url": STR,
            "thumb_url": STR,
            "footer": STR,
            "footer_icon": STR,
            "ts": {"oneOf": [STR, typed("integer")]},
            "actions": typed("array", nullable=True, items=copy.deepcopy(_ACTION)),
        }
    )


def _attachment_id_integer(spec: Spec) -> None:
    add_props(spec, "SlackAttachment", {"id": typed("integer", format="int64")})


def _command_response_snake_case(spec: Spec) -> None:
    props = {
        "response_type": typed("string", enum=["in_channel", "ephemeral", ""]),
        "text": STR,
        "username": STR,
        "channel_id": STR,
        "icon_url": STR,
        "type": STR,
        "props": typed("object", nullable=True),
        "goto_location": STR,
        "trigger_id": STR,
        "skip_slack_parsing": BOOL,
        "attachments": typed("array", nullable=True, items=ref("SlackAttachment")),
        "extra_responses": typed("array", nullable=True, items=ref("CommandResponse")),
    }
    schemas_of(spec)["CommandResponse"] = obj(props)


def _channel_stats_fields(spec: Spec) -> None:
    add_props(
        spec,
        "ChannelStats",
        {"guest_count": INT, "pinnedpost_count": INT, "files_count": INT, "has_new_pinned_posts": BOOL},
    )


def _timezone_strings(spec: Spec) -> None:
    add_props(spec, "Timezone", {"useAutomaticTimezone": STR, "automaticTimezone": STR, "manualTimezone": STR})


def _app_error_fields(spec: Spec) -> None:
    add_props(spec, "AppError", {"detailed_error": STR, "is_oauth": BOOL})


def _post_action_response(spec: Spec) -> None:
    operation_of(spec, "post", "/api/v4/posts/{post_id}/actions/{action_id}")["responses"]["200"] = json_response(
        obj({"status": typed("string", enum=["OK"]), "trigger_id": STR}, required=["status"])
    )


def _dialog_submit_response(spec: Spec) -> None:
    operation_of(spec, "post", "/api/v4/actions/dialogs/submit")["responses"]["200"] = json_response(
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "errors": typed("object", nullable=True, additionalProperties=STR),
                "error": STR,
                "type": STR,
                "form": OBJ,
            },
        },
        "The integration's SubmitDialogResponse, relayed",
    )


def _dialog_cancel_without_submission(spec: Spec) -> None:
    body = operation_of(spec, "post", "/api/v4/actions/dialogs/submit")["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    schema["required"] = [r for r in schema["required"] if r != "submission"]
    schema["properties"]["submission"]["nullable"] = True


def _ping_without_auth(spec: Spec) -> None:
    operation_of(spec, "get", "/api/v4/system/ping")["security"] = []


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
        "content": {"application/json": {"schema": ref("AppError")}},
    }
    error = {"$ref": "#/components/responses/AnyAppError"}
    for op in operations(spec):
        responses = op.setdefault("responses", {})
        responses.setdefault("4XX", error)
        responses.setdefault("5XX", error)


def _get_file_200(spec: Spec) -> None:
    operation_of(spec, "get", "/api/v4/files/{file_id}")["responses"]["200"] = {
        "description": "The file's content, with the file's own media type",
        "content": {"*/*": {"schema": typed("string", format="binary")}},
    }


def _raw_upload(spec: Spec) -> None:
    content = operation_of(spec, "post", "/api/v4/files")["requestBody"]["content"]
    content["*/*"] = {"schema": typed("string", format="binary")}


def _post_props_object(spec: Spec) -> None:
    for path in ("/api/v4/posts/{post_id}", "/api/v4/posts/{post_id}/patch"):
        schema = operation_of(spec, "put", path)["requestBody"]["content"]["application/json"]["schema"]
        schema["properties"]["props"] = typed("object", nullable=True)


def _post_fields(spec: Spec) -> None:
    props = schemas_of(spec)["Post"]["properties"]
    props.pop("hashtag", None)
    props.update(
        {
            "hashtags": STR,
            "is_pinned": BOOL,
            "reply_count": INT,
            "last_reply_at": INT,
            "participants": typed("array", nullable=True, items=ref("User")),
            "has_reactions": BOOL,
            "message_source": STR,
            "remote_id": NSTR,
            "is_following": NBOOL,
            "file_ids": typed("array", nullable=True, items=STR),
        }
    )


def _post_metadata_nullable(spec: Spec) -> None:
    for prop in schemas_of(spec)["PostMetadata"]["properties"].values():
        prop["nullable"] = True


def _post_list_fields(spec: Spec) -> None:
    add_props(spec, "PostList", {"first_inaccessible_post_time": INT})


def _channel_fields(spec: Spec) -> None:
    add_props(
        spec,
        "Channel",
        {
            "scheme_id": NSTR,
            "props": typed("object", nullable=True),
            "group_constrained": NBOOL,
            "shared": NBOOL,
            "total_msg_count_root": INT,
            "policy_id": NSTR,
            "last_root_post_at": INT,
            "banner_info": typed("object", nullable=True),
            "policy_enforced": BOOL,
            "autotranslation": BOOL,
            "default_category_name": STR,
        },
    )


def _channel_member_fields(spec: Spec) -> None:
    add_props(
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
    add_props(spec, "ChannelNotifyProps", {"ignore_channel_mentions": STR, "channel_auto_follow_threads": STR})


def _team_fields(spec: Spec) -> None:
    add_props(
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
    add_props(spec, "TeamMember", {"scheme_guest": BOOL})


def _command_fields(spec: Spec) -> None:
    add_props(spec, "Command", {"plugin_id": STR, "autocomplete_data": typed("object", nullable=True),
                                 "autocomplete_icon_data": STR})


def _file_info_fields(spec: Spec) -> None:
    add_props(
        spec,
        "FileInfo",
        {"channel_id": STR, "mini_preview": NSTR, "remote_id": NSTR, "archived": BOOL},
    )
    upload = operation_of(spec, "post", "/api/v4/files")["responses"]["201"]["content"]["application/json"]["schema"]
    upload["additionalProperties"] = False
    upload["required"] = ["file_infos", "client_ids"]


def _reaction_fields(spec: Spec) -> None:
    add_props(spec, "Reaction", {"update_at": INT, "delete_at": INT, "channel_id": STR, "remote_id": NSTR})


def _bot_fields(spec: Spec) -> None:
    add_props(spec, "Bot", {"last_icon_update": INT})


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
                    "application/json": {"schema": ref("CommandResponse")},
                    "*/*": {"schema": typed("string", format="binary")},
                },
            },
            "responses": {
                "200": {"description": "Accepted", "content": {"text/plain": {"schema": typed("string", enum=["ok"])}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "404": {"$ref": "#/components/responses/NotFound"},
            },
        }
    }


def _incoming_webhook(spec: Spec) -> None:
    message = obj(
        {
            "text": STR,
            "username": STR,
            "icon_url": STR,
            "icon_emoji": STR,
            "channel": STR,
            "type": STR,
            "props": typed("object", nullable=True),
            "attachments": typed("array", nullable=True, items=ref("SlackAttachment")),
            "priority": typed("object", nullable=True),
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
                        "schema": obj({"payload": STR}, required=["payload"])
                    },
                },
            },
            "responses": {
                "200": {"description": "Posted", "content": {"text/plain": {"schema": typed("string", enum=["ok"])}}},
            },
        }
    }



def _oauth_access_token(spec: Spec) -> None:
    answer = obj({"access_token": STR, "token_type": STR, "expires_in": INT, "scope": STR, "refresh_token": STR,
                  "id_token": STR, "audience": STR},
                 required=["access_token", "token_type", "expires_in", "refresh_token"])
    spec["paths"]["/oauth/access_token"] = {
        "post": {
            "operationId": "GetOAuthAccessToken",
            "summary": "OAuth 2.0 token endpoint (Mattermost web/oauth.go getAccessToken), described by the harness",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": obj(
                    {"grant_type": STR, "client_id": STR, "client_secret": STR, "code": STR, "redirect_uri": STR,
                     "refresh_token": STR}, required=["grant_type"])}},
            },
            "responses": {"200": {"description": "model.AccessResponse",
                                  "content": {"application/json": {"schema": answer}}}},
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
        "oauth-access-token-undocumented",
        "POST /oauth/access_token",
        "absent (not under /api/v4)",
        "form grant_type, client_id, client_secret, code|refresh_token, redirect_uri; 200 model.AccessResponse "
        "JSON; AppError on failure (web/oauth.go getAccessToken, app/oauth.go GetOAuthAccessTokenForCodeFlow)",
        "describe the route in the patched spec",
        _oauth_access_token,
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
    schemas = schemas_of(spec)
    for op in operations(spec):
        for media in op.get("requestBody", {}).get("content", {}).values():
            ref = media.get("schema", {}).get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if name in names:
                media["schema"] = copy.deepcopy(schemas[name])


def _apply_strictness(spec: Spec) -> None:
    schemas = schemas_of(spec)
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
