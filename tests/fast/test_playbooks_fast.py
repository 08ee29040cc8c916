"""Playbooks on the fake Mattermost: create and edit through their dialogs, who may see them."""

from __future__ import annotations


async def created(fast, title: str = "Checkout outage", template: str = "service-outage"):
    assert (await fast.slash(fast.people.alice, fast.town, f"playbook create {template}")).text == ""
    dialog = fast.mm.dialogs[-1]
    assert dialog.dialog["callback_id"] == "playbookcreate"
    reply = await fast.submit(fast.people.alice, dialog, {"template": template, "title": title,
                                                          "description": "When checkout fails", "channel": "private"})
    return reply


async def test_create_through_the_dialog_stores_the_template_for_its_creator(fast):
    reply = await created(fast)
    assert reply.closes, (reply.errors, reply.error)
    [playbook] = await fast.store.playbooks_for_user(fast.acme.id, "", is_admin=True)
    assert playbook.title == "Checkout outage" and playbook.member_ids == (fast.people.alice.id,)
    assert playbook.create_public_channel is False and len(playbook.stages) >= 1


async def test_a_title_taken_in_the_team_is_an_error_at_the_title(fast):
    assert (await created(fast)).closes
    again = await created(fast)
    assert set(again.errors) == {"title"}
    assert len(await fast.store.playbooks_for_user(fast.acme.id, "", is_admin=True)) == 1


async def test_edit_through_the_dialog_changes_title_and_channel_kind(fast):
    await created(fast)
    await fast.slash(fast.people.alice, fast.town, 'playbook edit "Checkout outage"')
    dialog = fast.mm.dialogs[-1]
    assert dialog.dialog["callback_id"] == "playbookedit"
    reply = await fast.submit(fast.people.alice, dialog, {"title": "Checkout down", "description": "",
                                                          "channel": "public"})
    assert reply.closes, (reply.errors, reply.error)
    [playbook] = await fast.store.playbooks_for_user(fast.acme.id, "", is_admin=True)
    assert playbook.title == "Checkout down" and playbook.create_public_channel is True


async def test_a_playbook_is_invisible_to_team_members_it_is_not_shared_with(fast):
    await created(fast)
    reply = await fast.slash(fast.people.bob, fast.town, "playbook list")
    assert "not a member of any playbook" in reply.text
    shown = await fast.slash(fast.people.bob, fast.town, 'playbook show "Checkout outage"')
    missing = await fast.slash(fast.people.bob, fast.town, 'playbook show "No such playbook"')
    assert shown.text == missing.text.replace("No such playbook", "Checkout outage")


async def test_sharing_with_someone_outside_the_team_is_refused_like_a_missing_user(fast):
    await created(fast)
    reply = await fast.slash(fast.people.alice, fast.town, 'playbook members "Checkout outage" add @dave')
    assert "There is no user @dave in this team" in reply.text
    [playbook] = await fast.store.playbooks_for_user(fast.acme.id, "", is_admin=True)
    assert fast.people.dave.id not in playbook.member_ids


async def test_export_sends_the_yaml_file_by_direct_message(fast):
    await created(fast)
    reply = await fast.slash(fast.people.alice, fast.town, 'playbook export "Checkout outage"')
    assert "YAML file" in reply.text
    [post] = [p for p in fast.mm.dms_to(fast.people.alice) if p.file_ids]
    info, data = fast.mm.files[post.file_ids[0]]
    assert info.extension == "yaml" and b"Checkout outage" in data
