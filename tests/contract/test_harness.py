"""The harness's own tests: synthetic exchanges in the real wire format, no sandbox needed."""

from __future__ import annotations

import json

import pytest
from openapi_core.templating.paths.finders import APICallPathFinder

from tests.contract import examples as ex
from tests.contract.adapters import to_openapi_request
from tests.contract.checker import ContractChecker, assert_exchanges_valid, validate_exchange
from tests.contract.spec import load_spec

CID, PID, UID, TID = ex.CHANNEL_ID, ex.POST_ID, ex.USER_ID, ex.TEAM_ID


# --- exchanges the real server could have produced: all must pass ---------------------------

VALID = {
    "get me": ex.exchange("GET", "/api/v4/users/me", response=ex.user()),
    "users by ids": ex.exchange("POST", "/api/v4/users/ids", body=[UID], response=[ex.user()]),
    "team by name": ex.exchange("GET", "/api/v4/teams/name/acme", response=ex.team()),
    "team member": ex.exchange("GET", f"/api/v4/teams/{TID}/members/{UID}", response=ex.team_member()),
    "ping without auth": ex.exchange(
        "GET", "/api/v4/system/ping", auth=False, response={"status": "OK", "AndroidLatestVersion": ""}
    ),
    "create post": ex.exchange(
        "POST", "/api/v4/posts", status=201, body={"channel_id": CID, "message": "hi"}, response=ex.post()
    ),
    "create post with attachments": ex.exchange(
        "POST",
        "/api/v4/posts",
        status=201,
        body={"channel_id": CID, "message": "", "props": {"attachments": [{"text": "card", "actions": []}]}},
        response=ex.post(type="slack_attachment", props={"attachments": [{"id": 0, "text": "card"}], "from_bot": "true"}),
    ),
    "ephemeral post": ex.exchange(
        "POST",
        "/api/v4/posts/ephemeral",
        status=201,
        body={"user_id": UID, "post": {"channel_id": CID, "message": "only you"}},
        response=ex.post(type="system_ephemeral", message="only you"),
    ),
    "patch post props": ex.exchange(
        "PUT",
        f"/api/v4/posts/{PID}/patch",
        body={"props": {"attachments": []}},
        response=ex.post(edit_at=ex.NOW + 5),
    ),
    "pin": ex.exchange("POST", f"/api/v4/posts/{PID}/pin", response={"status": "OK"}),
    "delete post": ex.exchange("DELETE", f"/api/v4/posts/{PID}", response={"status": "OK"}),
    "thread": ex.exchange("GET", f"/api/v4/posts/{PID}/thread", response=ex.post_list(ex.post())),
    "channel posts paged": ex.exchange(
        "GET", f"/api/v4/channels/{CID}/posts", query="page=0&per_page=60", response=ex.post_list(ex.post())
    ),
    "empty post list": ex.exchange("GET", f"/api/v4/channels/{CID}/pinned", response=ex.post_list()),
    "create channel": ex.exchange(
        "POST",
        "/api/v4/channels",
        status=201,
        body={"team_id": TID, "name": "incident-42", "display_name": "Incident 42", "type": "O"},
        response=ex.channel(),
    ),
    "direct channel": ex.exchange(
        "POST",
        "/api/v4/channels/direct",
        status=201,
        body=[UID, ex.BOT_ID],
        response=ex.channel(type="D", team_id="", name=f"{ex.BOT_ID}__{UID}", display_name=""),
    ),
    "channel by name": ex.exchange(
        "GET", f"/api/v4/teams/{TID}/channels/name/incident-42", response=ex.channel()
    ),
    "add member": ex.exchange(
        "POST", f"/api/v4/channels/{CID}/members", status=201, body={"user_id": UID}, response=ex.channel_member()
    ),
    "remove member": ex.exchange("DELETE", f"/api/v4/channels/{CID}/members/{UID}", response={"status": "OK"}),
    "stats": ex.exchange("GET", f"/api/v4/channels/{CID}/stats", response=ex.channel_stats()),
    "register command": ex.exchange(
        "POST",
        "/api/v4/commands",
        status=201,
        body={"team_id": TID, "trigger": "incident", "method": "P", "url": "http://127.0.0.1:8579/hooks/command"},
        response=ex.command(),
    ),
    "list commands": ex.exchange(
        "GET", "/api/v4/commands", query=f"team_id={TID}&custom_only=true", response=[ex.command()]
    ),
    "execute command": ex.exchange(
        "POST",
        "/api/v4/commands/execute",
        body={"channel_id": CID, "command": "/incident declare db down", "team_id": TID},
        response=ex.command_response(),
    ),
    "reaction": ex.exchange(
        "POST",
        "/api/v4/reactions",
        status=201,
        body={"user_id": UID, "post_id": PID, "emoji_name": "eyes"},
        response=ex.reaction(),
    ),
    "unreact": ex.exchange(
        "DELETE", f"/api/v4/users/{UID}/posts/{PID}/reactions/eyes", response={"status": "OK"}
    ),
    "dialog open": ex.exchange(
        "POST",
        "/api/v4/actions/dialogs/open",
        body={"trigger_id": "dHJpZ2dlcg==", "url": "http://127.0.0.1:8579/hooks/dialog",
              "dialog": {"callback_id": "declare", "title": "Declare incident", "elements": []}},
        response={"status": "OK"},
    ),
    "button click": ex.exchange(
        "POST",
        f"/api/v4/posts/{PID}/actions/ack",
        body={},
        response={"status": "OK", "trigger_id": "Y2xpZW50dHJpZ2dlcg"},
    ),
    "multipart upload": ex.exchange(
        "POST",
        "/api/v4/files",
        status=201,
        body=ex.multipart([("channel_id", "", CID), ("files", "timeline.txt", b"12:00 paged\n")])[0],
        headers={"Content-Type": ex.multipart([])[1]},
        response={"file_infos": [ex.file_info()], "client_ids": []},
    ),
    "forbidden": ex.exchange(
        "POST",
        "/api/v4/posts/ephemeral",
        status=403,
        body={"user_id": UID, "post": {"channel_id": CID, "message": "x"}},
        response=ex.app_error(403, "api.context.permissions.app_error"),
    ),
    "not found (undocumented 404)": ex.exchange(
        "GET", f"/api/v4/posts/{PID}", status=404, response=ex.app_error(404, "app.post.get.app_error")
    ),
    "invalid request rejected with 400": ex.exchange(
        "POST",
        "/api/v4/posts",
        status=400,
        body={"message": "no channel"},
        response=ex.app_error(400, "api.context.invalid_body_param.app_error"),
    ),
    "unauthenticated rejected with 401": ex.exchange(
        "GET", "/api/v4/users/me", auth=False, status=401,
        response=ex.app_error(401, "api.context.session_expired.app_error"),
    ),
    "body too large": ex.exchange(
        "POST", "/api/v4/posts", status=413, body=b"x" * 10, headers={"Content-Type": "application/json"},
        response=ex.app_error(413, "api.context.request_body_too_large.app_error"),
    ),
    "incoming webhook as form": ex.exchange(
        "POST",
        f"/hooks/{ex.HOOK_ID}",
        auth=False,
        body=b"payload=%7B%22text%22%3A%22disk+full%22%7D",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        response=b"ok",
        response_headers={"Content-Type": "text/plain"},
    ),
    "delayed command response": ex.exchange(
        "POST",
        f"/hooks/commands/{ex.HOOK_ID}",
        auth=False,
        body={"response_type": "in_channel", "text": "Status: mitigated"},
        response=b"ok",
        response_headers={"Content-Type": "text/plain"},
    ),
}


