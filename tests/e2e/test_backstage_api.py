"""The REST API /api/v1 (issue 19) against the real bot on the sandbox: what each route answers, that
the document describes exactly the routes that exist, and that every action is the chat's — the card
in Mattermost changes. Every exchange is validated against backstage/openapi.yaml (backstage_api.py).

The world is the demo seed plus a second team, globex (alice, bob and the bot; test_history.py).
"""

from __future__ import annotations

import pytest

from backstage.api import openapi_document
from gateway.ids import API_PREFIX
from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import EDIT_TIME_LIMIT, make_playbook
from tests.e2e.test_history import list_names, quick_incident, store_playbook, two_team_seed
from tests.e2e.test_incidents import card, card_text, start_incident

from .backstage_api import ApiClient, contract

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
T0 = 1_700_000_000_000
MINUTE = 60_000


@pytest.fixture
async def sandbox():
    async with Sandbox(two_team_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


def documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in openapi_document()["paths"].items()
            for method in item if method in HTTP_METHODS}


def served(bot) -> set[tuple[str, str]]:
    found = set()
    for route in bot.backstage.api_app.router.routes():
        path = route.resource.canonical
        found.add((route.method, path[len(API_PREFIX):] if path.startswith(API_PREFIX) else path))
    return found


async def test_the_document_describes_exactly_the_routes_that_exist(bot):
    assert served(bot) == documented()
    contract()  # and openapi-spec-validator accepts the document (check_document=True)
    async with ApiClient(bot) as anonymous:
        status, document = await anonymous.get("/openapi.json")
        assert status == 200 and document["openapi"].startswith("3.1")
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert {p for p in document["paths"]} == {p for _, p in documented()}


def concrete(path: str) -> str:
    return (path.replace("{incident_id}", "a" * 26).replace("{playbook_id}", "b" * 26)
            .replace("{stage}", "1").replace("{step}", "1"))


async def test_no_token_a_wrong_one_or_a_revoked_one_is_401_on_every_route(bot, sandbox):
    alice = await ApiClient.with_token(bot, sandbox, "alice")
    status, me = await alice.get("/me")
    assert status == 200 and me["username"] == "alice"
    credential = (await bot.web_auth.tokens_of(sandbox.user_id("alice")))[0]
    assert await bot.web_auth.revoke_token(sandbox.user_id("alice"), credential.id)
    wrong = ApiClient(bot, token="cct_" + "x" * 43)
    not_ours = ApiClient(bot, token="abc")
    anonymous = ApiClient(bot)
    try:
        for method, path in sorted(documented()):
            if path == "/openapi.json":
                continue
            for client in (anonymous, wrong, not_ours, alice):
                status, body = await client.request(method, concrete(path), json_body={} if method == "POST" else None)
                assert status == 401, (client.token, method, path, status, body)
                assert "Bearer" in body["error"]
    finally:
        for client in (alice, wrong, not_ours, anonymous):
            await client.close()


async def test_tokens_are_per_user_and_me_and_teams_say_who(bot, sandbox):
    async with await ApiClient.with_token(bot, sandbox, "alice") as alice, \
            await ApiClient.with_token(bot, sandbox, "dave") as dave:
        _, me = await alice.get("/me")
        assert me == {"user_id": sandbox.user_id("alice"), "username": "alice", "signed_in_with": "token"}
        _, teams = await alice.get("/teams")
        assert {t["name"] for t in teams["items"]} == {"acme", "globex"}
        _, me = await dave.get("/me")
        assert me["username"] == "dave" and me["user_id"] == sandbox.user_id("dave")
        _, teams = await dave.get("/teams")
        assert teams["items"] == [{"id": sandbox.team("acme")["id"], "name": "acme", "display_name": "ACME"}]


