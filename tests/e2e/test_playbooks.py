"""Playbooks from chat, end to end through the sandbox: every subcommand, its refusals, YAML round trips.

The module runs on the demo world plus a second team, ``globex`` (bob, dave and the bot), to show
that playbooks never cross teams.
"""

from __future__ import annotations

import aiohttp
import pytest
import yaml

from domain.models import Playbook
from domain.templates import SERVICE_OUTAGE
from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import DEMO_SEED, EDIT_TIME_LIMIT, make_playbook


@pytest.fixture
async def sandbox():
    seed = yaml.safe_load(DEMO_SEED.read_text())
    seed["teams"].append({"name": "globex", "display_name": "Globex"})
    for user in seed["users"]:
        if user["username"] in ("bob", "dave"):
            user["teams"] = [*user["teams"], "globex"]
        if user["username"] == "incident":
            user["teams"] = [*user["teams"], {"name": "globex", "roles": "team_user team_admin"}]
    seed["users"].append({"username": "erin", "email": "erin@example.com", "teams": ["globex"]})
    seed["channels"].append({"team": "globex", "name": "town-square", "display_name": "Town Square", "type": "O",
                             "members": ["bob", "dave", "erin", "incident"]})
    async with Sandbox(seed, config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


# -- helpers -------------------------------------------------------------------------------------

def acme(sandbox) -> str:
    return sandbox.team("acme")["id"]


async def stored(bot, sandbox, title: str, team: str = "acme") -> Playbook | None:
    playbooks = await bot.store.playbooks_for_user(sandbox.team(team)["id"], "", is_admin=True)
    return next((p for p in playbooks if p.title.lower() == title.lower()), None)


def content(playbook: Playbook) -> tuple:
    """Everything a person defines in a playbook (no ids, versions or times)."""
    return (playbook.title, playbook.description, playbook.create_public_channel, playbook.member_ids,
            tuple((stage.title, tuple((s.title, s.description, s.command, s.assignee_id) for s in stage.steps))
                  for stage in playbook.stages))


def outline(playbook: Playbook) -> list[tuple[str, list[str]]]:
    return [(stage.title, [step.title for step in stage.steps]) for stage in playbook.stages]


async def dm_bot(sandbox, username: str, text: str, files=None) -> list[dict]:
    """Send the bot a direct message; return the bot's answers (waits for the first)."""
    user = sandbox.user(username)
    dm = await user.dm_channel("incident")
    before = len(sandbox.posts(dm))
    await user.post(dm, text, files=files)
    bot_id = sandbox.user_id("incident")
    return await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm)[before:] if p["user_id"] == bot_id])


def bot_texts_since(sandbox, dm: str, mark: int) -> list[str]:
    return [p["message"] for p in sandbox.posts(dm)[mark:] if p["user_id"] == sandbox.user_id("incident")]


async def dm_mark(sandbox, username: str) -> int:
    return len(sandbox.posts(await sandbox.user(username).dm_channel("incident")))


async def download(sandbox, username: str, file_id: str) -> str:
    headers = {"Authorization": f"Bearer {sandbox.token_of(username)}"}
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox.url}/api/v4/files/{file_id}",
                                                          headers=headers) as response:
        assert response.status == 200
        return (await response.read()).decode()


async def create(sandbox, username: str, title: str, template: str = "incident-response", **fields):
    user = sandbox.user(username)
    result = await user.command("town-square", f"/incident playbook create {template}")
    assert result.dialog is not None, result.ephemeral
    return await user.submit_dialog({"template": template, "title": title, "description": None, "channel": None,
                                     **fields})


async def export_file(sandbox, username: str, title: str) -> tuple[dict, str]:
    mark = await dm_mark(sandbox, username)
    result = await sandbox.user(username).command("town-square", f'/incident playbook export "{title}"')
    assert "sent you" in result.ephemeral[0]
    dm = await sandbox.user(username).dm_channel("incident")
    post = next(p for p in sandbox.posts(dm)[mark:] if p.get("file_ids"))
    return post, await download(sandbox, username, post["file_ids"][0])


