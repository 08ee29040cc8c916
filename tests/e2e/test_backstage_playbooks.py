"""The backstage's playbook pages (issue 19) end to end: the list, a playbook's page and its editor
(numbered inputs, add/move/remove buttons re-rendering the draft, Save through PlaybookService with
the YAML parser's checks at each input and the version check), YAML download and upload — and the
abuse list: signed out, a non-member, another team, a member who left the team, CSRF, two editors
at once, hostile YAML (aliases, depth, size), XSS in every field rendered.

Whoever may see a playbook in chat may edit it (its members and system admins); there is no
view-only role, so the "may view but not edit" case is every non-member: 404 for both.
"""

from __future__ import annotations

import re
import time

import aiohttp
import pytest

from domain.playbooks import StageDraft, StepDraft, new_playbook
from sandbox import Sandbox, SandboxConfig
from services.playbooks import STALE_EDIT
from tests.e2e.conftest import EDIT_TIME_LIMIT
from tests.e2e.test_history import quick_incident, two_team_seed

from .backstage import BackstageClient


@pytest.fixture
async def sandbox():
    async with Sandbox(two_team_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


async def playbook_of(bot, sandbox, *, title: str = "Outage", team: str = "acme",
                      members: tuple[str, ...] = ("carol",), public: bool = True, description: str = "",
                      steps: tuple[tuple[str, str], ...] = (("Acknowledge", ""), ("Assess impact", ""))):
    member_ids = [sandbox.user_id(name) for name in members]
    playbook = new_playbook(
        team_id=sandbox.team(team)["id"], title=title, created_by=member_ids[0], now=int(time.time() * 1000),
        create_public_channel=public, member_ids=member_ids, description=description,
        stages=[StageDraft(title="Triage", steps=tuple(StepDraft(title=t, command=c) for t, c in steps)),
                StageDraft(title="Resolution", steps=(StepDraft(title="Fix it"),))])
    return await bot.store.create_playbook(playbook)


def form_of(page: str) -> dict[str, str]:
    """The editor's inputs as the page rendered them (what a browser would send back)."""
    editor = page[page.index('id="editor"'):page.index("</form>", page.index('id="editor"'))]
    values: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*?name="([^"]+)"[^>]*?value="([^"]*)"', editor):
        values[name] = _unescape(value)
    for name, value in re.findall(r'<textarea[^>]*?name="([^"]+)"[^>]*>(.*?)</textarea>', editor, re.S):
        values[name] = _unescape(value)
    for name, body in re.findall(r'<select[^>]*?name="([^"]+)"[^>]*>(.*?)</select>', editor, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        values[name] = _unescape(chosen.group(1)) if chosen else ""
    values.pop("csrf", None)
    return values


def _unescape(text: str) -> str:
    import html
    return html.unescape(text)


def outline(playbook) -> list[tuple[str, list[str]]]:
    return [(stage.title, [step.title for step in stage.steps]) for stage in playbook.stages]


async def test_signed_out_every_playbook_page_sends_to_login_and_changes_nothing(bot, sandbox):
    playbook = await playbook_of(bot, sandbox)
    async with BackstageClient(bot) as browser:
        for path in ("/playbooks", f"/playbooks/{playbook.id}", f"/playbooks/{playbook.id}.yaml", "/stats"):
            status, _ = await browser.get(path)
            assert status == 303, path
        status, _ = await browser.post(f"/playbooks/{playbook.id}", {"op": "save", "title": "Hacked", "stages": "0"},
                                       csrf=False)
        assert status == 401
        status, _ = await browser.post("/playbooks/new", {"team": playbook.team_id, "title": "X"}, csrf=False)
        assert status == 401
    assert (await bot.store.get_playbook(playbook.id)).title == "Outage"


async def test_the_list_shows_what_chat_lists_with_counts_members_and_last_use(bot, sandbox):
    mine = await playbook_of(bot, sandbox, title="Outage", members=("carol", "bob"))
    secret = await playbook_of(bot, sandbox, title="Secret plan", members=("dave",), public=False)
    await quick_incident(bot, sandbox, mine, "Used once", "carol", at=bot.ctx.clock() - 60_000)
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        status, page = await carol.get("/playbooks")
        assert status == 200 and ">Playbooks</a>" in page  # the navigation entry
        row = page[page.index(f"/playbooks/{mine.id}"):]
        row = row[:row.index("</tr>")]
        assert "Outage" in row and "@carol, @bob" in row and "public" in row
        assert re.search(r'class="num">2<.*class="num">3<', row, re.S)  # 2 stages, 3 steps
        assert "UTC" in row  # last used
        assert "Secret plan" not in page and secret.id not in page
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as admin:  # a system admin: every one
        _, page = await admin.get("/playbooks")
        assert "Secret plan" in page and "never" in page


async def test_other_teams_and_non_members_get_not_found_everywhere(bot, sandbox):
    secret = await playbook_of(bot, sandbox, title="Secret plan", members=("carol",))
    globex = await playbook_of(bot, sandbox, title="Globex plan", team="globex", members=("bob",))
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as bob:
        for path in (f"/playbooks/{secret.id}", f"/playbooks/{secret.id}.yaml",
                     f"/playbooks/{secret.id}?team={sandbox.team('globex')['id']}"):
            status, page = await bob.get(path)
            assert status == 404 and "nothing here" in page.lower(), path
        status, _ = await bob.post(f"/playbooks/{secret.id}", {"op": "save", "version": "1", "title": "Mine now",
                                                              "stages": "1", "stage-1-title": "x",
                                                              "stage-1-steps": "0"})
        assert status == 404
        status, _ = await bob.post(f"/playbooks/{secret.id}/upload", {"version": "1",
                                                                     "yaml": "title: Mine\nstages:\n- title: x\n"})
        assert status == 404
        # bob's own globex playbook, through its team; the acme list does not show it.
        status, page = await bob.get(f"/playbooks?team={sandbox.team('globex')['id']}")
        assert status == 200 and "Globex plan" in page
        _, page = await bob.get("/playbooks")
        assert "Globex plan" not in page or 'value="' + sandbox.team("globex")["id"] + '" selected' in page
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:  # carol is not in globex
        status, _ = await carol.get(f"/playbooks?team={sandbox.team('globex')['id']}")
        assert status == 404
        status, _ = await carol.get(f"/playbooks/{globex.id}")
        assert status == 404
    assert (await bot.store.get_playbook(secret.id)).title == "Secret plan"


async def test_a_member_who_left_the_team_no_longer_sees_the_playbook(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol", "dave"))
    team_id = playbook.team_id
    async with await BackstageClient.signed_in(bot, sandbox, "dave") as dave:
        status, _ = await dave.get(f"/playbooks/{playbook.id}")
        assert status == 200
        sandbox.world.team_members[team_id].pop(sandbox.user_id("dave"))
        # (Team membership is asked of Mattermost each time, not cached.)
        status, _ = await dave.get(f"/playbooks/{playbook.id}")
        assert status == 404


async def test_the_editor_changes_the_draft_without_saving_then_saves_it(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol",))
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        status, page = await carol.get(f"/playbooks/{playbook.id}")
        assert status == 200 and 'id="editor"' in page and 'value="Acknowledge"' in page
        draft = form_of(page)
        assert draft["stages"] == "2" and draft["stage-1-steps"] == "2" and draft["members"] == "@carol"
        # Add a step to stage 1: the form comes back with an empty step 1.3; nothing is stored.
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "add-step-1"})
        assert status == 200 and 'name="step-1-3-title"' in page and "Not saved yet" in page
        assert (await bot.store.get_playbook(playbook.id)).version == playbook.version
        draft = form_of(page)
        draft.update({"step-1-3-title": "Page the on-call", "step-1-3-command": "/echo paging",
                      "step-1-3-description": "Use the rota", "title": "Outage (edited)"})
        # Move stage 2 up, then remove step 1.1 of what is now stage 2 (the old stage 1).
        _, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "up-stage-2"})
        draft = form_of(page)
        assert draft["stage-1-title"] == "Resolution" and draft["stage-2-title"] == "Triage"
        assert draft["step-2-3-title"] == "Page the on-call"  # typed text survives every button
        _, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "remove-step-2-1"})
        draft = form_of(page)
        _, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "down-step-2-1"})
        draft = form_of(page)
        _, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "add-stage"})
        draft = form_of(page)
        assert draft["stages"] == "3" and draft["stage-3-title"] == "Stage 3"
        draft.update({"stage-3-title": "Follow-up", "interval": "30m", "members": "@carol @dave",
                      "public": "private", "description": "When the site is down"})
        status, _ = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "save"})
        assert status == 303
        saved = await bot.store.get_playbook(playbook.id)
        assert outline(saved) == [("Resolution", ["Fix it"]), ("Triage", ["Page the on-call", "Assess impact"]),
                                  ("Follow-up", [])]
        step = saved.stages[1].steps[0]
        assert step.command == "/echo paging" and step.description == "Use the rota"
        assert saved.title == "Outage (edited)" and saved.create_public_channel is False
        assert saved.updates.interval_ms == 30 * 60_000 and saved.description == "When the site is down"
        assert set(saved.member_ids) == {sandbox.user_id("carol"), sandbox.user_id("dave")}
        assert saved.version == playbook.version + 1
        # The page shows it saved, and chat agrees.
        _, page = await carol.get(f"/playbooks/{playbook.id}?saved=1")
        assert "Saved." in page and "Page the on-call" in page
    shown = await sandbox.user("dave").command("town-square", '/incident playbook show "Outage (edited)"')
    assert "Page the on-call" in shown.ephemeral[0]


