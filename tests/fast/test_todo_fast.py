"""``/incident todo`` on the fake Mattermost (issue 17): my open steps and my overdue updates across
the incidents I can see, grouped per incident with links, the empty state and the cap."""

from __future__ import annotations

from domain import checklist
from domain.models import StepRef
from services.follow import TODO_STEPS_SHOWN


async def _assign(fast, incident, ref, user):
    await fast.store.mutate_incident(incident.id, lambda i: checklist.assign_step(
        i, StepRef(*ref), user.id, fast.people.alice.id, fast.mm.now_ms, assignee_in_channel=True))


async def test_nothing_to_do_says_so(fast):
    await fast.start()
    reply = await fast.slash(fast.people.carol, fast.town, "todo")
    assert reply.text.startswith("Nothing to do") and "/incident assign" in reply.text


async def test_my_open_steps_are_listed_per_incident_with_its_channel(fast):
    first = await fast.start(name="Checkout errors")
    second = await fast.start(name="Search slow")
    await _assign(fast, first, (0, 1), fast.people.bob)
    await _assign(fast, second, (1, 0), fast.people.bob)
    await _assign(fast, second, (0, 0), fast.people.carol)
    text = (await fast.slash(fast.people.bob, fast.town, "todo")).text
    assert text.splitlines()[0] == "#### Your to-do · 2 open steps"
    assert f"**Search slow** · ~{fast.channel_of(second).name}" in text
    assert f"**Checkout errors** · ~{fast.channel_of(first).name}" in text
    assert text.index("Search slow") < text.index("Checkout errors")  # newest first
    assert "- [ ] 2.1 Fix it" in text and "- [ ] 1.2 Assess" in text and "Acknowledge" not in text


async def test_a_checked_step_leaves_the_list(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    await fast.slash(fast.people.alice, channel, "assign 1.1 @alice")
    assert "1.1 Acknowledge" in (await fast.slash(fast.people.alice, channel, "todo")).text
    await fast.slash(fast.people.alice, channel, "check 1.1")
    assert (await fast.slash(fast.people.alice, channel, "todo")).text.startswith("Nothing to do")


async def test_an_overdue_update_i_command_is_listed(fast):
    incident = await fast.start()
    due = fast.mm.now_ms - 60_000

    def overdue(current):
        return current.model_copy(update={"next_update_due_at": due}), []
    await fast.store.mutate_incident(incident.id, overdue)
    text = (await fast.slash(fast.people.alice, fast.town, "todo")).text
    assert "1 overdue update" in text.splitlines()[0]
    assert "Status update overdue since" in text and "/incident update" in text
    # Not the commander: nothing is owed.
    assert (await fast.slash(fast.people.bob, fast.town, "todo")).text.startswith("Nothing to do")


async def test_a_private_incident_whose_channel_i_left_is_not_shown(fast):
    incident = await fast.start(name="Secret trouble", playbook=await fast.playbook("Secret", public=False))
    fast.mm.join(incident.channel_id, fast.people.bob.id)
    await _assign(fast, incident, (0, 0), fast.people.bob)
    assert "Secret trouble" in (await fast.slash(fast.people.bob, fast.town, "todo")).text
    fast.mm.leave(incident.channel_id, fast.people.bob.id)
    assert (await fast.slash(fast.people.bob, fast.town, "todo")).text.startswith("Nothing to do")


async def test_a_long_list_is_capped_with_and_n_more(fast):
    playbook = await fast.playbook()
    for n in range(10):
        incident = await fast.start(name=f"Incident {n:02d}", playbook=playbook)
        for ref in ((0, 0), (0, 1), (1, 0)):
            await _assign(fast, incident, ref, fast.people.bob)
    text = (await fast.slash(fast.people.bob, fast.town, "todo")).text
    assert text.splitlines()[0] == "#### Your to-do · 30 open steps"
    assert sum(line.startswith("- [ ]") for line in text.splitlines()) == TODO_STEPS_SHOWN
    assert f"…and {30 - TODO_STEPS_SHOWN} more steps." in text
    assert len(text) < 16_000


async def test_todo_takes_no_words(fast):
    reply = await fast.slash(fast.people.bob, fast.town, "todo everything")
    assert "Too many words" in reply.text and "Usage:" in reply.text


async def test_todo_in_a_direct_message_looks_at_every_shared_team(fast):
    incident = await fast.start()
    await _assign(fast, incident, (0, 0), fast.people.bob)
    answers = await fast.direct_message(fast.people.bob, "todo")
    assert answers and "1.1 Acknowledge" in answers[-1].message
    assert "**Checkout errors**" in answers[-1].message


async def test_someone_outside_the_team_is_refused(fast):
    lobby = next(c for c in fast.mm.channels.values() if c.name == "lobby")
    reply = await fast.slash(fast.people.dave, lobby, "todo", team=fast.acme)
    assert "not a member of this team" in reply.text
