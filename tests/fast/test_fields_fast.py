"""Fields and the retrospective on the fake Mattermost (issue 18, slice "fields"): the refusals a real
server never lets through (so only the bot's own checks stand), forged requests, the
list's page buttons keeping a field filter, and the direct-message paths."""

from __future__ import annotations

from domain.models import DEFAULT_SEVERITY, FieldDef, FieldKind, RetroStatus
from gateway import payloads as p
from gateway import ui

CUSTOMER = FieldDef(id="customer", name="Customer", kind=FieldKind.SELECT, options=("ACME", "Globex"))


async def fielded(fast, **kwargs):
    playbook = await fast.playbook(**kwargs)
    playbook = await fast.store.update_playbook(playbook.model_copy(update={"fields": (DEFAULT_SEVERITY, CUSTOMER)}))
    return await fast.start(playbook=playbook, name=kwargs.get("title", "Checkout errors"))


async def test_a_non_member_is_refused_by_the_bot_itself(fast):
    incident = await fielded(fast)
    card = fast.card_of(incident)
    # carol may read the public channel's card but is not in the channel (a forged click, as far as
    # Mattermost's own check goes: only the bot's rule stands between her and the change).
    reply = await fast.click(fast.people.carol, card, "Severity", option="SEV1")
    assert "Only members of the incident channel" in reply.ephemeral_text
    reply = await fast.click(fast.people.carol, card, "Fields")
    assert "Only members of the incident channel" in reply.ephemeral_text
    # dave is in another team: the incident does not exist for him.
    reply = await fast.click(fast.people.dave, card, "Severity", option="SEV1", team=fast.other)
    assert (await fast.fresh(incident)).field_values == {}
    assert "Incident not found" in reply.ephemeral_text, reply


async def test_a_member_who_left_cannot_submit_the_fields_dialog(fast):
    incident = await fielded(fast)
    channel = fast.channel_of(incident)
    fast.mm.join(channel.id, fast.people.bob.id)
    await fast.click(fast.people.bob, fast.card_of(incident), "Fields")
    dialog = fast.mm.dialogs[-1]
    fast.mm.leave(channel.id, fast.people.bob.id)
    reply = await fast.submit(fast.people.bob, dialog, {"severity": "SEV2", "customer": "ACME"}, channel=channel)
    assert "Only members of the incident channel" in (reply.error or ""), reply
    assert (await fast.fresh(incident)).field_values == {}
    # The commander, still in the channel, may.
    await fast.click(fast.people.alice, fast.card_of(incident), "Fields")
    dialog = fast.mm.dialogs[-1]
    reply = await fast.submit(fast.people.alice, dialog, {"severity": "SEV2", "customer": "ACME"}, channel=channel)
    assert reply.closes, reply
    assert (await fast.fresh(incident)).field_values == {"severity": "SEV2", "customer": "ACME"}


async def test_the_fields_line_fits_the_card_and_hostile_text_stays_text(fast):
    incident = await fielded(fast)
    channel = fast.channel_of(incident)
    reply = await fast.slash(fast.people.alice, channel, "field customer globex")
    assert reply.text == "", reply.text
    notes = FieldDef(id="notes", name="Notes", kind=FieldKind.TEXT)

    def with_notes(current):
        return current.model_copy(update={"fields": (*current.fields, notes)}), []
    await fast.store.mutate_incident(incident.id, with_notes)
    reply = await fast.slash(fast.people.alice, channel, "field notes @channel **bold** ![x](http://e/x.png)")
    assert reply.text == "", reply.text
    await fast.app.incidents.cards.refresh(incident.id)
    text = fast.card_of(await fast.fresh(incident)).props["attachments"][0]["text"]
    line = text.splitlines()[-1]
    assert line.startswith("Customer: Globex · Notes: ")
    assert "@channel" not in line and "![x]" not in line


