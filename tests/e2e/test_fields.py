"""Severity and custom fields as people see them, over the sandbox (issue 18, slice "fields"): the
card's field line and severity menu, the Fields dialog, the ``field`` and ``severity`` commands,
their refusals, ``info``, the list filtered by field value, and the YAML round trip of the fields.
"""

from __future__ import annotations

import asyncio

from domain.models import DEFAULT_SEVERITY, FieldDef, FieldKind
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import add_member, card, card_text, channel_posts, fresh, start_incident
from tests.e2e.test_playbooks import dm_bot, export_file, stored

CUSTOMER = FieldDef(id="customer", name="Customer", kind=FieldKind.SELECT, options=("ACME", "Globex"))
OWNER = FieldDef(id="owner", name="Owner", kind=FieldKind.USER)
DUE = FieldDef(id="due", name="Due date", kind=FieldKind.DATE)
NOTES = FieldDef(id="notes", name="Notes", kind=FieldKind.TEXT)
FIELDS = (DEFAULT_SEVERITY, CUSTOMER, OWNER, DUE, NOTES)


async def fielded_playbook(bot, sandbox, *, title="Incident Response", members=("alice", "bob"), public=True):
    playbook = await make_playbook(bot, sandbox, title=title, members=members, public=public)
    return await bot.store.update_playbook(playbook.model_copy(update={"fields": FIELDS}))


def menu(post, name: str) -> dict:
    for attachment in post["props"].get("attachments", []):
        for action in attachment.get("actions", []):
            if action.get("type") == "select" and action["name"] == name:
                return action
    raise AssertionError(f"no menu {name!r} on the card")


async def test_severity_by_card_menu_command_and_the_card_line(sandbox, bot):
    await fielded_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    severity_menu = menu(card(sandbox, incident), "Severity")
    assert [o["value"] for o in severity_menu["options"]] == ["SEV1", "SEV2", "SEV3", "SEV4"]
    assert "Severity:" not in card_text(card(sandbox, incident))  # nothing set: no line

    result = await alice.select(incident.card_post_id, severity_menu["id"], "SEV2")
    assert result.status == 200, result.error
    await sandbox.wait_for(lambda: "Severity: **SEV2**" in card_text(card(sandbox, incident)))
    assert menu(card(sandbox, incident), "Severity").get("default_option") == "SEV2"
    assert (await fresh(bot, incident)).severity == "SEV2"
    assert any(p["message"] == "@alice set Severity to **SEV2**." for p in channel_posts(sandbox, channel["id"]))

    # The command, in any case; the card line and the timeline follow.
    result = await alice.command(channel["id"], "/incident severity sev1")
    assert result.ephemeral == [], result.ephemeral
    await sandbox.wait_for(lambda: "Severity: **SEV1**" in card_text(card(sandbox, incident)))
    again = await alice.command(channel["id"], "/incident severity SEV1")
    assert "Nothing changed" in again.ephemeral[0]
    shown = await alice.command(channel["id"], "/incident severity")
    assert shown.ephemeral == ["Severity: **SEV1**"]
    bad = await alice.command(channel["id"], "/incident severity SEV9")
    assert '"SEV9" is not a Severity option. Choose one of: SEV1, SEV2, SEV3, SEV4.' in bad.ephemeral[0]
    changes = [e for e in await bot.store.timeline(incident.id) if e.kind.value == "field_changed"]
    assert [(e.details["old"], e.details["new"], e.actor_id) for e in changes] == [
        (None, "SEV2", sandbox.user_id("alice")), ("SEV2", "SEV1", sandbox.user_id("alice"))]
    # A forged menu value (not one of the options) changes nothing.
    forged = await alice.select(incident.card_post_id, severity_menu["id"], "SEV0; DROP")
    assert any("not one of this incident's severities" in t for t in forged.ephemeral), forged
    assert (await fresh(bot, incident)).severity == "SEV1"


