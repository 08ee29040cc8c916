"""The backstage's incident pages (issue 19) against the real bot on the sandbox: the list, one
incident, acting in it (the card in Mattermost redrawn), downloads — and the abuse list: signed out,
not a member, a member who just left, forged CSRF, a replayed form, two at once, hostile text."""

from __future__ import annotations

import asyncio
import html
import re

import aiohttp

from domain import _ops
from domain import timeline as tl
from domain.models import EventKind
from gateway.ids import incident_page_url
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, card_text, start_incident

from .backstage import BackstageClient

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
NOT_FOUND = "There is nothing here, or you may not see it."


def page(incident) -> str:
    return f"/incidents/{incident.id}"


def forms(text: str, action: str) -> list[dict[str, str]]:
    """The hidden fields of every form of the page posting to ``action`` (…/check, …/stage)."""
    found = []
    for match in re.finditer(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', text, re.S):
        if match.group(1).endswith(action):
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match.group(2)))
            found.append({k: html.unescape(v) for k, v in fields.items()})
    return found


def check_form(text: str, step_id: str) -> dict[str, str]:
    return next(f for f in forms(text, "/check") if f["step"] == step_id)


async def leave(sandbox, channel_id: str, username: str) -> None:
    user = sandbox.user(username)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {user.token}"}) as http:
        async with http.delete(f"{sandbox.url}/api/v4/channels/{channel_id}/members/"
                               f"{sandbox.user_id(username)}") as response:
            assert response.status == 200, await response.text()


async def private_incident(sandbox, bot, name="Payments down"):
    """A private incident bob runs (bob and the bot in its channel; alice is a system admin)."""
    await make_playbook(bot, sandbox, title="Private response", members=("bob",), public=False)
    return await start_incident(sandbox, bot, user="bob", name=name)


# Signed out, the list -------------------------------------------------------------------------