def last_ephemeral_with_buttons(user, channel: str) -> dict:
    return next(p for p in reversed(user.ephemeral(channel)) if (p.get("props") or {}).get("attachments"))


# -- create, templates, list, show ------------------------------------------------------------

async def test_create_from_template_through_the_dialog(sandbox, bot):
    alice = sandbox.user("alice")
    templates = await alice.command("town-square", "/incident playbook templates")
    for title in ("Blank", "Incident Response", "Security Incident", "Service Outage"):
        assert title in templates.ephemeral[0]

    opened = await alice.command("town-square", '/incident playbook create service-outage "Payments down"')
    elements = {e["name"]: e for e in opened.dialog["dialog"]["elements"]}
    assert elements["template"]["default"] == "service-outage" and elements["title"]["default"] == "Payments down"
    dm = await alice.dm_channel("incident")
    mark = len(sandbox.posts(dm))
    result = await alice.submit_dialog({"template": "service-outage", "title": "Payments down",
                                        "description": None, "channel": None})
    assert result.closed and not result.errors

    playbook = await stored(bot, sandbox, "Payments down")
    assert playbook.member_ids == (sandbox.user_id("alice"),)
    assert playbook.description == SERVICE_OUTAGE.description and playbook.create_public_channel
    assert outline(playbook) == [(s.title, [step.title for step in s.steps]) for s in SERVICE_OUTAGE.stages]
    # The bot may not post ephemeral messages, so the confirmation arrives by direct message.
    texts = await sandbox.wait_for(lambda: bot_texts_since(sandbox, dm, mark))
    assert "from the Service Outage template: 3 stages, 11 steps" in texts[0]

    listed = await alice.command("town-square", "/incident playbook list")
    assert "| Payments down | 3 | 11 | public | 1 |" in listed.ephemeral[0]
    shown = await alice.command("town-square", '/incident playbook show "PAYMENTS DOWN"')
    assert shown.ephemeral[0].startswith("#### Payments down")
    assert "**1.2** Set the channel header" in shown.ephemeral[0] and "`/header" in shown.ephemeral[0]


async def test_titles_are_unique_per_team_ignoring_case(sandbox, bot):
    # (A playbook bob cannot see does not block his title: tests/e2e/test_security_quoting.py.)
    await make_playbook(bot, sandbox, title="Payments", members=("carol", "bob"))
    result = await create(sandbox, "bob", "  PAYMENTS ")
    assert not result.closed
    assert 'A playbook you can use in this team is already titled "Payments"' in result.errors["title"]
    result = await create(sandbox, "bob", "")
    assert "must not be empty" in result.errors["title"]
    assert len(await bot.store.playbooks_for_user(acme(sandbox), "", is_admin=True)) == 1
    # Another team may use the same title.
    bob = sandbox.user("bob")
    opened = await bob.command("globex/town-square", "/incident playbook create")
    assert opened.dialog is not None
    assert (await bob.submit_dialog({"template": "blank", "title": "Payments", "channel": "private"})).closed
    globex_copy = await stored(bot, sandbox, "Payments", team="globex")
    assert globex_copy.create_public_channel is False and outline(globex_copy) == [("Default Stage", [])]


async def test_non_members_get_not_found_for_every_subcommand(sandbox, bot):
    await make_playbook(bot, sandbox, title="Secret plan", members=("carol",))
    bob = sandbox.user("bob")
    for verb in ("show", "edit", "delete", "export", "members"):
        result = await bob.command("town-square", f'/incident playbook {verb} "Secret plan"')
        assert result.dialog is None
        assert result.ephemeral[0].startswith('No playbook titled "Secret plan" that you can use.'), verb
    listed = await bob.command("town-square", "/incident playbook list")
    assert "not a member of any playbook" in listed.ephemeral[0]
    # A system admin sees every playbook of the team.
    admin = await sandbox.user("alice").command("town-square", '/incident playbook show "secret PLAN"')
    assert admin.ephemeral[0].startswith("#### Secret plan")