async def test_the_fields_dialog_sets_and_clears_every_kind(sandbox, bot):
    await fielded_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    alice = sandbox.user("alice")
    opened = await alice.click(incident.card_post_id, "Fields")
    assert opened.dialog is not None, (opened.ephemeral, opened.error)
    elements = {e["name"]: e for e in opened.dialog["dialog"]["elements"]}
    assert list(elements) == ["severity", "customer", "owner", "due", "notes"]
    assert elements["owner"]["data_source"] == "users" and elements["customer"]["type"] == "select"
    assert elements["due"]["type"] == "text" and elements["due"]["placeholder"] == "YYYY-MM-DD"

    # A bad date keeps the dialog open with the error at its field; nothing is saved.
    outcome = await alice.submit_dialog({"severity": "SEV3", "customer": "ACME", "owner": sandbox.user_id("bob"),
                                         "due": "2026-02-30", "notes": "Payments only"})
    assert not outcome.closed and "YYYY-MM-DD" in outcome.errors["due"], outcome
    assert (await fresh(bot, incident)).field_values == {}
    outcome = await alice.submit_dialog({"severity": "SEV3", "customer": "ACME", "owner": sandbox.user_id("bob"),
                                         "due": "2026-03-31", "notes": "Payments only"})
    assert outcome.closed, outcome
    stored_incident = await fresh(bot, incident)
    assert stored_incident.field_values == {"severity": "SEV3", "customer": "ACME", "owner": sandbox.user_id("bob"),
                                            "due": "2026-03-31", "notes": "Payments only"}
    await sandbox.wait_for(lambda: "Severity: **SEV3** · Customer: ACME · Owner: @bob · Due date: 2026-03-31 · "
                                   "Notes: Payments only" in card_text(card(sandbox, incident)))

    # Opened again, it is prefilled; emptying a field clears it (one event per change).
    reopened = await alice.click(incident.card_post_id, "Fields")
    defaults = {e["name"]: e.get("default") for e in reopened.dialog["dialog"]["elements"]}
    assert defaults["customer"] == "ACME" and defaults["owner"] == sandbox.user_id("bob")
    assert (await alice.submit_dialog({"severity": "SEV3", "customer": "ACME", "owner": sandbox.user_id("bob"),
                                       "due": "", "notes": "Payments only"})).closed
    assert "due" not in (await fresh(bot, incident)).field_values
    kinds = [e.details["field_id"] for e in await bot.store.timeline(incident.id) if e.kind.value == "field_changed"]
    assert kinds == ["severity", "customer", "owner", "due", "notes", "due"]

    # A tampered submission: a select value that is no option, a user who is not in the team.
    await alice.click(incident.card_post_id, "Fields")
    outcome = await alice.submit_dialog({"customer": "Initech"})
    assert not outcome.closed and "Choose one of: ACME, Globex" in outcome.errors["customer"]
    await alice.click(incident.card_post_id, "Fields")
    outcome = await alice.submit_dialog({"owner": "x" * 26})
    assert not outcome.closed and "person in this team" in outcome.errors["owner"]


async def test_field_command_shows_sets_and_explains(sandbox, bot):
    await fielded_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    bob = sandbox.user("bob")
    assert (await bob.command(channel["id"], "/incident field customer acme")).ephemeral == []
    assert (await bob.command(channel["id"], '/incident field "Due date" 2026-04-01')).ephemeral == []
    assert (await bob.command(channel["id"], "/incident field owner @carol")).ephemeral == []
    assert (await bob.command(channel["id"], "/incident field notes  Card   payments  ")).ephemeral == []
    values = (await fresh(bot, incident)).field_values
    assert values == {"customer": "ACME", "due": "2026-04-01", "owner": sandbox.user_id("carol"),
                      "notes": "Card   payments"}
    listing = (await bob.command(channel["id"], "/incident field")).ephemeral[0]
    assert "- Customer (ACME, Globex): **ACME**" in listing and "- Owner: @carol" in listing
    assert "- Severity (SEV1, SEV2, SEV3, SEV4): _not set_" in listing
    info = (await bob.command(channel["id"], "/incident info")).ephemeral[0]
    assert "Customer: **ACME** · Owner: **@carol** · Due date: **2026-04-01**" in info
    # Clearing, and what a wrong word gets.
    assert (await bob.command(channel["id"], "/incident field notes none")).ephemeral == []
    assert "notes" not in (await fresh(bot, incident)).field_values
    unknown = (await bob.command(channel["id"], "/incident field colour red")).ephemeral[0]
    assert 'no field "colour"' in unknown and "Severity, Customer, Owner, Due date, Notes" in unknown
    nobody = (await bob.command(channel["id"], "/incident field owner @nobody")).ephemeral[0]
    assert 'no person called "nobody" in this team' in nobody
    nobot = (await bob.command(channel["id"], "/incident field owner @incident")).ephemeral[0]
    assert 'no person called "incident" in this team' in nobot
    huge = (await bob.command(channel["id"], "/incident field notes " + "x" * 500)).ephemeral[0]
    assert "at most 150 characters" in huge
    control = (await bob.command(channel["id"], "/incident field notes a\u202eb")).ephemeral[0]
    assert "control characters" in control
    missing = (await bob.command(channel["id"], "/incident field customer")).ephemeral[0]
    assert "Say the value" in missing
    outside = (await bob.command("town-square", "/incident field customer ACME")).ephemeral[0]
    assert "not an incident channel" in outside


