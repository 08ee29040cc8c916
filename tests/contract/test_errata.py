"""Each erratum is needed: without its patch a real-server-shaped exchange is rejected, with it accepted."""

from __future__ import annotations

import functools

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator

from tests.contract import examples as ex
from tests.contract.checker import ContractChecker
from tests.contract.errata import ERRATA, patched_spec
from tests.contract.spec import load_spec

CID, PID, UID, TID = ex.CHANNEL_ID, ex.POST_ID, ex.USER_ID, ex.TEAM_ID


def _execute(response: dict) -> ex.SyntheticExchange:
    return ex.exchange(
        "POST", "/api/v4/commands/execute", body={"channel_id": CID, "command": "/incident"}, response=response
    )


# One real-server-shaped exchange per erratum (protocol.md is the source of each shape).
PROOFS = {
    "command-response-go-names": lambda: _execute(ex.command_response()),
    "attachment-go-names": lambda: _execute(
        ex.command_response(
            attachments=[
                {"fallback": "INC-42", "color": "danger", "title": "INC-42", "text": "db down", "ts": 1717171717,
                 "fields": [{"title": "Severity", "value": "sev2", "short": True}]}
            ]
        )
    ),
    "attachment-id-integer": lambda: _execute(ex.command_response(attachments=[{"id": 1, "text": "db down"}])),
    "channel-stats-fields": lambda: ex.exchange("GET", f"/api/v4/channels/{CID}/stats", response=ex.channel_stats()),
    "timezone-strings": lambda: ex.exchange("GET", "/api/v4/users/me", response=ex.user()),
    "app-error-fields": lambda: ex.exchange(
        "GET", f"/api/v4/users/{UID}", status=404, response=ex.app_error(404, "app.user.missing_account.const")
    ),
    "error-statuses-undocumented": lambda: ex.exchange(
        "GET", f"/api/v4/posts/{PID}", status=404, response=ex.app_error(404, "app.post.get.app_error")
    ),
    "post-action-response": lambda: ex.exchange(
        "POST", f"/api/v4/posts/{PID}/actions/ack", body={}, response={"status": "OK", "trigger_id": "dHJpZ2dlcg"}
    ),
    "dialog-submit-response": lambda: ex.exchange(
        "POST",
        "/api/v4/actions/dialogs/submit",
        body={"url": "http://127.0.0.1:8579/hooks/dialog", "callback_id": "declare", "state": "s",
              "channel_id": CID, "team_id": TID, "submission": {"summary": ""}, "cancelled": False},
        response={"errors": {"summary": "A summary is required"}},
    ),
    "dialog-cancel-without-submission": lambda: ex.exchange(
        "POST",
        "/api/v4/actions/dialogs/submit",
        body={"url": "http://127.0.0.1:8579/hooks/dialog", "callback_id": "declare", "state": "s",
              "channel_id": CID, "team_id": TID, "cancelled": True},
        response={},  # the integration's empty answer, relayed as an empty SubmitDialogResponse
    ),
    "ping-without-auth": lambda: ex.exchange("GET", "/api/v4/system/ping", auth=False, response={"status": "OK"}),
    "token-and-cookie-auth": lambda: ex.exchange(
        "GET", "/api/v4/users/me", auth=False, headers={"Authorization": f"Token {ex.TOKEN}"}, response=ex.user()
    ),
    "get-file-no-200": lambda: ex.exchange(
        "GET", f"/api/v4/files/{ex.FILE_ID}", response=b"12:00 paged\n",
        response_headers={"Content-Type": "text/plain"},
    ),
    "raw-file-upload": lambda: ex.exchange(
        "POST", "/api/v4/files", status=201, query=f"channel_id={CID}&filename=timeline.txt",
        body=b"12:00 paged\n", headers={"Content-Type": "application/octet-stream"},
        response={"file_infos": [ex.file_info()], "client_ids": []},
    ),
    "post-patch-props-object": lambda: ex.exchange(
        "PUT", f"/api/v4/posts/{PID}/patch", body={"props": {"attachments": []}}, response=ex.post()
    ),
    "post-fields": lambda: ex.exchange("GET", f"/api/v4/posts/{PID}", response=ex.post()),
    "post-metadata-nullable": lambda: ex.exchange(
        "GET", f"/api/v4/posts/{PID}", response=ex.post(metadata={"reactions": None, "files": None})
    ),
    "post-list-fields": lambda: ex.exchange(
        "GET", f"/api/v4/channels/{CID}/posts", response=ex.post_list(first_inaccessible_post_time=0)
    ),
    "channel-fields": lambda: ex.exchange("GET", f"/api/v4/channels/{CID}", response=ex.channel()),
    "channel-member-fields": lambda: ex.exchange(
        "GET", f"/api/v4/channels/{CID}/members/{UID}", response=ex.channel_member()
    ),
    "team-fields": lambda: ex.exchange("GET", f"/api/v4/teams/{TID}/members/{UID}", response=ex.team_member()),
    "command-fields": lambda: ex.exchange("GET", f"/api/v4/commands/{ex.COMMAND_ID}", response=ex.command()),
    "file-info-fields": lambda: ex.exchange("GET", f"/api/v4/files/{ex.FILE_ID}/info", response=ex.file_info()),
    "reaction-fields": lambda: ex.exchange(
        "GET", f"/api/v4/posts/{PID}/reactions",
        response=[ex.reaction(update_at=ex.NOW, delete_at=0, channel_id=CID, remote_id="")],
    ),
    "bot-fields": lambda: ex.exchange(
        "GET", f"/api/v4/bots/{ex.BOT_ID}",
        response={"user_id": ex.BOT_ID, "username": "incident", "display_name": "Incident bot",
                  "description": "", "owner_id": UID, "last_icon_update": 0,
                  "create_at": ex.NOW, "update_at": ex.NOW, "delete_at": 0},
    ),
    "autocomplete-suggestions-prefix": lambda: ex.exchange(
        "GET", f"/api/v4/teams/{TID}/commands/autocomplete_suggestions", query="user_input=%2Finc", response=[]
    ),
    "command-webhook-undocumented": lambda: ex.exchange(
        "POST", f"/hooks/commands/{ex.HOOK_ID}", auth=False,
        body={"response_type": "in_channel", "text": "Status: mitigated"},
        response=b"ok", response_headers={"Content-Type": "text/plain"},
    ),
    "incoming-webhook-undocumented": lambda: ex.exchange(
        "POST", f"/hooks/{ex.HOOK_ID}", auth=False, body={"text": "CPU at 95% on db-1", "channel": "town-square"},
        response=b"ok", response_headers={"Content-Type": "text/plain"},
    ),
    "websocket-undocumented": lambda: ex.exchange("GET", "/api/v4/websocket", status=101, response=b""),
    "oauth-access-token-undocumented": lambda: ex.exchange(
        "POST", "/oauth/access_token", auth=False,
        body=b"grant_type=authorization_code&client_id=x&client_secret=y&code=z&redirect_uri=http%3A%2F%2Fb%2Fcb",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        response={"access_token": "t", "token_type": "bearer", "expires_in": 2592000, "scope": "",
                  "refresh_token": "r", "id_token": ""},
    ),
    "sandbox-control-routes": lambda: ex.exchange("GET", "/_sandbox/state", response={"posts": []}),
}
# Proven by the document check below rather than by an exchange.
DOCUMENT_ERRATA = {"duplicate-operation-id"}
# Describe prose outside the REST schemas; nothing to patch.
DOC_ONLY_ERRATA = {"omit-users-array"}


