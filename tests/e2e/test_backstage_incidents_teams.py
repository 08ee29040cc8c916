"""The incident pages with two teams (issue 19): the team picker, and another team's incident (or
list) is a 404 to someone outside that team — exactly like an unknown id."""

from __future__ import annotations

import pytest

from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import EDIT_TIME_LIMIT
from tests.e2e.test_history import quick_incident, store_playbook, two_team_seed

from .backstage import BackstageClient

T0 = 1_700_000_000_000
NOT_FOUND = "There is nothing here, or you may not see it."


@pytest.fixture
async def sandbox():
    async with Sandbox(two_team_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


async def test_another_teams_incident_and_list_are_404_and_the_picker_switches_teams(bot, sandbox):
    acme = await store_playbook(bot, sandbox, title="Acme response")
    globex = await store_playbook(bot, sandbox, title="Globex response", team="globex", members=("alice", "bob"))
    await quick_incident(bot, sandbox, acme, "Acme outage", "bob", at=T0)
    theirs = await quick_incident(bot, sandbox, globex, "Globex outage", "bob", at=T0 + 1)
    globex_id = sandbox.team("globex")["id"]
    acme_id = sandbox.team("acme")["id"]
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as bob:
        status, text = await bob.get("/incidents")
        assert status == 200 and 'id="team"' in text  # two teams shared with the bot: a picker
        assert ("Acme outage" in text) != ("Globex outage" in text)  # one team at a time
        _, text = await bob.get(f"/incidents?team={globex_id}")
        assert "Globex outage" in text and "Acme outage" not in text
        _, text = await bob.get(f"/incidents?team={acme_id}")
        assert "Acme outage" in text and "Globex outage" not in text
        status, _ = await bob.get(f"/incidents/{theirs.id}")
        assert status == 200
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:  # in acme only
        status, text = await carol.get("/incidents")
        assert status == 200 and 'id="team"' not in text and "Acme outage" in text
        status, text = await carol.get(f"/incidents?team={globex_id}")
        assert status == 404 and NOT_FOUND in text
        _, unknown = await carol.get("/incidents/" + "z" * 26)
        for path in (f"/incidents/{theirs.id}", f"/incidents/{theirs.id}/export.csv",
                     f"/incidents/{theirs.id}/report.md"):
            status, text = await carol.get(path)
            assert status == 404 and "Globex outage" not in text, path
        status, text = await carol.post(f"/incidents/{theirs.id}/update", {"text": "hello"})
        assert status == 404
        status, text = await carol.get(f"/incidents/{theirs.id}")
        assert text.replace(theirs.id, "") == unknown.replace("z" * 26, "")  # the same page as for nothing