async def test_who_may_change_fields(sandbox, bot):
    await fielded_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    bob, carol = sandbox.user("bob"), sandbox.user("carol")
    # carol is in the team, not in the channel: Mattermost itself refuses her the slash command there,
    # the card's menu and button need read access to the channel too (a public channel: she may read).
    refused = await carol.select(incident.card_post_id, menu(card(sandbox, incident), "Severity")["id"], "SEV1")
    assert refused.status == 403 and refused.ephemeral == [], refused  # doPostAction: read_channel_content
    assert (await fresh(bot, incident)).field_values == {}
    # A member who left: refused as well, through the card.
    await bob.command(channel["id"], "/incident severity SEV2")
    assert (await fresh(bot, incident)).severity == "SEV2"
    await _remove(sandbox, channel["id"], "bob")
    refused = await bob.select(incident.card_post_id, menu(card(sandbox, incident), "Severity")["id"], "SEV4")
    assert refused.status == 403 and refused.ephemeral == [], refused
    assert (await fresh(bot, incident)).severity == "SEV2"
    # Ended: read-only, like the checklist; the menu is gone from the card.
    alice = sandbox.user("alice")
    await bot.incidents.end(await fresh(bot, incident), sandbox.user_id("alice"))
    ended = await alice.command(channel["id"], "/incident severity SEV1")
    assert "This incident has ended" in ended.ephemeral[0]
    await sandbox.wait_for(lambda: "setseverity" not in str(card(sandbox, incident)["props"]))


async def _remove(sandbox, channel_id, username):
    import aiohttp
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {sandbox.user('alice').token}"}) as http:
        async with http.delete(f"{sandbox.url}/api/v4/channels/{channel_id}/members/"
                               f"{sandbox.user_id(username)}") as response:
            assert response.status == 200, await response.text()


async def test_two_people_set_fields_at_once_and_both_changes_stand(sandbox, bot):
    await fielded_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    results = await asyncio.gather(alice.command(channel["id"], "/incident field customer Globex"),
                                   bob.command(channel["id"], "/incident severity SEV1"))
    assert all(r.ephemeral == [] for r in results), [r.ephemeral for r in results]
    assert (await fresh(bot, incident)).field_values == {"customer": "Globex", "severity": "SEV1"}
    await sandbox.wait_for(lambda: "Severity: **SEV1** · Customer: Globex" in card_text(card(sandbox, incident)))


async def test_the_list_filters_by_severity_and_by_field(sandbox, bot):
    await fielded_playbook(bot, sandbox)
    await fielded_playbook(bot, sandbox, title="Secret", public=False, members=("alice",))
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    _one, c1 = await start_incident(sandbox, bot, name="Payments down", playbook="Incident Response")
    _two, c2 = await start_incident(sandbox, bot, name="Search slow", playbook="Incident Response")
    _hidden, c3 = await start_incident(sandbox, bot, name="Secret breach", playbook="Secret")
    await alice.command(c1["id"], "/incident severity SEV1")
    await alice.command(c1["id"], "/incident field customer ACME")
    await alice.command(c2["id"], "/incident severity SEV3")
    await alice.command(c3["id"], "/incident severity SEV1")

    listed = (await bob.command("town-square", "/incident list severity=sev1")).ephemeral[0]
    assert "(severity = SEV1)" in listed and "Payments down" in listed
    assert "Search slow" not in listed and "Secret breach" not in listed  # bob may not see the private one
    mine = (await alice.command("town-square", "/incident list severity=SEV1")).ephemeral[0]
    assert "Payments down" in mine and "Secret breach" in mine
    by_field = (await bob.command("town-square", "/incident list field:Customer=acme ongoing")).ephemeral[0]
    assert "Payments down" in by_field and "Search slow" not in by_field
    none = (await bob.command("town-square", "/incident list field:customer=Globex")).ephemeral[0]
    assert "No incident you can see matches these filters." in none
    empty = (await bob.command("town-square", "/incident list severity=")).ephemeral[0]
    assert "Give severity a value, e.g. /incident list severity=SEV1." in empty, empty
    hostile = (await bob.command("town-square", "/incident list field:\"a'b\"=1")).ephemeral[0]
    assert "No incident you can see matches these filters." in hostile, hostile
    page = (await bob.command("town-square", "/incident list severity=SEV1 --page 2")).ephemeral[0]
    assert "There is no page 2" in page