async def test_every_setting_the_chat_dialog_edits_is_in_the_form(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol",))
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        _, page = await carol.get(f"/playbooks/{playbook.id}")
        draft = form_of(page)
        for name in ("broadcast", "interval", "update_template", "reminders", "invite", "commander", "followers",
                     "webhooks", "retro_template", "retro_reminder", "field-1-name", "field-1-kind", "public"):
            assert name in draft, name
        draft.update({"broadcast": "~town-square", "update_template": "Status: ok", "reminders": "dm",
                      "invite": "@bob", "commander": "@dave", "followers": "@bob", "retro_template": "## What",
                      "retro_reminder": "2d"})
        _, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "add-field"})
        draft = form_of(page)
        draft.update({"field-2-name": "Customer", "field-2-kind": "text"})
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "save"})
        assert status == 303, page
    saved = await bot.store.get_playbook(playbook.id)
    town = sandbox.channel("acme", "town-square")["id"]
    assert saved.updates.broadcast_channel_ids == (town,) and saved.updates.template == "Status: ok"
    assert saved.updates.reminder_delivery.value == "dm"
    assert saved.invited_user_ids == (sandbox.user_id("bob"),) and saved.default_commander_id == sandbox.user_id("dave")
    assert saved.auto_follower_ids == (sandbox.user_id("bob"),)
    assert saved.retro.template == "## What" and saved.retro.reminder_interval_ms == 2 * 86_400_000
    assert [f.name for f in saved.fields] == ["Severity", "Customer"]
    assert saved.fields[0].options == ("SEV1", "SEV2", "SEV3", "SEV4")  # the severity field kept as it was


