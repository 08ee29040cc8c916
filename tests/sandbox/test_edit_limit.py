"""ServiceSettings.PostEditTimeLimit and the simulated clock (see sandbox/README.md)."""

from __future__ import annotations

import pytest
from aiohttp import web

from sandbox import Sandbox, SandboxConfig

from .conftest import DEMO, Api, Integration, Received, json_reply

LIMIT = "api.post.update_post.permissions_time_limit.app_error"


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(record=True, integration_timeout=2.0, post_edit_time_limit=300)


async def _post(api: Api, sb: Sandbox, user: str = "bob", **fields) -> dict:
    ts = sb.channel("acme", "town-square")
    status, _, post = await api("POST", "/api/v4/posts", as_user=user,
                                json_body={"channel_id": ts["id"], "message": "first", **fields})
    assert status == 201
    return post


async def test_within_the_limit_every_edit_works(api: Api, sb: Sandbox) -> None:
    post = await _post(api, sb)
    sb.advance_clock(299)
    status, _, patched = await api("PUT", f"/api/v4/posts/{post['id']}/patch", as_user="bob",
                                   json_body={"message": "second", "props": {"k": "v"}})
    assert status == 200 and patched["message"] == "second" and patched["props"] == {"k": "v"}
    assert (await api("POST", f"/api/v4/posts/{post['id']}/pin", as_user="bob"))[0] == 200


async def test_after_the_limit_message_props_and_pin_changes_are_refused(api: Api, sb: Sandbox) -> None:
    post = await _post(api, sb, props={"k": "v"})
    sb.advance_clock(301)
    pid = post["id"]
    refused = [
        ("PUT", f"/api/v4/posts/{pid}/patch", {"message": "edited"}),
        ("PUT", f"/api/v4/posts/{pid}/patch", {"message": "first"}),   # a message in the patch at all
        ("PUT", f"/api/v4/posts/{pid}/patch", {"props": {"k": "w"}}),  # v11.7+: props too
        ("PUT", f"/api/v4/posts/{pid}/patch", {"is_pinned": True}),
        ("PUT", f"/api/v4/posts/{pid}", {"id": pid, "message": "edited", "props": {"k": "v"}}),
        ("PUT", f"/api/v4/posts/{pid}", {"id": pid, "message": "first", "props": {"k": "w"}}),
        ("PUT", f"/api/v4/posts/{pid}", {"id": pid, "message": "first", "is_pinned": True}),
        ("POST", f"/api/v4/posts/{pid}/pin", None),
    ]
    for method, path, body in refused:
        for user in ("bob", "alice"):  # the author and a system admin alike: no role is exempt
            status, _, error = await api(method, path, as_user=user, json_body=body)
            assert (status, error["id"]) == (400, LIMIT), (method, path, body, user)
            assert error["status_code"] == 400 and "300 seconds" in error["message"]
    stored = sb.posts(post["channel_id"])[-1]
    assert stored["message"] == "first" and stored["props"] == {"k": "v"} and stored["is_pinned"] is False
    assert stored["edit_at"] == 0


async def test_after_the_limit_what_changes_nothing_still_works(api: Api, sb: Sandbox) -> None:
    post = await _post(api, sb, props={"k": "v"})
    sb.advance_clock(600)
    pid = post["id"]
    assert (await api("PUT", f"/api/v4/posts/{pid}/patch", as_user="bob", json_body={}))[0] == 200
    assert (await api("PUT", f"/api/v4/posts/{pid}/patch", as_user="bob", json_body={"message": None}))[0] == 200
    status, _, same = await api("PUT", f"/api/v4/posts/{pid}", as_user="bob",
                                json_body={"id": pid, "message": "first", "props": {"k": "v"}})
    assert status == 200 and same["message"] == "first"
    assert (await api("POST", f"/api/v4/posts/{pid}/unpin", as_user="bob"))[0] == 200   # already unpinned
    status, _, reaction = await api("POST", "/api/v4/reactions", as_user="carol",
                                    json_body={"user_id": sb.user_id("carol"), "post_id": pid, "emoji_name": "eyes"})
    assert status == 201 and reaction["emoji_name"] == "eyes"
    assert (await api("DELETE", f"/api/v4/posts/{pid}", as_user="bob"))[0] == 200


async def test_a_post_pinned_in_time_stays_pinned_and_cannot_be_unpinned_late(api: Api, sb: Sandbox) -> None:
    post = await _post(api, sb)
    assert (await api("POST", f"/api/v4/posts/{post['id']}/pin", as_user="bob"))[0] == 200
    sb.advance_clock(301)
    assert (await api("POST", f"/api/v4/posts/{post['id']}/pin", as_user="bob"))[0] == 200   # no-op
    status, _, error = await api("POST", f"/api/v4/posts/{post['id']}/unpin", as_user="bob")
    assert (status, error["id"]) == (400, LIMIT)
    assert sb.pinned(post["channel_id"])[0]["id"] == post["id"]


async def test_an_action_update_is_not_limited(api: Api, sb: Sandbox, integration: Integration) -> None:
    async def handler(req: Received) -> web.Response:
        return json_reply({"update": {"message": "acknowledged", "props": {"attachments": []}}})
    integration.routes["/act"] = handler
    card = {"attachments": [{"text": "t", "actions": [
        {"id": "ack", "name": "Acknowledge", "integration": {"url": integration.url("/act")}}]}]}
    post = await _post(api, sb, user="incident", props=card)
    sb.advance_clock(3600)
    result = await sb.user("bob").click(post["id"], "Acknowledge")
    assert result.status == 200 and result.post["message"] == "acknowledged"
    assert sb.posts(post["channel_id"])[-1]["message"] == "acknowledged"


async def test_unlimited_by_default(api: Api) -> None:
    async with Sandbox(DEMO) as sb:
        plain = Api(sb, api.session)
        post = await _post(plain, sb)
        sb.advance_clock(7 * 24 * 3600)
        status, _, patched = await plain("PUT", f"/api/v4/posts/{post['id']}/patch", as_user="bob",
                                         json_body={"message": "a week later"})
        assert status == 200 and patched["message"] == "a week later"


async def test_the_clock_moves_timestamps_and_is_exposed_over_http(api: Api, sb: Sandbox) -> None:
    before = sb.now_ms()
    status, _, clock = await api("POST", "/_sandbox/clock", json_body={"advance": 600})
    assert status == 200 and clock["offset_ms"] >= 600_000 and clock["now"] >= before + 600_000
    assert clock["post_edit_time_limit"] == 300
    post = await _post(api, sb)
    assert post["create_at"] >= before + 600_000
    status, _, again = await api("GET", "/_sandbox/clock")
    assert status == 200 and again["now"] >= post["create_at"]
    for bad in ({"advance": -1}, {"advance": "soon"}, {}):
        status, _, error = await api("POST", "/_sandbox/clock", json_body=bad)
        assert status == 400 and "seconds" in error["message"]


async def test_closing_the_sandbox_rewinds_the_clock() -> None:
    from sandbox import ids
    async with Sandbox(DEMO) as sb:
        sb.advance_clock(3600)
        assert ids.clock_offset_ms() >= 3_600_000
    assert ids.clock_offset_ms() == 0