async def test_other_teams_never_see_a_playbook(sandbox, bot):
    await make_playbook(bot, sandbox, title="Acme only", members=("bob",))
    bob = sandbox.user("bob")
    assert "Acme only" in (await bob.command("town-square", "/incident playbook list")).ephemeral[0]
    in_globex = await bob.command("globex/town-square", "/incident playbook list")
    assert "Acme only" not in in_globex.ephemeral[0]
    shown = await bob.command("globex/town-square", '/incident playbook show "Acme only"')
    assert shown.ephemeral[0].startswith('No playbook titled "Acme only"')
    # Users of the other team cannot be added, even by name.
    refused = await bob.command("town-square", '/incident playbook members "Acme only" add @erin')
    assert "There is no user @erin in this team" in refused.ephemeral[0]  # like a missing user (L1)


async def test_members_list_add_remove_and_last_member(sandbox, bot):
    await make_playbook(bot, sandbox, title="Shared", members=("bob",))
    bob, carol = sandbox.user("bob"), sandbox.user("carol")
    shown = await bob.command("town-square", "/incident playbook members Shared")
    assert "Members of **Shared** (1): @bob." in shown.ephemeral[0]
    added = await bob.command("town-square", "/incident playbook members Shared add @carol @dave")
    assert "Members of **Shared** (3): @bob, @carol, @dave." in added.ephemeral[0]
    assert (await carol.command("town-square", "/incident playbook show shared")).ephemeral[0].startswith("#### Shared")
    # The other word order works too.
    removed = await carol.command("town-square", "/incident playbook members remove @bob @dave Shared")
    assert "(1): @carol." in removed.ephemeral[0]
    gone = await bob.command("town-square", "/incident playbook show Shared")
    assert gone.ephemeral[0].startswith("No playbook titled")
    last = await carol.command("town-square", "/incident playbook members Shared remove @carol")
    assert "needs at least one member" in last.ephemeral[0]
    unknown = await carol.command("town-square", "/incident playbook members Shared add @nobody")
    assert "There is no user @nobody" in unknown.ephemeral[0]
    stranger = await carol.command("town-square", "/incident playbook members Shared remove @dave")
    assert "@dave is not a member of this playbook" in stranger.ephemeral[0]
    no_one = await carol.command("town-square", "/incident playbook members Shared add")
    assert "Say whom to add" in no_one.ephemeral[0]
    assert (await stored(bot, sandbox, "Shared")).member_ids == (sandbox.user_id("carol"),)


# -- editing -----------------------------------------------------------------------------------

EDITED_OUTLINE = """\
- title: Triage
  steps:
    - Acknowledge the alert
    - title: Page the on-call
      description: Use the escalation policy.
      command: /echo paging
      assignee: carol
- title: Fixing
  steps:
    - Apply the fix
    - Assess customer impact
"""


