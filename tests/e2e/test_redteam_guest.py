"""Red team: a guest account (issue 18's timeline add, and who sees a team's public incidents).

A Mattermost guest is a member of the team with the ``team_guest`` role, which grants ``view_team``
only — not ``read_public_channel`` (model/role.go ``MakeDefaultRoles``). So a guest reads only the
channels it was added to: the server refuses it a post of a public channel it is not in
(app/post.go ``GetPostIfAuthorized``: ``SessionHasPermissionToReadChannel``, then
``read_public_channel`` in the team for an open channel). The bot must not lend it its own reach:
no post of such a channel added to a timeline, no public incident it is not in shown.
"""

from __future__ import annotations

import pytest
import yaml

from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import DEMO_SEED, EDIT_TIME_LIMIT, make_playbook
from tests.e2e.test_incidents import add_member, start_incident


def guest_seed() -> dict:
    seed = yaml.safe_load(DEMO_SEED.read_text())
    seed["users"].append({"username": "gina", "roles": "system_guest", "teams": ["acme"]})
    return seed


@pytest.fixture
async def sandbox():
    async with Sandbox(guest_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


async def test_the_sandbox_refuses_a_guest_a_public_channel_it_is_not_in(sandbox):
    post = await sandbox.user("dave").post("off-topic", "status of the payment provider")
    status, _ = await sandbox.user("gina")._request("GET", f"/api/v4/posts/{post['id']}")
    assert status == 403


async def test_a_guest_cannot_add_a_post_of_a_public_channel_it_cannot_read(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    _incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "gina")
    outside = await sandbox.user("dave").post("off-topic", "payment provider contract renewal terms")
    gina = sandbox.user("gina")
    refused = await gina.command(channel["id"], f"/incident timeline add {outside['id']}")
    assert "I cannot add that post" in refused.response["text"], refused.response
    # What she may read (her incident channel's own posts) she may add.
    own = await gina.post(channel["id"], "I see 502s from the EU region")
    added = await gina.command(channel["id"], f"/incident timeline add {own['id']}")
    assert "Added the post" in added.response["text"], added.response


async def test_a_guest_does_not_see_a_public_incident_it_is_not_in(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    _mine, channel = await start_incident(sandbox, bot, name="Guest helps here")
    _other, _ = await start_incident(sandbox, bot, name="Payroll outage")
    await add_member(sandbox, channel["id"], "gina")
    gina = sandbox.user("gina")
    shown = await gina.command(channel["id"], "/incident info")
    assert "Guest helps here" in shown.ephemeral[0], shown.ephemeral
    other = await gina.command(channel["id"], '/incident info "Payroll outage"')
    assert other.ephemeral[0].startswith('No incident called "Payroll outage" that you can see'), other.ephemeral
    report = await gina.command(channel["id"], '/incident report "Payroll outage"')
    assert "I sent you the report" not in " ".join(report.ephemeral), report.ephemeral