async def test_list_page_buttons_keep_the_field_filter(fast):
    playbook = await fast.playbook()
    for n in range(17):
        incident = await fast.start(playbook=playbook, name=f"Incident {n:02d}")
        await fast.slash(fast.people.alice, fast.channel_of(incident), f"severity {'SEV1' if n % 2 else 'SEV2'}")
    reply = await fast.slash(fast.people.alice, fast.town, "list severity=SEV2")
    assert "(severity = SEV2)" in reply.text and "1–9 of 9" in reply.text, reply.text
    reply = await fast.slash(fast.people.alice, fast.town, "list ongoing")
    assert "of 17" in reply.text
    # 9 SEV2 fit one page; SEV1 and SEV2 together do not: Next keeps the filter.
    for n in range(17, 25):
        incident = await fast.start(playbook=playbook, name=f"Incident {n:02d}")
        await fast.slash(fast.people.alice, fast.channel_of(incident), "severity SEV2")
    dm_reply = await fast.direct_message(fast.people.alice, "list severity=SEV2")
    assert "1–15 of 17" in dm_reply[0].message, dm_reply[0].message
    following = await fast.click(fast.people.alice, dm_reply[0], "Next ▶")
    assert "16–17 of 17" in following.update["message"] and "(severity = SEV2)" in following.update["message"]


async def test_retro_in_a_direct_message_offers_a_button_and_the_rule_holds_at_the_write(fast):
    incident = await fielded(fast)
    channel = fast.channel_of(incident)
    fast.mm.join(channel.id, fast.people.bob.id)
    await fast.app.incidents.end(incident, fast.people.alice.id)
    answers = await fast.direct_message(fast.people.alice, f"retro ~{channel.name}")
    assert "Click to write the retrospective" in answers[0].message
    opened = await fast.click(fast.people.alice, answers[0], "Write retrospective")
    assert opened.ephemeral_text in ("", None), opened
    dialog = fast.mm.dialogs[-1]
    # Meanwhile bob became the commander: alice's submission is refused inside the write.
    def handover(current):
        return current.model_copy(update={"commander_id": fast.people.bob.id}), []
    await fast.store.mutate_incident(incident.id, handover)
    reply = await fast.submit(fast.people.alice, dialog, {"text": "All good"}, channel=fast.mm.dm_between(
        fast.people.alice.id))
    assert "Only the commander" in (reply.error or ""), reply
    assert (await fast.fresh(incident)).retro_status is RetroStatus.PENDING
    # A system admin may, once in the channel.
    reply = await fast.slash(fast.people.admin, fast.town, f"retro ~{channel.name} none")
    assert "Only members of the incident channel" in reply.text
    fast.mm.join(channel.id, fast.people.admin.id)
    reply = await fast.slash(fast.people.admin, channel, "retro none")
    assert "has no retrospective" in reply.text
    assert (await fast.fresh(incident)).retro_status is RetroStatus.SKIPPED


async def test_a_forged_button_for_another_incident_is_refused(fast):
    incident = await fielded(fast)
    other = await fielded(fast, title="Other outage")
    # A Fields button signed for the first incident's channel, naming the second incident.
    attachment = ui.Attachment(fallback="x", actions=(ui.Button("editfields", "Fields", p.EditFields(
        incident_id=other.id)),)).to_json(fast.ctx.signer, fast.ctx.action_url, incident.channel_id)
    post = fast.mm.post_as(fast.people.alice, fast.channel_of(incident), "forged", props={"attachments": [attachment]})
    reply = await fast.click(fast.people.alice, post, "Fields")
    assert "no longer exists" in reply.ephemeral_text


async def test_a_published_retrospective_longer_than_a_dialog_default_is_never_cut(fast):
    incident = await fielded(fast)
    channel = fast.channel_of(incident)
    await fast.app.incidents.end(incident, fast.people.alice.id)
    reply = await fast.slash(fast.people.alice, channel, "retro")
    assert reply.text == "", reply.text
    long_text = "\n".join(f"Lesson {n}: " + "x" * 60 for n in range(80))  # ≈ 5,800 characters
    assert (await fast.submit(fast.people.alice, fast.mm.dialogs[-1], {"text": long_text}, channel=channel)).closes
    assert (await fast.fresh(incident)).retro_text == long_text
    posted = [post for post in fast.mm.posts_in(channel.id) if post.message.startswith("#### 📝 Retrospective")]
    assert len(posted) == 1 and "Lesson 79" in posted[0].message
    reply = await fast.slash(fast.people.alice, channel, "retro")
    dialog = fast.mm.dialogs[-1].dialog
    assert dialog["elements"][0].get("default", "") == "" and "longer than this dialog can show" in dialog[
        "introduction_text"]
