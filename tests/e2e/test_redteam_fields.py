"""Red team: the Fields dialog when two people change fields at once (issue 18).

A dialog is a form prefilled with the values of the moment it was opened; the webapp submits every
element, changed or not. A change someone else made while the form was open must stand: only what
the submitter changed in the form is applied.
"""

from __future__ import annotations

from tests.e2e.test_fields import fielded_playbook
from tests.e2e.test_incidents import add_member, fresh, start_incident


def _prefilled(opened) -> dict[str, str]:
    return {e["name"]: e.get("default") or "" for e in opened.dialog["dialog"]["elements"]}


async def test_a_form_opened_before_someone_elses_change_does_not_undo_it(sandbox, bot):
    await fielded_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    assert (await alice.command(channel["id"], "/incident field notes Payments only")).ephemeral == []

    opened = await alice.click(incident.card_post_id, "Fields")
    assert opened.dialog is not None, opened
    form = _prefilled(opened)
    assert form["severity"] == "" and form["notes"] == "Payments only"

    # While alice's form is open, bob raises the severity and rewrites the notes.
    assert (await bob.command(channel["id"], "/incident severity SEV1")).ephemeral == []
    assert (await bob.command(channel["id"], "/incident field notes Payments and refunds")).ephemeral == []

    # Alice changes only the customer; the rest of her form is as it was prefilled.
    outcome = await alice.submit_dialog({**form, "customer": "Globex"})
    assert outcome.closed, outcome
    values = (await fresh(bot, incident)).field_values
    assert values == {"severity": "SEV1", "notes": "Payments and refunds", "customer": "Globex"}, values
    changes = [(e.details["field_id"], e.actor_id) for e in await bot.store.timeline(incident.id)
               if e.kind.value == "field_changed"]
    assert changes[-1] == ("customer", sandbox.user_id("alice")), changes


async def test_what_the_submitter_did_change_still_wins_and_clearing_still_clears(sandbox, bot):
    await fielded_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    assert (await alice.command(channel["id"], "/incident field notes Payments only")).ephemeral == []
    opened = await alice.click(incident.card_post_id, "Fields")
    form = _prefilled(opened)
    assert (await bob.command(channel["id"], "/incident severity SEV4")).ephemeral == []
    # Alice deliberately sets the severity and empties the notes: both are her changes.
    outcome = await alice.submit_dialog({**form, "severity": "SEV2", "notes": ""})
    assert outcome.closed, outcome
    assert (await fresh(bot, incident)).field_values == {"severity": "SEV2"}