async def test_edit_dialog_changes_title_description_visibility_stages_and_steps(sandbox, bot):
    original = await make_playbook(bot, sandbox, title="Incident Response", members=("bob", "carol"))
    bob = sandbox.user("bob")
    opened = await bob.command("town-square", "/incident playbook edit incident response")
    elements = {e["name"]: e for e in opened.dialog["dialog"]["elements"]}
    assert elements["title"]["default"] == "Incident Response"
    assert elements["channel"]["type"] == "radio" and elements["channel"]["default"] == "public"
    assert elements["stages"]["default"].startswith("- title: Triage\n  steps:\n  - Acknowledge the alert\n")
    assert yaml.safe_load(elements["stages"]["default"])[2]["title"] == "Resolution"

    result = await bob.submit_dialog({"title": "Major incident", "description": "For **big** ones.",
                                      "channel": "private", "stages": EDITED_OUTLINE})
    assert result.closed, result
    edited = await stored(bot, sandbox, "Major incident")
    assert edited.id == original.id and edited.version == original.version + 1
    assert edited.description == "For **big** ones." and edited.create_public_channel is False
    assert outline(edited) == [("Triage", ["Acknowledge the alert", "Page the on-call"]),
                               ("Fixing", ["Apply the fix", "Assess customer impact"])]
    step = edited.stages[0].steps[1]
    assert (step.description, step.command, step.assignee_id) == ("Use the escalation policy.", "/echo paging",
                                                                  sandbox.user_id("carol"))
    # The outline shows default assignees by username when edited again.
    again = await bob.command("town-square", '/incident playbook edit "Major incident"')
    assert "assignee: carol" in {e["name"]: e for e in again.dialog["dialog"]["elements"]}["stages"]["default"]


async def test_edit_dialog_errors_name_the_line_and_save_nothing(sandbox, bot):
    original = await make_playbook(bot, sandbox, title="Careful", members=("bob",))
    bob = sandbox.user("bob")
    await bob.command("town-square", "/incident playbook edit Careful")
    bad = "- title: A\n  steps:\n    - title: ok\n      assignee: zed\n    - title: ''\n"
    result = await bob.submit_dialog({"title": "Careful", "description": "", "channel": "public", "stages": bad})
    assert not result.closed
    assert "Line 5, stage 1, step 2, title: The step title must not be empty." in result.errors["stages"]
    result = await bob.submit_dialog({"title": "Careful", "description": "", "channel": "public",
                                      "stages": "- title: A\n  steps:\n    - title: ok\n      assignee: zed\n"})
    assert "Line 4, stage 1, step 1, assignee: there is no active user @zed." in result.errors["stages"]
    result = await bob.submit_dialog({"title": "Careful", "description": "", "channel": "public",
                                      "stages": "- title: [unclosed\n"})
    assert "Line 2: not valid YAML" in result.errors["stages"]
    assert content(await stored(bot, sandbox, "Careful")) == content(original)


async def test_edit_by_subcommands_covers_every_step_and_stage_change(sandbox, bot):
    await make_playbook(bot, sandbox, title="Ops", members=("bob",),
                        stages=(("Triage", ("Ack", "Assess")), ("Fix", ("Patch",))))
    bob = sandbox.user("bob")

    async def edit(text: str) -> str:
        return (await bob.command("town-square", f'/incident playbook edit "Ops" {text}')).ephemeral[0]

    assert 'added step 2.2 "Verify the fix"' in await edit("step add 2 Verify the fix")
    assert 'renamed step 1.1 to "Acknowledge the page"' in await edit("step rename 1.1 Acknowledge the page")
    assert "set the description of step 1.2" in await edit("step describe 1.2 Who is affected?")
    assert "step 1.1 now runs `/echo ack`" in await edit("step command 1.1 /echo ack")
    assert "set the default assignee of step 2.1" in await edit("step assign 2.1 @dave")
    assert 'moved step "Verify the fix" to 2.1' in await edit("step move 2.2 1")
    assert 'moved step "Assess" to 2.3' in await edit("step move 1.2 2.3")
    assert 'added stage 3 "Learn"' in await edit("stage add Learn")
    assert 'renamed stage 3 to "Review"' in await edit("stage rename 3 Review")
    assert "moved stage 3 to position 1" in await edit("stage move 3 1")
    ops = await stored(bot, sandbox, "Ops")
    assert outline(ops) == [("Review", []), ("Triage", ["Acknowledge the page"]),
                            ("Fix", ["Verify the fix", "Patch", "Assess"])]
    assess = ops.stages[2].steps[2]
    patch = ops.stages[2].steps[1]
    assert assess.description == "Who is affected?" and patch.assignee_id == sandbox.user_id("dave")
    assert ops.stages[1].steps[0].command == "/echo ack"
    assert 'removed stage 1 "Review"' in await edit("stage remove 1")
    assert 'removed step 2.3 "Assess"' in await edit("step remove 2.3")
    assert "cleared the default assignee of step 2.2" in await edit("step assign 2.2 none")
    assert "no longer has a command" in await edit("step command 1.1 none")
    # Refusals say what to type instead.
    assert "Step 1.5 does not exist: stage 1 has 1 step." in await edit("step remove 1.5")
    assert "Stage 9 does not exist: type a number from 1 to 2." in await edit("stage rename 9 X")
    assert "must be a slash command" in await edit("step command 1.1 echo hi")
    final = await stored(bot, sandbox, "Ops")
    assert outline(final) == [("Triage", ["Acknowledge the page"]), ("Fix", ["Verify the fix", "Patch"])]
    assert final.stages[1].steps[1].assignee_id is None and final.stages[0].steps[0].command == ""
    await make_playbook(bot, sandbox, title="Solo", members=("bob",), stages=(("Only", ()),))
    solo = await bob.command("town-square", "/incident playbook edit Solo stage remove 1")
    assert "A playbook needs at least one stage" in solo.ephemeral[0]