async def test_refusals_are_shown_at_their_input_and_nothing_is_saved(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol",))
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        _, page = await carol.get(f"/playbooks/{playbook.id}")
        draft = form_of(page)
        bad = {**draft, "op": "save", "step-1-1-title": "", "interval": "soon", "members": "@carol @nobody",
               "step-2-1-command": "/incident run 1.1"}
        status, page = await carol.post(f"/playbooks/{playbook.id}", bad)
        assert status == 400 and "Nothing was saved" in page
        assert re.search(r'data-for="step-1-1-title">[^<]*empty', page)
        assert 'data-for="interval"' in page
        # The draft is shown as typed, to fix.
        assert form_of(page)["interval"] == "soon" and form_of(page)["step-2-1-command"] == "/incident run 1.1"
        # Usernames are checked once the form reads well: an unknown one at the members input.
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "save",
                                                                      "members": "@carol @nobody"})
        assert status == 400 and re.search(r'data-for="members">[^<]*@nobody', page)
        # A step command that would check a step is refused at that command.
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "save",
                                                                      "step-2-1-command": "/incident run 1.1"})
        assert status == 400 and 'data-for="step-2-1-command"' in page
        # Another playbook's title (one carol can use) is refused at the title.
        await playbook_of(bot, sandbox, title="Taken", members=("carol",))
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "save", "title": "TAKEN"})
        assert status == 400 and re.search(r'data-for="title">[^<]*already titled', page)
        # Stages over the limit are not even read: a removed stage 0 of 0 is simply refused by the parser.
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**draft, "op": "save", "stages": "0"})
        assert status == 400 and "at least one stage" in page
    assert (await bot.store.get_playbook(playbook.id)).version == playbook.version


