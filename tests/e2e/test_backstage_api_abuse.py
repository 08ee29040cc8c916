"""The REST API /api/v1 under abuse (issue 19): who may see and change what (a non-member of a private
incident, another team, a member who just left, a team member outside the channel), CSRF for
sessions, hostile bodies, and tokens across a restart. Every exchange is validated against
backstage/openapi.yaml (backstage_api.py)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from backstage.api_bodies import MAX_BODY_BYTES
from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import EDIT_TIME_LIMIT, make_playbook
from tests.e2e.test_history import leave, quick_incident, store_playbook, two_team_seed
from tests.e2e.test_incidents import start_incident

from .backstage import BackstageClient
from .backstage_api import ApiClient

T0 = 1_700_000_000_000


@pytest.fixture
async def sandbox():
    async with Sandbox(two_team_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


def incident_routes(incident_id: str) -> list[tuple[str, str, dict | None]]:
    """Every route about one incident, with a body that would be accepted."""
    base = f"/incidents/{incident_id}"
    return [("GET", base, None), ("GET", f"{base}/timeline", None), ("GET", f"{base}/updates", None),
            ("POST", f"{base}/updates", {"text": "All good"}), ("POST", f"{base}/commander", {"username": "dave"}),
            ("POST", f"{base}/steps/1/1/check", {}), ("POST", f"{base}/steps/1/1/uncheck", {})]


async def answers(client: ApiClient, incident_id: str) -> list[tuple[int, object]]:
    return [await client.request(method, path, json_body=body) for method, path, body in incident_routes(incident_id)]


async def test_a_private_incident_is_404_on_every_route_for_a_non_member_like_a_missing_one(bot, sandbox):
    await make_playbook(bot, sandbox, title="Security", members=("carol",), public=False)
    secret, _ = await start_incident(sandbox, bot, "carol", "Secret <script>alert(1)</script>", playbook="Security")
    before = await bot.store.get_incident(secret.id)
    async with await ApiClient.with_token(bot, sandbox, "dave") as dave:
        hidden = await answers(dave, secret.id)
        missing = await answers(dave, "m" * 26)
        malformed = await answers(dave, "<script>")
        assert [status for status, _ in hidden] == [404] * len(hidden)
        assert hidden == missing == malformed
        status, page = await dave.get("/incidents")
        assert status == 200 and all(i["id"] != secret.id for i in page["items"])
    assert await bot.store.get_incident(secret.id) == before


async def test_another_teams_incident_is_404_on_every_route(bot, sandbox):
    globex = await store_playbook(bot, sandbox, title="Globex", team="globex", members=("alice", "bob"))
    incident = await quick_incident(bot, sandbox, globex, "Globex fire", "bob", at=T0)
    async with await ApiClient.with_token(bot, sandbox, "dave") as dave, \
            await ApiClient.with_token(bot, sandbox, "bob") as bob:
        assert (await bob.get(f"/incidents/{incident.id}"))[0] == 200
        hidden = await answers(dave, incident.id)
        assert hidden == await answers(dave, "m" * 26)
        assert {status for status, _ in hidden} == {404}
        status, _ = await dave.get(f"/playbooks/{globex.id}")
        assert status == 404


async def test_a_member_who_just_left_a_private_incident_sees_it_no_more(bot, sandbox):
    await make_playbook(bot, sandbox, title="Security", members=("carol", "dave"), public=False)
    secret, channel = await start_incident(sandbox, bot, "carol", "Secret breach", playbook="Security")
    await sandbox.user("carol").add_member(channel["id"], "dave")
    async with await ApiClient.with_token(bot, sandbox, "dave") as dave:
        assert (await dave.get(f"/incidents/{secret.id}"))[0] == 200
        assert (await dave.post(f"/incidents/{secret.id}/steps/1/1/check"))[0] == 200
        leave(sandbox, "dave", secret.channel_id)  # no waiting for the event: the API asks afresh
        statuses = [status for status, _ in await answers(dave, secret.id)]
        assert statuses == [404] * len(statuses)
    stored = await bot.store.get_incident(secret.id)
    assert stored.stages[0].steps[0].done and stored.commander_id == sandbox.user_id("carol")


async def test_a_team_member_outside_a_public_incidents_channel_may_look_but_not_change(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob", "dave"))
    incident, _ = await start_incident(sandbox, bot, "bob", "Checkout errors")
    async with await ApiClient.with_token(bot, sandbox, "dave") as dave:
        assert (await dave.get(f"/incidents/{incident.id}"))[0] == 200
        status, refused = await dave.get(f"/incidents/{incident.id}/timeline", all="true")
        assert status == 403 and refused["field"] == "all" and "commander" in refused["error"]
        for method, path, body in incident_routes(incident.id)[3:]:
            status, refused = await dave.request(method, path, json_body=body)
            assert status == 403, (path, status, refused)
            assert "member" in refused["error"] or "channel" in refused["error"], refused
    stored = await bot.store.get_incident(incident.id)
    assert not stored.stages[0].steps[0].done and stored.last_update_at is None


async def test_a_session_needs_the_csrf_header_for_actions(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, _ = await start_incident(sandbox, bot, "bob", "Checkout errors")
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as browser:
        without = ApiClient.over_session(browser, csrf=False)
        status, me = await without.get("/me")
        assert status == 200 and me["signed_in_with"] == "session"
        status, refused = await without.post(f"/incidents/{incident.id}/steps/1/1/check")
        assert status == 403 and "nothing was changed" in refused["error"]
        status, _ = await without.post(f"/incidents/{incident.id}/steps/1/1/check",
                                       headers={"X-CSRF-Token": "forged"})
        assert status == 403
        assert not (await bot.store.get_incident(incident.id)).stages[0].steps[0].done
        with_token = ApiClient.over_session(browser)
        status, _ = await with_token.post(f"/incidents/{incident.id}/steps/1/1/check",
                                          headers={"Origin": "https://evil.example"})
        assert status == 403
        status, body = await with_token.post(f"/incidents/{incident.id}/steps/1/1/check")
        assert status == 200 and body["stages"][0]["steps"][0]["state"] == "done"
    # A bearer request carries no cookie, so it needs no CSRF token.
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        assert (await bob.post(f"/incidents/{incident.id}/steps/1/2/check"))[0] == 200


async def test_hostile_bodies_are_refused_naming_the_problem(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, _ = await start_incident(sandbox, bot, "bob", "Checkout errors")
    updates = f"/incidents/{incident.id}/updates"
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        cases: list[tuple[dict, int, str | None]] = [
            ({"raw": b"text=hello", "content_type": "application/x-www-form-urlencoded"}, 415, None),
            ({"raw": b'{"text": "hello"}', "content_type": "text/plain"}, 415, None),
            ({"raw": b'{"text": "hello"'}, 400, "body"),
            ({"raw": b'["text"]'}, 400, "body"),
            ({"raw": b'{"text": NaN}'}, 400, "body"),
            ({"raw": b'{"text": "\xff\xfe"}'}, 400, "body"),
            ({"raw": b"[" * 40_000 + b"]" * 40_000}, 400, "body"),
            ({"raw": b'{"text": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_001}, 400, None),
            ({"json_body": {"text": 5}}, 400, "text"),
            ({"json_body": {"text": ["hello"]}}, 400, "text"),
            ({"json_body": {"text": "hello", "next_in": 30}}, 400, "next_in"),
            ({"json_body": {"text": "hello", "admin": True}}, 400, "admin"),
            ({"json_body": {"text": "x" * 16_001}}, 400, "text"),
            ({"raw": b'{"text": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'}, 413, None),
        ]
        for kwargs, status, field in cases:
            kwargs.setdefault("content_type", "application/json")
            got, refused = await bob.request("POST", updates, **kwargs)
            assert got == status, (str(kwargs)[:120], got, refused)
            assert refused["status"] == status and refused["error"]
            if field is not None:
                assert refused.get("field") == field, (str(kwargs)[:120], refused)
        # A body without a length (chunked) is cut off too.
        async def chunks():
            for _ in range(MAX_BODY_BYTES // 1024 + 2):
                yield b" " * 1024
        async with aiohttp.ClientSession() as raw:
            async with raw.post(bob.url(updates), data=chunks(), headers={
                    "Authorization": f"Bearer {bob.token}", "Content-Type": "application/json"}) as response:
                assert response.status == 413
    stored = await bot.store.get_incident(incident.id)
    assert stored.last_update_at is None


async def test_hostile_text_comes_back_as_data_never_as_a_page(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    name = '"><img src=x onerror=alert(1)>'
    incident, _ = await start_incident(sandbox, bot, "bob", name)
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        async with bob.http.get(bob.url(f"/incidents/{incident.id}"),
                                headers={"Authorization": f"Bearer {bob.token}"}) as response:
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert (await response.json())["name"] == name


async def test_tokens_work_across_a_restart_and_many_requests_at_once(start_bot, sandbox):
    bot = await start_bot()
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, _ = await start_incident(sandbox, bot, "bob", "Checkout errors")
    assert bot.web_auth is not None
    token = (await bot.web_auth.create_token(sandbox.user_id("bob"), "ci")).secret
    await bot.stop()
    again = await start_bot()
    async with ApiClient(again, token=token) as bob:
        results = await asyncio.gather(*(bob.get(f"/incidents/{incident.id}") for _ in range(20)))
        assert {status for status, _ in results} == {200}
        status, me = await bob.get("/me")
        assert status == 200 and me["username"] == "bob"