async def test_a_stale_edit_dialog_is_refused(sandbox, bot):
    await make_playbook(bot, sandbox, title="Busy", members=("bob", "carol"))
    bob, carol = sandbox.user("bob"), sandbox.user("carol")
    await bob.command("town-square", "/incident playbook edit Busy")
    await carol.command("town-square", "/incident playbook edit Busy step add 1 Carol's step")
    result = await bob.submit_dialog({"title": "Busy", "description": "", "channel": "public",
                                      "stages": "- title: Only bob\n"})
    assert not result.closed and "Someone else changed this playbook" in result.error
    assert outline(await stored(bot, sandbox, "Busy"))[0][1][-1] == "Carol's step"


# -- deleting; incidents keep their copy ----------------------------------------------------------

async def test_edit_and_delete_never_change_incidents_started_from_the_playbook(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, title="Response", members=("alice",))
    alice = sandbox.user("alice")
    started = await alice.command("town-square", "/incident start")
    assert started.dialog is not None
    assert (await alice.submit_dialog({"playbook": playbook.id, "name": "Database down", "description": None})).closed
    incident = (await bot.store.list_incidents(acme(sandbox), is_admin=True)).items[0]
    before = [(s.title, [step.title for step in s.steps]) for s in incident.stages]

    await alice.command("town-square", "/incident playbook edit Response stage remove 3")
    await alice.command("town-square", "/incident playbook edit Response step rename 1.1 Renamed")
    # Deleting asks first; cancelling keeps the playbook.
    asked = await alice.command("town-square", "/incident playbook delete response")
    assert "Incidents already started from it keep their checklists" in asked.dialog["dialog"]["introduction_text"]
    await alice.cancel_dialog()
    assert await stored(bot, sandbox, "Response") is not None
    await alice.command("town-square", "/incident playbook delete response")
    assert (await alice.submit_dialog({})).closed
    assert await bot.store.get_playbook(playbook.id) is None
    after = await bot.store.get_incident(incident.id)
    assert [(s.title, [step.title for step in s.steps]) for s in after.stages] == before
    assert after.playbook_title == "Response"
    gone = await alice.command("town-square", "/incident playbook show Response")
    assert gone.ephemeral[0].startswith("No playbook titled")


# -- export / import -------------------------------------------------------------------------------