@pytest.mark.parametrize("name", list(VALID))
def test_real_shaped_exchange_passes(openapi_contract: ContractChecker, name: str) -> None:
    assert openapi_contract.validate_exchange(VALID[name]) == []


def test_assert_exchanges_valid_counts_judged_exchanges(openapi_contract: ContractChecker) -> None:
    websocket = ex.exchange("GET", "/api/v4/websocket", status=101, response=b"")
    assert openapi_contract.assert_exchanges_valid([*VALID.values(), websocket]) == len(VALID)


# --- broken exchanges: each must fail with a message that says what is wrong -----------------


def _problems(checker: ContractChecker, exchange) -> str:
    problems = checker.validate_exchange(exchange)
    assert problems, "the exchange should have been rejected"
    return "\n".join(problems)


def test_string_timestamp_is_reported_with_its_location(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/posts/{PID}", response=ex.post(create_at=str(ex.NOW)))
    text = _problems(openapi_contract, bad)
    assert "response: $.create_at" in text and "is not of type 'integer'" in text


def test_nested_wrong_type_is_located(openapi_contract: ContractChecker) -> None:
    bad_post = ex.post(update_at="later")
    bad = ex.exchange("GET", f"/api/v4/channels/{CID}/posts", response=ex.post_list(bad_post))
    assert f"$.posts.{PID}.update_at" in _problems(openapi_contract, bad)


def test_missing_field_in_response_is_reported(openapi_contract: ContractChecker) -> None:
    incomplete = ex.post()
    del incomplete["channel_id"]
    text = _problems(openapi_contract, ex.exchange("GET", f"/api/v4/posts/{PID}", response=incomplete))
    assert "'channel_id' is a required property" in text


def test_missing_required_request_field_accepted_by_server_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("POST", "/api/v4/posts", status=201, body={"message": "hi"}, response=ex.post())
    assert "request: $: 'channel_id' is a required property" in _problems(openapi_contract, bad)


def test_invented_field_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/posts/{PID}", response=ex.post(hashtag=""))
    assert "'hashtag' was unexpected" in _problems(openapi_contract, bad)


def test_go_field_names_in_command_response_are_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange(
        "POST", "/api/v4/commands/execute", body={"channel_id": CID, "command": "/incident"},
        response={"ResponseType": "ephemeral", "Text": "hi"},
    )
    assert "'ResponseType'" in _problems(openapi_contract, bad)


def test_undocumented_success_status_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("POST", "/api/v4/posts", status=200, body={"channel_id": CID, "message": "hi"},
                      response=ex.post())
    assert "status 200 is not documented" in _problems(openapi_contract, bad)


def test_wrong_response_content_type_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/posts/{PID}", response=json.dumps(ex.post()).encode(),
                      response_headers={"Content-Type": "text/plain"})
    assert "text/plain" in _problems(openapi_contract, bad)