@functools.cache
def _checker_without(key: str) -> ContractChecker:
    return ContractChecker(errata=[e for e in ERRATA if e.key != key])


def test_errata_table_is_well_formed() -> None:
    keys = [e.key for e in ERRATA]
    assert len(keys) == len(set(keys))
    for erratum in ERRATA:
        assert erratum.target and erratum.spec_says and erratum.server_does and erratum.compensation
        assert (erratum.patch is None) != (erratum.key not in DOC_ONLY_ERRATA and erratum.out_of_scope is None)


def test_every_erratum_has_a_proof() -> None:
    assert set(PROOFS) | DOCUMENT_ERRATA | DOC_ONLY_ERRATA == {e.key for e in ERRATA}
    for key in DOC_ONLY_ERRATA:
        erratum = next(e for e in ERRATA if e.key == key)
        assert erratum.patch is None and erratum.out_of_scope is None


@pytest.mark.parametrize("key", list(PROOFS))
def test_erratum_is_needed(openapi_contract: ContractChecker, key: str) -> None:
    exchange = PROOFS[key]()
    assert _checker_without(key).validate_exchange(exchange), f"{key}: the file alone already accepts the example"
    assert openapi_contract.validate_exchange(exchange) == []


def test_raw_document_fails_the_document_check_on_the_duplicate_operation_id() -> None:
    spec = load_spec()
    spec["servers"] = [{"url": "http://127.0.0.1"}]
    messages = [str(e) for e in OpenAPIV30SpecValidator(spec).iter_errors()]
    assert any("SaveAcknowledgementForPost" in m for m in messages)


def test_patched_document_is_a_valid_openapi_30_document() -> None:
    errors = [str(e)[:300] for e in OpenAPIV30SpecValidator(patched_spec()).iter_errors()]
    assert errors == []
