"""``/incident info`` and ``help`` on the fake Mattermost: finding an incident from anywhere (the path
follow and unfollow share), hiding private ones, and the new commands in the help."""

from __future__ import annotations


async def test_info_from_another_channel_by_channel_name(fast):
    incident = await fast.start()
    reply = await fast.slash(fast.people.carol, fast.town, f"info ~{fast.channel_of(incident).name}")
    assert reply.text.startswith("#### 🚨 Checkout errors")


async def test_info_of_a_private_incident_is_not_found_for_a_non_member(fast):
    await fast.start(playbook=await fast.playbook("Secret", public=False))
    hidden = await fast.slash(fast.people.carol, fast.town, "info Checkout errors")
    assert "#### " not in hidden.text
    missing = await fast.slash(fast.people.carol, fast.town, "info No such thing")
    assert hidden.text.replace("Checkout errors", "X") == missing.text.replace("No such thing", "X")


async def test_help_lists_follow_unfollow_and_todo(fast):
    text = (await fast.slash(fast.people.bob, fast.town, "help")).text
    for word in ("follow [incident]", "unfollow [incident]", "todo"):
        assert f"/incident {word}" in text


async def test_help_for_todo_shows_its_usage(fast):
    text = (await fast.slash(fast.people.bob, fast.town, "help todo")).text
    assert "/incident todo" in text and "open steps" in text