async def test_export_then_import_gives_an_equal_playbook(sandbox, bot):
    original = await make_playbook(bot, sandbox, title="Round trip", members=("alice", "bob"), public=False,
                                   commands={"Page the on-call": "/echo page"})
    alice = sandbox.user("alice")
    await alice.command("town-square", '/incident playbook edit "Round trip" step assign 2.1 @bob')
    await alice.command("town-square", '/incident playbook edit "Round trip" step describe 1.1 Line *one*')
    original = await stored(bot, sandbox, "Round trip")

    post, text = await export_file(sandbox, "alice", "Round trip")
    info = sandbox.world.files[post["file_ids"][0]][0]
    assert info["name"] == "round-trip.yaml"
    assert "title: Round trip\n" in text and "public: false\n" in text and "assignee: bob" in text

    await bot.store.delete_playbook(original.id)
    replies = await dm_bot(sandbox, "alice", "playbook import", files=[("round-trip.yaml", text.encode())])
    assert replies[0]["message"].startswith("Imported a new playbook **Round trip**: 3 stages, 7 steps, 2 members.")
    imported = await stored(bot, sandbox, "Round trip")
    assert imported.id != original.id and content(imported) == content(original)

    # Sending the same file again (no words needed) updates it in place: still equal. It is answered
    # once (by the import, not also by help): a later "help" is the only other answer.
    mark = await dm_mark(sandbox, "alice")
    replies = await dm_bot(sandbox, "alice", "", files=[("round-trip.yml", text.encode())])
    assert replies[0]["message"].startswith("Updated the playbook **Round trip**")
    await sandbox.user("alice").post(await alice.dm_channel("incident"), "help")
    dm = await alice.dm_channel("incident")
    answers = await sandbox.wait_for(lambda: (texts := bot_texts_since(sandbox, dm, mark)) and
                                     any("#### Command Center" in t for t in texts) and texts)
    assert len(answers) == 2
    again = await stored(bot, sandbox, "Round trip")
    assert again.id == imported.id and content(again) == content(original)


async def test_import_dialog_accepts_pasted_yaml_and_refuses_bad_yaml_without_saving(sandbox, bot):
    bob = sandbox.user("bob")
    opened = await bob.command("town-square", "/incident playbook import")
    assert opened.dialog["dialog"]["elements"][0]["name"] == "yaml"
    bad = ("title: Pasted\nmembers: [bob, ghost]\nstages:\n  - title: One\n    steps:\n"
           "      - title: Run it\n        command: no-slash\n")
    result = await bob.submit_dialog({"yaml": bad})
    assert not result.closed
    assert "Line 7, stage 1, step 1, command: The step command must be a slash command" in result.errors["yaml"]
    result = await bob.submit_dialog({"yaml": bad.replace("no-slash", "/echo ok")})
    assert "Line 2, members, entry 2: there is no active user @ghost." in result.errors["yaml"]
    for malformed in ("title: [", "- just\n- a list\n", "title: x\nstages: *a\n", "\tbad: indent", ":", "{" * 50):
        result = await bob.submit_dialog({"yaml": malformed})
        assert not result.closed and result.errors["yaml"].startswith("The playbook YAML has"), malformed
    assert await bot.store.playbooks_for_user(acme(sandbox), "", is_admin=True) == []

    mark = await dm_mark(sandbox, "bob")
    assert (await bob.submit_dialog({"yaml": bad.replace("no-slash", "/echo ok").replace(", ghost", "")})).closed
    pasted = await stored(bot, sandbox, "Pasted")
    assert pasted.member_ids == (sandbox.user_id("bob"),) and pasted.stages[0].steps[0].command == "/echo ok"
    dm = await bob.dm_channel("incident")
    texts = await sandbox.wait_for(lambda: bot_texts_since(sandbox, dm, mark))
    assert texts[0].startswith("Imported a new playbook **Pasted**")