async def test_the_list_is_the_chats_list_with_its_filters_and_paging(bot, sandbox):
    outage = await store_playbook(bot, sandbox, title="Outage")
    secret = await store_playbook(bot, sandbox, title="Secret", public=False, members=("alice", "carol"))
    for n in range(7):
        await quick_incident(bot, sandbox, outage, f"Outage {n}", "bob", at=T0 + n * MINUTE, ended=n % 2 == 0)
    await quick_incident(bot, sandbox, secret, "Quiet breach", "carol", at=T0 + 10 * MINUTE)
    globex = await store_playbook(bot, sandbox, title="Globex", team="globex", members=("alice", "bob"))
    await quick_incident(bot, sandbox, globex, "Globex fire", "bob", at=T0 + 11 * MINUTE)
    acme = sandbox.team("acme")["id"]
    async with await ApiClient.with_token(bot, sandbox, "dave") as dave, \
            await ApiClient.with_token(bot, sandbox, "carol") as carol, \
            await ApiClient.with_token(bot, sandbox, "alice") as alice:
        status, page = await dave.get("/incidents")
        assert status == 200 and page["team_id"] == acme
        names = [i["name"] for i in page["items"]]
        assert names == await list_names(sandbox, "dave")  # the chat's list, in the same order
        assert "Quiet breach" not in names and "Globex fire" not in names and page["total"] == 7
        _, page = await carol.get("/incidents")
        assert page["items"][0]["name"] == "Quiet breach" and page["total"] == 8
        # Filters: the chat's words.
        _, page = await dave.get("/incidents", status="ongoing")
        assert {i["name"] for i in page["items"]} == {"Outage 1", "Outage 3", "Outage 5"}
        assert all(i["status"] == "ongoing" for i in page["items"])
        _, page = await dave.get("/incidents", q="outage 4")
        assert [i["name"] for i in page["items"]] == ["Outage 4"]
        _, page = await dave.get("/incidents", commander="@bob", playbook=outage.id)
        assert page["total"] == 7
        _, page = await dave.get("/incidents", commander="carol")
        assert page["items"] == [] and page["total"] == 0
        _, page = await dave.get("/incidents", severity="sev1")
        assert page["total"] == 0
        # Paging: 3 per page, page 3 holds the last one.
        _, page = await dave.get("/incidents", per_page="3", page="3")
        assert [i["name"] for i in page["items"]] == ["Outage 0"] and page["has_more"] is False
        _, page = await dave.get("/incidents", per_page="3", page="1")
        assert page["has_more"] is True and page["page"] == 1
        # The other team: alice may ask for it, dave may not (the same 404 as for a team that does not exist).
        _, page = await alice.get("/incidents", team=sandbox.team("globex")["id"])
        assert [i["name"] for i in page["items"]] == ["Globex fire"]
        status, refused = await dave.get("/incidents", team=sandbox.team("globex")["id"])
        assert status == 404
        status, other = await dave.get("/incidents", team="z" * 26)
        assert (status, other) == (404, refused)
        # Bad values name their parameter.
        for params, field in (({"status": "open"}, "status"), ({"page": "0"}, "page"), ({"per_page": "101"}, "per_page"),
                              ({"page": "x"}, "page"), ({"commander": "nobody"}, "commander"),
                              ({"team": "<script>"}, "team"), ({"q": "x" * 65}, "q"), ({"playbook": "zz"}, "playbook")):
            status, body = await dave.get("/incidents", **params)
            assert status == 400, (params, body)
            assert body["field"] == field, (params, body)
        # A playbook dave may not use: refused like one that does not exist.
        status, refused = await dave.get("/incidents", playbook=secret.id)
        assert (status, refused) == (400, (await dave.get("/incidents", playbook="q" * 26))[1])
        assert refused["field"] == "playbook"