async def test_two_editors_at_once_the_second_is_told_and_nothing_is_overwritten(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol", "dave"))
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol, \
            await BackstageClient.signed_in(bot, sandbox, "dave") as dave:
        _, page = await carol.get(f"/playbooks/{playbook.id}")
        carols = form_of(page)
        _, page = await dave.get(f"/playbooks/{playbook.id}")
        daves = form_of(page)
        status, _ = await carol.post(f"/playbooks/{playbook.id}", {**carols, "op": "save", "title": "Carol's"})
        assert status == 303
        status, page = await dave.post(f"/playbooks/{playbook.id}", {**daves, "op": "save", "title": "Dave's"})
        assert status == 409 and STALE_EDIT in page
        assert form_of(page)["title"] == "Dave's"  # his draft is kept on the page, to copy from
        # A chat edit between opening and saving counts the same.
        await sandbox.user("carol").command("town-square", "/incident playbook members \"Carol's\" add @bob")
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**carols, "op": "save", "title": "Again"})
        assert status == 409
    saved = await bot.store.get_playbook(playbook.id)
    assert saved.title == "Carol's" and sandbox.user_id("bob") in saved.member_ids


async def test_csrf_token_and_origin_are_required_for_every_playbook_form(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol",))
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        _, page = await carol.get(f"/playbooks/{playbook.id}")
        draft = {**form_of(page), "op": "save", "title": "Forged"}
        for path in (f"/playbooks/{playbook.id}", f"/playbooks/{playbook.id}/upload", "/playbooks/new",
                     "/playbooks/import"):
            status, _ = await carol.post(path, {**draft, "team": playbook.team_id}, csrf=False)
            assert status == 403, path
            status, _ = await carol.post(path, {**draft, "csrf": "not-the-token", "team": playbook.team_id})
            assert status == 403, path
        status, _ = await carol.post(f"/playbooks/{playbook.id}", draft, headers={"Origin": "https://evil.example"})
        assert status == 403
    assert (await bot.store.get_playbook(playbook.id)).title == "Outage"
    assert len(await bot.store.playbooks_for_user(playbook.team_id, "", is_admin=True)) == 1


async def upload(client: BackstageClient, path: str, *, version: int | str = "", text: str | None = None,
                 file: bytes | None = None, team: str = "") -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("csrf", client.csrf)
    form.add_field("version", str(version))
    if team:
        form.add_field("team", team)
    if text is not None:
        form.add_field("yaml", text)
    if file is not None:
        form.add_field("file", file, filename="playbook.yaml", content_type="application/x-yaml")
    async with client.http.post(client.url(path), data=form, allow_redirects=False) as response:
        return response.status, await response.text()


async def test_yaml_download_is_the_chat_export_and_an_upload_replaces_the_playbook(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol",))
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        async with carol.http.get(carol.url(f"/playbooks/{playbook.id}.yaml")) as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"] == 'attachment; filename="outage.yaml"'
            assert response.content_type == "application/x-yaml"
            text = await response.text()
        _, exported = await bot.playbooks.export_text(playbook)
        assert text == exported
        changed = text.replace("Fix it", "Roll back").replace("title: Outage", "title: Outage v2")
        _, page = await carol.get(f"/playbooks/{playbook.id}")
        status, page = await upload(carol, f"/playbooks/{playbook.id}/upload", version=playbook.version,
                                    file=changed.encode())
        assert status == 200 and "Uploaded and saved." in page and "Roll back" in page
        saved = await bot.store.get_playbook(playbook.id)
        assert saved.title == "Outage v2" and outline(saved)[1] == ("Resolution", ["Roll back"])
        # Problems by line; nothing saved.
        status, page = await upload(carol, f"/playbooks/{playbook.id}/upload", version=saved.version,
                                    text="title: Broken\nstages:\n  - title: x\n    steps:\n      - title: ''\n")
        assert status == 400 and "Line 5, stage 1, step 1, title" in page
        # An upload made on an old version is refused as the form's save is.
        status, page = await upload(carol, f"/playbooks/{playbook.id}/upload", version=playbook.version,
                                    text=changed.replace("Roll back", "Stale"))
        assert status == 409 and "Someone else saved" in page
        # Pasted text works as a file does.
        status, page = await upload(carol, f"/playbooks/{playbook.id}/upload", version=saved.version,
                                    text=changed.replace("Roll back", "Pasted"))
        assert status == 200
    assert outline(await bot.store.get_playbook(playbook.id))[1] == ("Resolution", ["Pasted"])


async def test_hostile_yaml_uploads_are_refused_before_they_cost_anything(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol",))
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
             "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\ntitle: Laughs\nstages: [*c]\n"
    deep = "title: Deep\nstages: " + "[" * 200 + "]" * 200 + "\n"
    huge = "title: Huge\ndescription: '" + "x" * (300 * 1024) + "'\nstages:\n  - title: x\n"
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        _, _ = await carol.get(f"/playbooks/{playbook.id}")
        path = f"/playbooks/{playbook.id}/upload"
        status, page = await upload(carol, path, version=playbook.version, file=laughs.encode())
        assert status == 400 and "alias" in page.lower()
        status, page = await upload(carol, path, version=playbook.version, file=deep.encode())
        assert status == 400 and "nested too deeply" in page
        status, page = await upload(carol, path, version=playbook.version, file=huge.encode())
        assert status == 400 and "larger than 256 KB" in page
        status, page = await upload(carol, path, version=playbook.version, text=huge)
        assert status == 400 and "characters long" in page
        status, page = await upload(carol, path, version=playbook.version, file=b"\xff\xfe\x00bad")
        assert status == 400 and "not UTF-8" in page
        status, page = await upload(carol, path, version=playbook.version, text="")
        assert status == 400 and "Choose a .yaml file or paste" in page
        # The editor's inputs are bounded too: a huge title is refused at the title, by the parser's limit.
        _, page = await carol.get(f"/playbooks/{playbook.id}")
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**form_of(page), "op": "save",
                                                                      "title": "t" * 100_000,
                                                                      "stages": "999999"})
        assert status == 400 and 'data-for="title"' in page
    assert (await bot.store.get_playbook(playbook.id)).version == playbook.version


async def test_create_from_a_template_and_import_from_the_list(bot, sandbox):
    team_id = sandbox.team("acme")["id"]
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as bob:
        _, page = await bob.get("/playbooks")
        assert 'id="no-playbooks"' in page
        status, _ = await bob.post("/playbooks/new", {"team": team_id, "title": "Payments down",
                                                      "template": "incident-response"})
        assert status == 303
        created = (await bot.store.playbooks_for_user(team_id, sandbox.user_id("bob")))[0]
        assert created.title == "Payments down" and created.member_ids == (sandbox.user_id("bob"),)
        status, page = await bob.post("/playbooks/new", {"team": team_id, "title": "payments DOWN"})
        assert status == 400 and "already titled" in page
        status, _ = await bob.post("/playbooks/new", {"team": sandbox.team("globex")["id"] + "x", "title": "X"})
        assert status == 404
        text = "title: Imported plan\nmembers: [bob, dave]\nstages:\n  - title: One\n    steps: [Do it]\n"
        status, page = await upload(bob, "/playbooks/import", team=team_id, text=text)
        assert status == 200 and "Imported as a new playbook." in page
        status, page = await upload(bob, "/playbooks/import", team=team_id,
                                    text="title: Bad\nmembers: [nobody]\nstages:\n  - title: One\n")
        assert status == 400 and "Line 2, members, entry 1: there is no active user @nobody." in page
    titles = sorted(p.title for p in await bot.store.playbooks_for_user(team_id, sandbox.user_id("dave")))
    assert titles == ["Imported plan"]


XSS = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)")