async def test_signed_out_every_incident_route_goes_to_the_login_page(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, _ = await start_incident(sandbox, bot)
    async with BackstageClient(bot) as browser:
        for path in ("/incidents", page(incident), page(incident) + "/export.csv", page(incident) + "/report.md"):
            status, _ = await browser.get(path)
            assert status == 303, path
        status, text = await browser.post(page(incident) + "/check", {"step": "x", "mark": "y", "done": "1"})
        assert status == 401 and "Sign in again" in text
    assert (await bot.store.get_incident(incident.id)).steps_done == 0


async def test_the_list_shows_what_the_chat_list_shows_with_filters_search_and_paging(bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    first, _ = await start_incident(sandbox, bot, user="bob", name="Database down")
    second, _ = await start_incident(sandbox, bot, user="bob", name="Checkout errors")
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as browser:
        status, text = await browser.get("/incidents")
        assert status == 200
        assert text.index("Checkout errors") < text.index("Database down")  # newest first, as in chat
        assert f'href="/backstage/incidents/{first.id}"' in text and 'id="team"' not in text  # one team: no picker
        assert "@bob" in text and "Incident Response" in text and "1–2 of 2" in text
        status, text = await browser.get("/incidents?q=database")
        assert "Database down" in text and "Checkout errors" not in text
        status, text = await browser.get("/incidents?status=ended")
        assert 'id="empty"' in text and "No incident you can see matches these filters" in text
        status, text = await browser.get("/incidents?commander=@nobody-here")
        assert status == 400 and "There is no user @nobody-here in this team" in text
        status, text = await browser.get("/incidents?severity=SEV9")  # as in chat: a level nothing has
        assert status == 200 and 'id="empty"' in text
        status, text = await browser.get("/incidents?severity=sev2")
        assert status == 200 and 'id="empty"' in text
        status, text = await browser.get("/incidents?status=sideways")
        assert status == 400 and 'id="problem"' in text and "is not a status" in text
        # Hostile page numbers: refused with what to do, never sent to the store.
        for huge in ("99999999999999999999999", "-1", "0", "1e9", "x"):
            status, text = await browser.get(f"/incidents?page={huge}")
            assert status == 400 and "Pages count from 1" in text, huge
        status, text = await browser.get("/incidents?page=7")
        assert status == 200 and "There is no page 7" in text
        status, text = await browser.get("/incidents?q=" + "x" * 5000)
        assert status == 400 and "Search for at most" in text
        # The nav leads here.
        status, text = await browser.get("/")
        assert 'href="/backstage/incidents"' in text
    # dave (in the team, a public playbook's incidents are his to see) sees them too; nobody sees a private one.
    await make_playbook(bot, sandbox, title="Secret", members=("bob",), public=False)
    hidden, _ = await start_incident(sandbox, bot, user="bob", name="Secret thing", playbook="Secret")
    async with await BackstageClient.signed_in(bot, sandbox, "dave") as browser:
        status, text = await browser.get("/incidents")
        assert "Database down" in text and "Secret thing" not in text and hidden.id not in text
    assert second.id


async def test_paging_links_keep_the_filters(bot, sandbox):
    await make_playbook(bot, sandbox)
    for number in range(17):
        await start_incident(sandbox, bot, name=f"Outage {number:02d}")
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        _, text = await browser.get("/incidents?q=outage")
        assert "1–15 of 17" in text
        next_url = html.unescape(re.search(r'href="([^"]+)" id="next"', text).group(1))
        assert "q=outage" in next_url and "page=2" in next_url
        _, text = await browser.get(next_url)
        assert "16–17 of 17" in text and 'id="previous"' in text and 'id="next"' not in text
        assert "Outage 01" in text and "Outage 00" in text


# One incident -----------------------------------------------------------------------------------

async def test_the_page_shows_the_card_checklist_timeline_and_links_and_chat_links_to_it(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot, description="Checkout returns 502")
    alice = sandbox.user("alice")
    assert (await alice.command(channel["id"], "/incident check 1.1")).status == 200
    url = incident_page_url(bot.callback_base_url, incident.id)
    # The card's title links to the page; list and info replies link to it too.
    header = card(sandbox, incident)["props"]["attachments"][0]
    assert header["title_link"] == url
    listed = await alice.command("town-square", "/incident list")
    assert url in listed.ephemeral[0]
    info = await alice.command(channel["id"], "/incident info")
    assert url in info.ephemeral[0]
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        status, text = await browser.get(page(incident))
        assert status == 200
        assert "Checkout errors" in text and "Checkout returns 502" in text
        assert 'id="commander">@alice' in text and "1/3 Triage" in text and "Ongoing" in text
        assert "done by @alice" in text and 'id="uncheck-1.1"' in text and 'id="check-1.2"' in text
        assert "checked step 1.1" in text  # the timeline
        assert 'id="as-of"' in text and 'id="reload"' in text
        assert f'/channels/{channel["name"]}' in text
        assert "Time to resolve" in text and "No status update yet." in text
        assert "<meta http-equiv" not in text and "<script" not in text


async def test_a_check_in_the_page_redraws_the_card_and_tells_the_channel(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    step = incident.stages[0].steps[0]
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        _, text = await browser.get(page(incident))
        status, _ = await browser.post(page(incident) + "/check", check_form(text, step.id))
        assert status == 303
        _, text = await browser.get(page(incident) + "?done=checked")
        assert "Step checked" in text and 'id="uncheck-1.1"' in text
    await sandbox.wait_for(lambda: "✅ **1.1**" in card_text(card(sandbox, incident)))
    assert "done by @alice" in card_text(card(sandbox, incident))
    messages = [p["message"] for p in sandbox.posts(channel["id"])]
    assert any(m.startswith("@alice checked 1.1") for m in messages)
    assert (await bot.store.get_incident(incident.id)).steps_done == 1


async def test_a_replayed_form_after_the_step_changed_is_refused_and_changes_nothing(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    step = incident.stages[0].steps[0]
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        _, text = await browser.get(page(incident))
        old = check_form(text, step.id)
        assert (await browser.post(page(incident) + "/check", old))[0] == 303
        # Unchecked in chat, then the old Check form sent again: the step is open again, but the mark is old.
        assert (await sandbox.user("alice").command(channel["id"], "/incident uncheck 1.1")).status == 200
        status, text = await browser.post(page(incident) + "/check", old)
        assert status == 409 and "nothing changed" in text and 'id="refusal"' in text
    assert (await bot.store.get_incident(incident.id)).steps_done == 0


async def test_forged_or_missing_csrf_and_other_origins_change_nothing(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, _ = await start_incident(sandbox, bot)
    step = incident.stages[0].steps[0]
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        _, text = await browser.get(page(incident))
        form = check_form(text, step.id)
        forged = {**form, "csrf": "forged"}
        assert (await browser.post(page(incident) + "/check", forged))[0] == 403
        no_token = {k: v for k, v in form.items() if k != "csrf"}
        assert (await browser.post(page(incident) + "/check", no_token, csrf=False))[0] == 403
        status, _ = await browser.post(page(incident) + "/check", form, headers={"Origin": "https://evil.example"})
        assert status == 403
        for action in ("/commander", "/update", "/stage"):
            assert (await browser.post(page(incident) + action, {"text": "x", "how": "next"}, csrf=False))[0] == 403
    current = await bot.store.get_incident(incident.id)
    assert current.steps_done == 0 and current.active_stage == 0 and current.last_update_at is None


async def test_a_private_incident_is_404_to_a_non_member_on_page_actions_and_downloads(bot, sandbox):
    incident, _ = await private_incident(sandbox, bot)
    step = incident.stages[0].steps[0]
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as bob:
        _, text = await bob.get(page(incident))
        form = check_form(text, step.id)
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        _, unknown = await carol.get("/incidents/" + "x" * 26)
        for path in (page(incident), page(incident) + "/export.csv", page(incident) + "/report.md"):
            status, text = await carol.get(path)
            assert status == 404 and NOT_FOUND in text and "Payments down" not in text, path
        await carol.get("/incidents")  # a fresh CSRF token of carol's own
        for action, data in (("/check", form), ("/stage", {"how": "next", "mark": "stage0/3"}),
                             ("/commander", {"commander": sandbox.user_id("carol")}),
                             ("/update", {"text": "hi"})):
            data = {**data, "csrf": carol.csrf}
            status, text = await carol.post(page(incident) + action, data)
            assert status == 404 and NOT_FOUND in text, action
        status, text = await carol.get("/incidents/not-an-id")
        assert status == 404
        assert unknown.replace("x" * 26, "") == unknown  # the unknown id is not echoed
    current = await bot.store.get_incident(incident.id)
    assert current.steps_done == 0 and current.commander_id == sandbox.user_id("bob")


async def test_a_member_who_just_left_gets_404_at_once(bot, sandbox):
    incident, channel = await private_incident(sandbox, bot)
    await sandbox.user("bob").add_member(channel["id"], "carol")
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        status, text = await carol.get(page(incident))
        assert status == 200 and "Payments down" in text
        form = check_form(text, incident.stages[0].steps[0].id)
        await leave(sandbox, channel["id"], "carol")
        status, text = await carol.get(page(incident))
        assert status == 404 and "Payments down" not in text
        status, _ = await carol.post(page(incident) + "/check", form)
        assert status == 404
        assert (await carol.get(page(incident) + "/export.csv"))[0] == 404
    assert (await bot.store.get_incident(incident.id)).steps_done == 0


async def test_a_team_member_outside_a_public_channel_sees_it_but_is_told_the_chats_refusal(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, _ = await start_incident(sandbox, bot)
    async with await BackstageClient.signed_in(bot, sandbox, "dave") as dave:
        status, text = await dave.get(page(incident))
        assert status == 200 and 'id="not-member"' in text and 'id="check-1.1"' not in text
        status, text = await dave.post(page(incident) + "/check", {
            "step": incident.stages[0].steps[0].id, "mark": "open@0", "done": "1"})
        assert status == 403 and "Only members of the incident channel can change" in text
    assert (await bot.store.get_incident(incident.id)).steps_done == 0


async def test_two_people_checking_at_once_both_land_or_one_is_told(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await sandbox.user("alice").add_member(channel["id"], "bob")
    first, second = incident.stages[0].steps[0], incident.stages[0].steps[1]
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as alice, \
            await BackstageClient.signed_in(bot, sandbox, "bob") as bob:
        _, alice_page = await alice.get(page(incident))
        _, bob_page = await bob.get(page(incident))
        # Different steps at once: both land.
        results = await asyncio.gather(alice.post(page(incident) + "/check", check_form(alice_page, first.id)),
                                       bob.post(page(incident) + "/check", check_form(bob_page, second.id)))
        assert [status for status, _ in results] == [303, 303]
        assert (await bot.store.get_incident(incident.id)).steps_done == 2
        # The same step at once, from pages drawn before: one lands, the other is told.
        _, alice_page = await alice.get(page(incident))
        _, bob_page = await bob.get(page(incident))
        results = await asyncio.gather(alice.post(page(incident) + "/check", check_form(alice_page, first.id)),
                                       bob.post(page(incident) + "/check", check_form(bob_page, first.id)))
        statuses = sorted(status for status, _ in results)
        assert statuses == [303, 409]
        refused = next(text for status, text in results if status == 409)
        assert "nothing changed" in refused
    assert (await bot.store.get_incident(incident.id)).steps_done == 1


async def test_commander_stage_and_status_update_from_the_page(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await sandbox.user("alice").add_member(channel["id"], "bob")
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        _, text = await browser.get(page(incident))
        assert '>@bob</option>' in text and "@incident" not in text.split('id="commander-select"')[1].split("</select>")[0]
        stage_form = forms(text, "/stage")[0]
        # A non-member as commander: the chat's refusal, nothing changed.
        status, text = await browser.post(page(incident) + "/commander", {"username": "@carol"})
        assert status == 400 and "not a member of this incident's channel" in html.unescape(text)
        status, text = await browser.post(page(incident) + "/commander", {"username": "nobody-at-all"})
        assert status == 400 and "There is no user @nobody-at-all" in text
        status, _ = await browser.post(page(incident) + "/commander", {"commander": sandbox.user_id("bob")})
        assert status == 303
        status, _ = await browser.post(page(incident) + "/stage", {**stage_form, "how": "next"})
        assert status == 303
        # The same stage form again: drawn for stage 1, refused now.
        status, text = await browser.post(page(incident) + "/stage", {**stage_form, "how": "next"})
        assert status == 409 and "the active stage is now 2/3" in text
        status, text = await browser.post(page(incident) + "/update", {"text": "", "next_in": "none"})
        assert status == 400 and 'id="refusal"' in text
        status, _ = await browser.post(page(incident) + "/update", {"text": "Rolled back the deploy.",
                                                                    "next_in": "30m"})
        assert status == 303
        _, text = await browser.get(page(incident))
        assert "Rolled back the deploy." in text and 'id="commander">@bob' in text and "2/3 Investigation" in text
    current = await bot.store.get_incident(incident.id)
    assert current.commander_id == sandbox.user_id("bob") and current.active_stage == 1
    messages = [p["message"] for p in sandbox.posts(channel["id"])]
    assert any("changed the commander to @bob" in m for m in messages)
    update = next(m for m in messages if "Status update" in m)
    assert "Rolled back the deploy." in update and incident_page_url(bot.callback_base_url, incident.id) in update
    await sandbox.wait_for(lambda: "@bob" in card_text(card(sandbox, incident)))


async def test_downloads_are_the_export_and_the_report_with_safe_names(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot, name='Evil "name"; filename=x.exe')
    await sandbox.user("alice").post(channel["id"], "=HYPERLINK(\"http://evil\")")
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        async with browser.http.get(browser.url(page(incident) + "/export.csv")) as response:
            assert response.status == 200 and response.content_type == "text/csv"
            disposition = response.headers["Content-Disposition"]
            assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+\.csv"', disposition), disposition
            body = (await response.read()).decode("utf-8-sig")
            assert "'=HYPERLINK" in body  # spreadsheet-safe, as /incident export
            assert response.headers["Content-Security-Policy"]
        async with browser.http.get(browser.url(page(incident) + "/report.md")) as response:
            assert response.status == 200 and response.content_type == "text/markdown"
            disposition = response.headers["Content-Disposition"]
            assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+\.md"', disposition), disposition
            assert "# Incident report" in await response.text()


async def test_hostile_text_everywhere_is_inert(bot, sandbox):
    await make_playbook(bot, sandbox, stages=(("Triage " + HOSTILE, ("Step " + HOSTILE, "Plain step")),))
    incident, _ = await start_incident(sandbox, bot, name="Name " + HOSTILE, description="Desc " + HOSTILE)
    # A step description, a field value and a timeline excerpt, stored as their own features store them.
    def hostile(current):
        stage = current.stages[0]
        steps = (stage.steps[0].model_copy(update={"description": "Desc [x](javascript:alert(3)) " + HOSTILE}),
                 *stage.steps[1:])
        updated = current.model_copy(update={"stages": (stage.model_copy(update={"steps": steps}),),
                                             "field_values": {**current.field_values, "severity": HOSTILE}})
        return updated, [_ops.event(current, EventKind.POST_ADDED, current.commander_id, current.created_at + 1,
                                    post_id="p" * 26, author_id=current.commander_id,
                                    excerpt="Excerpt " + HOSTILE, permalink="javascript:alert(4)")]
    await bot.store.mutate_incident(incident.id, hostile)
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        await browser.get(page(incident))
        assert (await browser.post(page(incident) + "/update", {"text": "Update " + HOSTILE,
                                                               "next_in": "none"}))[0] == 303
        for path in (page(incident), "/incidents", "/incidents?q=" + HOSTILE):
            status, text = await browser.get(path)
            assert status == 200, path
            assert "<script>" not in text and "<img src=x" not in text, path
            assert 'href="javascript:' not in text, path
        _, text = await browser.get(page(incident))
        assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6  # name, stage, step, desc, field, timeline…
        assert "Excerpt &lt;script&gt;" in text and "Update &lt;script&gt;" in text


async def test_what_the_commander_hid_is_hidden_in_the_page_too(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    secret = _ops.event(incident, EventKind.POST_ADDED, incident.commander_id, incident.created_at + 1,
                        post_id="q" * 26, author_id=incident.commander_id, excerpt="Customer list pasted by mistake")
    await bot.store.mutate_incident(incident.id, lambda current: (current, [secret]))
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        _, text = await browser.get(page(incident))
        assert "Customer list pasted by mistake" in text
        number = next(e.number for e in tl.entries(await bot.store.timeline(incident.id)) if e.event.id == secret.id)
        hidden = await sandbox.user("alice").command(channel["id"], f"/incident timeline hide {number}")
        assert "is hidden" in hidden.response["text"]
        _, text = await browser.get(page(incident))
        assert "Customer list pasted by mistake" not in text


async def test_an_ended_incident_is_read_only_in_the_page_as_in_chat(bot, sandbox):
    await make_playbook(bot, sandbox)
    incident, _ = await start_incident(sandbox, bot)
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        _, text = await browser.get(page(incident))
        form = check_form(text, incident.stages[0].steps[0].id)
        stage_form = forms(text, "/stage")[0]
        current = await bot.store.get_incident(incident.id)
        await bot.incidents.end(current, sandbox.user_id("alice"))
        _, text = await browser.get(page(incident))
        assert "Ended" in text and 'id="actions"' not in text and 'id="check-1.1"' not in text
        status, text = await browser.post(page(incident) + "/check", form)
        assert status == 409 and 'id="refusal"' in text
        status, text = await browser.post(page(incident) + "/stage", {**stage_form, "how": "next"})
        assert status == 409
        status, text = await browser.post(page(incident) + "/update", {"text": "late", "next_in": "none"})
        assert status == 409 and "ended" in text
    current = await bot.store.get_incident(incident.id)
    assert current.steps_done == 0 and current.active_stage == 0 and current.last_update_at is None