def test_charset_on_json_content_type_breaks_a_wire_rule(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/posts/{PID}", response=ex.post(),
                      response_headers={"Content-Type": "application/json; charset=utf-8"})
    assert "exactly 'application/json'" in _problems(openapi_contract, bad)


def test_wrong_request_content_type_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("POST", "/api/v4/posts", status=201, body=b"channel_id=x&message=hi",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, response=ex.post())
    assert "application/x-www-form-urlencoded" in _problems(openapi_contract, bad)


def test_unknown_route_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", "/api/v4/incidents", response=[])
    assert _problems(openapi_contract, bad) == "unknown route: GET /api/v4/incidents (path not in the contract)"


def test_unknown_method_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("PATCH", f"/api/v4/posts/{PID}", response=ex.post())
    assert "method not documented" in _problems(openapi_contract, bad)


def test_unknown_route_is_reported_even_for_error_answers(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", "/api/v4/nope", status=404, response=ex.app_error(404, "api.context.404.app_error"))
    assert "unknown route" in _problems(openapi_contract, bad)


def test_accepted_request_without_credentials_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", "/api/v4/users/me", auth=False, response=ex.user())
    assert "request:" in _problems(openapi_contract, bad)


def test_bad_query_parameter_accepted_by_server_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/channels/{CID}/posts", query="page=first", response=ex.post_list())
    text = _problems(openapi_contract, bad)
    assert "page" in text and "integer" in text


def test_error_body_must_be_an_app_error(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/posts/{PID}", status=404, response={"error": "not found"})
    text = _problems(openapi_contract, bad)
    assert "'error' was unexpected" in text and "'id' is a required property" in text


def test_app_error_status_must_match_http_status(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/posts/{PID}", status=404, response=ex.app_error(400, "x.app_error"))
    assert "status_code 400 != HTTP status 404" in _problems(openapi_contract, bad)


def test_missing_mattermost_headers_are_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/posts/{PID}", response=ex.post())
    bad.response_headers = {"Content-Type": "application/json"}
    text = _problems(openapi_contract, bad)
    assert "X-Request-Id" in text and "X-Version-Id" in text


def test_get_without_expires_zero_breaks_a_wire_rule(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("GET", f"/api/v4/posts/{PID}", response=ex.post())
    del bad.response_headers["Expires"]
    assert "Expires None" in _problems(openapi_contract, bad)


def test_status_ok_must_say_ok(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("POST", f"/api/v4/posts/{PID}/pin", response={"status": "ok"})
    assert "is not one of ['OK']" in _problems(openapi_contract, bad)


def test_empty_body_where_json_is_documented_is_reported(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("POST", f"/api/v4/posts/{PID}/pin", response=b"")
    assert "Missing response data" in _problems(openapi_contract, bad)


def test_command_webhook_answer_must_be_plain_ok(openapi_contract: ContractChecker) -> None:
    bad = ex.exchange("POST", f"/hooks/commands/{ex.HOOK_ID}", auth=False, body={"text": "x"},
                      response={"status": "OK"})
    assert "application/json" in _problems(openapi_contract, bad)


def test_assert_exchanges_valid_lists_method_path_and_status(openapi_contract: ContractChecker) -> None:
    bad1 = ex.exchange("GET", f"/api/v4/posts/{PID}", response=ex.post(create_at="1"))
    bad2 = ex.exchange("GET", "/api/v4/incidents", status=200, response=[])
    with pytest.raises(AssertionError) as info:
        openapi_contract.assert_exchanges_valid([VALID["get me"], bad1, bad2])
    message = str(info.value)
    assert message.startswith("2 contract problem(s) in 3 exchange(s)")
    assert f"GET /api/v4/posts/{PID} -> 200: response: $.create_at" in message
    assert "GET /api/v4/incidents -> 200: unknown route" in message


def test_module_level_functions_use_the_shared_checker() -> None:
    assert validate_exchange(VALID["create post"]) == []
    assert assert_exchanges_valid([VALID["create post"]]) == 1
    with pytest.raises(AssertionError):
        assert_exchanges_valid([ex.exchange("GET", "/api/v4/nope", response={})])


def test_sandbox_control_routes_and_websocket_are_out_of_scope(openapi_contract: ContractChecker) -> None:
    control = ex.exchange("POST", "/_sandbox/users/alice/post", response={"anything": 1})
    websocket = ex.exchange("GET", "/api/v4/websocket", status=101, response=b"")
    assert not openapi_contract.in_scope(control) and not openapi_contract.in_scope(websocket)
    assert openapi_contract.validate_exchange(control) == []
    assert openapi_contract.assert_exchanges_valid([control, websocket]) == 0


# --- exchange shapes the recorder may use ----------------------------------------------------


def test_query_and_headers_may_be_mappings_or_pairs(openapi_contract: ContractChecker) -> None:
    exchange = ex.exchange("GET", f"/api/v4/channels/{CID}/posts", query="page=0", response=ex.post_list())
    exchange.query = {"page": ["0"], "per_page": "60"}
    exchange.headers = [("authorization", f"Bearer {ex.TOKEN}")]
    exchange.response_headers = list(ex.JSON_HEADERS.items()) + [("Expires", "0")]
    assert openapi_contract.validate_exchange(exchange) == []
    request = to_openapi_request(exchange, "http://h")
    assert request.parameters.query.getlist("page") == ["0"] and request.method == "get"


def test_query_falls_back_to_the_url_and_path_drops_it(openapi_contract: ContractChecker) -> None:
    exchange = ex.exchange("GET", f"/api/v4/channels/{CID}/posts", query="page=x", response=ex.post_list())
    exchange.query = ""
    exchange.path = exchange.path + "?page=x"
    request = to_openapi_request(exchange, "http://h")
    assert request.path == f"/api/v4/channels/{CID}/posts"
    assert request.parameters.query["page"] == "x"


def test_cookie_authentication_is_recognised(openapi_contract: ContractChecker) -> None:
    exchange = ex.exchange("GET", "/api/v4/users/me", auth=False, response=ex.user(),
                           headers={"Cookie": f"MMAUTHTOKEN={ex.TOKEN}; MMUSERID={UID}",
                                    "X-Requested-With": "XMLHttpRequest"})
    assert openapi_contract.validate_exchange(exchange) == []


# --- loading and speed -----------------------------------------------------------------------


def test_spec_is_parsed_once_and_copies_are_private() -> None:
    first, second = load_spec(), load_spec()
    assert first == second and first is not second
    first["paths"].clear()
    assert load_spec()["paths"]


def test_validation_after_warm_up_repeats_no_route_search(openapi_contract: ContractChecker, monkeypatch) -> None:
    """What made validation fast (1ae0316), counted: once each operation was seen, neither openapi-core's
    scan of every path template nor our route index's search runs again. (Seconds: ``bench.contract``.)"""
    exchanges = list(VALID.values())
    first = openapi_contract.check(exchanges)  # warm the per-operation caches
    scans: list[tuple] = []
    full_scan = APICallPathFinder.find

    def counted_scan(self, *args, **kwargs):
        scans.append(args)
        return full_scan(self, *args, **kwargs)

    monkeypatch.setattr(APICallPathFinder, "find", counted_scan)
    searches = openapi_contract.routes.resolve.cache_info().misses
    for _ in range(5):
        assert openapi_contract.check(exchanges) == first
    assert scans == []
    assert openapi_contract.routes.resolve.cache_info().misses == searches
    # The counters do see a search: an operation not seen before costs one of each.
    openapi_contract.check([ex.exchange("GET", "/api/v4/emoji/name/timed_probe", status=404,
                                        response={"id": "api.emoji.get_by_name.app_error", "message": "m",
                                                  "detailed_error": "", "request_id": "r", "status_code": 404})])
    assert len(scans) == 1 and openapi_contract.routes.resolve.cache_info().misses == searches + 1


# --- route resolution agrees with openapi-core's own finder ---------------------------------

ROUTE_SAMPLES = [
    ("post", "/api/v4/users/ids"),
    ("post", "/api/v4/users/usernames"),
    ("get", "/api/v4/users/me"),
    ("get", "/api/v4/users/me/teams"),
    ("get", f"/api/v4/users/{UID}/teams/{TID}/channels"),
    ("get", "/api/v4/teams/name/acme"),
    ("get", f"/api/v4/teams/{TID}/channels/name/town-square"),
    ("get", "/api/v4/teams/name/acme/channels/name/town-square"),
    ("post", "/api/v4/posts/ids"),
    ("get", f"/api/v4/posts/{PID}"),
    ("post", f"/api/v4/posts/{PID}/actions/ack"),
    ("post", "/api/v4/channels/direct"),
    ("post", f"/api/v4/channels/{CID}/members"),
    ("post", f"/api/v4/channels/{CID}/members/ids"),
    ("get", f"/api/v4/channels/{CID}/members/{UID}"),
    ("post", "/api/v4/commands/execute"),
    ("get", f"/api/v4/commands/{ex.COMMAND_ID}"),
    ("post", "/api/v4/actions/dialogs/open"),
    ("delete", f"/api/v4/users/{UID}/posts/{PID}/reactions/thumbsup"),
]


@pytest.mark.parametrize("method,path", ROUTE_SAMPLES)
def test_route_index_matches_openapi_core(openapi_contract: ContractChecker, method: str, path: str) -> None:
    from openapi_core.templating.paths.finders import APICallPathFinder

    finder = APICallPathFinder(openapi_contract.openapi.spec, base_url=openapi_contract.base_url)
    expected = finder.find(method, openapi_contract.base_url + path)
    route = openapi_contract.routes.resolve(method, path)
    assert route.template == expected.path_result.pattern
    assert route.variables == expected.path_result.variables


def test_route_index_tells_missing_path_from_missing_method(openapi_contract: ContractChecker) -> None:
    assert openapi_contract.routes.resolve("get", "/api/v4/incidents") == "path"
    assert openapi_contract.routes.resolve("patch", f"/api/v4/posts/{PID}") == "method"
    assert openapi_contract.routes.resolve("get", "/api/v4/users/") == "path"


def test_malformed_multipart_accepted_by_server_is_reported_not_raised(openapi_contract: ContractChecker) -> None:
    body, _ = ex.multipart([("channel_id", "", CID), ("files", "a.txt", b"x")], boundary="RealBoundary")
    bad = ex.exchange("POST", "/api/v4/files", status=201, body=body,
                      headers={"Content-Type": "multipart/form-data; boundary=OtherBoundary"},
                      response={"file_infos": [ex.file_info()], "client_ids": []})
    assert _problems(openapi_contract, bad).startswith("request:")