async def test_what_people_typed_is_rendered_inert(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, title=f"T {XSS[0]}", description=f"{XSS[1]} {XSS[2]}", members=("carol",),
                                 steps=((XSS[1], f"/echo {XSS[1]}"), ("End it", "/incident end")))
    incidents_before = len((await bot.store.list_incidents(playbook.team_id, is_admin=True)).items)
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        for path in ("/playbooks", f"/playbooks/{playbook.id}"):
            _, page = await carol.get(path)
            for attack in XSS[:2]:
                assert attack not in page, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
            assert "<img" not in page and 'href="javascript:' not in page
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
        assert '<code class="command">/incident end</code>' in page  # a command is text to read
        assert '<code class="command">/echo &#34;&gt;&lt;img' in page
        # A draft round trip keeps the text exactly, still escaped.
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**form_of(page), "op": "add-step-2"})
        assert status == 200 and XSS[1] not in page and form_of(page)["step-1-1-title"] == XSS[1]
        status, page = await carol.post(f"/playbooks/{playbook.id}", {**form_of(page), "op": "save"})
        assert status == 400 and re.search(r'data-for="step-2-2-title">[^<]*empty', page)  # the new, empty step
        status, _ = await carol.post(f"/playbooks/{playbook.id}", {**form_of(page), "op": "save",
                                                                   "step-2-2-title": "Tell support"})
        assert status == 303
    saved = await bot.store.get_playbook(playbook.id)
    assert saved.title == playbook.title and saved.stages[0].steps[0].command == f"/echo {XSS[1]}"
    assert len((await bot.store.list_incidents(playbook.team_id, is_admin=True)).items) == incidents_before


