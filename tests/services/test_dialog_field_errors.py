"""Dialog handlers show a refusal at the field its DomainError names (``field=``), never by reading its words."""

from __future__ import annotations

from domain import limits
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import all_incidents


async def test_edit_dialog_errors_go_to_the_field_they_are_about(sandbox, bot):
    await make_playbook(bot, sandbox, title="Careful", members=("bob",))
    await make_playbook(bot, sandbox, title="Taken", members=("bob",))
    bob = sandbox.user("bob")
    await bob.command("town-square", "/incident playbook edit Careful")
    fine = "- title: A\n  steps:\n    - ok\n"

    async def submit(**values):
        return await bob.submit_dialog({"title": "Careful", "description": "", "channel": "public", "stages": fine,
                                        **values})

    # Only the web client enforces a textarea's max_length: a longer description reaches the bot.
    result = await submit(description="x" * (limits.PLAYBOOK_DESCRIPTION_MAX + 1))
    assert not result.closed and "playbook description may be at most" in result.errors["description"]
    assert set(result.errors) == {"description"}
    # A step whose command runs a step: the message names the stage and step, the field is "stages".
    result = await submit(stages="- title: A\n  steps:\n    - title: loop\n      command: /incident run 1.1\n")
    assert not result.closed and set(result.errors) == {"stages"}
    assert "Stage 1, step 1: a step's command cannot run a step" in result.errors["stages"]
    result = await submit(title="TAKEN")
    assert not result.closed and set(result.errors) == {"title"} and "already titled" in result.errors["title"]
    result = await submit(title="  ")
    assert not result.closed and result.errors == {"title": "The playbook title must not be empty."}
    assert (await submit()).closed


async def test_start_dialog_errors_go_to_the_name_or_the_description(sandbox, bot):
    await make_playbook(bot, sandbox)
    alice = sandbox.user("alice")
    result = await alice.command("town-square", "/incident start")
    playbook_id = result.dialog["dialog"]["elements"][0]["options"][0]["value"]
    outcome = await alice.submit_dialog({"playbook": playbook_id, "name": "Fine name",
                                         "description": "d" * (limits.INCIDENT_DESCRIPTION_MAX + 1)})
    assert not outcome.closed and set(outcome.errors) == {"description"}
    assert "incident description may be at most" in outcome.errors["description"]
    assert await all_incidents(bot) == []