async def test_import_refusals(sandbox, bot):
    await make_playbook(bot, sandbox, title="Taken", members=("carol",))
    replies = await dm_bot(sandbox, "bob", "playbook import --team acme", files=[("notes.txt", b"title: x")])
    assert "Attach the playbook as a .yaml" in replies[0]["message"]
    replies = await dm_bot(sandbox, "bob", "playbook import --team acme", files=[("bad.yaml", b"\xff\xfe\x00")])
    assert "not UTF-8" in replies[0]["message"]
    replies = await dm_bot(sandbox, "bob", "playbook import --team acme")
    assert "Attach the playbook's .yaml file" in replies[0]["message"]
    replies = await dm_bot(sandbox, "bob", "playbook import --team acme", files=[
        ("big.yaml", b"title: Big\nstages:\n" + b"".join(b"  - title: S%d\n" % i for i in range(30)))])
    assert "Line 3, stages: at most 20 stages are allowed; there are 30." in replies[0]["message"]
    assert [p.title for p in await bot.store.playbooks_for_user(acme(sandbox), "", is_admin=True)] == ["Taken"]


# -- direct messages, buttons, teams ---------------------------------------------------------------

async def test_direct_messages_pick_the_team_and_open_dialogs_from_buttons(sandbox, bot):
    # alice shares one team with the bot: no --team needed; create works without a dialog.
    replies = await dm_bot(sandbox, "alice", 'playbook create security-incident "Leaked key"')
    assert replies[0]["message"].startswith("Created playbook **Leaked key** from the Security Incident template")
    leaked = await stored(bot, sandbox, "Leaked key")
    assert leaked.create_public_channel is False
    # bob shares two teams: he must say which.
    replies = await dm_bot(sandbox, "bob", "playbook list")
    assert "say which one with `--team NAME` (acme, globex)" in replies[0]["message"]
    await make_playbook(bot, sandbox, title="Bob's", members=("bob",))
    replies = await dm_bot(sandbox, "bob", "playbook list --team acme")
    assert "| Bob's |" in replies[0]["message"].replace("\\'", "'")
    replies = await dm_bot(sandbox, "bob", "playbook list --team nowhere")
    assert 'We share no team called "nowhere"' in replies[0]["message"]
    # Dialogs need a trigger id, which a direct message does not have: a button opens it.
    replies = await dm_bot(sandbox, "alice", "playbook edit leaked key")
    clicked = await sandbox.user("alice").click(replies[0]["id"], "playbookedit")
    assert clicked.dialog["dialog"]["callback_id"] == "playbookedit"
    # Export by DM answers with the file itself.
    replies = await dm_bot(sandbox, "alice", "playbook export leaked key")
    assert replies[0]["file_ids"] and "Leaked key" in replies[0]["message"]


async def test_show_buttons_edit_export_delete(sandbox, bot):
    await make_playbook(bot, sandbox, title="Buttons", members=("dave",))
    dave = sandbox.user("dave")
    await dave.command("town-square", "/incident playbook show Buttons")
    card = last_ephemeral_with_buttons(dave, "town-square")
    assert (await dave.click(card["id"], "Edit")).dialog["dialog"]["callback_id"] == "playbookedit"
    exported = await dave.click(card["id"], "Export YAML")
    assert "as a YAML file in [a direct message]" in exported.ephemeral[0]
    deleting = await dave.click(card["id"], "Delete")
    assert deleting.dialog["dialog"]["callback_id"] == "playbookdelete"
    assert (await dave.submit_dialog({})).closed
    assert await stored(bot, sandbox, "Buttons") is None
    # A stale button on a deleted playbook answers "not found".
    stale = await dave.click(card["id"], "Edit")
    assert stale.ephemeral[0].startswith("Playbook not found")


async def test_usage_and_unknown_playbook_command(sandbox, bot):
    alice = sandbox.user("alice")
    usage = await alice.command("town-square", "/incident playbook")
    assert "#### Playbook commands" in usage.ephemeral[0] and "docs/playbooks.md" in usage.ephemeral[0]
    unknown = await alice.command("town-square", "/incident playbook frobnicate")
    assert unknown.ephemeral[0].startswith("`frobnicate` is not a playbook command.")
    missing = await alice.command("town-square", "/incident playbook show")
    assert "Usage: `/incident playbook show <title>`" in missing.ephemeral[0]