async def test_fields_yaml_round_trip_and_errors_with_lines(sandbox, bot):
    playbook = await fielded_playbook(bot, sandbox, title="Round trip")
    retro = playbook.retro.model_copy(update={"template": "## What happened\n", "reminder_interval_ms": 7_200_000})
    await bot.store.update_playbook(playbook.model_copy(update={"retro": retro}))
    _, text = await export_file(sandbox, "alice", "Round trip")
    assert "fields:\n- name: Severity\n  type: severity\n" in text
    assert "- name: Due date\n  id: due\n  type: date\n" in text
    assert "retrospective:\n  template: |\n    ## What happened\n  reminder: 2h\n" in text
    original = await stored(bot, sandbox, "Round trip")
    await bot.store.delete_playbook(original.id)
    replies = await dm_bot(sandbox, "alice", "playbook import", files=[("round-trip.yaml", text.encode())])
    assert replies[0]["message"].startswith("Imported a new playbook **Round trip**"), replies[0]["message"]
    imported = await stored(bot, sandbox, "Round trip")
    assert imported.fields == original.fields == FIELDS and imported.retro == original.retro
    # A file with a bad field is refused at its line; nothing is saved.
    bad = text.replace("  type: date\n", "  type: when\n")
    line = bad.splitlines().index("  type: when") + 1
    replies = await dm_bot(sandbox, "alice", "playbook import", files=[("bad.yaml", bad.encode())])
    assert f'Line {line}, field 4, type: "when" is not a field type' in replies[0]["message"], replies[0]["message"]
    two = text.replace("- name: Customer\n  type: select\n", "- name: Customer\n  type: severity\n")
    replies = await dm_bot(sandbox, "alice", "playbook import", files=[("two.yaml", two.encode())])
    assert "severity field" in replies[0]["message"], replies[0]["message"]
    # An incident started from the imported playbook has its fields.
    incident, _ = await start_incident(sandbox, bot, playbook="Round trip")
    assert incident.fields == FIELDS and incident.retro == retro


async def test_a_replayed_fields_submission_changes_nothing(sandbox, bot):
    from tests.e2e.test_replay_restart import latest_callback, replay

    await fielded_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    await alice.click(incident.card_post_id, "Fields")
    assert (await alice.submit_dialog({"severity": "SEV2", "customer": "ACME"})).closed
    captured = latest_callback(sandbox, "dialog")
    await alice.command(channel["id"], "/incident severity SEV4")
    status, answer = await replay(bot, captured)
    assert status == 401 and "already submitted" in answer["error"]
    assert (await fresh(bot, incident)).severity == "SEV4"
    # A captured severity menu click is refused too (its trigger id was spent).
    await alice.select(incident.card_post_id, menu(card(sandbox, incident), "Severity")["id"], "SEV3")
    click = latest_callback(sandbox, "action")
    await alice.command(channel["id"], "/incident severity SEV1")
    status, _ = await replay(bot, click)
    assert status == 401
    assert (await fresh(bot, incident)).severity == "SEV1"


async def test_importing_over_a_playbook_edits_its_fields_and_running_incidents_keep_theirs(sandbox, bot):
    await fielded_playbook(bot, sandbox, title="Editable")
    incident, _ = await start_incident(sandbox, bot, playbook="Editable")
    _, text = await export_file(sandbox, "alice", "Editable")
    edited = text.replace("  - Globex\n", "  - Globex\n  - Initech\n").replace("- name: Notes\n  type: text\n", "")
    replies = await dm_bot(sandbox, "alice", "playbook import", files=[("editable.yaml", edited.encode())])
    assert "Editable" in replies[0]["message"], replies[0]["message"]
    playbook = await stored(bot, sandbox, "Editable")
    assert [f.id for f in playbook.fields] == ["severity", "customer", "owner", "due"]
    assert playbook.fields[1].options == ("ACME", "Globex", "Initech")
    assert (await fresh(bot, incident)).fields == FIELDS  # its own copy, taken at the start