async def test_a_draft_survives_a_bot_restart_in_the_middle(start_bot, sandbox):
    """The draft lives in the page, the session in the store: a restart between the editor's buttons
    loses nothing, and the version check still holds."""
    first = await start_bot()
    playbook = await playbook_of(first, sandbox, members=("carol",))
    carol = await BackstageClient.signed_in(first, sandbox, "carol")
    try:
        _, page = await carol.get(f"/playbooks/{playbook.id}")
        _, page = await carol.post(f"/playbooks/{playbook.id}", {**form_of(page), "op": "add-step-2"})
        draft = {**form_of(page), "step-2-2-title": "Written before the restart"}
        await first.stop()
        second = await start_bot()
        again = BackstageClient(second)
        again.http.cookie_jar.update_cookies({c.key: c.value for c in carol.http.cookie_jar})
        again.csrf = carol.csrf
        async with again:
            status, _ = await again.post(f"/playbooks/{playbook.id}", {**draft, "op": "save"})
            assert status == 303
            status, page = await again.post(f"/playbooks/{playbook.id}", {**draft, "op": "save",
                                                                          "title": "Twice"})
            assert status == 409  # the same draft a second time: it was made on the old version
    finally:
        await carol.close()
    saved = await second.store.get_playbook(playbook.id)
    assert outline(saved)[1] == ("Resolution", ["Fix it", "Written before the restart"]) and saved.title == "Outage"
