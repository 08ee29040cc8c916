"""``/incident stats`` end to end (issue 18): count, median and p90 time to resolve, per playbook
and by severity, over the incidents the user may see — a private incident is never counted for a
non-member (nor for a member who left), another team's never; the period; bad input; a DM; and
the store's summaries equal the recomputation from the events after real commands.

The world is test_history's: two teams, public and private playbooks; incidents are stored the
quick way (channel made in the sandbox as the bot would) at times relative to the bot's clock.
"""

from __future__ import annotations

import pytest

from domain import checklist
from domain import incidents as ops
from domain.metrics import summarize
from domain.models import EventKind, TimelineEvent
from sandbox import Sandbox, SandboxConfig
from tests.contract.openapi_contract import assert_exchanges_valid
from tests.e2e.conftest import EDIT_TIME_LIMIT
from tests.e2e.test_history import join, leave, quick_incident, store_playbook, two_team_seed
from tests.e2e.test_playbooks import dm_bot

MINUTE = 60_000
DAY = 86_400_000


@pytest.fixture
async def sandbox():
    """Two teams (test_history's world); every REST exchange is checked against Mattermost's OpenAPI."""
    async with Sandbox(two_team_seed(), config=SandboxConfig(record=True, post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb
        exchanges = list(sb.recording)
    assert_exchanges_valid(exchanges)


def table(text: str) -> dict[tuple[str, str], tuple[int, int, str, str]]:
    """The stats table: (playbook, severity) → (incidents, resolved, median, p90); a severity row
    under a playbook row carries the playbook's label."""
    rows: dict[tuple[str, str], tuple[int, int, str, str]] = {}
    label = ""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[2].isdigit():
            continue
        label = cells[0] or label
        rows[(label, cells[1])] = (int(cells[2]), int(cells[3]), cells[4], cells[5])
    return rows


async def stats(sandbox, username: str, arguments: str = "", channel: str = "town-square") -> str:
    result = await sandbox.user(username).command(channel, f"/incident stats {arguments}".strip())
    assert result.status == 200, result.error
    assert len(result.ephemeral) == 1, result.ephemeral
    return result.ephemeral[0]


async def ended(bot, incident, minutes: int, *, severity: str | None = None):
    """End ``incident`` ``minutes`` after its start (and set its severity, the fields slice's job)."""
    def end(i):
        changed, events = ops.end_incident(i, i.commander_id, i.created_at + minutes * MINUTE)
        if severity is None:
            return changed, events
        changed = changed.model_copy(update={"field_values": {"severity": severity}})
        return changed, [*events, TimelineEvent(id=f"f{i.id}", incident_id=i.id, at=changed.ended_at,
                                                kind=EventKind.FIELD_CHANGED, actor_id=i.commander_id,
                                                details={"field_id": "severity", "old": None, "new": severity})]
    saved, _ = await bot.store.mutate_incident(incident.id, end)
    return saved


async def the_world(sandbox, bot):
    now = bot.ctx.clock()
    outage = await store_playbook(bot, sandbox, title="Outage")
    security = await store_playbook(bot, sandbox, title="Security", public=False)
    globex = await store_playbook(bot, sandbox, title="Globex plan", team="globex", members=("alice", "bob"))
    at = now - 3 * DAY
    p1 = await quick_incident(bot, sandbox, outage, "Public one", "alice", at=at)
    p2 = await quick_incident(bot, sandbox, outage, "Public two", "bob", at=at + MINUTE)
    await quick_incident(bot, sandbox, outage, "Public three", "bob", at=at + 2 * MINUTE)  # ongoing
    carol = await quick_incident(bot, sandbox, security, "Carol secret", "carol", at=at + 3 * MINUTE)
    bob = await quick_incident(bot, sandbox, security, "Bob secret", "bob", at=at + 4 * MINUTE)
    old = await quick_incident(bot, sandbox, outage, "Old one", "alice", at=now - 40 * DAY)
    far = await quick_incident(bot, sandbox, globex, "Globex thing", "bob", at=at)
    await ended(bot, p1, 10, severity="SEV1")
    await ended(bot, p2, 30, severity="SEV2")
    await ended(bot, carol, 120, severity="SEV1")
    await ended(bot, bob, 240)
    await ended(bot, old, 5)
    await ended(bot, far, 7)
    return {"carol": carol, "bob": bob}


async def test_a_non_member_counts_only_public_incidents(sandbox, bot):
    await the_world(sandbox, bot)
    text = await stats(sandbox, "dave")
    assert "last 30 days" in text
    rows = table(text)
    assert rows[("**All**", "all")] == (3, 2, "10m", "30m")
    assert rows[("Outage", "all")] == (3, 2, "10m", "30m")
    assert rows[("Outage", "SEV1")] == (1, 1, "10m", "10m")
    assert rows[("Outage", "SEV2")] == (1, 1, "30m", "30m")
    assert rows[("Outage", "not set")] == (1, 0, "–", "–")
    assert "Security" not in text and "secret" not in text.lower()
    # Naming the private playbook shows nothing of it either.
    only = await stats(sandbox, "dave", '"Security"')
    assert "No incident you can see started in this period." in only


async def test_members_count_their_private_incidents_and_admins_everything(sandbox, bot):
    await the_world(sandbox, bot)
    carol = table(await stats(sandbox, "carol"))
    assert carol[("**All**", "all")] == (4, 3, "30m", "2h")
    assert carol[("Security", "all")] == (1, 1, "2h", "2h")
    bob = table(await stats(sandbox, "bob"))
    assert bob[("Security", "all")] == (1, 1, "4h", "4h")
    assert ("Security", "not set") not in bob  # no severity set in it: no severity lines
    admin = table(await stats(sandbox, "alice"))  # a system admin, in neither private channel
    assert admin[("**All**", "all")] == (5, 4, "30m", "4h")
    assert admin[("Security", "all")] == (2, 2, "2h", "4h")
    assert admin[("**All**", "SEV1")] == (2, 2, "10m", "2h")


async def test_joining_counts_and_leaving_uncounts_a_private_incident(sandbox, bot):
    world = await the_world(sandbox, bot)
    secret = world["carol"]
    join(sandbox, "dave", secret.channel_id)  # (the sandbox lets anyone be added; carol would add him)
    assert table(await stats(sandbox, "dave"))[("**All**", "all")][0] == 4
    leave(sandbox, "dave", secret.channel_id)
    assert table(await stats(sandbox, "dave"))[("**All**", "all")][0] == 3


async def test_another_team_is_never_counted_and_the_period_is_chosen(sandbox, bot):
    await the_world(sandbox, bot)
    acme = await stats(sandbox, "alice")
    assert "Globex" not in acme
    globex = table(await stats(sandbox, "alice", channel="globex/town-square"))
    assert globex[("**All**", "all")] == (1, 1, "7m", "7m")
    # dave is not in globex: no globex channel to type in, and acme's figures never include it.
    longer = table(await stats(sandbox, "alice", "--days 60"))
    assert longer[("**All**", "all")] == (6, 5, "30m", "4h")
    assert table(await stats(sandbox, "alice", "Outage --days=60"))[("Outage", "all")] == (4, 3, "10m", "30m")
    assert "No incident you can see" in await stats(sandbox, "alice", "--days 1")


async def test_bad_input_is_named_with_what_to_do(sandbox, bot):
    await the_world(sandbox, bot)
    assert "--days is a number of days from 1 to 3650" in await stats(sandbox, "bob", "--days 0")
    assert "--days needs a whole number of days, not `soon`" in await stats(sandbox, "bob", "--days soon")
    assert "--days needs a whole number of days, not nothing" in await stats(sandbox, "bob", "--days")
    text = await stats(sandbox, "bob", "--weeks 2")
    assert "`--weeks` is not a stats option" in text and "/incident stats [playbook] [--days N]" in text
    assert 'No playbook called "Nope"' in await stats(sandbox, "bob", "Nope")
    huge = await stats(sandbox, "bob", "x" * 5000)
    assert "No playbook called" in huge and len(huge) < 7000


async def test_stats_in_a_direct_message(sandbox, bot):
    await the_world(sandbox, bot)
    (reply,) = await dm_bot(sandbox, "dave", "stats")  # dave shares one team with the bot
    assert table(reply["message"])[("**All**", "all")] == (3, 2, "10m", "30m")
    (reply,) = await dm_bot(sandbox, "bob", "stats")  # bob is in two teams: which one?
    assert "which team" in reply["message"]


async def test_the_stored_summary_equals_the_events_after_real_commands(sandbox, bot):
    outage = await store_playbook(bot, sandbox, title="Outage")
    incident = await quick_incident(bot, sandbox, outage, "Live one", "bob", at=bot.ctx.clock() - 5 * MINUTE)
    channel = sandbox.world.channels[incident.channel_id]["name"]
    bob = sandbox.user("bob")
    for text in ("/incident check 1.1", "/incident stage next", "/incident check 2.1", "/incident uncheck 1.1",
                 "/incident stage prev", "/incident commander @bob"):
        result = await bob.command(channel, text)
        assert result.status == 200, result.error
    await bot.store.mutate_incident(incident.id, lambda i: checklist.check_step(i, (0, 1), i.commander_id,
                                                                                bot.ctx.clock()))
    await ended(bot, incident, 9)
    timeline = await bot.store.timeline(incident.id)
    assert {EventKind.STEP_CHECKED, EventKind.STAGE_CHANGED, EventKind.ENDED} <= {e.kind for e in timeline}
    stored = await bot.store.incident_summary(incident.id)
    assert stored == summarize(incident.created_at, timeline)
    assert stored.resolve_ms == 9 * MINUTE and not stored.ongoing