async def test_an_incident_its_timeline_and_updates_as_the_card_shows_them(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, _ = await start_incident(sandbox, bot, "bob", "Checkout <b>errors</b>", description="Cards fail")
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        status, body = await bob.get(f"/incidents/{incident.id}")
        assert status == 200
        assert body["name"] == "Checkout <b>errors</b>" and body["description"] == "Cards fail"
        assert body["commander"] == {"id": sandbox.user_id("bob"), "username": "bob"}
        assert body["status"] == "ongoing" and body["stage"] == {"number": 1, "of": 3, "title": "Triage"}
        assert [s["title"] for s in body["stages"][0]["steps"]] == [
            "Acknowledge the alert", "Assess customer impact", "Page the on-call"]
        assert body["stages"][0]["steps"][0]["state"] == "open" and body["stages"][0]["steps"][0]["label"] == "1.1"
        assert body["fields"][0]["id"] == "severity" and body["fields"][0]["value"] is None
        assert body["metrics"]["steps_done"] == 0 and body["channel"]["name"]
        assert body["url"].endswith(f"/backstage/incidents/{incident.id}")
        status, timeline = await bob.get(f"/incidents/{incident.id}/timeline")
        assert status == 200 and timeline["total"] >= 1 and timeline["items"][0]["kind"] == "created"
        status, _ = await bob.get(f"/incidents/{incident.id}/timeline", page="99")
        assert status == 404
        status, _ = await bob.get(f"/incidents/{incident.id}/timeline", all="true")
        assert status == 200  # bob commands it
        status, updates = await bob.get(f"/incidents/{incident.id}/updates")
        assert status == 200 and updates["items"] == [] and updates["total"] == 0


async def test_checking_a_step_through_the_api_changes_the_card_in_mattermost(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, _ = await start_incident(sandbox, bot, "bob", "Checkout errors")
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        status, body = await bob.post(f"/incidents/{incident.id}/steps/1/2/check")
        assert status == 200
        step = body["stages"][0]["steps"][1]
        assert step["state"] == "done" and step["changed_by"]["username"] == "bob" and step["changed_at"]
        assert body["metrics"]["steps_done"] == 1
        await sandbox.wait_for(lambda: "✅" in card_text(card(sandbox, incident)) or
                               "1/3" in card_text(card(sandbox, incident)))
        posts = [p["message"] for p in sandbox.posts(incident.channel_id)]
        assert any("@bob checked" in m and "Assess customer impact" in m for m in posts)
        # Again: nothing to do, still 200, nothing new in the channel.
        before = len(sandbox.posts(incident.channel_id))
        status, again = await bob.post(f"/incidents/{incident.id}/steps/1/2/check")
        assert status == 200 and again["version"] == body["version"]
        assert len(sandbox.posts(incident.channel_id)) == before
        # Uncheck with the mark just read.
        status, body = await bob.post(f"/incidents/{incident.id}/steps/1/2/uncheck", {"mark": step["mark"]})
        assert status == 200 and body["stages"][0]["steps"][1]["state"] == "open"
        # A step that is not there: 404 naming it, an ill-formed one 400.
        status, missing = await bob.post(f"/incidents/{incident.id}/steps/9/1/check")
        assert status == 404 and "step" in missing["error"].lower()
        status, bad = await bob.post(f"/incidents/{incident.id}/steps/0/1/check")
        assert status == 400 and bad["field"] == "stage"


async def test_a_stale_mark_is_409_and_changes_nothing(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob", "carol"))
    incident, channel = await start_incident(sandbox, bot, "bob", "Checkout errors")
    await sandbox.user("bob").add_member(channel["id"], "alice")
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob, \
            await ApiClient.with_token(bot, sandbox, "alice") as alice:
        _, read = await bob.get(f"/incidents/{incident.id}")
        mark = read["stages"][0]["steps"][0]["mark"]
        status, _ = await alice.post(f"/incidents/{incident.id}/steps/1/1/check")
        assert status == 200
        status, _ = await alice.post(f"/incidents/{incident.id}/steps/1/1/uncheck")
        assert status == 200  # back to open: the state is the same, the mark is not
        events_before = len(await bot.store.timeline(incident.id))
        status, refused = await bob.post(f"/incidents/{incident.id}/steps/1/1/check", {"mark": mark})
        assert status == 409 and "nothing changed" in refused["error"]
        assert len(await bot.store.timeline(incident.id)) == events_before
        assert (await bot.store.get_incident(incident.id)).stages[0].steps[0].state.value == "open"


async def test_two_checks_at_once_with_the_same_mark_change_the_step_once(bot, sandbox):
    import asyncio

    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot, "bob", "Checkout errors")
    await sandbox.user("bob").add_member(channel["id"], "alice")
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob, \
            await ApiClient.with_token(bot, sandbox, "alice") as alice:
        _, read = await bob.get(f"/incidents/{incident.id}")
        mark = read["stages"][0]["steps"][2]["mark"]
        answers = await asyncio.gather(bob.post(f"/incidents/{incident.id}/steps/1/3/check", {"mark": mark}),
                                       alice.post(f"/incidents/{incident.id}/steps/1/3/check", {"mark": mark}))
        assert sorted(status for status, _ in answers) == [200, 409]
        checked = [e for e in await bot.store.timeline(incident.id) if e.kind.value == "step_checked"]
        assert len(checked) == 1


async def test_commander_and_status_update_through_the_api_are_the_chats(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob", "carol"))
    incident, channel = await start_incident(sandbox, bot, "bob", "Checkout errors")
    await sandbox.user("bob").add_member(channel["id"], "carol")
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        status, body = await bob.post(f"/incidents/{incident.id}/commander", {"username": "carol"})
        assert status == 200 and body["commander"]["username"] == "carol"
        await sandbox.wait_for(lambda: "@carol" in card_text(card(sandbox, incident)))
        assert any("changed the commander to @carol" in p["message"] for p in sandbox.posts(incident.channel_id))
        status, body = await bob.post(f"/incidents/{incident.id}/commander", {"user_id": sandbox.user_id("bob")})
        assert status == 200 and body["commander"]["username"] == "bob"
        # dave is in the team but not in the channel: refused, saying what to do.
        status, refused = await bob.post(f"/incidents/{incident.id}/commander", {"username": "dave"})
        assert status == 400 and "add @dave to the channel" in refused["error"]
        for wrong, field in (({"username": "nobody"}, "username"), ({}, "user_id"),
                             ({"username": "carol", "user_id": sandbox.user_id("carol")}, "username"),
                             ({"user_id": "x"}, "user_id"), ({"username": 5}, "username")):
            status, refused = await bob.post(f"/incidents/{incident.id}/commander", wrong)
            assert status == 400 and refused["field"] == field, (wrong, refused)
        # A status update: posted in the channel, listed by the API.
        status, body = await bob.post(f"/incidents/{incident.id}/updates", {"text": "Rolled back <img src=x>",
                                                                           "next_in": "30m"})
        assert status == 200 and body["updates"]["last_by"]["username"] == "bob" and body["updates"]["next_due_at"]
        await sandbox.wait_for(lambda: any("Rolled back" in p["message"] for p in sandbox.posts(incident.channel_id)))
        status, updates = await bob.get(f"/incidents/{incident.id}/updates")
        assert [u["text"] for u in updates["items"]] == ["Rolled back <img src=x>"]
        assert updates["items"][0]["author"]["username"] == "bob"
        status, refused = await bob.post(f"/incidents/{incident.id}/updates", {"text": "   "})
        assert status == 400 and refused["field"] == "text"
        status, refused = await bob.post(f"/incidents/{incident.id}/updates", {"text": "x", "next_in": "soon"})
        assert status == 400 and refused["field"] == "next_in"


async def test_starting_an_incident_through_the_api(bot, sandbox):
    playbook = await make_playbook(bot, sandbox, members=("alice", "bob"))
    secret = await make_playbook(bot, sandbox, title="Secret", members=("alice",), public=False)
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        status, body = await bob.post("/incidents", {"playbook_id": playbook.id, "name": "Payments down"})
        assert status == 201 and body["name"] == "Payments down" and body["commander"]["username"] == "bob"
        stored = await bot.store.get_incident(body["id"])
        assert stored is not None and stored.card_post_id
        assert sandbox.user_id("bob") in sandbox.channel_members(stored.channel_id)
        status, refused = await bob.post("/incidents", {"playbook_id": secret.id, "name": "Sneaky"})
        assert status == 404 and refused["field"] == "playbook_id"
        status, refused = await bob.post("/incidents", {"playbook_id": playbook.id, "name": ""})
        assert status == 400 and refused["field"] == "name"
        status, refused = await bob.post("/incidents", {"playbook_id": playbook.id})
        assert status == 400 and refused["field"] == "name"


async def test_playbooks_and_stats(bot, sandbox):
    outage = await store_playbook(bot, sandbox, title="Outage", members=("alice", "bob"))
    secret = await store_playbook(bot, sandbox, title="Secret", members=("alice",))
    for n in range(3):
        await quick_incident(bot, sandbox, outage, f"Outage {n}", "bob", at=bot.ctx.clock() - (n + 1) * 60 * MINUTE,
                             ended=n != 0)
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        status, listed = await bob.get("/playbooks")
        assert status == 200 and [p["title"] for p in listed["items"]] == ["Outage"]
        status, one = await bob.get(f"/playbooks/{outage.id}")
        assert status == 200 and one["spec"]["title"] == "Outage" and one["spec"]["members"] == ["alice", "bob"]
        assert [s["title"] for s in one["spec"]["stages"]] == [s.title for s in outage.stages]
        status, refused = await bob.get(f"/playbooks/{secret.id}")
        status_missing, missing = await bob.get(f"/playbooks/{'q' * 26}")
        assert (status, refused) == (status_missing, missing) == (404, missing)
        status, stats = await bob.get("/stats")
        assert status == 200 and stats["count"] == 3 and stats["resolved"] == 2
        assert stats["by_playbook"][0]["playbook"] == {"id": outage.id, "title": "Outage"}
        status, stats = await bob.get("/stats", playbook=outage.id, days="1")
        assert status == 200 and stats["playbook"]["title"] == "Outage" and stats["count"] == 3
        status, refused = await bob.get("/stats", playbook=secret.id)
        assert status == 400 and refused["field"] == "playbook"
        status, refused = await bob.get("/stats", days="0")
        assert status == 400 and refused["field"] == "days"


async def test_an_ended_incident_refuses_changes_with_409(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, _ = await start_incident(sandbox, bot, "bob", "Checkout errors")
    await bot.incidents.end(incident, sandbox.user_id("bob"))
    async with await ApiClient.with_token(bot, sandbox, "bob") as bob:
        status, refused = await bob.post(f"/incidents/{incident.id}/steps/1/1/check")
        assert status == 409 and "ended" in refused["error"]
        status, body = await bob.get(f"/incidents/{incident.id}")
        assert status == 200 and body["status"] == "ended" and body["ended_at"]
        assert body["metrics"]["time_to_resolve_ms"] is not None
